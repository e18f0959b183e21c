"""Env steps/s on one core, per task, with one 64x64 depth camera and with the camera off.

    python benchmarks/env_throughput.py [--steps 2000] [--size 64]

Actions come from the scripted expert (grasps, carries, releases happen as in real use); only
``env.step`` and ``env.reset`` are timed. Target (issue 2): >= 300 camera steps/s per core.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import envs  # noqa: E402


def steps_per_second(task: str, steps: int, **options) -> float:
    env = envs.make_env(task, **options)
    elapsed, done, seed = 0.0, 0, 0
    while done < steps:
        t0 = time.perf_counter()
        obs, _ = env.reset(seed=seed)
        elapsed += time.perf_counter() - t0
        expert = envs.make_expert(env)
        while done < steps:
            action = expert.act(obs["state"])
            t0 = time.perf_counter()
            obs, _, terminated, truncated, _ = env.step(action)
            elapsed += time.perf_counter() - t0
            done += 1
            if terminated or truncated:
                break
        seed += 1
    env.close()
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    print(f"{'task':<8} {'camera steps/s':>15} {'no-camera steps/s':>18} {'target':>8}")
    for task in envs.TASKS:
        cam = steps_per_second(task, args.steps, image_size=args.size)
        bare = steps_per_second(task, args.steps, depth=False)
        print(f"{task:<8} {cam:>15.0f} {bare:>18.0f} {'>= 300':>8} {'OK' if cam >= 300 else 'BELOW'}")


if __name__ == "__main__":
    main()
