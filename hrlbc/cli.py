"""The ``hrlbc`` command line: one subcommand per pipeline stage, every argument a ``key=value``.

    hrlbc envs
    hrlbc render task=bowl seed=3 out=bowl.png
    hrlbc collect task=bowl episodes=250 workers=2 out=data/bowl
    hrlbc demos info data/bowl
    hrlbc demos video data/bowl episode=3 out=ep3.mp4

Bad input (unknown task, key or value, missing or incompatible files) prints one line naming the
problem and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hrlbc.config import ConfigError, field_help, resolve


@dataclass(frozen=True)
class Command:
    help: str
    schema: str | None  # "module:ConfigDataclass", imported only when the command runs (torch is slow to import)
    run: Callable
    section: str | None = None  # section of configs/tasks/<task>.yaml merged under the overrides
    positional: tuple[str, ...] = ()  # keys that leading words without '=' fill, in order

    def schema_class(self) -> type | None:
        if self.schema is None:
            return None
        module, name = self.schema.split(":")
        return getattr(importlib.import_module(module), name)


def _envs(_cfg) -> None:
    from hrlbc.render import list_envs

    print(list_envs())


def _render(cfg) -> None:
    from hrlbc.render import render_scene

    print(f"wrote {render_scene(cfg)}")


def _collect(cfg) -> None:
    from demos.collect import collect

    out = collect(cfg)
    from demos import open_dataset
    from demos.info import summary

    print(summary(open_dataset(out)))


@dataclass
class DemosConfig:
    action: str = field(
        default="info", metadata={"help": "info, verify, video or salvage (also the first positional word)"}
    )
    path: str = field(default="???", metadata={"help": "dataset directory (also the second positional word)"})
    episode: int = field(default=0, metadata={"help": "video: episode index"})
    view: int = field(default=0, metadata={"help": "video: camera view"})
    out: str = field(default="", metadata={"help": "video: .mp4 or .gif (episode.mp4); salvage: the new store"})


def _demos(cfg: DemosConfig) -> None:
    from demos import open_dataset
    from demos.info import summary
    from demos.video import episode_video

    if cfg.action not in ("info", "verify", "video", "salvage"):
        raise ConfigError(f"unknown demos action {cfg.action!r}; valid: info, verify, video, salvage")
    if cfg.action == "salvage":
        from demos.store import salvage

        if not cfg.out:
            raise ConfigError("salvage writes the intact episodes into a new store: give out=NEW_PATH")
        kept, dropped = salvage(cfg.path, cfg.out)
        left = f"; dropped {len(dropped)}: {', '.join(map(str, dropped[:20]))}" if dropped else ""
        print(f"wrote {cfg.out}: {kept} intact episodes of {kept + len(dropped)}{left}")
        return
    if cfg.action == "verify":
        ds = open_dataset(cfg.path)
        problems = ds.verify()
        for line in problems:
            print(f"DAMAGED {line}")
        if problems:
            raise ConfigError(f"{cfg.path}: {len(problems)} problem(s) above; the store must not be trained on")
        sums = "checksums match" if ds.root.attrs.get("checksum_arrays") else "no checksums in this older store"
        print(f"{cfg.path}: intact ({ds.num_episodes} episodes, {ds.num_frames} frames read; {sums})")
        return
    ds = open_dataset(cfg.path, verify=True)
    if cfg.action == "info":
        print(summary(ds))
    else:
        print(f"wrote {episode_video(ds, cfg.episode, cfg.out or 'episode.mp4', cfg.view)}")


def _train_skills(cfg) -> None:
    from hrlbc.skills.train import train_skills

    print(f"best checkpoint: {train_skills(cfg)}")


def _augment_preview(cfg) -> None:
    from hrlbc.skills.preview import augment_preview

    print(f"wrote {augment_preview(cfg)}")


@dataclass
class ExportSkillsConfig:
    checkpoint: str = field(default="???", metadata={"help": "skills checkpoint to read (best.pt, last.pt, ...)"})
    out: str = field(default="???", metadata={"help": "file to write: the policy alone, without training state"})


def _export_skills(cfg: ExportSkillsConfig) -> None:
    from hrlbc.skills.policy import export_policy

    src, dst = Path(cfg.checkpoint), export_policy(cfg.checkpoint, cfg.out)
    print(f"wrote {dst}: {dst.stat().st_size / 2**20:.1f} MiB (from {src.stat().st_size / 2**20:.1f} MiB)")


def _train_master(cfg) -> None:
    from hrlbc.master.train import train_master

    print(f"best master: {train_master(cfg)}")


def _evaluate(cfg) -> None:
    from hrlbc.evaluate.run import evaluate

    r = evaluate(cfg)
    low, high = r["wilson95"]
    print(
        f"{r['env_id']} {r['agent']}: success {r['success_rate']:.1%} [{low:.1%}, {high:.1%}] over "
        f"{r['episodes']} episodes; report in {cfg.out}/report.md"
    )


def _sweep(cfg) -> None:
    from hrlbc.evaluate.sweep import sweep

    path = sweep(cfg)
    print(path.read_text())
    print(f"statistics: {path}, {path.with_suffix('.json')} and {path.with_suffix('.png')}")


def _dagger(cfg) -> None:
    from demos import open_dataset
    from demos.info import summary
    from hrlbc.skills.dagger import dagger

    print(summary(open_dataset(dagger(cfg))))


def _reproduce(cfg) -> None:
    from hrlbc.evaluate.reproduce import reproduce

    path = reproduce(cfg)
    print(path.read_text())
    print(f"results: {path} and {path.with_suffix('.png')}")


def _commands() -> dict[str, Command]:
    return {
        "envs": Command("list the tasks, their skills, timescales and episode limits", None, _envs),
        "render": Command(
            "save a picture of a task scene: RGB, depth and segmentation", "hrlbc.render:RenderConfig", _render
        ),
        "collect": Command(
            "record scripted demonstrations into a zarr store (parallel, resumable)",
            "demos.collect:CollectConfig",
            _collect,
            section="collect",
        ),
        "demos": Command(
            "inspect a dataset: 'demos info PATH', 'demos verify PATH', 'demos video PATH episode=3 out=ep3.mp4', "
            "'demos salvage PATH out=NEW' (the intact episodes of a damaged store)",
            "hrlbc.cli:DemosConfig",
            _demos,
            positional=("action", "path"),
        ),
        "train-skills": Command(
            "behavior-clone the task's skills from a dataset (ResNet + FiLM)",
            "hrlbc.skills.config:TrainSkillsConfig",
            _train_skills,
            section="train_skills",
        ),
        "dagger": Command(
            "DAgger: the trained skills act, the scripted ones label; a new store of the demonstrations + these",
            "hrlbc.skills.dagger:DaggerConfig",
            _dagger,
            section="dagger",
        ),
        "export-skills": Command(
            "write a skills checkpoint's policy alone (~1/4 of the size), to share or to commit",
            "hrlbc.cli:ExportSkillsConfig",
            _export_skills,
        ),
        "train-master": Command(
            "train the PPO master that picks skills (stable-baselines3)",
            "hrlbc.master.train:TrainMasterConfig",
            _train_master,
            section="train_master",
        ),
        "evaluate": Command(
            "success rate of an agent on held-out seeds, with a Wilson interval (JSON + Markdown)",
            "hrlbc.evaluate.run:EvaluateConfig",
            _evaluate,
            section="evaluate",
        ),
        "reproduce": Command(
            "the whole pipeline, stage by stage (resumable), to one results table and chart",
            "hrlbc.evaluate.reproduce:ReproduceConfig",
            _reproduce,
        ),
        "sweep": Command(
            "a reproduce preset for several training seeds (local or Ray), with statistics across seeds",
            "hrlbc.evaluate.sweep:SweepConfig",
            _sweep,
        ),
        "augment-preview": Command(
            "grid of original vs augmented depth frames from a dataset",
            "hrlbc.skills.config:PreviewConfig",
            _augment_preview,
        ),
    }


def _epilog(schema: type | None) -> str:
    if schema is None:
        return ""
    rows = [f"  {f'{k}={v}':<28} {h}" for k, v, h in field_help(schema)]
    return "config keys (key=value, defaults shown):\n" + "\n".join(rows)


def build_parser(commands: dict[str, Command], wanted: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``wanted``'s help lists its config keys (that needs its schema imported)."""
    parser = argparse.ArgumentParser(
        prog="hrlbc",
        description="Hierarchical robot manipulation: learning to combine primitive skills (RLBC).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in commands.items():
        p = sub.add_parser(
            name,
            help=cmd.help,
            description=cmd.help,
            epilog=_epilog(cmd.schema_class()) if name == wanted else "",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("overrides", nargs="*", metavar="key=value")
    return parser


def _positional(args: list[str], keys: tuple[str, ...]) -> list[str]:
    """``["info", "data/x", "a=1"]`` -> ``["action=info", "path=data/x", "a=1"]`` for ``keys=(action, path)``."""
    out, free = [], list(keys)
    for arg in args:
        if "=" not in arg and free:
            arg = f"{free.pop(0)}={arg}"
        out.append(arg)
    return out


# What Ctrl-C keeps, and the command that continues.
INTERRUPTED = {
    "collect": "its finished episodes are in the store; the same command resumes",
    "dagger": "its finished episodes are in the store; the same command resumes",
    "train-skills": "the last finished epoch is in last.pt; the same command with resume=true continues",
    "train-master": "the last validation's policy is in last.zip; the same command with resume=true continues",
    "reproduce": "finished stages are kept; the same command skips them and resumes the interrupted one",
    "sweep": "finished seeds and stages are kept; the same command resumes the rest",
    "evaluate": "an evaluation keeps nothing; run it again",
}


def main(argv: list[str] | None = None) -> int:
    commands = _commands()
    argv = sys.argv[1:] if argv is None else argv
    wanted = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(commands, wanted)
    except ValueError as exc:  # e.g. $HRLBC_TASKS names a module that is not there
        print(f"hrlbc: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    cmd = commands[args.command]
    try:
        schema = cmd.schema_class()
        if schema is None:
            if args.overrides:
                raise ConfigError(f"'hrlbc {args.command}' takes no arguments")
            cfg = None
        else:
            cfg = resolve(schema, _positional(args.overrides, cmd.positional), section=cmd.section)
        cmd.run(cfg)
    except (
        ValueError,
        OSError,
        IndexError,
        RuntimeError,
    ) as exc:  # bad input: ConfigError, DatasetError are ValueErrors
        print(f"hrlbc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"hrlbc {args.command}: interrupted; {INTERRUPTED.get(args.command, 'nothing was kept')}", file=sys.stderr
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
