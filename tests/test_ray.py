"""backend=ray: collect and evaluate through a real local Ray instance (127.0.0.1) give what the local pool gives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_cli_errors

from demos import open_dataset
from demos.collect import CollectConfig, collect
from hrlbc.evaluate.run import EvaluateConfig, evaluate

ray = pytest.importorskip("ray")  # a declared dependency; the skip only guards a broken install


@pytest.fixture(scope="module")
def cluster():
    """One Ray instance for the module (parallel_map uses a running one and leaves it running)."""
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


def test_collect_through_ray_writes_the_local_pools_bytes(cluster, tmp_path):
    kw = dict(task="pick", episodes=4, image_size=32, chunk_frames=16)
    local = open_dataset(collect(CollectConfig(**kw, workers=1, out=str(tmp_path / "l")), progress=False))
    remote = collect(CollectConfig(**kw, workers=2, backend="ray", out=str(tmp_path / "r")), progress=False)
    remote = open_dataset(remote, verify=True)
    assert remote.num_episodes == local.num_episodes == 4
    for name, arr in local.arrays.items():
        assert np.array_equal(arr[:], remote.arrays[name][:]), name
    assert np.array_equal(local.meta("checksum"), remote.meta("checksum"))
    assert ray.is_initialized(), "a cluster that was running stays running"


def test_evaluate_through_ray_gives_the_local_report(cluster, tmp_path):
    kw = dict(task="bowl", agent="expert", episodes=4, batch=2)
    local = evaluate(EvaluateConfig(**kw, workers=1, out=str(tmp_path / "l")), progress=False)
    remote = evaluate(EvaluateConfig(**kw, workers=2, backend="ray", out=str(tmp_path / "r")), progress=False)
    assert remote["per_episode"] == local["per_episode"] and remote["success_rate"] == local["success_rate"]
    assert json.loads((tmp_path / "r" / "report.json").read_text())["config"]["backend"] == "ray"


def test_an_unknown_backend_is_one_line(capsys, tmp_path):
    assert_cli_errors(
        capsys,
        [
            (["collect", "backend=spark", f"out={tmp_path / 'c'}"], "backend must be local or ray, got 'spark'"),
            (["evaluate", "backend=dask", f"out={tmp_path / 'e'}"], "backend must be local or ray, got 'dask'"),
        ],
    )
    assert not (tmp_path / "c").exists()


def test_address_joins_a_running_cluster(tmp_path):
    """``ray start --head`` as a user would, then the CLI with ``address=``: it runs there and leaves it running."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    ray_cli = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    port = "6391"
    start = [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2"]
    subprocess.run(start + ["--include-dashboard=false"], check=True, capture_output=True, timeout=120)
    try:
        argv = [sys.executable, "-m", "hrlbc.cli", "evaluate", "task=pick", "agent=expert", "episodes=2"]
        argv += ["backend=ray", "address=auto", f"out={tmp_path / 'e'}"]  # the cluster started on this machine
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        report = json.loads((tmp_path / "e" / "report.json").read_text())
        assert report["episodes"] == 2 and report["success_rate"] == 1.0
        probe = "import ray; ray.init(address='auto'); print(ray.cluster_resources()['CPU'])"
        status = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
        assert status.stdout.strip() == "2.0", "the cluster is still up after the command" + status.stderr[-500:]
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120)
