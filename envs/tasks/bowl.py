"""UR5-Bowl: put a cube (side 4-6.5 cm) into a bowl (13-17 cm wide, 6.5-8.4 cm tall)."""

from __future__ import annotations

import numpy as np

from envs.base import ManipulationEnv, TaskSpec
from envs.scene import add_container, add_cube, random_color, sample_positions
from envs.skills import Context, Skill, pick_and_place

SPEC = TaskSpec(
    name="bowl",
    env_id="UR5-Bowl-v0",
    skills=("above_cube", "grasp_cube", "lift", "above_bowl_release"),
    expert_order=(0, 1, 2, 3),
    timescale=60,  # RLBC's one timescale for every skill: above the longest of skill_steps
    skill_steps=(53, 13, 16, 39),  # the expert's longest run of each skill (benchmarks/skill_durations.py)
    max_episode_steps=600,
    max_linear_speed=0.1,
    description="put a cube into a bowl",
)
IN_BOWL_XY = 0.04  # m: cube centre within this xy distance of the bowl centre


class BowlEnv(ManipulationEnv):
    spec_task = SPEC
    object_names = ("cube", "bowl")

    def _build_objects(self, rng: np.random.Generator) -> None:
        side = rng.uniform(0.04, 0.065)
        radius, height = rng.uniform(0.065, 0.085), rng.uniform(0.065, 0.084)
        # An open finger reaches ~6 cm from the cube's centre: 5 cm of margin keeps it off the bowl's rim.
        cube_xy, bowl_xy = sample_positions(rng, [side * 0.71, radius], margin=0.05)
        c = self.client
        self.objects.append(add_cube(c, side, cube_xy, rng.uniform(-0.17, 0.17), 0.2, random_color(rng)))
        self.objects.append(add_container(c, bowl_xy, radius, height, 1.0, random_color(rng)))
        self.object_sizes[:] = [(side,) * 3, (2 * radius, 2 * radius, height)]

    def _graspable(self) -> list[int]:
        return self.objects[:1]  # the cube: closing on the bowl's wall must not pick the bowl up

    def _success(self) -> bool:
        (cube, _), (bowl, _) = self.object_pose(0), self.object_pose(1)
        height = self.object_sizes[1, 2]
        inside = np.linalg.norm(cube[:2] - bowl[:2]) < IN_BOWL_XY and cube[2] < bowl[2] + height / 2
        return bool(inside and not self.robot.attached)


def make_skills(ctx: Context) -> list[Skill]:
    return pick_and_place(ctx, SPEC.skills, "cube", "bowl", drop=0.03)
