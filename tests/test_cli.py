"""The hrlbc command line: help, listing, rendering, and one-line errors for bad input."""

import os
import re
import subprocess
import sys

import imageio.v3 as iio
import pytest

from hrlbc.cli import main


def test_envs_lists_tasks_and_skills(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    for text in ("UR5-Pick-v0", "UR5-Bowl-v0", "UR5-Stack-v0", "above_bowl_release", "timescale 60"):
        assert text in out


def test_render_writes_a_png(tmp_path):
    out = tmp_path / "bowl.png"
    assert main(["render", "task=bowl", "seed=3", f"out={out}", "image_size=64"]) == 0
    image = iio.imread(out)
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 10


@pytest.mark.parametrize(
    "args, message",
    [
        (["render", "task=fly"], "unknown task 'fly'; valid tasks: pick"),
        (["render", "colour=red"], "unknown config key 'colour'; valid keys: task, seed"),
        (["render", "seed=abc"], "bad value for 'seed'"),
        (["render", "image_size=0"], "image_size must be a positive integer"),
        (["render", "camera=fisheye"], "camera must be one of"),
        (["render", "seed"], "key=value"),
        # NaN and inf are refused for every float key of every command, before any work starts
        (["collect", "task=pick", "noise=nan", "out=/nonexistent/x"], "noise must be a finite number, got nan"),
        (["train-skills", "lr=nan"], "lr must be a finite number, got nan"),
        (["train-skills", "aux_state=inf"], "aux_state must be a finite number, got inf"),
        (["train-master", "gamma=-inf"], "gamma must be a finite number"),
        (["train-master", "lr=0"], "lr must be > 0, got 0.0"),
        (["train-master", "gamma=1.5"], "gamma must be in (0, 1], got 1.5"),
        (["train-master", "ent_coef=-0.1"], "ent_coef must be >= 0"),
        (["train-skills", "encoder=vit"], "encoder must be one of"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_every_subcommand_has_help():
    for cmd in (
        "envs",
        "render",
        "collect",
        "demos",
        "train-skills",
        "export-skills",
        "train-master",
        "evaluate",
        "reproduce",
        "sweep",
        "augment-preview",
    ):
        # -X importtime lists every module imported, one "| name" line each, on stderr
        argv = [sys.executable, "-X", "importtime", "-m", "hrlbc.cli", cmd, "--help"]
        result = subprocess.run(argv, capture_output=True, text=True)
        assert result.returncode == 0 and "usage: hrlbc" in result.stdout
        if cmd != "envs":
            assert "config keys (key=value, defaults shown)" in result.stdout, cmd
        # help comes in about a second: the seconds of importing torch or albumentations wait for the work
        heavy = re.findall(r"\|\s+(torch|albumentations|stable_baselines3)$", result.stderr, re.M)
        assert not heavy, (cmd, heavy)


@pytest.mark.parametrize("task", ["pick", "bowl", "stack", "breakfast"])
def test_every_task_resolves_every_stage_config(task):
    import envs
    from demos.collect import CollectConfig
    from hrlbc.config import resolve
    from hrlbc.master.train import TrainMasterConfig
    from hrlbc.skills.config import TrainSkillsConfig

    assert task in envs.TASKS
    for schema, section in (
        (CollectConfig, "collect"),
        (TrainSkillsConfig, "train_skills"),
        (TrainMasterConfig, "train_master"),
    ):
        cfg = resolve(schema, [f"task={task}"], section=section)
        assert cfg.task == task and task in cfg.out


def test_progress_bars_write_whole_lines_to_a_log(monkeypatch):
    """Not a terminal (nohup, CI, > log): whole lines, at most one per interval, no carriage returns."""
    import io

    import demos.progress as progress

    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 3600.0)
    log = io.StringIO()
    bar = progress.progress_bar(stream=log, total=1000, unit="ep", desc="collect pick")
    for _ in range(1000):
        bar.update(1)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and all(line.startswith("collect pick") for line in lines)
    assert lines[0].startswith("collect pick:   0%") and "1000/1000" in lines[-1]
    assert len(lines) == 2, lines  # the start and the end: the interval was not reached, close() not repeated


def test_progress_bars_redraw_in_place_on_a_terminal():
    import io

    from demos.progress import progress_bar

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    bar = progress_bar(stream=term, total=3, desc="epoch 1/3", mininterval=0)
    for _ in range(3):
        bar.update(1)
    bar.close()
    assert term.getvalue().count("\r") >= 3  # redrawn on one line


def test_a_logged_run_redraws_its_bar_only_at_the_start_and_the_end(tmp_path):
    """What a log shows: no per-update redraws (``set_postfix`` must not force one either)."""
    args = ["collect", "task=pick", "episodes=6", "workers=1", "image_size=32", f"out={tmp_path / 'd'}"]
    code = f"import sys; from hrlbc.cli import main; sys.exit(main({args!r}))"
    env = {k: v for k, v in os.environ.items() if k != "TQDM_MININTERVAL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    draws = [line for line in out.stderr.splitlines() if "collect pick" in line]  # text mode: \r -> \n
    assert 1 <= len(draws) <= 3, out.stderr


def test_a_logged_master_run_shows_its_bar_and_each_validation(tmp_path):
    """train-master under nohup/CI: a tqdm bar in master steps (stderr), one line per validation (stdout)."""
    args = [
        "train-master", "task=pick", "skills=scripted", "obs=state", "n_envs=1", "n_steps=4", "n_minibatches=2",
        "total_steps=8", "eval_every=1", "eval_episodes=1", f"out={tmp_path / 'm'}",
    ]  # fmt: skip
    code = f"import sys; from hrlbc.cli import main; sys.exit(main({args!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    validations = [line for line in out.stdout.splitlines() if "validation success" in line]
    assert [line.split()[2] for line in validations] == ["4", "8"], out.stdout
    assert "master pick" in out.stderr and "8/8" in out.stderr, out.stderr


def test_more_bad_input_gets_one_line(tmp_path, capsys):
    junk = tmp_path / "m" / "junk.zip"  # a valid zip that is no master, in a master's folder
    junk.parent.mkdir()
    import json
    import zipfile

    with zipfile.ZipFile(junk, "w") as z:
        z.writestr("a.txt", "x")
    (junk.parent / "master.json").write_text(
        json.dumps({"format": "hrlbc-master", "config": {"task": "bowl", "skills": "scripted", "image_size": 64}})
    )
    from conftest import assert_cli_errors

    master = ["evaluate", "task=bowl", "agent=master", f"checkpoint={junk}", "workers=1", f"out={tmp_path / 'e'}"]
    assert_cli_errors(
        capsys,
        [
            (["collect", "task=pick", "seed=-1", f"out={tmp_path / 'd'}"], "seed must be >= 0, got -1"),
            (["evaluate", "agent=skills", "checkpoint=x.pt", "sequence=[7]"], "skill id(s) [7]; task bowl has skills"),
            (master, f"cannot read master checkpoint {junk}"),
        ],
    )
    assert not (tmp_path / "d").exists(), "a refused collect leaves nothing behind"


def test_ctrl_c_says_what_is_kept_and_how_to_continue(monkeypatch, capsys):
    import hrlbc.evaluate.run as run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "evaluate", interrupted)
    assert main(["evaluate", "task=bowl", "agent=expert", "episodes=1", "workers=1"]) == 130
    assert "an evaluation keeps nothing" in capsys.readouterr().err
