"""What retrying can buy a master: learned skills under a hand-written rule that knows the grasp.

    python benchmarks/retry_bound.py --task stack --skills runs/repro_stack_paper/skills/best.pt [--episodes 100]
    python benchmarks/retry_bound.py --task bowl --skills runs/bowl_light/best.pt --held grasped

Bowl and Stack share the skill layout (above the object, grasp it, lift, above the target and
release). The rule picks the next skill from whether the gripper holds the object and from the skill
just run: not held -> above, then grasp; held -> lift, then above-target-and-release.
A missed grasp or a dropped cube is therefore retried at once, which a master that has learned to
notice it would do at best. ``--held gap``: the finger-pad gap (2 to 8 cm: a cube between the pads),
what ``obs=depth_proprio`` gives a master; ``--held grasped``: the simulator's own attachment flag.
Held-out seeds 1000000+, as ``hrlbc evaluate``; compare with
``hrlbc evaluate task=T agent=skills checkpoint=...`` (the fixed expert order) on the same seeds.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from collections import Counter

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from demos.collect import EVAL_SEED_START  # noqa: E402
from envs import get_task  # noqa: E402
from hrlbc.master.skill_env import SkillEnv  # noqa: E402

ABOVE, GRASP, LIFT, PLACE = 0, 1, 2, 3  # both tasks' skill ids (checked against the task's names in main)
_env: dict[str, SkillEnv] = {}


def episode(args: tuple[str, str, str, int]) -> tuple[bool, str]:
    """One episode; returns its success and its skill choices as a string of skill ids."""
    task, skills, held_by, seed = args
    if "env" not in _env:
        _env["env"] = SkillEnv(task, skills, obs="state")
    env = _env["env"]
    layout = env.env.state_layout
    obs, _ = env.reset(seed=seed)
    last, picks, done, info = None, "", False, {}
    while not done:
        gap, grasped = obs[layout["gripper"]][0], obs[layout["grasped"]][0]
        held = grasped > 0.5 if held_by == "grasped" else 0.02 < gap < 0.08
        k = (LIFT if last == GRASP else PLACE) if held else (GRASP if last == ABOVE else ABOVE)
        obs, _, terminated, truncated, info = env.step(k)
        last, picks, done = k, picks + str(k), terminated or truncated
    return bool(info["is_success"]), picks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("bowl", "stack"), default="stack")
    parser.add_argument("--skills", required=True, help="a train-skills checkpoint of that task")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--held", choices=("gap", "grasped"), default="gap")
    args = parser.parse_args()
    skill_names = get_task(args.task).spec.skills
    if len(skill_names) != 4 or "grasp" not in skill_names[GRASP] or skill_names[LIFT] != "lift":
        parser.error(f"{args.task}'s skills {list(skill_names)} are not (above, grasp, lift, place)")
    jobs = [(args.task, args.skills, args.held, EVAL_SEED_START + i) for i in range(args.episodes)]
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(args.workers) as pool:
        results = pool.map(episode, jobs, chunksize=1)
    success = np.mean([ok for ok, _ in results])
    print(
        f"{args.task}, retry rule (held by {args.held}): {success:.0%} on {args.episodes} held-out seeds, "
        f"{time.perf_counter() - t0:.0f} s"
    )
    failures = Counter(
        "released, not at the target" if "3" in p else "grasp missed again and again" for ok, p in results if not ok
    )
    print("failures:", dict(failures))


if __name__ == "__main__":
    main()
