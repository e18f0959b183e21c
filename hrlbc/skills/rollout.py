"""Closed-loop rollouts of skills run in a fixed sequence, each for the task's timescale."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import envs

Actor = Callable[[dict[str, np.ndarray], int], np.ndarray]  # (obs, skill id) -> action


def run_skill_sequence(
    env: envs.ManipulationEnv,
    act: Actor,
    sequence: list[int],
    seed: int,
    timescale: int | None = None,
    on_reset: Callable[[], None] | None = None,
    on_step: Callable[[dict[str, np.ndarray], int], None] | None = None,
) -> dict[str, Any]:
    """Run ``sequence`` of skills, each for ``timescale`` steps (the task's by default), as a master would
    with that fixed choice. Returns ``{"success", "length", "failure"}``.
    """
    timescale = timescale or env.spec_task.timescale
    obs, _ = env.reset(seed=seed)
    if on_reset is not None:
        on_reset()
    info: dict[str, Any] = {"is_success": False, "failure": None}
    steps = 0
    for skill in sequence:
        for _ in range(timescale):
            if on_step is not None:
                on_step(obs, skill)
            obs, _, terminated, truncated, info = env.step(act(obs, skill))
            steps += 1
            if terminated or truncated:
                return {"success": bool(info["is_success"]), "length": steps, "failure": info["failure"]}
    return {"success": bool(info["is_success"]), "length": steps, "failure": info["failure"] or "sequence_ended"}


def success_rate(env: envs.ManipulationEnv, policy, sequence: list[int], seeds: list[int]) -> float:
    """Fraction of ``seeds`` on which the learned ``policy`` run over ``sequence`` succeeds."""
    results = [run_skill_sequence(env, policy.act, sequence, s, on_reset=policy.reset) for s in seeds]
    return float(np.mean([r["success"] for r in results])) if results else 0.0
