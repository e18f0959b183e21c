"""Cost of one PPO minibatch update of the master's policy, per feature extractor, side by side.

    python benchmarks/ppo_update.py [--batch 64] [--minibatches 8] [--rounds 5] [--skills PATH/best.pt]

Times stable-baselines3's own ``PPO.train`` (one epoch over a rollout buffer filled with random
(3, 64, 64) depth stacks, actions, values and rewards) and divides by the number of minibatches: per
minibatch, ``evaluate_actions``, the clipped policy + value + entropy loss, backward, gradient
clipping, Adam, and SB3's bookkeeping. Rows: ``cnn`` with the stride-4 stem
(``features.STEM_STRIDE``, what ``train-master`` builds) and with stride 2 (masters saved before),
whose ratio is the speed-up; ``skill`` (RLBC's frozen skill trunk once per skill + a conv head; an
untrained narrow network stands in without --skills, same cost). PPO's settings are
``train-master``'s defaults. Median over ``--rounds`` epochs after one warm-up epoch, on the current
torch threads.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import gymnasium as gym
import numpy as np
import torch
from master_throughput import untrained_checkpoint  # this folder's: run as a script
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure

from hrlbc.master.features import STEM_STRIDE, DepthCNN, SkillFeatures
from hrlbc.master.train import TrainMasterConfig

CFG = TrainMasterConfig()  # train-master's PPO defaults: lr, clip, loss weights, gradient clipping
N_ACTIONS = 4  # Bowl's skills
SPACE = gym.spaces.Box(0.0, 1.0, (3, 64, 64), np.float32)


class _Spaces(gym.Env):
    """Only carries the spaces PPO is built for; nothing steps it."""

    observation_space = SPACE
    action_space = gym.spaces.Discrete(N_ACTIONS)


def make_ppo(batch: int, minibatches: int, extractor, kwargs: dict) -> PPO:
    model = PPO(
        "MlpPolicy",
        _Spaces(),
        learning_rate=CFG.lr,
        n_steps=batch * minibatches,
        batch_size=batch,
        n_epochs=1,
        clip_range=CFG.clip,
        ent_coef=CFG.ent_coef,
        vf_coef=CFG.vf_coef,
        max_grad_norm=CFG.max_grad_norm,
        policy_kwargs={"features_extractor_class": extractor, "features_extractor_kwargs": kwargs},
        seed=0,
        device="cpu",
    )
    model.set_logger(configure(None, []))  # train() records its losses; keep them silent
    return model


def fill_buffer(model: PPO, rng: np.random.Generator) -> None:
    """A full rollout buffer of random observations and actions, with the policy's own values and log-probs."""
    buffer = model.rollout_buffer
    buffer.reset()
    for _ in range(buffer.buffer_size):
        obs = rng.random((1, *SPACE.shape), dtype=np.float32)
        action = rng.integers(0, N_ACTIONS, (1,))
        with torch.no_grad():
            values, log_prob, _ = model.policy.evaluate_actions(torch.as_tensor(obs), torch.as_tensor(action))
        buffer.add(obs, action, rng.random(1, dtype=np.float32), np.zeros(1), values, log_prob)
    buffer.compute_returns_and_advantage(values, np.zeros(1))


def minibatch_ms(model: PPO, rounds: int) -> float:
    """Median wall-clock (ms) per minibatch of one ``PPO.train`` epoch over a random buffer."""
    fill_buffer(model, np.random.default_rng(0))  # train() reads the buffer and leaves it full: fill once
    minibatches = model.n_steps // model.batch_size
    times = []
    for i in range(rounds + 1):
        t0 = time.perf_counter()
        model.train()
        if i:  # the first epoch warms up the allocator and OpenMP threads
            times.append((time.perf_counter() - t0) / minibatches)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--minibatches", type=int, default=8, help="minibatches per timed epoch")
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs (median)")
    parser.add_argument("--skills", default="", help="a Bowl train-skills checkpoint for the skill row")
    args = parser.parse_args()
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    print(f"PPO minibatch update (SB3 PPO.train), batch {args.batch}, 3x64x64 depth, {threads} torch threads")

    def row(extractor, kwargs: dict) -> float:
        return minibatch_ms(make_ppo(args.batch, args.minibatches, extractor, kwargs), args.rounds)

    new = row(DepthCNN, {"stem_stride": STEM_STRIDE})
    old = row(DepthCNN, {"stem_stride": 2})
    print(f"cnn, stem stride {STEM_STRIDE}: {new:7.1f} ms")
    print(f"cnn, stem stride 2: {old:7.1f} ms   (stride {STEM_STRIDE} is {old / new:.2f}x faster)")
    with tempfile.TemporaryDirectory() as tmp:
        skill = row(SkillFeatures, {"checkpoint": args.skills or untrained_checkpoint("bowl", f"{tmp}/skills.pt")})
    print(
        f"skill (frozen trunk x {N_ACTIONS} skills + head): {skill:7.1f} ms   "
        f"({skill / new:.1f}x the stride-{STEM_STRIDE} cnn)"
    )


if __name__ == "__main__":
    main()
