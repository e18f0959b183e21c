"""What retrying can buy a master: learned skills under a hand-written rule that knows the grasp.

    python benchmarks/retry_bound.py --task stack --skills runs/repro_stack_paper/skills/best.pt [--episodes 100]
    python benchmarks/retry_bound.py --task bowl --skills runs/bowl_light/best.pt --held grasped

Bowl and Stack share the skill layout (above the object, grasp it, lift, above the target and
release). The rule picks the next skill from whether the gripper holds the object and from the skill
just run: not held -> above, then grasp; held -> lift, then above-target-and-release.
A missed grasp or a dropped cube is therefore retried at once, which a master that has learned to
notice it would do at best. ``--held gap``: the finger-pad gap (2 to 8 cm: a cube between the pads),
what ``obs=depth_proprio`` gives a master; ``--held grasped``: the simulator's own attachment flag.
Breakfast (``--task breakfast``, the held flag of its state): a held cup that still holds most of its
spheres is poured, one poured is put down; with the hand empty, the first cup not yet poured is grasped.
A missed grasp is therefore retried; a cup that fell or spilled ends the episode whatever a master does.
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

ABOVE, GRASP, LIFT, PLACE = 0, 1, 2, 3  # Bowl's and Stack's skill ids (checked against the names in main)
GRASP_A, GRASP_B, POUR, PUT_DOWN = 0, 1, 2, 3  # Breakfast's
POURED = 0.5  # a cup with more than half its spheres out of it counts as poured
_env: dict[str, SkillEnv] = {}


def pick_and_place_rule(env: SkillEnv, obs: np.ndarray, last: int | None, held_by: str) -> int:
    layout = env.env.state_layout
    gap, grasped = obs[layout["gripper"]][0], obs[layout["grasped"]][0]
    held = grasped > 0.5 if held_by == "grasped" else 0.02 < gap < 0.08
    return (LIFT if last == GRASP else PLACE) if held else (GRASP if last == ABOVE else ABOVE)


def breakfast_rule(env: SkillEnv, obs: np.ndarray, last: int | None, held_by: str) -> int:
    world = env.env.unwrapped
    held = obs[world.state_layout["held"]]
    # each cup's spheres (the first half cup A's) that are no longer inside it: in the bowl or spilled
    spheres = world.sphere_positions().reshape(2, -1, 3)
    out = [(~world.in_cup(spheres[k], k)).mean() for k in range(2)]
    for k in range(2):
        if held[k] > 0.5:
            return PUT_DOWN if out[k] > POURED else POUR
    return GRASP_A if out[0] <= POURED else GRASP_B


def episode(args: tuple[str, str, str, int]) -> tuple[bool, str, str]:
    """One episode; returns its success, its skill choices as a string of skill ids, its failure."""
    task, skills, held_by, seed = args
    if "env" not in _env:
        _env["env"] = SkillEnv(task, skills, obs="state")
    env = _env["env"]
    rule = breakfast_rule if task == "breakfast" else pick_and_place_rule
    obs, _ = env.reset(seed=seed)
    last, picks, done, info = None, "", False, {}
    while not done:
        k = rule(env, obs, last, held_by)
        obs, _, terminated, truncated, info = env.step(k)
        last, picks, done = k, picks + str(k), terminated or truncated
    return bool(info["is_success"]), picks, info.get("failure") or "timeout"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("bowl", "stack", "breakfast"), default="stack")
    parser.add_argument("--skills", required=True, help="a train-skills checkpoint of that task")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--held", choices=("gap", "grasped"), default="gap")
    args = parser.parse_args()
    skill_names = get_task(args.task).spec.skills
    if args.task == "breakfast":
        if skill_names != ("grasp_a", "grasp_b", "pour", "put_down"):
            parser.error(f"breakfast's skills {list(skill_names)} are not (grasp_a, grasp_b, pour, put_down)")
    elif len(skill_names) != 4 or "grasp" not in skill_names[GRASP] or skill_names[LIFT] != "lift":
        parser.error(f"{args.task}'s skills {list(skill_names)} are not (above, grasp, lift, place)")
    jobs = [(args.task, args.skills, args.held, EVAL_SEED_START + i) for i in range(args.episodes)]
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(args.workers) as pool:
        results = pool.map(episode, jobs, chunksize=1)
    success = np.mean([ok for ok, _, _ in results])
    held = "the held flag" if args.task == "breakfast" else args.held
    print(
        f"{args.task}, retry rule (held by {held}): {success:.0%} on {args.episodes} held-out seeds, "
        f"{time.perf_counter() - t0:.0f} s"
    )
    if args.task == "breakfast":
        failures = Counter(why for ok, _, why in results if not ok)
    else:
        failures = Counter(
            "released, not at the target" if "3" in p else "grasp missed again and again"
            for ok, p, _ in results
            if not ok
        )
    print("failures:", dict(failures))
    print("skill choices:", dict(Counter(skill_names[int(c)] for _, p, _ in results for c in p)))


if __name__ == "__main__":
    main()
