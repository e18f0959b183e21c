"""Speed beside other work: each stage idle and with one busy core beside it, interleaved, with the ratio.

    python benchmarks/contention.py [--rounds 2] [--threads 0] [--workers -1] [--stages train evaluate master]

A user's laptop runs other things. For each stage this runs the project's own code with its default
settings, alternating idle and busy (a plain ``while True: pass`` process beside it, started and killed
around each busy measurement) ``--rounds`` times, and prints the medians and busy / idle. Goal (issue
49): >= 0.4 with one of two cores busy (a fair share of the cores left would give ~0.5 to 0.67).

- ``train``: ``train-skills``' loop on a Bowl store (store -> augmentation -> model), samples/s.
- ``evaluate``: ``hrlbc evaluate agent=skills`` over briefly trained skills, 4 episodes, low-level steps/s.
- ``master``: ``hrlbc train-master`` over those skills, 64 master steps with its validation, master steps/s.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from bc_throughput import full_loop  # this folder's: run as a script

from demos import open_dataset
from demos.collect import CollectConfig, collect
from hrlbc.evaluate.run import EvaluateConfig, evaluate
from hrlbc.master.train import TrainMasterConfig, train_master
from hrlbc.skills.config import TrainSkillsConfig
from hrlbc.skills.train import loader_workers, thread_fit, train_skills


def busy_beside(fn: Callable[[], float]) -> float:
    """``fn()`` with a busy-loop process on one core beside it."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it reach the CPU first
        return fn()
    finally:
        hog.kill()
        hog.wait()


def stage_runners(tmp: Path, stages: list[str], threads: int, workers: int) -> dict[str, Callable[[], float]]:
    data = tmp / "bowl"
    collect(CollectConfig(task="bowl", episodes=24, workers=2, out=str(data)), progress=False)
    skills = train_skills(
        TrainSkillsConfig(task="bowl", data=str(data), out=str(tmp / "skills"), epochs=1, eval_every=0), progress=False
    )
    device = torch.device("cpu")
    runners: dict[str, Callable[[], float]] = {}
    if "train" in stages:
        fit = thread_fit(threads, device)
        loop = full_loop(
            open_dataset(str(data)), "spatial", 64, "shift", loader_workers(workers, device), device, "auto", fit
        )
        runners["train"] = lambda: loop(150)  # ~5 s: ThreadFit re-checks every 2 s
    count = itertools.count()  # a fresh output folder per measurement

    def evaluate_speed() -> float:
        cfg = EvaluateConfig(
            task="bowl",
            agent="skills",
            checkpoint=str(skills),
            episodes=4,
            workers=2,
            batch=2,
            out=str(tmp / f"eval{next(count)}"),
        )
        t0 = time.perf_counter()
        report = evaluate(cfg, progress=False)
        return sum(e["length"] for e in report["per_episode"]) / (time.perf_counter() - t0)

    def master_speed() -> float:
        cfg = TrainMasterConfig(
            task="bowl",
            skills=str(skills),
            out=str(tmp / f"master{next(count)}"),
            n_envs=2,
            n_steps=16,
            n_minibatches=4,
            total_steps=64,
            eval_every=100,
            eval_episodes=2,
            progress=False,
        )
        t0 = time.perf_counter()
        train_master(cfg)
        return cfg.total_steps / (time.perf_counter() - t0)

    if "evaluate" in stages:
        runners["evaluate"] = evaluate_speed
    if "master" in stages:
        runners["master"] = master_speed
    return runners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="train-skills' threads (0: its adaptive choice)")
    parser.add_argument("--workers", type=int, default=-1, help="train-skills' loader workers (-1: its auto choice)")
    parser.add_argument("--stages", nargs="*", default=["train", "evaluate", "master"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runners = stage_runners(Path(tmp), args.stages, args.threads, args.workers)
        device = torch.device("cpu")
        threads = "adaptive (ThreadFit)" if args.threads == 0 else args.threads
        print(
            f"{len(runners)} stages, {args.rounds} interleaved rounds idle / busy; train-skills: "
            f"threads {threads}, {loader_workers(args.workers, device)} loader workers"
        )
        print(f"{'stage':<9} {'unit':<16} {'idle':>8} {'busy':>8} {'busy/idle':>9}  [per round]")
        units = {"train": "samples/s", "evaluate": "env steps/s", "master": "master steps/s"}
        for name, run in runners.items():
            run()  # warm-up
            rounds = [(run(), busy_beside(run)) for _ in range(args.rounds)]
            idle, busy = np.median(rounds, axis=0)
            per = ", ".join(f"{b / i:.2f}" for i, b in rounds)
            verdict = "OK" if busy / idle >= 0.4 else "LOW"
            print(f"{name:<9} {units[name]:<16} {idle:>8.1f} {busy:>8.1f} {busy / idle:>9.2f} {verdict}  [{per}]")


if __name__ == "__main__":
    main()
