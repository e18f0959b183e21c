"""``hrlbc reproduce``: collect -> train skills -> train masters -> train the baselines -> one results table.

The method comes first (skills, then the master over them, each evaluated as soon as it is trained),
the baselines after; ``results.md`` grows as the agents are evaluated. Each stage runs the project's
own command code with settings from ``configs/reproduce/<preset>.yaml`` and marks itself done in
``<out>/stages/<stage>.json`` (with its wall-clock, summed over attempts stopped by Ctrl-C, an
error or a kill); a re-run skips done stages and resumes an interrupted one (collection and training resume
themselves). A preset's ``agents`` list (or ``agents=[...]`` on the command line) runs only the stages
those agents need; the table notes the agents left out. A preset with a ``dagger`` section adds a DAgger round
(``dagger``, then ``train_skills_dagger`` fine-tuning from the first skills), and the learned-skill agents use
its skills. ``skills=<checkpoint>`` runs the learned-skill agents
over skills trained before (``hrlbc train-skills`` or an earlier reproduction) instead of collecting and
training them here, the step that takes a CPU hours.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

import envs
from demos.collect import CollectConfig, collect
from demos.io import atomic_write_text, file_hash
from demos.parallel import check_backend
from hrlbc.config import CONFIG_DIR, ConfigError, resolve, save_config
from hrlbc.evaluate.run import EvaluateConfig, evaluate
from hrlbc.figures import pyplot, save_png
from hrlbc.master.skill_env import check_skills_checkpoint
from hrlbc.master.train import TrainMasterConfig, train_master
from hrlbc.skills.config import TrainSkillsConfig

# A preset with a `dagger` section adds a DAgger round after train_skills, and the agents use its skills.
LEARNED_SKILLS = ("collect_skills", "train_skills", "dagger", "train_skills_dagger")
# Each agent with the stages it needs, in run order, its evaluation last; the learned-skill master needs the
# learned skills.
AGENTS: dict[str, tuple[str, ...]] = {
    "skills": (*LEARNED_SKILLS, "eval_skills"),
    "rlbc-learned": (*LEARNED_SKILLS, "train_master", "eval_RLBC_learned"),
    "rlbc-scripted": ("train_master_scripted", "eval_RLBC_scripted"),
    "expert": ("eval_expert",),
    "flat-bc": ("collect_full", "train_flat_bc", "eval_flat_bc"),
    "ppo-flat": ("train_ppo_flat", "eval_ppo_flat"),
}


# What a preset may set: the stages' settings (every evaluation shares `evaluate`) and the agents list.
PRESET_KEYS = ("agents", *dict.fromkeys(s for a in AGENTS.values() for s in a if not s.startswith("eval_")), "evaluate")

LABELS = {  # the results table's rows, in its order
    "expert": "expert",
    "flat-bc": "flat-bc",
    "ppo-flat": "ppo-flat",
    "skills": "skills (expert order)",
    "rlbc-scripted": "RLBC, scripted skills",
    "rlbc-learned": "RLBC, learned skills",
}
# Each row's label by its evaluation's folder in the run directory, in the table's order: the folder, not the
# checkpoint path written in the report, so that a run directory copied or moved elsewhere keeps its labels.
ROWS = {AGENTS[key][-1]: label for key, label in LABELS.items()}


# How often a running stage writes its clock: a process killed outright (SIGKILL, a closed session)
# loses at most this much of the stage's reported wall-clock.
CLOCK_TICK_S = 30.0


def run_stage(stages: Path, name: str, fn: Callable[[], Any]) -> None:
    """Run ``fn`` as stage ``name`` unless ``stages/<name>.json`` marks it done; then write that marker.

    The marker holds the stage's wall-clock (s) summed over every attempt: ``stages/<name>.elapsed``
    keeps the time of unfinished attempts, written every ``CLOCK_TICK_S`` while ``fn`` runs and when it
    ends or raises (Ctrl-C, an error), so an attempt killed outright is counted too, less one tick.
    """
    marker, clock = stages / f"{name}.json", stages / f"{name}.elapsed"
    if marker.is_file():
        print(f"[reproduce] {name}: done already, skipped")
        return
    print(f"[reproduce] {name} ...", flush=True)
    spent, t0 = float(clock.read_text()) if clock.is_file() else 0.0, time.perf_counter()
    done = threading.Event()

    def elapsed() -> float:
        return spent + time.perf_counter() - t0

    def write_clock() -> None:
        atomic_write_text(clock, f"{elapsed():.1f}")

    def tick() -> None:
        while not done.wait(CLOCK_TICK_S):
            write_clock()

    ticker = threading.Thread(target=tick, name=f"clock-{name}", daemon=True)
    ticker.start()
    try:
        fn()
    finally:  # also on Ctrl-C or an error
        done.set()
        ticker.join()  # so that no tick lands after the last write
        write_clock()
    atomic_write_text(marker, json.dumps({"stage": name, "wall_s": elapsed()}))
    clock.unlink(missing_ok=True)


@dataclass
class ReproduceConfig:
    task: str = field(default="bowl", metadata={"help": f"task ({', '.join(envs.TASKS)})"})
    preset: str = field(default="quick", metadata={"help": "configs/reproduce/<preset>.yaml: tiny, quick, paper"})
    out: str = field(default="runs/repro_${task}_${preset}", metadata={"help": "output directory"})
    agents: list[str] = field(
        default_factory=list,
        metadata={"help": f"agents to train and evaluate ({', '.join(AGENTS)}); [] = the preset's list, else all"},
    )
    skills: str = field(
        default="",
        metadata={
            "help": "a trained skills checkpoint (.pt) for the learned-skill agents, in place of this run's "
            "collect_skills, train_skills (and a DAgger round); '' = collect and train them"
        },
    )

    seed: int = field(
        default=0,
        metadata={
            "help": "training seed of every learned stage (BC, masters, flat PPO); data and evaluation seeds stay"
        },
    )
    backend: str = field(default="local", metadata={"help": "collect and evaluate stages: local or ray"})
    address: str = field(default="", metadata={"help": "backend=ray: a cluster's HOST:PORT; empty starts one here"})

    def validate(self) -> None:
        check_agents(self.agents, "agents")
        check_backend(self.backend)


def check_skills_setting(path: str, task: str, out: Path) -> None:
    """ConfigError unless ``skills=path`` suits ``task`` and the run folder ``out``.

    ``path`` ('' = train them here) must hold skills for ``task``, as the master needs them, and a run
    folder keeps one set of skills, the ones its evaluations and master were made over: given ones
    (``config.yaml``) or its own (``out/skills``).
    """
    saved = out / "config.yaml"
    before = OmegaConf.load(saved).get("skills", "") if saved.is_file() else ""
    own = (out / "skills").exists()
    if path:
        check_skills_checkpoint(path, task)
    if (before and before != path) or (own and path):
        was = f"skills={before}" if before else f"the skills it trained ({out / 'skills'})"
        raise ConfigError(f"{out} was run with {was}, not {f'skills={path}' if path else 'its own'}; give another out=")


def check_agents(names: list[str], where: str) -> None:
    unknown = [a for a in names if a not in AGENTS]
    if unknown:
        raise ConfigError(f"unknown agent(s) {', '.join(map(repr, unknown))} in {where}; valid: {', '.join(AGENTS)}")


def load_preset(name: str, task: str) -> dict[str, Any]:
    """The preset's settings for ``task``: ``{stage: {key: value}}`` plus its ``agents`` list.

    A preset's ``tasks: {<task>: {<stage>: {...}}}`` section goes over its shared stage settings, key by
    key, for that task only (e.g. more skill episodes for one task).
    """
    path = CONFIG_DIR / "reproduce" / f"{name}.yaml"
    if not path.is_file():
        valid = ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml")))
        raise ConfigError(f"unknown reproduce preset {name!r}; valid: {valid}")
    preset = OmegaConf.to_container(OmegaConf.load(path))
    where = f"configs/reproduce/{name}.yaml"
    per_task = preset.pop("tasks", None) or {}
    unknown = [t for t in per_task if t not in envs.TASKS]
    if unknown:
        raise ConfigError(f"unknown task(s) {', '.join(map(repr, unknown))} in {where}; valid: {', '.join(envs.TASKS)}")
    for section, settings in [(where, preset)] + [(f"{where}, tasks.{t}", s or {}) for t, s in per_task.items()]:
        unknown = [k for k in settings if k not in PRESET_KEYS]
        if unknown:
            raise ConfigError(
                f"unknown key(s) {', '.join(map(repr, unknown))} in {section}; valid: {', '.join(PRESET_KEYS)}"
            )
    for key, settings in (per_task.get(task) or {}).items():
        preset[key] = {**(preset.get(key) or {}), **settings} if isinstance(settings, dict) else settings
    return preset


def stage_config(schema: type, preset: dict[str, Any], stage: str, section: str, **fixed: Any) -> Any:
    """A stage's config: schema defaults < the task file's ``section`` < the preset's ``stage`` < ``fixed``."""
    settings = {**(preset.get(stage) or {}), **fixed}
    try:
        return resolve(schema, {k: _dotlist(v) for k, v in settings.items() if v != ""}, section=section)
    except ConfigError as e:
        raise ConfigError(f"{stage}: {e}") from None


def reproduce(cfg: ReproduceConfig, progress: bool = True) -> Path:
    """Run (or resume) every stage; return the path of ``results.md``."""
    task = envs.get_task(cfg.task).spec.name
    preset = load_preset(cfg.preset, task)
    preset_agents = preset.pop("agents", None) or list(AGENTS)
    # The DAgger fine-tuning trains like train_skills unless the preset says otherwise (fewer epochs, ...).
    preset["train_skills_dagger"] = {**(preset.get("train_skills") or {}), **(preset.get("train_skills_dagger") or {})}
    check_agents(preset_agents, f"configs/reproduce/{cfg.preset}.yaml")
    chosen = cfg.agents or preset_agents
    needed = {s for a in chosen for s in AGENTS[a]}
    not_run = [label for a, label in LABELS.items() if a not in chosen]
    out = Path(cfg.out)
    check_skills_setting(cfg.skills, task, out)
    if cfg.skills:
        needed -= set(LEARNED_SKILLS)
    if not preset.get("dagger"):
        needed -= {"dagger", "train_skills_dagger"}

    parallel = {"backend": cfg.backend, "address": cfg.address} if cfg.backend != "local" else {}

    def cfg_for(schema, name: str, section: str, **fixed) -> Any:
        return stage_config(schema, preset, name, section, **fixed)

    data_skills, data_full = out / "data_skills", out / "data_full"
    skills_dir, flat_dir = out / "skills", out / "flat_bc"
    data_dagger, dagger_dir = out / "data_dagger", out / "skills_dagger"
    master_dir, scripted_dir, ppo_flat_dir = out / "master", out / "master_scripted", out / "ppo_flat"
    final_skills = dagger_dir if "dagger" in needed else skills_dir
    skills_ckpt = cfg.skills or str(final_skills / "best.pt")

    # Each job's config is resolved here, before any stage runs: a bad key or value in a preset fails now,
    # not hours into a paper run. A training resumes when its run directory holds a last checkpoint.
    def collect_job(name: str, mode: str, data: Path) -> Callable[[], Any]:
        c = cfg_for(CollectConfig, name, "collect", task=task, mode=mode, out=str(data), **parallel)
        return lambda: collect(c, progress)

    def bc_job(name: str, data: Path, run_dir: Path, flat: bool, **fixed: Any) -> Callable[[], Any]:
        resume = (run_dir / "last.pt").is_file()
        settings = dict(task=task, data=str(data), out=str(run_dir), flat=flat, resume=resume, seed=cfg.seed)
        c = cfg_for(TrainSkillsConfig, name, "train_skills", **settings, **fixed)

        def job():
            from hrlbc.skills.train import train_skills  # torch: imported when a BC stage runs, not for --help

            return train_skills(c, progress)

        return job

    def dagger_job() -> Callable[[], Any]:
        from hrlbc.skills.dagger import DaggerConfig, dagger

        settings = dict(task=task, data=str(data_skills), skills=str(skills_dir / "best.pt"), out=str(data_dagger))
        c = cfg_for(DaggerConfig, "dagger", "dagger", **settings, **parallel)
        return lambda: dagger(c, progress)

    def ppo_job(name: str, skills: str, run_dir: Path) -> Callable[[], Any]:
        resume = (run_dir / "last.zip").is_file()
        settings = dict(task=task, skills=skills, out=str(run_dir), resume=resume, progress=progress, seed=cfg.seed)
        c = cfg_for(TrainMasterConfig, name, "train_master", **settings)
        return lambda: train_master(c)

    runs = {  # each agent's (evaluate agent, checkpoint)
        "expert": ("expert", ""),
        "flat-bc": ("flat-bc", str(flat_dir / "best.pt")),
        "ppo-flat": ("ppo-flat", str(ppo_flat_dir / "best.zip")),
        "skills": ("skills", skills_ckpt),
        "rlbc-scripted": ("master", str(scripted_dir / "best.zip")),
        "rlbc-learned": ("master", str(master_dir / "best.zip")),
    }

    def eval_job(key: str) -> Callable[[], Any]:
        agent, ckpt = runs[key]
        settings = dict(task=task, agent=agent, checkpoint=ckpt, out=str(out / AGENTS[key][-1]), **parallel)
        c = cfg_for(EvaluateConfig, "evaluate", "evaluate", **settings)
        return lambda: evaluate(c, progress)

    # The method first (skill data -> learned skills -> the master over them), then the baselines: an
    # interrupted run has the headline result before it has spent time on what it is compared with.
    jobs = {
        "collect_skills": collect_job("collect_skills", "skills", data_skills),
        "train_skills": bc_job("train_skills", data_skills, skills_dir, flat=False),
        # DAgger: the trained skills act on new scenes, the scripted ones label; then fine-tune on both.
        "dagger": dagger_job(),
        "train_skills_dagger": bc_job(
            "train_skills_dagger", data_dagger, dagger_dir, flat=False, init=str(skills_dir / "best.pt")
        ),
        "eval_skills": eval_job("skills"),
        "train_master": ppo_job("train_master", skills_ckpt, master_dir),
        "eval_RLBC_learned": eval_job("rlbc-learned"),
        "train_master_scripted": ppo_job("train_master_scripted", "scripted", scripted_dir),
        "eval_RLBC_scripted": eval_job("rlbc-scripted"),
        "eval_expert": eval_job("expert"),
        "collect_full": collect_job("collect_full", "full", data_full),  # full-task expert data, for flat BC
        "train_flat_bc": bc_job("train_flat_bc", data_full, flat_dir, flat=True),
        "eval_flat_bc": eval_job("flat-bc"),
        "train_ppo_flat": ppo_job("train_ppo_flat", "flat", ppo_flat_dir),  # PPO on low-level actions
        "eval_ppo_flat": eval_job("ppo-flat"),
    }
    stages = out / "stages"
    stages.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    for name, job in jobs.items():
        if name in needed:
            run_stage(stages, name, job)
            if name.startswith("eval_"):
                write_results(out, task, not_run, needed, cfg.skills)  # it grows as agents are evaluated
    return write_results(out, task, not_run, needed, cfg.skills)


def _dotlist(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, bool)) else str(value)


def _clocks(walls: dict[str, float]) -> str:
    """``{"b": 2.4, "a": 10}`` -> ``"a 10, b 2"``: stage wall-clocks (s), by stage name."""
    return ", ".join(f"{k} {v:.0f}" for k, v in sorted(walls.items()))


def write_results(
    out: Path,
    task: str,
    not_run: Sequence[str] = (),
    stages: Collection[str] | None = None,
    given_skills: str = "",
) -> Path:
    """``results.md`` / ``results.json`` and a bar chart with Wilson intervals, from the eval reports.

    Rows are labelled by their evaluation's folder (:data:`ROWS`); ``not_run`` lists the labels left out by
    ``agents=``.
    ``stages``: the stages this run needs; only their wall-clocks make the total (None: every marker).
    Markers of other stages, left in ``out`` by an earlier run with other agents, are listed apart.
    ``given_skills``: the skills checkpoint the run was given (``skills=``), named with its hash.
    """
    plt = pyplot()
    rows = []
    for report in sorted(out.glob("eval_*/report.json")):
        r = json.loads(report.read_text())
        label = ROWS.get(report.parent.name, r["agent"])
        rows.append(
            {
                "agent": label,
                "success": r["success_rate"],
                "wilson95": r["wilson95"],
                "episodes": r["episodes"],
                "mean_length": r["mean_length"],
            }
        )
    order = list(ROWS.values())
    rows.sort(key=lambda x: order.index(x["agent"]) if x["agent"] in order else len(order))
    markers = {p.stem: json.loads(p.read_text())["wall_s"] for p in (out / "stages").glob("*.json")}
    walls = {k: v for k, v in markers.items() if stages is None or k in stages}
    earlier = {k: v for k, v in markers.items() if k not in walls}
    lines = [
        f"# {envs.get_task(task).spec.env_id}: reproduction ({out.name})",
        "",
        "| agent | success | Wilson 95% | episodes | mean length |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {x['agent']} | {x['success']:.1%} | [{x['wilson95'][0]:.1%}, {x['wilson95'][1]:.1%}] | "
        f"{x['episodes']} | {x['mean_length']:.0f} |"
        for x in rows
    ]
    shown = {x["agent"] for x in rows}
    not_run = [label for label in not_run if label not in shown]  # an earlier run's row stays
    if not_run:
        lines += ["", f"Not run (the `agents` setting): {', '.join(not_run)}."]
    if given_skills:
        lines += [
            "",
            f"Learned skills given (`skills=`): `{given_skills}` (sha256 {file_hash(given_skills)}); "
            "their collection and training are not in this run or its total.",
        ]
    lines += [
        "",
        f"Stage wall-clock (s): {_clocks(walls)}",
        f"Total: {sum(walls.values()) / 60:.1f} min.",
    ]
    if earlier:
        lines.append(f"Stages of an earlier run with other agents (not in the total, s): {_clocks(earlier)}.")
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
    summary = {"rows": rows, "stage_wall_s": walls, "skills": given_skills or None}
    atomic_write_text(out / "results.json", json.dumps(summary, indent=1))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    xs = range(len(rows))
    succ = [x["success"] for x in rows]
    # clipped: reports written before the Wilson bounds were made to contain the rate exactly hold 1 - 1e-16
    err = [
        [max(0.0, s - x["wilson95"][0]) for s, x in zip(succ, rows)],
        [max(0.0, x["wilson95"][1] - s) for s, x in zip(succ, rows)],
    ]
    ax.bar(xs, succ, yerr=err, capsize=4, color="tab:blue")
    for x, row in zip(xs, rows):  # the figure itself, above the interval: a 0% bar has no height to show
        ax.text(x, row["wilson95"][1] + 0.02, f"{row['success']:.0%}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(xs), [x["agent"] for x in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("success rate (Wilson 95%)")
    save_png(fig, out / "results.png", f"{envs.get_task(task).spec.env_id}, held-out seeds")
    return out / "results.md"
