"""``hrlbc evaluate``: success rate with a Wilson 95% interval on held-out seeds, as JSON + Markdown.

Seeds are ``seed_start + i`` with ``seed_start`` = 1,000,000 by default: collection stays below
500,000 and training-time validation uses 500,000+, so no evaluated episode was seen in training.
Episodes are spread over worker processes and gathered by seed: the report does not depend on
the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import envs
from demos.collect import EVAL_SEED_START
from demos.io import atomic_write_text
from hrlbc.config import ConfigError, require_at_least, save_config
from hrlbc.evaluate.agents import AGENTS, agent_env_options, make_agent
from hrlbc.master.skill_env import reset_episode


@dataclass
class EvaluateConfig:
    task: str = field(default="bowl", metadata={"help": f"task ({', '.join(envs.TASKS)})"})
    agent: str = field(default="expert", metadata={"help": "expert, skills, master, flat-bc, ppo-flat"})
    checkpoint: str = field(default="", metadata={"help": "skills .pt (skills, flat-bc) or master .zip"})
    episodes: int = field(default=100, metadata={"help": "evaluation episodes"})
    workers: int = field(default=2, metadata={"help": "parallel worker processes"})
    seed_start: int = field(default=EVAL_SEED_START, metadata={"help": "first evaluation seed"})
    sequence: list[int] = field(
        default_factory=list, metadata={"help": "agent=skills: skill ids (default expert order)"}
    )
    perturb_step: int = field(default=0, metadata={"help": "robustness: knock/move the object at this step (0 = off)"})
    occlude: list[int] = field(default_factory=list, metadata={"help": "robustness: [start, length] occluder steps"})
    deterministic: bool = field(
        default=True,
        metadata={"help": "master, ppo-flat: most likely action; false samples it (seeded by the episode seed)"},
    )
    skills: str = field(
        default="",
        metadata={"help": "agent=master: run it over this skills .pt instead of the one it was trained over"},
    )
    video: int = field(default=0, metadata={"help": "save videos of the first N episodes"})
    out: str = field(default="runs/eval_${task}_${agent}", metadata={"help": "report directory"})

    def env_options(self) -> dict[str, Any]:
        """Env options: the agent's image size, plus the robustness perturbations."""
        options = agent_env_options(self.agent, self.checkpoint)
        if self.perturb_step:
            options["perturb_step"] = self.perturb_step
        if self.occlude:
            options["occlude"] = tuple(self.occlude)
        return options

    def validate(self) -> None:
        if self.occlude and len(self.occlude) != 2:
            raise ConfigError(f"occlude takes [start, length], got {self.occlude}")
        require_at_least(self, ("episodes", "workers"))
        if self.agent not in AGENTS:
            raise ConfigError(f"unknown agent {self.agent!r}; valid agents: {', '.join(AGENTS)}")
        if self.seed_start < EVAL_SEED_START:
            raise ConfigError(f"evaluation seeds start at {EVAL_SEED_START} or above (lower ones are used in training)")


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% for the default z)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # min/max: at k = n rounding put the upper bound at 1 - 1e-16, below p (and the results plot failed on it)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def run_episode(env, agent, seed: int, frames: list | None = None, skill_names=()) -> dict[str, Any]:
    """One low-level episode; appends annotated video frames to ``frames`` when given."""
    obs = reset_episode(env, seed)
    agent.reset()
    switches, last, info = [], None, {"is_success": False, "failure": None}
    while True:
        action, skill = agent.act(obs)
        if skill is not None and skill != last:
            switches.append(int(skill))
            last = skill
        if frames is not None:
            from demos.video import compose_frame

            name = skill_names[skill] if skill is not None else "flat policy"
            frames.append(compose_frame(obs["depth"], obs.get("rgb"), [f"seed {seed} t={env.steps}", f"skill: {name}"]))
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    return {
        "seed": seed,
        "success": bool(info["is_success"]),
        "length": env.steps,
        "failure": info["failure"] or ("timeout" if not info["is_success"] else None),
        "skills": switches,
        "skill_counts": dict(Counter(getattr(agent, "choices", switches))),
    }


def agent_for(cfg: EvaluateConfig, env):
    return make_agent(cfg.agent, env, cfg.checkpoint, cfg.sequence or None, cfg.deterministic, cfg.skills or None)


_worker: dict[str, Any] = {}


def _init(cfg: EvaluateConfig) -> None:
    import torch

    torch.set_num_threads(1)
    env = envs.make_env(cfg.task, **cfg.env_options())
    _worker.update(env=env, agent=agent_for(cfg, env))


def _episode(seed: int) -> dict[str, Any]:
    return run_episode(_worker["env"], _worker["agent"], seed)


def file_hash(path: str) -> str | None:
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest()[:16] if p.is_file() else None


def evaluate(cfg: EvaluateConfig, progress: bool = True) -> dict[str, Any]:
    """Evaluate; write ``report.json``, ``report.md`` (and videos) under ``cfg.out``; return the report."""
    spec = envs.get_task(cfg.task).spec
    cfg.task = spec.name
    # Build one agent here first: a bad checkpoint or agent/checkpoint mismatch fails before any worker.
    probe_env = envs.make_env(cfg.task, **cfg.env_options())
    skills = getattr(agent_for(cfg, probe_env), "skills_path", None)  # the skills a master runs
    probe_env.close()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [cfg.seed_start + i for i in range(cfg.episodes)]
    bar = tqdm(total=len(seeds), unit="ep", disable=not progress, desc=f"evaluate {cfg.task}/{cfg.agent}")
    results = []
    if cfg.workers > 1:
        with mp.get_context("fork").Pool(min(cfg.workers, len(seeds)), initializer=_init, initargs=(cfg,)) as pool:
            for r in pool.imap(_episode, seeds):
                results.append(r)
                bar.set_postfix(success=f"{np.mean([x['success'] for x in results]):.0%}", refresh=False)
                bar.update(1)
    else:
        _init(cfg)
        for s in seeds:
            results.append(_episode(s))
            bar.update(1)
    bar.close()
    if cfg.video > 0:
        save_videos(cfg, spec, seeds[: cfg.video], out)
    report = make_report(cfg, spec, results, skills)
    atomic_write_text(out / "report.json", json.dumps(report, indent=1))
    atomic_write_text(out / "report.md", report_markdown(report))
    save_config(cfg, out / "config.yaml")
    return report


def save_videos(cfg: EvaluateConfig, spec, seeds: list[int], out: Path) -> None:
    from demos.video import write_video

    env = envs.make_env(cfg.task, rgb=True, **cfg.env_options())
    agent = agent_for(cfg, env)
    for seed in seeds:
        frames: list = []
        r = run_episode(env, agent, seed, frames, spec.skills)
        write_video(out / f"episode_{seed}_{'success' if r['success'] else 'failure'}.mp4", frames)
    env.close()


def make_report(cfg: EvaluateConfig, spec, results: list[dict[str, Any]], skills: str | None = None) -> dict[str, Any]:
    """The report of ``results`` (one dict per episode); ``skills``: the learned skills a master ran."""
    n, k = len(results), sum(r["success"] for r in results)
    low, high = wilson_interval(k, n)
    chosen: Counter = Counter()
    for r in results:
        chosen.update({int(s): c for s, c in r["skill_counts"].items()})
    total = sum(chosen.values())
    hashes = {"checkpoint": file_hash(cfg.checkpoint)} if cfg.checkpoint else {}
    if skills:
        hashes["skills"] = file_hash(skills)
    return {
        "task": spec.name,
        "env_id": spec.env_id,
        "agent": cfg.agent,
        "checkpoint": cfg.checkpoint or None,
        "skills": skills,
        "episodes": n,
        "successes": k,
        "success_rate": k / n,
        "wilson95": [low, high],
        "mean_length": float(np.mean([r["length"] for r in results])),
        "failures": dict(Counter(r["failure"] for r in results if not r["success"])),
        "skill_choices": {spec.skills[s]: {"count": c, "fraction": c / total} for s, c in sorted(chosen.items())},
        "seeds": [results[0]["seed"], results[-1]["seed"]],
        "hashes": hashes,
        "config": asdict(cfg),
        "per_episode": results,
    }


def report_markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# {r['env_id']}: agent `{r['agent']}`",
        "",
        "| episodes | success rate | Wilson 95% | mean length (steps) |",
        "| --- | --- | --- | --- |",
        f"| {r['episodes']} | {r['success_rate']:.1%} | [{r['wilson95'][0]:.1%}, {r['wilson95'][1]:.1%}] "
        f"| {r['mean_length']:.0f} |",
        "",
        f"Seeds {r['seeds'][0]}-{r['seeds'][1]}. Checkpoint: `{r['checkpoint']}` "
        f"(sha256 {r['hashes'].get('checkpoint')}).",
    ]
    if r["agent"] in ("master", "ppo-flat"):
        how = "the most likely action" if r["config"]["deterministic"] else "actions sampled (seeded per episode)"
        lines[-1] += f" Policy: {how}."
    if r.get("skills"):
        lines[-1] += f" Skills: `{r['skills']}` (sha256 {r['hashes']['skills']})"
        lines[-1] += ", replacing the ones it was trained over." if r["config"].get("skills") else "."
    if r["failures"]:
        lines += ["", "Failures: " + ", ".join(f"{k} x{v}" for k, v in r["failures"].items())]
    if r["skill_choices"]:
        lines += ["", "| skill | times chosen | share |", "| --- | --- | --- |"]
        lines += [f"| {s} | {v['count']} | {v['fraction']:.0%} |" for s, v in r["skill_choices"].items()]
    return "\n".join(lines) + "\n"
