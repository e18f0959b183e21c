"""The ``hrlbc`` command line: one subcommand per pipeline stage, every argument a ``key=value``.

    hrlbc envs
    hrlbc render task=bowl seed=3 out=bowl.png
    hrlbc collect task=bowl episodes=250 workers=2 out=data/bowl

Bad input (unknown task, key or value, missing or incompatible files) prints one line naming the
problem and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from hrlbc.config import ConfigError, field_help, resolve


@dataclass(frozen=True)
class Command:
    help: str
    schema: type | None  # config dataclass, or None for commands without arguments
    run: Callable
    section: str | None = None  # section of configs/tasks/<task>.yaml merged under the overrides


def _envs(_cfg) -> None:
    from hrlbc.render import list_envs

    print(list_envs())


def _render(cfg) -> None:
    from hrlbc.render import render_scene

    print(f"wrote {render_scene(cfg)}")


def _commands() -> dict[str, Command]:
    from hrlbc.render import RenderConfig

    return {
        "envs": Command("list the tasks, their skills, timescales and episode limits", None, _envs),
        "render": Command("save a picture of a task scene: RGB, depth and segmentation", RenderConfig, _render),
    }


def _epilog(schema: type | None) -> str:
    if schema is None:
        return ""
    rows = [f"  {f'{k}={v}':<28} {h}" for k, v, h in field_help(schema)]
    return "config keys (key=value, defaults shown):\n" + "\n".join(rows)


def build_parser(commands: dict[str, Command]) -> argparse.ArgumentParser:
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
            epilog=_epilog(cmd.schema),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("overrides", nargs="*", metavar="key=value")
    return parser


def main(argv: list[str] | None = None) -> int:
    commands = _commands()
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    cmd = commands[args.command]
    try:
        if cmd.schema is None:
            if args.overrides:
                raise ConfigError(f"'hrlbc {args.command}' takes no arguments")
            cfg = None
        else:
            cfg = resolve(cmd.schema, args.overrides, section=cmd.section)
        cmd.run(cfg)
    except (ConfigError, ValueError, FileNotFoundError, FileExistsError, PermissionError, OSError) as exc:
        print(f"hrlbc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"hrlbc {args.command}: interrupted; finished work is saved, re-run the command to resume", file=sys.stderr
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
