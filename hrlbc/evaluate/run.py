"""``hrlbc evaluate``: success rate with a Wilson 95% interval on held-out seeds, as JSON + Markdown.

Seeds are ``seed_start + i`` with ``seed_start`` = 1,000,000 by default: collection stays below
500,000 and training-time validation uses 500,000+, so no evaluated episode was seen in training.
Episodes are spread over worker processes and gathered by seed: the report does not depend on
the number of workers. ``batch=B`` runs the episodes in fixed groups of B consecutive seeds, side by
side in one worker with one network forward per step for the group (1.25-1.8x faster for the learned
agents in benchmarks/eval_batch.py on a 2-core CPU, less inside ``reproduce``), still independent of the
number of workers; but an episode's actions then come from batched forwards, which can differ from a
forward of one in the last float bits, so an episode can end differently than with ``batch=1``, where
each episode depends on its seed alone (5 of 16 flat-BC episodes in the benchmark).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import envs
from demos.collect import EVAL_SEED_START
from demos.io import atomic_write_text, die_with_parent, file_hash
from demos.parallel import check_backend, parallel_map
from demos.progress import progress_bar
from hrlbc.config import ConfigError, require_at_least, save_config
from hrlbc.evaluate.agents import AGENTS, Agent, act_group, agent_env_options, make_agent
from hrlbc.master.skill_env import reset_episode


@dataclass
class EvaluateConfig:
    task: str = field(default="bowl", metadata={"help": f"task ({', '.join(envs.TASKS)})"})
    agent: str = field(default="expert", metadata={"help": "expert, skills, master, flat-bc, ppo-flat"})
    checkpoint: str = field(default="", metadata={"help": "skills .pt (skills, flat-bc) or master .zip"})
    episodes: int = field(default=100, metadata={"help": "evaluation episodes"})
    workers: int = field(default=2, metadata={"help": "parallel worker processes"})
    batch: int = field(
        default=1,
        metadata={"help": "episodes each worker runs side by side, one network forward for all (see the module doc)"},
    )
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
    backend: str = field(default="local", metadata={"help": "local (process pool) or ray (the same report)"})
    address: str = field(default="", metadata={"help": "backend=ray: a cluster's HOST:PORT; empty starts one here"})

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
        require_at_least(self, ("episodes", "workers", "batch"))
        if self.agent not in AGENTS:
            raise ConfigError(f"unknown agent {self.agent!r}; valid agents: {', '.join(AGENTS)}")
        if self.batch > 1 and not self.deterministic and self.agent in ("master", "ppo-flat"):
            raise ConfigError(
                "deterministic=false seeds each episode's draws by its seed, which needs batch=1 "
                "(episodes side by side draw from one generator)"
            )
        if self.sequence:
            n = len(envs.get_task(self.task).spec.skills)
            bad = [k for k in self.sequence if not 0 <= k < n]
            if bad:
                raise ConfigError(f"sequence has skill id(s) {bad}; task {self.task} has skills 0-{n - 1}")
        check_backend(self.backend)
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


def run_episodes(
    envs_: list, agents: list, seeds: list[int], frames: list[list] | None = None, skill_names=()
) -> list[dict[str, Any]]:
    """Episodes ``seeds[i]`` on ``envs_[i]`` by ``agents[i]`` (an agent and its ``spawn`` copies), side by
    side: at each low-level step the episodes still running act together (:func:`act_group`).
    ``frames[i]``, when given, collects episode i's annotated video frames.
    """
    observations = []
    for env, agent, seed in zip(envs_, agents, seeds):
        observations.append(reset_episode(env, seed))
        agent.reset()
    n = len(seeds)
    switches: list[list[int]] = [[] for _ in range(n)]
    last: list[int | None] = [None] * n
    infos: list[dict[str, Any]] = [{"is_success": False, "failure": None}] * n
    running = list(range(n))
    while running:
        acted = act_group([agents[i] for i in running], [observations[i] for i in running])
        still = []
        for i, (action, skill) in zip(running, acted):
            if skill is not None and skill != last[i]:
                switches[i].append(int(skill))
                last[i] = skill
            if frames is not None:
                from demos.video import compose_frame

                name = skill_names[skill] if skill is not None else "flat policy"
                obs, caption = observations[i], [f"seed {seeds[i]} t={envs_[i].steps}", f"skill: {name}"]
                frames[i].append(compose_frame(obs["depth"], obs.get("rgb"), caption))
            observations[i], _, terminated, truncated, infos[i] = envs_[i].step(action)
            if not (terminated or truncated):
                still.append(i)
        running = still
    return [
        {
            "seed": seed,
            "success": bool(info["is_success"]),
            "length": env.steps,
            "failure": info["failure"] or ("timeout" if not info["is_success"] else None),
            "skills": switch,
            "skill_counts": dict(Counter(getattr(agent, "choices", switch))),
        }
        for env, agent, seed, info, switch in zip(envs_, agents, seeds, infos, switches)
    ]


def run_episode(env, agent, seed: int, frames: list | None = None, skill_names=()) -> dict[str, Any]:
    """One low-level episode; appends annotated video frames to ``frames`` when given."""
    return run_episodes([env], [agent], [seed], None if frames is None else [frames], skill_names)[0]


def agent_for(cfg: EvaluateConfig, env: envs.ManipulationEnv) -> Agent:
    """The agent ``cfg`` names, on ``env``."""
    return make_agent(cfg.agent, env, cfg.checkpoint, cfg.sequence or None, cfg.deterministic, cfg.skills or None)


_worker: dict[str, Any] = {}


def _init(cfg: EvaluateConfig, pool_worker: bool = True) -> None:
    import torch

    if pool_worker:
        die_with_parent()
    torch.set_num_threads(1)
    envs_ = [envs.make_env(cfg.task, **cfg.env_options()) for _ in range(cfg.batch)]
    agent = agent_for(cfg, envs_[0])
    _worker.update(envs=envs_, agents=[agent] + [agent.spawn(env) for env in envs_[1:]])


def _group(seeds: list[int]) -> list[dict[str, Any]]:
    n = len(seeds)
    return run_episodes(_worker["envs"][:n], _worker["agents"][:n], seeds)


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
    # The groups are fixed by episode index, not by worker: the report does not depend on ``workers``.
    groups = [seeds[i : i + cfg.batch] for i in range(0, len(seeds), cfg.batch)]
    bar = progress_bar(total=len(seeds), unit="ep", disable=not progress, desc=f"evaluate {cfg.task}/{cfg.agent}")
    results: list[dict[str, Any]] = []

    def gathered(group_results: list[dict[str, Any]]) -> None:
        results.extend(group_results)
        bar.set_postfix(success=f"{np.mean([x['success'] for x in results]):.0%}", refresh=False)
        bar.update(len(group_results))

    for r in parallel_map(_init, (cfg,), _group, groups, cfg.workers, cfg.backend, cfg.address):
        gathered(r)
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
