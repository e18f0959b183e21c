"""UR5-Stack: put the small cube (3.5-5 cm) on the large one (6-8 cm)."""

from __future__ import annotations

import numpy as np

from envs.base import ManipulationEnv, TaskSpec
from envs.scene import add_cube, random_color, sample_positions
from envs.skills import Context, Skill, pick_and_place

SPEC = TaskSpec(
    name="stack",
    env_id="UR5-Stack-v0",
    skills=("above_small", "grasp_small", "lift", "above_large_release"),
    expert_order=(0, 1, 2, 3),
    timescale=60,  # RLBC's one timescale for every skill: above the longest of skill_steps
    skill_steps=(50, 12, 16, 45),  # the expert's longest run of each skill (benchmarks/skill_durations.py)
    max_episode_steps=600,
    max_linear_speed=0.1,
    description="stack the small cube on the large cube",
)


class StackEnv(ManipulationEnv):
    spec_task = SPEC
    object_names = ("small", "large")

    def _build_objects(self, rng: np.random.Generator) -> None:
        small, large = rng.uniform(0.035, 0.05), rng.uniform(0.06, 0.08)
        xy = sample_positions(rng, [small * 0.71, large * 0.71])
        c = self.client
        self.objects.append(add_cube(c, small, xy[0], rng.uniform(-0.17, 0.17), 0.1, random_color(rng)))
        self.objects.append(add_cube(c, large, xy[1], rng.uniform(-0.17, 0.17), 0.5, random_color(rng)))
        self.object_sizes[:] = [(small,) * 3, (large,) * 3]

    def _success(self) -> bool:
        (s, _), (l, _) = self.object_pose(0), self.object_pose(1)
        small, large = self.object_sizes[0, 0], self.object_sizes[1, 0]
        on_top = np.linalg.norm(s[:2] - l[:2]) < large / 2 and abs(s[2] - (l[2] + large / 2 + small / 2)) < 0.01
        return bool(on_top and not self.robot.attached)


def make_skills(ctx: Context) -> list[Skill]:
    return pick_and_place(ctx, SPEC.skills, "small", "large", drop=0.01)
