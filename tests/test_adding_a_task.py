"""docs/adding-a-task.md, end to end: a task defined in tests/tasks/ goes through collect -> train-skills -> evaluate.

Each command runs as a user runs it (the ``hrlbc`` command line in a fresh process), told about the task by
``$HRLBC_TASKS`` as the guide says, so the guide cannot drift from the code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TASKS_DIR = Path(__file__).resolve().parent / "tasks"


def hrlbc(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, HRLBC_TASKS="grasp_task", PYTHONPATH=os.pathsep.join([str(TASKS_DIR), *sys.path]))
    run = subprocess.run([sys.executable, "-m", "hrlbc.cli", *args], capture_output=True, text=True, env=env)
    if check:
        assert run.returncode == 0, run.stderr[-2000:]
    return run


@pytest.mark.slow
def test_a_task_from_outside_the_package_runs_the_pipeline(tmp_path):
    assert "UR5-Grasp-v0" in hrlbc("envs").stdout

    data, skills = tmp_path / "data", tmp_path / "skills"
    hrlbc("collect", "task=grasp", "episodes=4", "workers=2", f"out={data}")
    info = hrlbc("demos", "info", str(data)).stdout
    assert "above_cube" in info and "grasp_cube" in info

    hrlbc(
        "train-skills", "task=grasp", f"data={data}", f"out={skills}", "epochs=1", "batch_size=16", "max_batches=3",
        "eval_every=1", "eval_episodes=1", "augment=shift",
    )  # fmt: skip
    assert (skills / "best.pt").is_file() and (skills / "curves.png").is_file()

    for agent, checkpoint in (("expert", None), ("skills", skills / "best.pt")):
        out = tmp_path / f"eval_{agent}"
        args = ["evaluate", "task=grasp", f"agent={agent}", "episodes=2", "workers=1", f"out={out}"]
        hrlbc(*args, *([f"checkpoint={checkpoint}"] if checkpoint else []))
        report = json.loads((out / "report.json").read_text())
        assert report["episodes"] == 2
        if agent == "expert":
            assert report["success_rate"] == 1.0  # the guide's expert solves its task


def test_a_task_module_missing_a_part_is_named():
    import envs

    with pytest.raises(ValueError, match="lacks SPEC, ENV, make_skills"):
        envs.register_task("envs.scene")  # a module without SPEC, ENV, make_skills

    bad = hrlbc("envs", check=False)  # the env var names the task module: a typo must say which
    assert bad.returncode == 0
    env = dict(os.environ, HRLBC_TASKS="no_such_task_module")
    run = subprocess.run([sys.executable, "-m", "hrlbc.cli", "envs"], capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "no_such_task_module" in run.stderr and "Traceback" not in run.stderr
