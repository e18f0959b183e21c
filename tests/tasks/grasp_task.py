"""UR5-Grasp: a task defined outside the package, as docs/adding-a-task.md builds it (tested end to end).

Hold a cube (side 4-6 cm) in the gripper. Two skills: go above the cube, then descend and grasp it.
"""

from __future__ import annotations

import numpy as np

from envs.base import ManipulationEnv, TaskSpec
from envs.scene import add_cube, random_color, sample_positions
from envs.skills import Context, GoAbove, Grasp, Skill

SPEC = TaskSpec(
    name="grasp",
    env_id="UR5-Grasp-v0",
    skills=("above_cube", "grasp_cube"),
    expert_order=(0, 1),
    timescale=50,  # the expert's above_cube takes up to ~50 steps from the farthest start, its grasp ~15
    max_episode_steps=150,
    max_linear_speed=0.1,
    description="hold a cube in the gripper",
)


class GraspEnv(ManipulationEnv):
    spec_task = SPEC
    object_names = ("cube",)  # the state gets cube_pos, cube_orn and cube_size, which the skills steer by

    def _build_objects(self, rng: np.random.Generator) -> None:
        side = rng.uniform(0.04, 0.06)
        (xy,) = sample_positions(rng, [side * 0.71])
        self.objects.append(add_cube(self.client, side, xy, rng.uniform(-0.17, 0.17), 0.1, random_color(rng)))
        self.object_sizes[0] = side

    def _success(self) -> bool:
        return bool(self.robot.attached)  # the pads pinch the cube: the gripper holds it


ENV = GraspEnv


def make_skills(ctx: Context) -> list[Skill]:
    return [GoAbove(ctx, "cube", "above_cube"), Grasp(ctx, "cube", "grasp_cube")]


# Defaults of each command for this task (what configs/tasks/<task>.yaml holds for a built-in task).
DEFAULTS = {"collect": {"episodes": 100, "mode": "skills"}}
