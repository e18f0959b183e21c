"""Learned skills batched across envs: N skill envs in one process, one skill-network forward per step.

The alternative placement to skills inside each ``SubprocVecEnv`` worker. Here the N low-level envs
step in lockstep in this process and the skill network sees all N frame stacks at once: on a GPU
this turns N small forwards into one; on a CPU the envs no longer run in parallel. Same semantics
as :class:`~hrlbc.master.skill_env.SkillEnv` (tested: identical episodes for one env; with several,
batched convolutions may differ from single ones in the last float bits).
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from hrlbc.master.skill_env import SkillEnv


def stack_obs(obs: list[np.ndarray | dict[str, np.ndarray]]) -> np.ndarray | dict[str, np.ndarray]:
    """N master observations -> one batch (a dict of batches for a dict view)."""
    if isinstance(obs[0], dict):
        return {k: np.stack([o[k] for o in obs]) for k in obs[0]}
    return np.stack(obs)


class BatchedSkillVecEnv(VecEnv):
    """A ``VecEnv`` of N :class:`SkillEnv`s sharing one learned-skill policy, stepped in lockstep."""

    def __init__(self, envs_: list[SkillEnv]) -> None:
        self.envs = envs_
        first = envs_[0]
        super().__init__(len(envs_), first.observation_space, first.action_space)
        self.policy = first.skills.policy
        self.policies = [self.policy.fork() for _ in envs_]  # one network; each env keeps its own frame history
        self.actions: np.ndarray | None = None
        self._seeds: list[int | None] = [None] * len(envs_)

    def reset(self):
        out = []
        for i, env in enumerate(self.envs):
            obs, _ = env.reset(seed=self._seeds[i])
            self.policies[i].reset()
            out.append(obs)
        self._seeds = [None] * len(self.envs)
        return stack_obs(out)

    def step_async(self, actions: np.ndarray) -> None:
        self.actions = np.asarray(actions)

    def step_wait(self):
        n = len(self.envs)
        skills = self.actions.astype(np.int64)
        rewards, dones, infos = np.zeros(n, np.float32), np.zeros(n, bool), [{} for _ in range(n)]
        running = np.ones(n, bool)
        steps = np.zeros(n, int)
        budget = np.array([env.timescales[k] for env, k in zip(self.envs, skills)])
        for env, k in zip(self.envs, skills):
            env.view.chose(int(k))
        for _ in range(int(budget.max())):
            running &= steps < budget
            idx = np.nonzero(running)[0]
            if len(idx) == 0:
                break
            stacks = np.stack([self.policies[i].stacked(self.envs[i].last_obs) for i in idx])
            actions = self.policy.act_batch(stacks, skills[idx])
            for i, action in zip(idx, actions):
                env = self.envs[i]
                obs, reward, terminated, truncated, info = env.env.step(action)
                env.view.push(obs)
                env.last_obs = obs
                rewards[i] += reward
                steps[i] += 1
                if terminated or truncated:
                    running[i] = False
                    dones[i] = True
                    infos[i] = {**info, "TimeLimit.truncated": truncated and not terminated}
                else:
                    infos[i] = info
        obs_out = []
        for i, env in enumerate(self.envs):
            env.env_steps += steps[i]
            infos[i] = {**infos[i], "skill": int(skills[i]), "skill_steps": int(steps[i]), "env_steps": env.env_steps}
            master_obs = env.view.observe(env.last_obs)
            if dones[i]:
                infos[i]["terminal_observation"] = master_obs
                master_obs, _ = env.reset()
                self.policies[i].reset()
            obs_out.append(master_obs)
        return stack_obs(obs_out), rewards, dones, infos

    def seed(self, seed: int | None = None):
        self._seeds = [None if seed is None else seed + i for i in range(len(self.envs))]
        return self._seeds

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def get_attr(self, attr_name, indices=None):
        return [getattr(self.envs[i], attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name, value, indices=None) -> None:
        for i in self._get_indices(indices):
            setattr(self.envs[i], attr_name, value)

    def env_method(self, method_name, *args, indices=None, **kwargs):
        return [getattr(self.envs[i], method_name)(*args, **kwargs) for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False for _ in self._get_indices(indices)]
