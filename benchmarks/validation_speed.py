"""Master validation wall-clock: one env in the training process vs ``n_envs`` worker envs.

    python benchmarks/validation_speed.py [--task breakfast] [--skills scripted|PATH/best.pt] [--seeds 6]

Plays the same validation seeds both ways with an untrained master (depth observation, the CNN
extractor, picks sampled: episodes run to their limit or an early failure, as early in training)
and checks that both give the same result, which ``evaluate_master`` guarantees per seed.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the envs are the cost; the master's forward is batch 1

from stable_baselines3 import PPO  # noqa: E402

from demos.collect import VALIDATION_SEED_START  # noqa: E402
from hrlbc.master.train import TrainMasterConfig, evaluate_master, make_eval_env, make_skill_env  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="breakfast")
    parser.add_argument("--skills", default="scripted")
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--n-envs", type=int, default=2)
    args = parser.parse_args()
    cfg = TrainMasterConfig(task=args.task, skills=args.skills, obs="depth", n_envs=args.n_envs, progress=False)
    parallel = make_eval_env(cfg)  # forked before any torch op here
    single = make_skill_env(cfg)
    model = PPO("CnnPolicy", single, seed=0, policy_kwargs={"normalize_images": False})
    seeds = list(range(VALIDATION_SEED_START, VALIDATION_SEED_START + args.seeds))
    times, results = [], []
    for env in (single, parallel):
        t0 = time.perf_counter()
        results.append(evaluate_master(model, env, seeds, deterministic=False))
        times.append(time.perf_counter() - t0)
    single.close()
    parallel.close()
    same = "same result" if results[0] == results[1] else f"DIFFERENT: {results}"
    print(
        f"{args.task} ({args.skills} skills), validation on {args.seeds} seeds "
        f"({results[0]['length']:.0f} low-level steps per episode): one env {times[0]:.1f} s, "
        f"{args.n_envs} worker envs {times[1]:.1f} s ({times[0] / times[1]:.2f}x); {same}"
    )


if __name__ == "__main__":
    main()
