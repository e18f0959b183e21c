"""Configuration: typed dataclass schemas + ``configs/*.yaml`` + ``key=value`` overrides (omegaconf).

Resolution order (later wins): the command's schema defaults, ``configs/tasks/<task>.yaml`` (its
section for the command), the ``preset`` files a schema names, then command-line ``key=value``.
Unknown keys and ill-typed values are errors that name the key and list the valid ones.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from demos.io import atomic_write_text

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
T = TypeVar("T")


class ConfigError(ValueError):
    """Bad user input: an unknown key, a bad value, a missing file. Printed without a traceback."""


def parse_overrides(args: list[str]) -> dict[str, str]:
    """``["a=1", "b.c=x"]`` -> ``{"a": "1", "b.c": "x"}``; anything else is a ConfigError."""
    out = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise ConfigError(f"arguments are key=value pairs, got {arg!r}")
        out[key.strip()] = value
    return out


def field_help(schema: type) -> list[tuple[str, Any, str]]:
    """(key, default, help) for every field of a dataclass schema, for ``--help``."""
    rows = []
    for f in dataclasses.fields(schema):
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else "???")
        )
        rows.append((f.name, default, f.metadata.get("help", "")))
    return rows


def load_yaml(path: Path) -> DictConfig:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        return OmegaConf.load(path)
    except Exception as exc:  # a YAML syntax error is the user's to fix: say where
        raise ConfigError(f"cannot read {path}: {exc}") from None


def task_section(task: str, section: str) -> DictConfig:
    """The ``section`` of the task's defaults (empty when they have none).

    A built-in task's defaults are ``configs/tasks/<task>.yaml``; a task added with ``envs.register_task`` may
    give them as a ``DEFAULTS`` dict in its module (docs/adding-a-task.md).
    """
    from envs import get_task

    module = get_task(task).module
    if not module.__name__.startswith("envs.tasks."):
        cfg = OmegaConf.create(getattr(module, "DEFAULTS", {}))
    else:
        cfg = load_yaml(CONFIG_DIR / "tasks" / f"{task}.yaml")
    return cfg.get(section) or OmegaConf.create({})


def resolve(schema: type[T], args: list[str] | dict, section: str | None = None) -> T:
    """Build a config object of type ``schema`` from defaults, the task file and overrides.

    ``section`` names the command's section in the task file; the schema must then have a ``task``
    field, whose value (default or override) picks the file.
    """
    overrides = parse_overrides(args) if isinstance(args, list) else dict(args)
    base = OmegaConf.structured(schema)
    valid = ", ".join(f.name for f in dataclasses.fields(schema))
    try:
        layers = []
        if section is not None and "task" in base:
            from envs import get_task  # the world knows the task names

            task = get_task(overrides.get("task", base.task)).spec.name
            overrides["task"] = task
            layers.append(task_section(task, section))
        layers.append(OmegaConf.from_dotlist([f"{k}={v}" for k, v in overrides.items()]))
        merged = base
        for layer in layers:
            merged = OmegaConf.merge(merged, layer)
        missing = sorted(OmegaConf.missing_keys(merged))
        if missing:  # name every unset key at once, not one per attempt
            helps = {k: h for k, _, h in field_help(schema)}
            asks = (f"give {k}=... ({helps[k]})" if helps.get(k) else f"give {k}=..." for k in missing)
            raise ConfigError("; ".join(asks))
        cfg = OmegaConf.to_object(merged)
    except ConfigKeyError as exc:
        raise ConfigError(f"unknown config key {exc.full_key or exc.key!r}; valid keys: {valid}") from None
    except OmegaConfBaseException as exc:
        raise ConfigError(f"bad value for {exc.full_key or exc.key!r}: {str(exc).splitlines()[0]}") from None
    check_finite(cfg)
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        validate()
    return cfg


def check_finite(cfg: Any) -> None:
    """ConfigError naming the first float field of ``cfg`` (a dataclass) that is NaN or infinite.

    One rule for every command: no key is meant to take NaN or inf, and either would otherwise reach a
    dataset or a checkpoint silently (a NaN noise level writes NaN actions).
    """
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{f.name} must be a finite number, got {value}")


def save_config(cfg: Any, path: Path) -> None:
    """Write a resolved config as YAML next to the artifact it produced (atomically)."""
    atomic_write_text(Path(path), OmegaConf.to_yaml(OmegaConf.structured(cfg)))


def require_at_least(cfg: Any, names: tuple[str, ...], minimum: float = 1) -> None:
    """ConfigError naming the first of ``names`` whose value in ``cfg`` is below ``minimum``."""
    for name in names:
        if getattr(cfg, name) < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {getattr(cfg, name)}")


def run_checkpoint(out: str | Path, name: str, resume: bool) -> tuple[Path, bool]:
    """(``out/name``, whether to continue from it), after checking that ``resume`` fits ``out``.

    A fresh run must not overwrite a finished or interrupted one: that is a ConfigError before any work
    starts. ``resume=true`` continues from the checkpoint; where a run was stopped before it wrote its
    first one, it starts over (saying so), so that one command continues a run stopped at any moment.
    ``resume=true`` on an ``out`` that does not exist is a ConfigError (a mistyped path, most likely).
    """
    last = Path(out) / name
    if resume and not last.is_file():
        if not Path(out).is_dir():
            raise ConfigError(f"resume=true but {out} does not exist")
        print(f"{out} holds no {name} yet (stopped before its first checkpoint): starting from the beginning")
        return last, False
    if not resume and last.is_file():
        raise ConfigError(f"{out} already holds a run; use resume=true to continue it or another out=")
    return last, resume
