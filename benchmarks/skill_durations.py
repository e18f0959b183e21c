"""How long the scripted expert runs each skill: the per-skill durations a master's skills get.

    python benchmarks/skill_durations.py [--seeds 60] [--tasks bowl stack]

Full expert-order episodes with the collection's action noise (0.05), camera off; a skill's duration is
the steps from its start to the step it reports done (for the last skill of a successful episode, to the
success that ends it). Prints the median, 95th percentile and maximum
per skill, in 10 Hz steps; ``TaskSpec.skill_steps`` holds the maxima (``train-master skill_margin=``
scales them).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import envs  # noqa: E402
from demos.collect import record_episode  # noqa: E402

_envs: dict[str, envs.ManipulationEnv] = {}


def durations(args: tuple[str, int]) -> list[tuple[int, int]]:
    """(skill, steps until done) of every skill that reported done in one episode."""
    task, seed = args
    if task not in _envs:
        _envs[task] = envs.make_env(task, depth=False)
    frames, episode = record_episode(_envs[task], seed, "full", 0.05, 0, np.random.default_rng([0, seed]))
    skill, done = np.asarray(frames["skill"]), np.asarray(frames["skill_done"])
    out, start = [], 0
    for t in range(1, len(skill) + 1):
        if t == len(skill) or skill[t] != skill[t - 1]:
            hits = np.flatnonzero(done[start:t])
            if len(hits):
                out.append((int(skill[start]), int(hits[0]) + 1))
            elif t == len(skill) and episode["success"]:  # the task's success ended the last skill
                out.append((int(skill[start]), t - start))
            start = t
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", nargs="*", default=list(envs.TASKS))
    args = parser.parse_args()
    with mp.get_context("fork").Pool(args.workers) as pool:
        for task in args.tasks:
            runs = [d for ep in pool.map(durations, [(task, s) for s in range(args.seeds)]) for d in ep]
            names = envs.get_task(task).spec.skills
            print(f"{task} ({args.seeds} seeds): skill median / p95 / max steps")
            maxima = []
            for k, name in enumerate(names):
                steps = np.array([n for s, n in runs if s == k])
                maxima.append(int(steps.max()) if len(steps) else 0)
                if len(steps):
                    print(f"  {name:<22} {np.median(steps):5.0f} {np.percentile(steps, 95):5.0f} {steps.max():5d}")
            print(f"  skill_steps={tuple(maxima)}; spec skill_steps={envs.get_task(task).spec.skill_steps}", flush=True)


if __name__ == "__main__":
    main()
