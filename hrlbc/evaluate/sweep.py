"""``hrlbc sweep``: one ``reproduce`` preset for several training seeds, and statistics across them.

Each seed is a whole ``reproduce`` run in ``out/seed_<s>`` (``reproduce seed=s``: every learned stage trains
from that seed; the demonstrations and the held-out evaluation seeds are the same for all), resumable like
any run: a re-run skips finished stages, so finished seeds cost nothing. ``backend=ray`` runs the seeds as
Ray tasks, one per seed with ``cpus_per_seed`` CPUs, on this machine or a cluster (``address=``): a seed is
one long function call with no trials to schedule, stop early or compare while running, so plain Ray tasks
do what is needed and Ray Tune would add nothing. Inside a seed, collection and evaluation use the local
pool of the node the task runs on.

Statistics (``sweep.json``, ``sweep.md``, ``sweep.png``), per agent: each seed's success with its Wilson
interval; the mean over seeds with a 95% bootstrap interval from ``scipy.stats.bootstrap`` that resamples
episodes within each seed (strata = seeds; the statistic is the mean of the seeds' success rates), and a
second one that resamples the seeds' success rates themselves (what another set of training seeds may
give; wide with 3 seeds); the interquartile mean of the seeds' rates (``scipy.stats.trim_mean``, 25%) from
5 seeds on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import envs
from demos.io import atomic_write_text
from demos.parallel import check_backend, ray_session
from hrlbc.config import ConfigError, save_config
from hrlbc.evaluate.reproduce import LABELS, ROWS, ReproduceConfig, check_agents, reproduce
from hrlbc.figures import pyplot, save_png

IQM_MIN_SEEDS = 5


@dataclass
class SweepConfig:
    task: str = field(default="bowl", metadata={"help": f"task ({', '.join(envs.TASKS)})"})
    preset: str = field(default="quick", metadata={"help": "the reproduce preset each seed runs"})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "training seeds"})
    out: str = field(default="runs/sweep_${task}_${preset}", metadata={"help": "output directory"})
    agents: list[str] = field(default_factory=list, metadata={"help": "agents ([] = the preset's)"})
    backend: str = field(default="local", metadata={"help": "local (one seed after another) or ray (seeds at once)"})
    address: str = field(default="", metadata={"help": "backend=ray: a cluster's HOST:PORT; empty starts one here"})
    cpus_per_seed: int = field(default=2, metadata={"help": "backend=ray: CPUs each seed's task asks for"})

    def validate(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ConfigError(f"seeds must be distinct integers >= 0, got {self.seeds}")
        if self.cpus_per_seed < 1:
            raise ConfigError(f"cpus_per_seed must be >= 1, got {self.cpus_per_seed}")
        check_agents(self.agents, "agents")
        check_backend(self.backend)

    def seed_config(self, seed: int) -> ReproduceConfig:
        return ReproduceConfig(
            task=self.task, preset=self.preset, out=str(Path(self.out) / f"seed_{seed}"), agents=self.agents, seed=seed
        )


def _run_seed(cfg: ReproduceConfig, progress: bool) -> str:
    return str(reproduce(cfg, progress))


def sweep(cfg: SweepConfig, progress: bool = True) -> Path:
    """Run (or resume) every seed, then write the statistics; returns the path of ``sweep.md``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    runs = [cfg.seed_config(s) for s in cfg.seeds]
    if cfg.backend == "ray":
        import ray

        with ray_session(cfg.address):
            task = ray.remote(num_cpus=cfg.cpus_per_seed)(_run_seed)
            ray.get([task.remote(run, False) for run in runs])
    else:
        for seed, run in zip(cfg.seeds, runs):
            print(f"[sweep] seed {seed} -> {run.out}", flush=True)
            reproduce(run, progress)
    labels = [LABELS[a] for a in cfg.agents] if cfg.agents else None
    return write_sweep(out, cfg.task, {s: Path(r.out) for s, r in zip(cfg.seeds, runs)}, labels)


def seed_statistics(outcomes: list[np.ndarray], seed: int = 0) -> dict[str, Any]:
    """Across-seed statistics of per-episode successes (one 0/1 array per training seed)."""
    from scipy import stats

    rates = np.array([o.mean() for o in outcomes])
    result: dict[str, Any] = {"mean": float(rates.mean()), "seeds": len(rates)}
    if len(rates) >= 2:
        rng = np.random.default_rng(seed)
        within = stats.bootstrap(
            [o.astype(float) for o in outcomes],
            lambda *xs, axis=-1: np.mean([x.mean(axis=axis) for x in xs], axis=0),
            confidence_level=0.95,
            method="percentile",
            random_state=rng,
        ).confidence_interval
        over = stats.bootstrap((rates,), np.mean, confidence_level=0.95, method="percentile", random_state=rng)
        result["bootstrap95_episodes"] = [float(within.low), float(within.high)]
        result["bootstrap95_seeds"] = [float(over.confidence_interval.low), float(over.confidence_interval.high)]
    if len(rates) >= IQM_MIN_SEEDS:
        result["iqm"] = float(stats.trim_mean(rates, 0.25))
    return result


def write_sweep(out: Path, task: str, runs: dict[int, Path], labels: list[str] | None = None) -> Path:
    """``sweep.json``, ``sweep.md`` and ``sweep.png`` from the seeds' evaluation reports (of the agents
    ``labels`` name, or of every agent evaluated)."""
    per_agent: dict[str, dict[int, dict[str, Any]]] = {}
    for seed, run in runs.items():
        for report in sorted(run.glob("eval_*/report.json")):
            r = json.loads(report.read_text())
            label = ROWS.get(report.parent.name, r["agent"])
            if labels is not None and label not in labels:
                continue  # a seed's run folder may hold other agents' evaluations from an earlier run
            outcomes = np.array([e["success"] for e in r["per_episode"]], dtype=bool)
            per_agent.setdefault(label, {})[seed] = {
                "success": r["success_rate"],
                "wilson95": r["wilson95"],
                "episodes": r["episodes"],
                "outcomes": outcomes,
            }
    order = [a for a in ROWS.values() if a in per_agent] + [a for a in per_agent if a not in ROWS.values()]
    rows = []
    for label in order:
        seeds = per_agent[label]
        stats_ = seed_statistics([v["outcomes"] for v in seeds.values()])
        per_seed = {s: {k: v for k, v in d.items() if k != "outcomes"} for s, d in sorted(seeds.items())}
        rows.append({"agent": label, "per_seed": per_seed, **stats_})
    atomic_write_text(out / "sweep.json", json.dumps({"task": task, "seeds": list(runs), "rows": rows}, indent=1))
    lines = [
        f"# {envs.get_task(task).spec.env_id}: {len(runs)} training seeds ({out.name})",
        "",
        "| agent | mean | 95% bootstrap, episodes | 95% bootstrap, seeds | IQM | per seed (Wilson 95%) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        ci = {
            k: f"[{r[k][0]:.1%}, {r[k][1]:.1%}]" if k in r else "-"
            for k in ("bootstrap95_episodes", "bootstrap95_seeds")
        }
        seeds_text = "; ".join(
            f"{s}: {d['success']:.1%} [{d['wilson95'][0]:.0%}, {d['wilson95'][1]:.0%}]"
            for s, d in r["per_seed"].items()
        )
        iqm = f"{r['iqm']:.1%}" if "iqm" in r else f"- (< {IQM_MIN_SEEDS} seeds)"
        lines.append(
            f"| {r['agent']} | {r['mean']:.1%} | {ci['bootstrap95_episodes']} | {ci['bootstrap95_seeds']} | {iqm} | "
            f"{seeds_text} |"
        )
    atomic_write_text(out / "sweep.md", "\n".join(lines) + "\n")
    _plot(rows, out / "sweep.png", f"{envs.get_task(task).spec.env_id}, {len(runs)} training seeds")
    return out / "sweep.md"


def _plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, max(2.4, 0.8 + 0.55 * len(rows))))
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        if "bootstrap95_episodes" in r:
            lo, hi = r["bootstrap95_episodes"]
            ax.plot([lo * 100, hi * 100], [y, y], color="tab:blue", lw=6, alpha=0.35, solid_capstyle="butt")
        points = [d["success"] * 100 for d in r["per_seed"].values()]
        ax.scatter(points, [y] * len(points), color="black", s=18, zorder=3, label="a seed" if i == 0 else None)
        ax.scatter(
            [r["mean"] * 100], [y], marker="|", color="tab:red", s=300, zorder=4, label="mean" if i == 0 else None
        )
    ax.set_yticks(range(len(rows)), [r["agent"] for r in reversed(rows)])
    ax.set_xlim(-2, 102)
    ax.set_xlabel("success on held-out seeds (%); band: 95% bootstrap interval")
    ax.set_title(title, fontsize=10)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.legend(loc="lower left", fontsize=8)
    save_png(fig, path)
