"""The master's view of a task: a gymnasium env whose actions are skills.

One master step runs the chosen skill for its timescale of low-level 10 Hz steps (or until the episode
ends) and returns the summed sparse reward: the task's one timescale for every skill (RLBC's), or with a
``skill_margin`` each skill's own (:func:`skill_timescales`). The episode is a semi-MDP over skills: the
master discounts per master step, whatever the skill's duration.

Skills sit behind one interface, :class:`Skills`: ``reset()`` at the episode start, ``start(k)`` when
the master picks skill ``k``, ``act(obs, k) -> action`` at every low-level step.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

import envs
from hrlbc.config import ConfigError

OBS_MODES = ("depth", "state", "depth_proprio")
# The robot's own sensors (joint encoders through forward kinematics, finger travel): known on a real
# robot too, unlike the privileged object poses of ``state``.
PROPRIO_FIELDS = ("tcp_pos", "tcp_orn", "gripper")


def skill_timescales(spec: envs.TaskSpec, timescale: int = 0, margin: float = 0.0) -> tuple[int, ...]:
    """Low-level steps skill k runs per master pick, for each k.

    ``margin`` = 0: ``timescale`` (0: the task's) for every skill, as RLBC. ``margin`` > 0: ceil(margin x
    the scripted expert's longest run of skill k) (``TaskSpec.skill_steps``). Why: with one timescale, long
    enough for the slowest skill, a fast skill gets the time of a slow one, and a learned grasp started far
    from the cube has the time to reach it, so PPO settles on a grasp -> release shortcut that fails on half
    the scenes; each skill's own time takes the shortcut away and shortens every episode.
    """
    if margin <= 0:
        return (int(timescale or spec.timescale),) * len(spec.skills)
    if len(spec.skill_steps) != len(spec.skills):
        raise ConfigError(f"task {spec.name!r} records no per-skill durations (TaskSpec.skill_steps); use timescale")
    return tuple(math.ceil(margin * steps) for steps in spec.skill_steps)


def reset_episode(env: gym.Env, seed: int) -> Any:
    """Reset ``env`` to episode ``seed`` and seed torch's RNG with it; returns the first observation.

    A sampling policy (a stochastic master, ``deterministic=false``) draws from torch's RNG, so the
    episode's seed, not the worker or the episodes run before it, fixes its draws: validation during
    training and ``hrlbc evaluate`` play the same episode on the same seed.
    """
    import torch

    obs, _ = env.reset(seed=seed)
    torch.manual_seed(seed)
    return obs


def check_obs_mode(mode: str) -> None:
    """Refuse an unknown master observation mode (see :class:`MasterView`)."""
    if mode not in OBS_MODES:
        raise ConfigError(f"obs must be one of {OBS_MODES}, got {mode!r}")


class MasterView:
    """What the master (or ppo-flat) sees of the task env, and the frame history behind it.

    Modes: ``depth``, a (frames, H, W) float32 stack of the newest depth frames in [0, 1] (missing
    history at the episode start repeats the first frame); ``state``, the privileged state vector (D,);
    ``depth_proprio``, a dict of that depth stack and ``proprio`` (8,) float32: tcp position (m, world
    frame), tcp orientation (xyzw) and the gap between the finger pads (m), which tells a held object
    (its width) from an empty closed gripper (0) and an open one (0.11).

    ``recent_skills=N`` (> 0) adds the master's own last N skill choices, ``recent_skills`` (N * K,)
    float32: N one-hot rows over the K skills, newest first, zeros before the first choices. The view is
    then a dict: ``depth`` or ``state``, ``proprio`` for ``depth_proprio``, and ``recent_skills``. Why:
    an image does not show everything a task's progress needs. A Breakfast cup poured and put back looks
    like one never poured (its spheres are out of sight), so an image-only master cannot tell which cup
    to grasp next.

    ``push(obs)`` at every low-level step (the stack ends with the newest frames), ``chose(k)`` when the
    master picks skill k, ``observe(obs)`` when it decides.
    """

    def __init__(
        self, mode: str, env: envs.ManipulationEnv, frames: int, image_size: int, recent_skills: int = 0
    ) -> None:
        check_obs_mode(mode)
        self.mode, self.frames = mode, frames
        self.proprio = [env.state_layout[f] for f in PROPRIO_FIELDS]
        depth = gym.spaces.Box(0.0, 1.0, (frames, image_size, image_size), np.float32)
        if mode == "state":
            self.space: gym.Space = gym.spaces.Box(-np.inf, np.inf, (env.state_dim,), np.float32)
        elif mode == "depth":
            self.space = depth
        else:
            n = sum(s.stop - s.start for s in self.proprio)
            self.space = gym.spaces.Dict({"depth": depth, "proprio": gym.spaces.Box(-np.inf, np.inf, (n,), np.float32)})
        self.history: deque[np.ndarray] = deque(maxlen=frames)
        self.n_skills, self.recent_skills = len(env.spec_task.skills), recent_skills
        self.choices: deque[int] = deque(maxlen=recent_skills)
        if recent_skills:
            base = dict(self.space.spaces) if isinstance(self.space, gym.spaces.Dict) else {mode: self.space}
            recent = gym.spaces.Box(0.0, 1.0, (recent_skills * self.n_skills,), np.float32)
            self.space = gym.spaces.Dict({**base, "recent_skills": recent})

    def reset(self) -> None:
        self.history.clear()
        self.choices.clear()

    def push(self, obs: dict[str, np.ndarray]) -> None:
        if self.mode != "state" and "depth" in obs:  # a frame nobody looks at may not have been rendered
            self.history.extend([obs["depth"]] * (self.frames if not self.history else 1))

    def chose(self, k: int) -> None:
        self.choices.append(k)

    def observe(self, obs: dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        if self.mode == "state":
            view = obs["state"]
        elif self.mode == "depth":
            view = np.stack(self.history)
        else:
            view = {"depth": np.stack(self.history), "proprio": np.concatenate([obs["state"][s] for s in self.proprio])}
        if not self.recent_skills:
            return view
        recent = np.zeros((self.recent_skills, self.n_skills), np.float32)
        for row, k in enumerate(reversed(self.choices)):
            recent[row, k] = 1.0
        return {**(view if isinstance(view, dict) else {self.mode: view}), "recent_skills": recent.ravel()}


class ScriptedSkills:
    """The task's scripted skill controllers (privileged state): the debug/upper-bound skills."""

    kind = "scripted"

    def __init__(self, env: envs.ManipulationEnv) -> None:
        self.skills = envs.make_skills(env)

    def reset(self) -> None:
        for skill in self.skills:
            skill.reset()

    def start(self, k: int) -> None:
        self.skills[k].reset()

    def act(self, obs: dict[str, np.ndarray], k: int) -> np.ndarray:
        return self.skills[k].act(obs["state"])[0]


class LearnedSkills:
    """Behavior-cloned skills from a ``hrlbc train-skills`` checkpoint (depth only)."""

    kind = "learned"

    def __init__(self, checkpoint: str, device: str = "cpu") -> None:
        from hrlbc.skills.policy import SkillPolicy

        self.policy = SkillPolicy.load(checkpoint, device)

    def reset(self) -> None:
        self.policy.reset()

    def start(self, k: int) -> None:
        pass  # the frame history is the scene's, not the skill's: it carries over

    def act(self, obs: dict[str, np.ndarray], k: int) -> np.ndarray:
        return self.policy.act(obs, k)


def check_skills_checkpoint(checkpoint: str, task: str) -> dict[str, Any]:
    """Load a skills checkpoint's metadata and refuse one of another task, skill set, or a flat one."""
    from hrlbc.skills.policy import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    spec = envs.get_task(task).spec
    if ckpt["task"] != spec.name or list(ckpt["skills"]) != list(spec.skills):
        raise ConfigError(
            f"{checkpoint} holds skills of task {ckpt['task']!r} ({len(ckpt['skills'])} skills); "
            f"task {spec.name!r} needs its {len(spec.skills)} skills {list(spec.skills)}"
        )
    if ckpt["flat"]:
        raise ConfigError(f"{checkpoint} is a flat-BC policy (no skill input); the master needs skills")
    return ckpt


class SkillEnv(gym.Env):
    """``Discrete(K)`` over a task's skills. Observation: see :class:`MasterView` (``obs`` is its mode).

    Skill k runs ``timescales[k]`` low-level steps per pick (:func:`skill_timescales` of ``timescale`` and
    ``skill_margin``).

    ``perturb``: probability that an episode is perturbed (RLBC's knock, see the env's ``perturb_step``)
    at a step drawn uniformly from 1 to timescale x the expert's skill count; the draw comes from this
    env's seeded ``np_random``, so training stays reproducible.

    ``info``: ``is_success``, ``failure``, ``skill`` (the skill run), ``skill_steps`` (low-level steps it
    ran), ``env_steps`` (low-level steps so far in the episode).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        task: str,
        skills: str = "scripted",
        obs: str = "depth",
        image_size: int = 64,
        frames: int = 3,
        timescale: int | None = None,
        device: str = "cpu",
        env_options: dict[str, Any] | None = None,
        perturb: float = 0.0,
        recent_skills: int = 0,
        skill_margin: float = 0.0,
    ) -> None:
        check_obs_mode(obs)  # before any env starts
        if not 0.0 <= perturb <= 1.0:
            raise ConfigError(f"perturb is a probability in [0, 1], got {perturb}")
        needs_camera = obs != "state" or skills != "scripted"
        self.env = envs.make_env(task, image_size=image_size, depth=needs_camera, **(env_options or {}))
        self.spec_task = self.env.spec_task
        self.skills = ScriptedSkills(self.env) if skills == "scripted" else LearnedSkills(skills, device)
        self.view = MasterView(obs, self.env, frames, image_size, recent_skills)
        self.timescales = skill_timescales(self.spec_task, timescale or 0, skill_margin)
        # Robustness training: knock the object at a step drawn over the span of an expert-order episode.
        self.perturb = perturb
        self.perturb_span = sum(self.timescales[k] for k in self.spec_task.expert_order)
        self.action_space = gym.spaces.Discrete(len(self.spec_task.skills))
        self.observation_space = self.view.space
        self.last_obs: dict[str, np.ndarray] = {}
        self.env_steps = 0
        # Scripted skills act on the state: only the master's own frames need the camera. (A knock can end
        # a skill early only by ending the episode, and a terminated episode's last view is never used.)
        self.skip_renders = skills == "scripted" and obs != "state"

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        env_options = dict(options or {})  # a caller's own perturb_step wins over the draw
        if self.perturb > 0 and "perturb_step" not in env_options:
            hit = self.np_random.random() < self.perturb
            env_options["perturb_step"] = int(self.np_random.integers(1, self.perturb_span + 1)) if hit else 0
        obs, info = self.env.reset(seed=seed, options=env_options)
        self.skills.reset()
        self.view.reset()
        self.view.push(obs)
        self.last_obs, self.env_steps = obs, 0
        return self.view.observe(obs), {**info, "env_steps": 0}

    def step(self, action):
        k = int(action)
        self.skills.start(k)
        self.view.chose(k)
        obs, total, terminated, truncated, info = self.last_obs, 0.0, False, False, {}
        steps = 0
        timescale = self.timescales[k]
        for t in range(timescale):
            if self.skip_renders:  # render only the frames the master's next observation stacks
                left = min(timescale - t, self.env.max_episode_steps - self.env.steps)
                self.env.render_next = left <= self.view.frames
            obs, reward, terminated, truncated, info = self.env.step(self.skills.act(obs, k))
            total += reward
            steps += 1
            # The master sees a frame per low-level step (its stack ends with the newest frames).
            self.view.push(obs)
            if terminated or truncated:
                break
        self.last_obs = obs
        self.env_steps += steps
        info = {**info, "skill": k, "skill_steps": steps, "env_steps": self.env_steps}
        return self.view.observe(obs), total, terminated, truncated, info

    def close(self) -> None:
        self.env.close()


class FlatEnv(gym.Env):
    """The ppo-flat baseline's env: low-level continuous actions, no skills, the same sparse reward.

    Action: the task action normalised to [-1, 1] per dimension (scaled to the task's speed limits).
    Observation: the master's, from a :class:`MasterView` of the same mode. ``info["skill_steps"]`` is
    1 so step counting matches the master's.
    """

    metadata = {"render_modes": []}

    def __init__(self, task: str, obs: str = "depth", image_size: int = 64, frames: int = 3) -> None:
        check_obs_mode(obs)  # before any env starts
        self.env = envs.make_env(task, image_size=image_size, depth=obs != "state")
        self.spec_task = self.env.spec_task
        self.scale = self.env.action_space.high.astype(np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, self.scale.shape, np.float32)
        self.view = MasterView(obs, self.env, frames, image_size)
        self.observation_space = self.view.space

    def _obs(self, obs):
        self.view.push(obs)
        return self.view.observe(obs)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self.env.reset(seed=seed)
        self.view.reset()
        return self._obs(obs), {**info, "env_steps": 0}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(np.clip(action, -1, 1) * self.scale)
        return self._obs(obs), reward, terminated, truncated, {**info, "skill_steps": 1, "env_steps": self.env.steps}

    def close(self) -> None:
        self.env.close()
