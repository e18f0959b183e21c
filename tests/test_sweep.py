"""hrlbc sweep: training seeds as Ray tasks on a real local instance, resumable, with across-seed statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import assert_cli_errors
from scipy import stats

from hrlbc.cli import main
from hrlbc.evaluate.sweep import seed_statistics


def test_seed_statistics_use_scipy_bootstrap_and_the_iqm_from_five_seeds():
    rng = np.random.default_rng(0)
    outcomes = [rng.random(40) < p for p in (0.5, 0.6, 0.7)]
    s = seed_statistics(outcomes)
    rates = [o.mean() for o in outcomes]
    assert s["mean"] == pytest.approx(np.mean(rates)) and s["seeds"] == 3 and "iqm" not in s
    for key in ("bootstrap95_episodes", "bootstrap95_seeds"):
        low, high = s[key]
        assert 0 <= low < s["mean"] < high <= 1, key
    assert s["bootstrap95_seeds"][0] >= min(rates) and s["bootstrap95_seeds"][1] <= max(rates)
    five = [rng.random(40) < p for p in (0.1, 0.5, 0.6, 0.7, 1.0)]
    assert seed_statistics(five)["iqm"] == pytest.approx(stats.trim_mean([o.mean() for o in five], 0.25))
    assert "bootstrap95_seeds" not in seed_statistics(outcomes[:1])  # one seed: no interval over seeds


def test_a_sweep_runs_its_seeds_as_ray_tasks_and_resumes(tmp_path, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "sweep"
    args = ["sweep", "task=pick", "preset=tiny", "seeds=[0,3]", "agents=[skills]", "backend=ray", f"out={out}"]
    assert main(args) == 0
    capsys.readouterr()
    report = json.loads((out / "sweep.json").read_text())
    assert report["seeds"] == [0, 3]
    rows = {r["agent"]: r for r in report["rows"]}
    assert set(rows) == {"skills (expert order)"}
    assert set(rows["skills (expert order)"]["per_seed"]) == {"0", "3"}
    assert (out / "sweep.png").stat().st_size > 1000 and "2 training seeds" in (out / "sweep.md").read_text()
    # each seed trained from its own seed: other weights, on the same demonstrations
    weights = [torch.load(out / f"seed_{s}" / "skills" / "best.pt", weights_only=True)["state_dict"] for s in (0, 3)]
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    data = [(out / f"seed_{s}" / "data_skills" / "data" / "action" / "c" / "0" / "0").read_bytes() for s in (0, 3)]
    assert data[0] == data[1]
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("seed_*/stages/*.json")}
    assert main(args[:-2] + [f"out={out}"]) == 0  # the local backend resumes the same seeds: nothing reruns
    assert capsys.readouterr().out.count("done already, skipped") == len(stamps)
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("seed_*/stages/*.json")}
    assert_cli_errors(
        capsys,
        [
            (["sweep", "seeds=[1,1]", f"out={tmp_path / 'x'}"], "seeds must be distinct"),
            (["sweep", "backend=slurm", f"out={tmp_path / 'x'}"], "backend must be local or ray"),
        ],
    )
