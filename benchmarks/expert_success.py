"""Scripted-expert success over many seeds, per task, in both collection modes.

    python benchmarks/expert_success.py [--seeds 200] [--noise 0.05] [--workers 2]

``full``: the expert runs the task's skills in the expert order (target: >= 98% on Pick, Bowl,
Stack). ``skills``: RLBC skill-data episodes (random skill prefix, then the expert order); their
failures are kept in datasets on purpose, the figure shows how often the sequence still succeeds.
Seeds are 0..N-1 with the camera off (success does not depend on rendering).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from collections import Counter

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import envs  # noqa: E402
from demos.collect import record_episode  # noqa: E402


def run(args: tuple[str, str, int, float]) -> tuple[bool, str | None, int]:
    task, mode, seed, noise = args
    env = _env(task)
    frames, ep = record_episode(env, seed, mode, noise, 5, np.random.default_rng([0, seed]))
    return ep["success"], ep["failure"], len(frames["action"])


_envs: dict[str, envs.ManipulationEnv] = {}


def _env(task: str) -> envs.ManipulationEnv:
    if task not in _envs:
        _envs[task] = envs.make_env(task, depth=False)
    return _envs[task]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", nargs="*", default=list(envs.TASKS))
    parser.add_argument("--modes", nargs="*", default=["full", "skills"])
    args = parser.parse_args()
    print(f"{'task':<7} {'mode':<7} {'success':>8} {'mean len':>9} {'failures (seeds)':<40} time")
    with mp.get_context("fork").Pool(args.workers) as pool:
        for task in args.tasks:
            for mode in args.modes:
                t0 = time.perf_counter()
                jobs = [(task, mode, s, args.noise) for s in range(args.seeds)]
                results = pool.map(run, jobs, chunksize=4)
                ok = np.array([r[0] for r in results])
                failed = [s for s, r in zip(range(args.seeds), results) if not r[0]]
                reasons = Counter(str(r[1]) for r in results if not r[0])
                text = f"{dict(reasons)} {failed[:8]}" if failed else "-"
                print(
                    f"{task:<7} {mode:<7} {ok.mean():>8.1%} {np.mean([r[2] for r in results]):>9.0f} "
                    f"{text:<40} {time.perf_counter() - t0:.0f}s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
