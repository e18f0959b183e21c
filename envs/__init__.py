"""hrlbc's simulated world: a PyBullet UR5 with a parallel-jaw gripper, tasks, cameras, scripted experts.

Importing ``envs`` registers the gymnasium ids ``UR5-Pick-v0``, ``UR5-Bowl-v0``, ``UR5-Stack-v0`` and
``UR5-Breakfast-v0``, then the tasks of the modules named in ``$HRLBC_TASKS`` (comma-separated, e.g.
``my_package.my_task``; see docs/adding-a-task.md), so every process of a command, workers included, knows them.
Options (``image_size``, ``camera``, ``n_views``, ``depth``, ``rgb``, ``mask``, ...) are
``gymnasium.make`` keyword arguments; see :class:`envs.base.ManipulationEnv`.
"""

from __future__ import annotations

import importlib
import os
import sys


def _import_pybullet_quietly() -> None:
    """PyBullet's C module prints its build time on import; keep the command line clean."""
    if "pybullet" in sys.modules:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            import pybullet  # noqa: F401
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


_import_pybullet_quietly()

from dataclasses import dataclass
from types import ModuleType

import gymnasium as gym
import numpy as np

from envs import skills as skills_module
from envs.base import ManipulationEnv, TaskSpec
from envs.skills import Context, Expert, Skill
from envs.tasks import bowl, breakfast, pick, stack


@dataclass(frozen=True)
class Task:
    spec: TaskSpec
    env_class: type[ManipulationEnv]
    module: ModuleType


TASKS: dict[str, Task] = {
    m.SPEC.name: Task(m.SPEC, env, m)
    for m, env in (
        (pick, pick.PickEnv),
        (bowl, bowl.BowlEnv),
        (stack, stack.StackEnv),
        (breakfast, breakfast.BreakfastEnv),
    )
}


def get_task(name: str) -> Task:
    """Look a task up by short name (``bowl``) or gymnasium id (``UR5-Bowl-v0``), case-insensitively."""
    key = str(name).lower()
    for task in TASKS.values():
        if key in (task.spec.name, task.spec.env_id.lower()):
            return task
    valid = ", ".join(f"{t.spec.name} ({t.spec.env_id})" for t in TASKS.values())
    raise ValueError(f"unknown task {name!r}; valid tasks: {valid}")


def make_env(task: str, **kwargs) -> ManipulationEnv:
    """Instantiate a task env directly (no gymnasium wrappers). ``kwargs`` are the env options."""
    return get_task(task).env_class(**kwargs)


def skill_context(env: ManipulationEnv) -> Context:
    env = env.unwrapped
    spec = env.spec_task
    return Context(env.state_layout, spec.max_linear_speed, env.action_space.shape[0], env.dt, spec.max_angular_speed)


def make_skills(env: ManipulationEnv) -> list[Skill]:
    """The task's scripted skills, indexed like ``spec.skills``."""
    env = env.unwrapped
    return get_task(env.spec_task.name).module.make_skills(skill_context(env))


def make_expert(env: ManipulationEnv, noise: float = 0.0, rng: np.random.Generator | None = None) -> Expert:
    """The full-task scripted expert: the task's skills in its expert order."""
    return Expert(make_skills(env), env.unwrapped.spec_task.expert_order, noise, rng)


def sample_skill_sequence(task: str, rng: np.random.Generator) -> list[int]:
    """Skill ids for one skill-data collection episode; a task module may define its own sampler."""
    t = get_task(task)
    sampler = getattr(t.module, "sample_skill_sequence", None)
    if sampler is not None:
        return sampler(rng)
    return skills_module.sample_skill_sequence(rng, len(t.spec.skills), t.spec.expert_order)


def register_task(module: ModuleType | str) -> Task:
    """Add a task defined outside this package (a module or its import path) and register its gymnasium id.

    The module declares ``SPEC`` (a :class:`TaskSpec`), ``ENV`` (its :class:`ManipulationEnv` subclass, whose
    ``spec_task`` is ``SPEC``) and ``make_skills(ctx) -> list[Skill]`` (indexed like ``SPEC.skills``); it may
    define ``sample_skill_sequence(rng)`` for skill-data collection. Registering the same module again is a no-op.
    """
    if isinstance(module, str):
        try:
            module = importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"task module {module!r} cannot be imported ({exc}); is it on PYTHONPATH?") from None
    missing = [name for name in ("SPEC", "ENV", "make_skills") if not hasattr(module, name)]
    if missing:
        raise ValueError(f"task module {module.__name__} lacks {', '.join(missing)} (see docs/adding-a-task.md)")
    spec, env_class = module.SPEC, module.ENV
    if not (isinstance(env_class, type) and issubclass(env_class, ManipulationEnv) and env_class.spec_task is spec):
        raise ValueError(f"{module.__name__}.ENV must be a ManipulationEnv subclass with spec_task = SPEC")
    known = TASKS.get(spec.name)
    if known is not None and known.module is not module:
        raise ValueError(f"task {spec.name!r} of {module.__name__} is already defined by {known.module.__name__}")
    TASKS[spec.name] = Task(spec, env_class, module)
    if spec.env_id not in gym.registry:
        gym.register(spec.env_id, entry_point=env_class, disable_env_checker=False)
    return TASKS[spec.name]


for _task in TASKS.values():
    if _task.spec.env_id not in gym.registry:
        gym.register(_task.spec.env_id, entry_point=_task.env_class, disable_env_checker=False)
for _name in filter(None, (n.strip() for n in os.environ.get("HRLBC_TASKS", "").split(","))):
    register_task(_name)

__all__ = [
    "TASKS",
    "Task",
    "TaskSpec",
    "ManipulationEnv",
    "get_task",
    "make_env",
    "make_skills",
    "make_expert",
    "register_task",
    "sample_skill_sequence",
]
