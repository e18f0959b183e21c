"""Cost of one PPO minibatch update of the master's policy, per feature extractor, side by side.

    python benchmarks/ppo_update.py [--batch 64] [--iters 30] [--skills PATH/best.pt]

What a PPO epoch does per minibatch (stable-baselines3's ``PPO.train``): ``evaluate_actions`` on the
(batch, 3, 64, 64) depth stack, a clipped policy + value + entropy loss, backward, gradient clipping,
Adam. Rows: ``cnn`` with the stride-4 stem (``features.STEM_STRIDE``, what ``train-master`` builds)
and with stride 2 (masters saved before), whose ratio is the speed-up; ``skill`` (RLBC's frozen skill
trunk once per skill + a conv head; an untrained narrow network stands in without --skills, same
cost). Median over ``--iters`` minibatches after 3 warm-up ones, on the current torch threads.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import gymnasium as gym
import numpy as np
import torch
from master_throughput import untrained_checkpoint  # this folder's: run as a script
from stable_baselines3.common.policies import ActorCriticPolicy

from hrlbc.master.features import STEM_STRIDE, DepthCNN, SkillFeatures
from hrlbc.master.train import TrainMasterConfig

CFG = TrainMasterConfig()  # train-master's PPO defaults: lr, clip, loss weights, gradient clipping


def minibatch_ms(policy: ActorCriticPolicy, batch: int, iters: int, n_actions: int) -> float:
    """Median wall-clock (ms) of one PPO minibatch update of ``policy`` on random depth stacks."""
    times = []
    for i in range(iters + 3):
        obs = torch.rand(batch, *policy.observation_space.shape)
        actions = torch.randint(0, n_actions, (batch,))
        advantages, returns, old_log_prob = torch.randn(batch), torch.randn(batch), torch.randn(batch)
        t0 = time.perf_counter()
        values, log_prob, entropy = policy.evaluate_actions(obs, actions)
        ratio = torch.exp(log_prob - old_log_prob)
        clipped = torch.clamp(ratio, 1 - CFG.clip, 1 + CFG.clip)
        policy_loss = -torch.min(advantages * ratio, advantages * clipped).mean()
        value_loss = torch.nn.functional.mse_loss(returns, values.flatten())
        loss = policy_loss + CFG.vf_coef * value_loss - CFG.ent_coef * entropy.mean()
        policy.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), CFG.max_grad_norm)
        policy.optimizer.step()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def make_policy(space: gym.spaces.Box, n_actions: int, extractor, kwargs: dict) -> ActorCriticPolicy:
    return ActorCriticPolicy(
        space,
        gym.spaces.Discrete(n_actions),
        lambda _: CFG.lr,
        features_extractor_class=extractor,
        features_extractor_kwargs=kwargs,
        optimizer_kwargs={"eps": 1e-5},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--skills", default="", help="a Bowl train-skills checkpoint for the skill row")
    args = parser.parse_args()
    torch.manual_seed(0)
    space = gym.spaces.Box(0.0, 1.0, (3, 64, 64), np.float32)
    n_actions = 4  # Bowl's skills
    print(f"PPO minibatch update, batch {args.batch}, 3x64x64 depth, {torch.get_num_threads()} torch threads")
    new = minibatch_ms(
        make_policy(space, n_actions, DepthCNN, {"stem_stride": STEM_STRIDE}), args.batch, args.iters, n_actions
    )
    old = minibatch_ms(make_policy(space, n_actions, DepthCNN, {"stem_stride": 2}), args.batch, args.iters, n_actions)
    print(f"cnn, stem stride {STEM_STRIDE}: {new:7.1f} ms")
    print(f"cnn, stem stride 2: {old:7.1f} ms   (stride {STEM_STRIDE} is {old / new:.2f}x faster)")
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.skills or untrained_checkpoint("bowl", f"{tmp}/skills.pt")
        skill = minibatch_ms(
            make_policy(space, n_actions, SkillFeatures, {"checkpoint": checkpoint}), args.batch, args.iters, n_actions
        )
    print(
        f"skill (frozen trunk x {n_actions} skills + head): {skill:7.1f} ms   "
        f"({skill / new:.1f}x the stride-{STEM_STRIDE} cnn)"
    )


if __name__ == "__main__":
    main()
