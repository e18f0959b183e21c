"""The shipped Bowl hierarchy runs right after install, from any directory."""

from __future__ import annotations

import json
from pathlib import Path

from hrlbc.cli import main

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "bowl_quick"


def test_the_shipped_bowl_master_finds_its_skills_and_runs_from_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths in the checkpoints must not matter
    args = ["evaluate", "task=bowl", "agent=master", f"checkpoint={WEIGHTS / 'master' / 'best.zip'}"]
    assert main([*args, "episodes=2", "workers=1", "out=e"]) == 0
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["episodes"] == 2 and Path(report["skills"]).resolve() == (WEIGHTS / "skills" / "best.pt").resolve()
    assert sum(v["count"] for v in report["skill_choices"].values()) >= 2  # the master picked skills
