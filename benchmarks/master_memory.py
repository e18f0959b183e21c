"""What a Breakfast master must see to learn the skill order: PPO on an abstract Breakfast skill MDP.

    python benchmarks/master_memory.py [--views held last3 full] [--seeds 3] [--steps 4000]

The abstract MDP keeps Breakfast's skill logic and drops the physics: grasp_a / grasp_b take a cup
(with the hand empty), pour empties the held cup, put_down sets it down; each works with probability
``--p`` and otherwise ends the episode as a failure (a fallen cup, a spill), except a missed grasp,
which leaves the hand empty. Grasping with a cup in hand knocks it over (``--knock``, 0.5). Success: both
cups poured; 8 skill choices per episode, as 1200 steps / timescale 150. Views:
``held``: what the hand holds (what an image shows: a cup on the table looks the same poured or not);
``last3``: that plus the last 3 skill choices (``train-master recent_skills=3``); ``full``: that plus
which cups are poured (privileged). PPO: train-master's defaults (lr, clip, epochs, minibatches,
40 steps per env, 2 envs) with ``--gamma`` and ``--ent-coef``. Prints, per view and seed, the first
master step at which the greedy policy solves >= 70% of 50 episodes (the optimum is p^5 ~ 77%).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from hrlbc.master.train import TrainMasterConfig, ppo_settings  # noqa: E402

GRASP_A, GRASP_B, POUR, PUT_DOWN = range(4)
SOLVED = 0.7


class AbstractBreakfast(gym.Env):
    """Observation (3 + 2 + 12,): one-hot held (none, A, B), poured flags, last 3 choices; zeros where
    the view hides them."""

    def __init__(self, view: str, p: float, knock: float, limit: int = 8) -> None:
        self.view, self.p, self.knock, self.limit = view, p, knock, limit
        self.observation_space = gym.spaces.Box(0.0, 1.0, (17,), np.float32)
        self.action_space = gym.spaces.Discrete(4)

    def _obs(self) -> np.ndarray:
        o = np.zeros(17, np.float32)
        o[self.held] = 1.0
        if self.view == "full":
            o[3:5] = self.poured
        if self.view == "last3":
            for row, k in enumerate(reversed(self.choices[-3:])):
                o[5 + 4 * row + k] = 1.0
        return o

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.held, self.poured, self.choices = 0, np.zeros(2, np.float32), []
        return self._obs(), {}

    def step(self, k: int):
        k, works, failed = int(k), self.np_random.random() < self.p, False
        self.choices.append(k)
        if k in (GRASP_A, GRASP_B):
            cup = 1 if k == GRASP_A else 2
            if self.held == 0:
                self.held = cup if works else 0
            elif self.held != cup:
                failed = self.np_random.random() < self.knock
        elif k == POUR and self.held and not self.poured[self.held - 1]:
            self.poured[self.held - 1], failed = float(works), not works
        elif k == PUT_DOWN and self.held:
            self.held, failed = (0, False) if works else (self.held, True)
        success = bool(self.poured.all())
        done = success or failed
        return self._obs(), float(success), done, len(self.choices) >= self.limit and not done, {}


def greedy_success(model, env: AbstractBreakfast, episodes: int = 50) -> float:
    wins = 0
    for i in range(episodes):
        obs, _ = env.reset(seed=1_000_000 + i)
        done, reward = False, 0.0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(model.predict(obs, deterministic=True)[0])
            done = terminated or truncated
        wins += reward > 0
    return wins / episodes


def random_success(env: AbstractBreakfast, seed: int) -> bool:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    done, reward = False, 0.0
    while not done:
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        done = terminated or truncated
    return reward > 0


def steps_to_solve(view: str, seed: int, args: argparse.Namespace) -> int | None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    cfg = TrainMasterConfig(gamma=args.gamma, ent_coef=args.ent_coef)
    vec = DummyVecEnv([lambda: AbstractBreakfast(view, args.p, args.knock) for _ in range(cfg.n_envs)])
    kwargs = {"optimizer_kwargs": {"eps": 1e-5}}
    model = PPO("MlpPolicy", vec, **ppo_settings(cfg), policy_kwargs=kwargs, seed=seed)
    for done in range(args.every, args.steps + 1, args.every):
        model.learn(args.every, reset_num_timesteps=False)
        if greedy_success(model, AbstractBreakfast(view, args.p, args.knock)) >= SOLVED:
            return done
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", nargs="+", choices=("held", "last3", "full"), default=["held", "last3", "full"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4000, help="master steps per run")
    parser.add_argument("--every", type=int, default=400, help="master steps between greedy checks")
    parser.add_argument("--p", type=float, default=0.95, help="each skill's success probability")
    parser.add_argument("--knock", type=float, default=0.5, help="P(a grasp with a cup in hand knocks it over)")
    parser.add_argument("--gamma", type=float, default=0.9)
    parser.add_argument("--ent-coef", type=float, default=0.01)
    args = parser.parse_args()
    random = np.mean([random_success(AbstractBreakfast("held", args.p, args.knock), seed) for seed in range(2000)])
    print(
        f"p={args.p} knock={args.knock} gamma={args.gamma} ent_coef={args.ent_coef}; random choices succeed "
        f"{random:.1%}; master steps to >= {SOLVED:.0%} (greedy):"
    )
    for view in args.views:
        t0 = time.perf_counter()
        found = [steps_to_solve(view, seed, args) for seed in range(args.seeds)]
        solved = [s for s in found if s is not None]
        shown = ", ".join("-" if s is None else str(s) for s in found)
        print(
            f"{view:>6}: solved in {len(solved)}/{args.seeds} runs of {args.steps} steps ({shown}); "
            f"{time.perf_counter() - t0:.0f} s"
        )


if __name__ == "__main__":
    main()
