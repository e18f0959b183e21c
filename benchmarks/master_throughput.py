"""Low-level env steps/s during master training with learned skills, for both skill placements.

    python benchmarks/master_throughput.py [--task bowl] [--master-steps 24] [--skills PATH/best.pt]

``workers``: each env runs in a ``SubprocVecEnv`` worker with its own skill network (1 torch thread).
``batched``: all envs step in lockstep in one process and the skill network runs once per low-level
step for all of them (what a GPU wants). Master actions are random (the env side is the cost centre;
PPO's own update is small next to it). Without --skills, an untrained narrow network stands in
(same cost). Uses CUDA for the batched placement when present.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

import envs
from hrlbc.master.train import TrainMasterConfig, make_vec_env
from hrlbc.skills.model import SkillNet
from hrlbc.skills.policy import CHECKPOINT_FORMAT


def untrained_checkpoint(task: str, path: str) -> str:
    spec = envs.get_task(task).spec
    args = dict(n_skills=len(spec.skills), vel_dim=3, n_offsets=4, frames=3, width="narrow", film=True)
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "version": 1,
            "task": spec.name,
            "skills": list(spec.skills),
            "flat": False,
            "model": args,
            "state_dict": SkillNet(**args).state_dict(),
            "frames": 3,
            "frame_stride": 1,
            "image_size": 64,
            "action_dim": 4,
            "offsets": [1, 10, 20, 30],
            "vel_mean": [0.0] * 3,
            "vel_std": [0.05] * 3,
        },
        path,
    )
    return path


def steps_per_second(task: str, skills: str, placement: str, n_envs: int, master_steps: int, device: str) -> float:
    cfg = TrainMasterConfig(task=task, skills=skills, placement=placement, n_envs=n_envs, obs="depth")
    vec = make_vec_env(cfg, device)
    vec.seed(0)
    vec.reset()
    rng = np.random.default_rng(0)
    total, t0 = 0, time.perf_counter()
    for _ in range(master_steps // n_envs):
        _, _, _, infos = vec.step(rng.integers(0, vec.action_space.n, size=n_envs))
        total += sum(i["skill_steps"] for i in infos)
    elapsed = time.perf_counter() - t0
    vec.close()
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="bowl")
    parser.add_argument("--skills", default=None)
    parser.add_argument("--master-steps", type=int, default=24)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        skills = args.skills or untrained_checkpoint(args.task, os.path.join(tmp, "skills.pt"))
        print(f"{args.task}, learned skills, 64x64 depth; batched skills on {device}")
        print(f"{'placement':<10} {'envs':>4} {'env steps/s':>12}")
        rows = [("workers", 1), ("workers", 2), ("batched", 2), ("batched", 4)]
        results = {}
        for placement, n in rows:
            results[(placement, n)] = steps_per_second(args.task, skills, placement, n, args.master_steps, device)
            print(f"{placement:<10} {n:>4} {results[(placement, n)]:>12.0f}", flush=True)
        print(
            f"workers 2 vs 1: {results[('workers', 2)] / results[('workers', 1)]:.2f}x; "
            f"batched(2) vs workers(2): {results[('batched', 2)] / results[('workers', 2)]:.2f}x"
        )


if __name__ == "__main__":
    main()
