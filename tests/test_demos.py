"""Demonstration collection and the dataset: determinism, crash safety, replay, reader, CLI."""

import errno
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr
from conftest import assert_cli_errors

import envs
from demos import DatasetError, open_dataset
from demos.collect import CollectConfig, collect
from demos.store import DemoWriter, dequantise_depth
from hrlbc.cli import main

TINY = dict(task="bowl", image_size=32, noise=0.05)


def _collect(path, **kw):
    cfg = CollectConfig(**{**TINY, "out": str(path), **kw})
    return open_dataset(collect(cfg, progress=False))


def _arrays(ds):
    return {k: np.asarray(a[: ds.num_frames]) for k, a in ds.arrays.items()} | {
        f"meta/{m}": ds.meta(m) for m in ("episode_ends", "seed", "success", "length", "camera")
    }


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_same_seed_same_bytes_with_one_or_two_workers(tmp_path):
    one = _collect(tmp_path / "w1", episodes=4, workers=1)
    two = _collect(tmp_path / "w2", episodes=4, workers=2)
    assert one.num_episodes == two.num_episodes == 4
    assert_same(_arrays(one), _arrays(two))
    assert one.metadata["git_commit"] is None or len(one.metadata["git_commit"]) == 40


def test_killed_collection_resumes_to_the_uninterrupted_store(tmp_path):
    ref = _collect(tmp_path / "ref", episodes=10, workers=1)
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "hrlbc.cli",
        "collect",
        "task=bowl",
        "image_size=32",
        "episodes=10",
        "workers=1",
        f"out={out}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    committed = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            committed = zarr.open_group(str(out), mode="r").attrs.get("num_episodes", 0)
        except Exception:
            committed = 0
        if committed >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 3 <= committed < 10, "the kill should land mid-collection"
    partial = open_dataset(out)
    assert partial.num_episodes >= 3
    resumed = _collect(out, episodes=10, workers=2)
    assert_same(_arrays(resumed), _arrays(ref))


def test_failed_write_leaves_a_consistent_store(tmp_path, monkeypatch):
    path = tmp_path / "full"
    _collect(path, episodes=2, workers=1)
    real = zarr.Array.__setitem__
    calls = {"n": 0}

    def disk_full(self, key, value):
        calls["n"] += 1
        if calls["n"] == 2:  # first array of the third episode written, second one fails
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, key, value)

    monkeypatch.setattr(zarr.Array, "__setitem__", disk_full)
    with pytest.raises(OSError, match="No space left on device.*keeps its 2 finished episodes"):
        _collect(path, episodes=4, workers=1)
    monkeypatch.setattr(zarr.Array, "__setitem__", real)
    ds = open_dataset(path)
    assert ds.num_episodes == 2
    done = _collect(path, episodes=4, workers=1)
    ref = _collect(tmp_path / "ref", episodes=4, workers=1)
    assert_same(_arrays(done), _arrays(ref))


def test_replay_reproduces_stored_frames(tmp_path):
    ds = _collect(tmp_path / "d", episodes=2, workers=1, cameras=2, random_camera=True)
    env = envs.make_env("bowl", **{**CollectConfig(**TINY, cameras=2, random_camera=True).env_options()})
    for i in range(ds.num_episodes):
        ep = ds.episode(i)
        obs, _ = env.reset(seed=int(ds.meta("seed")[i]))
        assert np.array_equal(env.camera_params(), ds.meta("camera")[i])
        for t in range(len(ep["action"])):
            assert np.array_equal(obs["state"], ep["state"][t])
            stored = ds.arrays["depth"][ds.episode_range(i)[0] + t]
            assert np.array_equal(np.round(obs["depth"] * 65535).astype(np.uint16), stored)
            assert np.array_equal(obs["mask"], ep["mask"][t])
            obs, *_ = env.step(ep["action"][t])
    env.close()


def test_reader_frames_episodes_and_metadata(tmp_path):
    ds = _collect(tmp_path / "d", episodes=3, workers=1, mode="full")
    assert ds.task == "bowl" and ds.metadata["skills"][3] == "above_bowl_release"
    assert ds.meta("success").all(), "the full expert solves these seeds"
    start, end = ds.episode_range(1)
    ep = ds.episode(1)
    frame = ds.frame(start + 5)
    assert np.array_equal(frame["depth"], ep["depth"][5]) and frame["depth"].dtype == np.float32
    assert ds.episode_of(start + 5) == 1 and ds.episode_of(end) == 2
    assert list(np.unique(ep["skill"])) == [0, 1, 2, 3], "full mode runs the expert order"
    assert np.all(np.diff(ep["skill"]) >= 0)
    assert (tmp_path / "d" / "config.yaml").read_text().count("task: bowl") == 1
    with pytest.raises(IndexError):
        ds.frame(ds.num_frames)
    # readable with plain zarr + numpy
    root = zarr.open_group(str(tmp_path / "d"), mode="r")
    n = root.attrs["num_episodes"]
    assert root["meta/episode_ends"][n - 1] == ds.num_frames
    assert np.allclose(dequantise_depth(root["data/depth"][start + 5]), frame["depth"])


def test_skills_mode_labels_out_of_order_sequences(tmp_path):
    ds = _collect(tmp_path / "d", episodes=8, workers=1, mode="skills")
    first = [int(ds.episode(i, keys=("skill",))["skill"][0]) for i in range(ds.num_episodes)]
    assert any(s != 0 for s in first), "some episodes start with a random (out-of-order) skill"
    assert ds.episode(0, keys=("skill_done",))["skill_done"].any()


def test_incompatible_store_is_refused_unless_overwrite(tmp_path):
    _collect(tmp_path / "d", episodes=1, workers=1)
    with pytest.raises(DatasetError, match="different task or config.*image_size"):
        _collect(tmp_path / "d", episodes=2, workers=1, image_size=48)
    ds = _collect(tmp_path / "d", episodes=1, workers=1, image_size=48, overwrite=True)
    assert ds.arrays["depth"].shape[-1] == 48


def test_not_a_dataset(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file.txt").write_text("hi")
    with pytest.raises(DatasetError):
        open_dataset(tmp_path / "x")
    with pytest.raises(DatasetError, match="no dataset"):
        open_dataset(tmp_path / "missing")


def test_writer_truncates_an_uncommitted_tail(tmp_path):
    ds = _collect(tmp_path / "d", episodes=2, workers=1)
    frames = ds.num_frames
    root = zarr.open_group(str(tmp_path / "d"), mode="r+")
    root["data/action"].resize((frames + 7, 4))  # as if a writer died after growing one array
    meta = dict(root.attrs["hrlbc"])
    writer = DemoWriter(tmp_path / "d", meta, {}, 1)
    assert writer.num_frames == frames and root["data/action"].shape[0] == frames


def test_cli_collect_info_video_and_errors(tmp_path, capsys):
    out = tmp_path / "pick"
    assert main(["collect", "task=pick", "episodes=2", "workers=1", "image_size=32", f"out={out}"]) == 0
    text = capsys.readouterr().out
    assert "episodes     2" in text and "grasp_cube" in text and "bytes/frame" in text
    assert main(["demos", "info", str(out)]) == 0
    assert main(["demos", "video", str(out), "episode=1", f"out={tmp_path / 'ep.gif'}"]) == 0
    import imageio.v2 as imageio

    frames = imageio.mimread(tmp_path / "ep.gif")
    assert len(frames) == open_dataset(out).meta("length")[1]
    capsys.readouterr()
    assert_cli_errors(
        capsys,
        [
            (["collect", "task=fly"], "unknown task"),
            (["collect", "episodes=-3"], "episodes must be >= 1"),
            (["collect", "task=bowl", "episodes=1", f"out={out}"], "different task or config"),
            (["demos", "info", str(tmp_path / "none")], "no dataset"),
            (["demos", "video", str(out), "episode=99", f"out={tmp_path / 'x.mp4'}"], "out of range"),
            (["demos", "video", str(out), f"out={tmp_path / 'x.avi'}"], ".mp4 or .gif"),
        ],
    )


def test_atomic_write_gives_a_normal_file_mode(tmp_path):
    from demos.io import atomic_write_text

    atomic_write_text(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").read_text() == "x"
    assert (tmp_path / "a.txt").stat().st_mode & 0o044 == 0o044, "readable by group and others (umask 022)"
    assert list(tmp_path.iterdir()) == [tmp_path / "a.txt"], "no temporary file left behind"
