"""Agents under evaluation, all behind ``reset()`` and ``act(obs) -> (action, skill id or None)``.

The master also lists its episode's skill choices in ``choices`` (the report counts those; for the
other agents a choice is a change of the active skill).

Every agent acts at the low level (10 Hz) on the task env's observation dict, so one episode loop
serves the scripted expert, fixed skill sequences, the hierarchy and the flat baselines.

Episodes can also run side by side: ``agent.spawn(env)`` makes an agent for another env that shares the
networks but keeps its own episode state, and :func:`act_group` steps such agents with one network
forward for all of them.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

import envs
from demos.io import first_line
from hrlbc.config import ConfigError

AGENTS = ("expert", "skills", "master", "flat-bc", "ppo-flat")


class ExpertAgent:
    """The scripted full-task expert (noise-free)."""

    def __init__(self, env: envs.ManipulationEnv) -> None:
        self.expert = envs.make_expert(env)

    def spawn(self, env: envs.ManipulationEnv) -> ExpertAgent:
        return ExpertAgent(env)

    def reset(self) -> None:
        self.expert.reset()

    def act(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, int | None]:
        skill = self.expert.current_skill
        return self.expert.act(obs["state"]), skill


class SequenceAgent:
    """Learned skills run in a fixed sequence, each for the timescale (default: the expert order)."""

    def __init__(self, checkpoint: str, env: envs.ManipulationEnv, sequence: list[int] | None, timescale: int) -> None:
        from hrlbc.master.skill_env import check_skills_checkpoint
        from hrlbc.skills.policy import SkillPolicy

        check_skills_checkpoint(checkpoint, env.spec_task.name)
        self.policy = SkillPolicy.load(checkpoint)
        self.sequence = list(sequence or env.spec_task.expert_order)
        self.timescale = timescale
        self.t = 0

    def spawn(self, env: envs.ManipulationEnv) -> SequenceAgent:
        twin = copy.copy(self)
        twin.policy, twin.t = self.policy.fork(), 0
        return twin

    def reset(self) -> None:
        self.policy.reset()
        self.t = 0

    def next_skill(self, obs) -> tuple[int, int]:
        """(skill fed to the network, skill reported) for this step."""
        skill = self.sequence[min(self.t // self.timescale, len(self.sequence) - 1)]
        self.t += 1
        return skill, skill

    def act(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, int | None]:
        return act_group([self], [obs])[0]


class FlatBCAgent:
    """One BC policy for the whole task (no skill input)."""

    def __init__(self, checkpoint: str, env: envs.ManipulationEnv) -> None:
        from hrlbc.skills.policy import SkillPolicy, load_checkpoint

        ckpt = load_checkpoint(checkpoint)
        if not ckpt["flat"]:
            raise ConfigError(
                f"{checkpoint} is a skills checkpoint (FiLM); agent=flat-bc needs one trained with flat=true"
            )
        if ckpt["task"] != env.spec_task.name:
            raise ConfigError(f"{checkpoint} was trained on task {ckpt['task']!r}, not {env.spec_task.name!r}")
        self.policy = SkillPolicy(ckpt)

    def spawn(self, env: envs.ManipulationEnv) -> FlatBCAgent:
        twin = copy.copy(self)
        twin.policy = self.policy.fork()
        return twin

    def reset(self) -> None:
        self.policy.reset()

    def next_skill(self, obs) -> tuple[int, None]:
        return 0, None  # the flat network ignores the skill input

    def act(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, int | None]:
        return act_group([self], [obs])[0]


def master_run_config(checkpoint: str) -> dict[str, Any]:
    """The config a master was trained with (``master.json`` beside its .zip)."""
    path = Path(checkpoint)
    if path.suffix == ".pt":
        raise ConfigError(f"{checkpoint} is a skills checkpoint; agent=master needs a master .zip from train-master")
    if not path.is_file():
        raise ConfigError(f"master checkpoint not found: {checkpoint}")
    meta = path.parent / "master.json"
    if not meta.is_file():
        raise ConfigError(f"{meta} not found: a master .zip must sit in its train-master output directory")
    info = json.loads(meta.read_text())
    if info.get("format") != "hrlbc-master":
        raise ConfigError(f"{meta} is not an hrlbc master description")
    cfg = dict(info["config"])
    relative = info.get("skills_relative")
    # Where the pair sits together (its run folder, a copy, shipped weights), the skills beside the master win:
    # the recorded absolute path may name another machine's file, or a same-named file retrained since.
    if relative and (path.parent / relative).is_file():
        cfg["skills"] = os.path.normpath(path.parent / relative)
    return cfg


class MasterAgent:
    """The hierarchy: the PPO master picks a skill from its observation, which then runs its timescale (the
    one of the master's training: :func:`~hrlbc.master.skill_env.skill_timescales`).

    ``deterministic=False`` samples the pick from the master's policy (torch's RNG) instead of taking
    the most likely skill.

    ``skills`` runs the master over another skills checkpoint of the same task and skill set (e.g. skills
    retrained on more demonstrations, or a copy of its own where the recorded path does not exist) instead of
    the one it was trained over; the master's own features keep the frozen trunk weights saved in its .zip,
    so only the executed skills change. ``skills_path`` is the checkpoint that acts (None for scripted skills).
    """

    def __init__(
        self, checkpoint: str, env: envs.ManipulationEnv, deterministic: bool = True, skills: str | None = None
    ) -> None:
        from hrlbc.master.features import load_master
        from hrlbc.master.skill_env import LearnedSkills, ScriptedSkills, check_skills_checkpoint

        cfg = master_run_config(checkpoint)
        if cfg["skills"] == "flat":
            raise ConfigError(f"{checkpoint} is a ppo-flat policy; use agent=ppo-flat")
        if cfg["task"] != env.spec_task.name:
            raise ConfigError(f"{checkpoint} is a master for task {cfg['task']!r}, not {env.spec_task.name!r}")
        self.skills_path = skills or (None if cfg["skills"] == "scripted" else cfg["skills"])
        if skills:
            check_skills_checkpoint(skills, cfg["task"])
        elif self.skills_path and not Path(self.skills_path).is_file():
            raise ConfigError(
                f"{checkpoint} was trained over the skills {self.skills_path}, which are not there; "
                f"skills=PATH runs it over a copy of them or over other skills of task {cfg['task']!r}"
            )
        try:
            # a skill trunk is rebuilt from the skills file found (given, recorded, or beside a moved master)
            self.model = load_master(checkpoint, self.skills_path)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        except Exception as e:  # a zip that is no SB3 model, a truncated file, a skills .pt renamed .zip
            raise ConfigError(f"cannot read master checkpoint {checkpoint}: {first_line(e)}") from None
        self.skills = LearnedSkills(self.skills_path) if self.skills_path else ScriptedSkills(env)
        self.config = cfg
        self.view = self.make_view(env)
        from hrlbc.master.skill_env import skill_timescales

        self.timescales = skill_timescales(env.spec_task, cfg["timescale"], cfg.get("skill_margin", 0.0))
        self.skill, self.left = 0, 0
        self.choices: list[int] = []  # this episode's picks; a repeated pick is a new choice
        self.deterministic = deterministic

    @property
    def policy(self):
        """The learned skills' network (batched by :func:`act_group`); None over scripted skills."""
        return getattr(self.skills, "policy", None)

    def make_view(self, env: envs.ManipulationEnv):
        from hrlbc.master.skill_env import MasterView

        cfg = self.config  # masters saved before recent_skills existed saw images only
        return MasterView(cfg["obs"], env, cfg["frames"], cfg["image_size"], cfg.get("recent_skills", 0))

    def spawn(self, env: envs.ManipulationEnv) -> MasterAgent:
        from hrlbc.master.skill_env import ScriptedSkills

        twin = copy.copy(self)
        if self.policy is None:
            twin.skills = ScriptedSkills(env)
        else:
            twin.skills = copy.copy(self.skills)
            twin.skills.policy = self.policy.fork()
        twin.view = self.make_view(env)
        twin.skill, twin.left, twin.choices = 0, 0, []
        return twin

    def reset(self) -> None:
        self.skills.reset()
        self.view.reset()
        self.left, self.choices = 0, []

    def next_skill(self, obs) -> tuple[int, int]:
        """When the running skill's time is up the master picks the next (one forward of its own, not batched)."""
        self.view.push(obs)
        if self.left == 0:
            master_obs = self.view.observe(obs)
            self.skill = int(self.model.predict(master_obs, deterministic=self.deterministic)[0])
            self.choices.append(self.skill)
            self.skills.start(self.skill)
            self.view.chose(self.skill)
            self.left = self.timescales[self.skill]
        self.left -= 1
        return self.skill, self.skill

    def act(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, int | None]:
        if self.policy is not None:
            return act_group([self], [obs])[0]
        skill, _ = self.next_skill(obs)
        return self.skills.act(obs, skill), skill


def check_agent_checkpoint(agent: str, checkpoint: str | None) -> None:
    """Refuse an unknown agent, a missing checkpoint, or a checkpoint of the wrong kind for the agent."""
    if agent not in AGENTS:
        raise ConfigError(f"unknown agent {agent!r}; valid agents: {', '.join(AGENTS)}")
    if agent == "expert":
        return
    if not checkpoint:
        raise ConfigError(f"agent={agent} needs checkpoint=PATH")
    if agent in ("skills", "flat-bc") and checkpoint.endswith(".zip"):
        raise ConfigError(f"{checkpoint} is a master; agent={agent} needs a skills checkpoint (.pt)")
    if agent in ("master", "ppo-flat") and checkpoint.endswith(".pt"):
        raise ConfigError(f"{checkpoint} is a skills checkpoint; agent={agent} needs a .zip from train-master")


class PPOFlatAgent:
    """The ppo-flat baseline: a PPO policy on low-level actions (``train-master skills=flat``)."""

    def __init__(self, checkpoint: str, env: envs.ManipulationEnv, deterministic: bool = True) -> None:
        from stable_baselines3 import PPO

        cfg = master_run_config(checkpoint)
        if cfg["skills"] != "flat":
            raise ConfigError(f"{checkpoint} is a master over skills; agent=ppo-flat needs train-master skills=flat")
        if cfg["task"] != env.spec_task.name:
            raise ConfigError(f"{checkpoint} was trained on task {cfg['task']!r}, not {env.spec_task.name!r}")
        self.model = PPO.load(checkpoint, device="cpu")
        self.config = cfg
        self.view = self.make_view(env)
        self.scale = env.action_space.high.astype(np.float32)
        self.deterministic = deterministic

    def make_view(self, env: envs.ManipulationEnv):
        from hrlbc.master.skill_env import MasterView

        cfg = self.config
        return MasterView(cfg["obs"], env, cfg["frames"], cfg["image_size"])

    def spawn(self, env: envs.ManipulationEnv) -> PPOFlatAgent:
        twin = copy.copy(self)
        twin.view = self.make_view(env)
        return twin

    def reset(self) -> None:
        self.view.reset()

    def observe(self, obs):
        self.view.push(obs)
        return self.view.observe(obs)

    def act(self, obs: dict[str, np.ndarray]) -> tuple[np.ndarray, int | None]:
        return act_group([self], [obs])[0]


Agent = ExpertAgent | SequenceAgent | FlatBCAgent | MasterAgent | PPOFlatAgent


def act_group(agents: list[Agent], observations: list[dict[str, np.ndarray]]) -> list[tuple[np.ndarray, int | None]]:
    """One low-level step of episodes run side by side: ``(action, skill id or None)`` for each agent.

    ``agents`` are one agent and its ``spawn`` copies, each on its own env's observation. Their network runs
    once for all of them (the scripted agents step one by one). A batched forward computes each row from its
    own input only, in float arithmetic that can differ from a forward of one in the last bits.
    """
    first = agents[0]
    if isinstance(first, PPOFlatAgent):
        from hrlbc.master.batched import stack_obs

        batch = stack_obs([a.observe(o) for a, o in zip(agents, observations)])
        actions = first.model.predict(batch, deterministic=first.deterministic)[0]
        return [(np.clip(a, -1, 1) * first.scale, None) for a in actions]
    if getattr(first, "policy", None) is None:  # the expert, a master over scripted skills
        return [a.act(o) for a, o in zip(agents, observations)]
    stacks, net_skills, shown = [], [], []
    for agent, obs in zip(agents, observations):
        net_skill, skill = agent.next_skill(obs)
        stacks.append(agent.policy.stacked(obs))
        net_skills.append(net_skill)
        shown.append(skill)
    actions = first.policy.act_batch(np.stack(stacks), np.array(net_skills))
    return list(zip(actions, shown))


def make_agent(
    agent: str,
    env: envs.ManipulationEnv,
    checkpoint: str | None,
    sequence: list[int] | None,
    deterministic: bool = True,
    skills: str | None = None,
) -> Agent:
    """Build ``agent`` (one of :data:`AGENTS`) for ``env``; bad combinations raise :class:`ConfigError`.

    ``deterministic`` applies to the PPO agents (master, ppo-flat); the others have no choice to sample.
    ``skills`` (master only) replaces the skills checkpoint the master was trained over.
    """
    if skills and agent != "master":
        raise ConfigError(f"skills= replaces a master's skills; agent={agent} does not take it")
    check_agent_checkpoint(agent, checkpoint)
    if agent == "expert":
        return ExpertAgent(env)
    if agent == "skills":
        return SequenceAgent(checkpoint, env, sequence, env.spec_task.timescale)
    if agent == "flat-bc":
        return FlatBCAgent(checkpoint, env)
    if agent == "master":
        return MasterAgent(checkpoint, env, deterministic, skills)
    return PPOFlatAgent(checkpoint, env, deterministic)


def agent_env_options(agent: str, checkpoint: str | None) -> dict[str, Any]:
    """Env options the agent needs (image size of its skills; RGB for videos is added by the caller)."""
    check_agent_checkpoint(agent, checkpoint)
    if agent in ("skills", "flat-bc") and checkpoint:
        from hrlbc.skills.policy import load_checkpoint

        return {"image_size": load_checkpoint(checkpoint)["image_size"]}
    if agent in ("master", "ppo-flat") and checkpoint and checkpoint.endswith(".zip"):
        return {"image_size": master_run_config(checkpoint)["image_size"]}
    return {}
