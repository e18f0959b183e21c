"""UR5-Pick: lift a cube of side 3-8 cm more than 8 cm above the table (cube centre height)."""

from __future__ import annotations

import numpy as np
import pybullet as pb

from envs.base import ManipulationEnv, TaskSpec
from envs.scene import add_cube, random_color, sample_positions
from envs.skills import Context, Skill, pick_and_place

SPEC = TaskSpec(
    name="pick",
    env_id="UR5-Pick-v0",
    skills=("above_cube", "grasp_cube", "lift"),
    expert_order=(0, 1, 2),
    timescale=50,  # RLBC's one timescale for every skill (above_cube: median 37 steps, up to 71)
    skill_steps=(71, 16, 10),  # the expert's longest run of each skill (benchmarks/skill_durations.py)
    max_episode_steps=200,
    max_linear_speed=0.075,
    description="lift a cube (side 3-8 cm) 8 cm above the table",
)
SUCCESS_HEIGHT = 0.08  # m, cube centre above the table top
MAX_YAW = np.deg2rad(10)  # cube yaw range: the open gripper (11 cm) must fit across an 8 cm cube


class PickEnv(ManipulationEnv):
    spec_task = SPEC
    object_names = ("cube",)

    def _build_objects(self, rng: np.random.Generator) -> None:
        side = rng.uniform(0.03, 0.08)
        (xy,) = sample_positions(rng, [side * 0.71])
        self.objects.append(add_cube(self.client, side, xy, rng.uniform(-MAX_YAW, MAX_YAW), 0.1, random_color(rng)))
        self.object_sizes[0] = side

    def _success(self) -> bool:
        z = pb.getBasePositionAndOrientation(self.objects[0], physicsClientId=self.client)[0][2]
        return z > SUCCESS_HEIGHT


def make_skills(ctx: Context) -> list[Skill]:
    return pick_and_place(ctx, SPEC.skills, "cube")
