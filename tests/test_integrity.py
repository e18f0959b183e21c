"""A damaged store is detected, named, never trained on and never rewritten; creation survives a kill."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import zarr
from conftest import assert_cli_errors, tiny_skills_config

from demos import DatasetError, open_dataset
from demos.collect import CollectConfig, collect
from demos.store import CREATING_SUFFIX
from hrlbc.cli import main


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """6 Pick episodes at 32 px in 16-frame chunks, so that a chunk is a part of one or two episodes."""
    out = tmp_path_factory.mktemp("integrity") / "pick"
    collect(
        CollectConfig(task="pick", episodes=6, workers=1, image_size=32, chunk_frames=16, out=str(out)), progress=False
    )
    return out


def fingerprint(path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def damaged_copy(store, tmp_path, name="x"):
    copy = tmp_path / name
    shutil.copytree(store, copy)
    return copy


def test_intact_store_verifies(store, capsys):
    ds = open_dataset(store)
    assert ds.verify() == []
    assert list(ds.root.attrs["checksum_arrays"]) == sorted(ds.arrays)
    assert main(["demos", "verify", str(store)]) == 0
    assert "intact (6 episodes" in capsys.readouterr().out


def test_missing_frame_chunk_is_named_and_refused_everywhere(store, tmp_path, capsys):
    x = damaged_copy(store, tmp_path)
    (x / "data/depth/c/3/0/0/0").unlink()  # frames 48-63: zarr alone would read them as zeros
    problems = open_dataset(x).verify()
    assert len(problems) == 1 and problems[0].startswith("data/depth: chunk 3 missing (episode")
    before = fingerprint(x)
    assert main(["demos", "verify", str(x)]) == 2
    out = capsys.readouterr()
    assert "DAMAGED data/depth: chunk 3 missing" in out.out and "Traceback" not in out.err
    assert_cli_errors(
        capsys,
        [
            (["demos", "info", str(x)], "data/depth: chunk 3 missing"),
            (["collect", "task=pick", "episodes=8", "workers=1", "image_size=32", "chunk_frames=16", f"out={x}"],
             "is damaged: data/depth: chunk 3 missing"),
            (["train-skills", "task=pick", f"data={x}", f"out={tmp_path / 's'}", "epochs=1"], "is damaged"),
            (["augment-preview", f"data={x}", f"out={tmp_path / 'a.png'}"], "is damaged"),
        ],
    )  # fmt: skip
    assert fingerprint(x) == before  # nothing was truncated or rewritten
    assert not (tmp_path / "s" / "last.pt").exists()


def test_damaged_episode_index_is_refused_not_wiped(store, tmp_path, capsys):
    x = damaged_copy(store, tmp_path)
    (x / "meta/episode_ends/c/0").unlink()  # the case: a resumed collect used to cut the frames to 0
    before = fingerprint(x)
    problems = open_dataset(x).verify()
    assert any(p.startswith("meta/episode_ends") for p in problems)
    assert_cli_errors(
        capsys,
        [
            (
                ["collect", "task=pick", "episodes=7", "workers=1", "image_size=32", "chunk_frames=16", f"out={x}"],
                "is damaged",
            )
        ],
    )
    assert fingerprint(x) == before


def test_salvage_keeps_exactly_the_intact_episodes_byte_for_byte(store, tmp_path, capsys):
    x = damaged_copy(store, tmp_path)
    (x / "data/depth/c/3/0/0/0").unlink()  # frames 48-63
    chunk = x / "data/action/c/0/0"
    chunk.write_bytes(chunk.read_bytes()[:-3])  # frames 0-15: unreadable
    (x / "meta/episode_ends/c/0").unlink()  # the index too: boundaries come from meta/length
    src = open_dataset(store)
    hit = {
        int(e)
        for lo, hi in ((48, 64), (0, 16))
        for e in np.flatnonzero((src.episode_starts < hi) & (src.episode_ends > lo))
    }
    before = fingerprint(x)
    new = tmp_path / "saved"
    assert main(["demos", "salvage", str(x), f"out={new}"]) == 0
    assert (
        f"{src.num_episodes - len(hit)} intact episodes of {src.num_episodes}; dropped {len(hit)}"
        in capsys.readouterr().out
    )
    assert fingerprint(x) == before, "salvage only reads its source"
    saved = open_dataset(new, verify=True)  # intact, checksums included
    kept = [e for e in range(src.num_episodes) if e not in hit]
    assert saved.num_episodes == len(kept) and list(saved.meta("seed")) == [int(src.meta("seed")[e]) for e in kept]
    for i, e in enumerate(kept):
        a, b = src.episode_range(e), saved.episode_range(i)
        for name in src.arrays:
            assert np.array_equal(src.arrays[name][a[0] : a[1]], saved.arrays[name][b[0] : b[1]]), (name, e)
    assert_cli_errors(capsys, [(["demos", "salvage", str(x), f"out={new}"], "exists; salvage writes a new store"),
                               (["demos", "salvage", str(x)], "give out=NEW_PATH")])  # fmt: skip


def test_truncated_chunk_names_array_and_episodes(store, tmp_path):
    x = damaged_copy(store, tmp_path)
    chunk = x / "data/mask/c/2/0/0/0"
    chunk.write_bytes(chunk.read_bytes()[:20])
    problems = open_dataset(x).verify()
    assert len(problems) == 1 and problems[0].startswith("data/mask: unreadable (episode")


def test_changed_bytes_fail_their_checksum(store, tmp_path):
    x = damaged_copy(store, tmp_path)
    ds = open_dataset(x)
    start, end = ds.episode_range(4)
    arr = zarr.open_group(str(x), mode="r+")["data/state"]
    arr[start + 1] = np.asarray(arr[start + 1]) + 0.5  # a valid chunk with other numbers in it
    assert open_dataset(x).verify() == ["data/state: episode 4 differs from its checksum"]


def test_kill_during_creation_leaves_nothing_that_blocks(tmp_path):
    out = tmp_path / "pick"
    leftover = tmp_path / ("pick" + CREATING_SUFFIX)  # what a kill during creation leaves
    leftover.mkdir()
    (leftover / "zarr.json").write_text("{}")
    out.mkdir()  # and the empty folder a first attempt may have made
    collect(CollectConfig(task="pick", episodes=2, workers=1, image_size=32, out=str(out)), progress=False)
    assert open_dataset(out, verify=True).num_episodes == 2 and not leftover.exists()


def test_training_reads_only_verified_stores(store, tmp_path):
    from hrlbc.skills.train import train_skills

    x = damaged_copy(store, tmp_path)
    (x / "data/expert_action/c/1/0").unlink()
    with pytest.raises(DatasetError, match="data/expert_action: chunk 1 missing"):
        train_skills(tiny_skills_config(x, tmp_path / "s", max_batches=1, eval_every=0, augment="none"), progress=False)


def test_one_writer_per_output_and_a_dead_writers_lock_is_taken_over(tmp_path, capsys):
    import subprocess
    import sys
    import time

    out = tmp_path / "pick"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from demos.io import output_lock; import time\nwith output_lock({str(out)!r}): time.sleep(60)",
        ]
    )
    try:
        lock = tmp_path / ".pick.lock"
        for _ in range(100):  # until the holder has written its pid
            if lock.is_file() and lock.read_text().strip():
                break
            time.sleep(0.1)
        assert_cli_errors(
            capsys,
            [(["collect", "task=pick", "episodes=1", "workers=1", "image_size=32", f"out={out}"],
              f"being written by another hrlbc process (pid {holder.pid})")],
        )  # fmt: skip
    finally:
        holder.kill()  # as kill -9: its lock dies with it
        holder.wait()
    out.mkdir(exist_ok=True)
    stale = out / ".config.yaml.abc123.tmp"  # what atomic_write leaves when killed mid-write
    stale.write_text("half")
    collect(CollectConfig(task="pick", episodes=1, workers=1, image_size=32, out=str(out)), progress=False)
    assert open_dataset(out, verify=True).num_episodes == 1 and not stale.exists()


def test_killing_collect_ends_its_workers_quietly(tmp_path):
    """kill -9 of the main process: its workers end with it, without BrokenPipe tracebacks; the store resumes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "bowl"
    args = ["collect", "task=bowl", "episodes=40", "workers=2", "image_size=32", f"out={out}"]
    main = subprocess.Popen([sys.executable, "-m", "hrlbc.cli", *args], stderr=subprocess.PIPE, text=True)
    children: list[int] = []
    for _ in range(300):  # until both workers run and an episode is committed
        time.sleep(0.1)
        children = [int(p) for t in os.listdir(f"/proc/{main.pid}/task") for p in
                    open(f"/proc/{main.pid}/task/{t}/children").read().split()]  # fmt: skip
        if len(children) >= 2 and (out / "zarr.json").is_file() and open_dataset(out).num_episodes >= 1:
            break
    main.send_signal(signal.SIGKILL)
    _, err = main.communicate(timeout=30)
    for _ in range(50):
        alive = [
            p for p in children if os.path.exists(f"/proc/{p}") and "Z" not in open(f"/proc/{p}/stat").read().split()[2]
        ]
        if not alive:
            break
        time.sleep(0.1)
    assert len(children) >= 2 and not alive, "the workers died with their parent"
    assert "Traceback" not in err and "BrokenPipe" not in err, err[-2000:]
    ds = collect(CollectConfig(task="bowl", episodes=3, workers=1, image_size=32, out=str(out)), progress=False)
    assert open_dataset(ds, verify=True).num_episodes >= 3


def test_unwritable_outputs_and_unbounded_requests_get_one_line(store, tmp_path, capsys):
    """A video where no file can be (its parent is a file), GIF or MP4, and a preview of 100,000 rows."""
    import subprocess
    import sys

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for suffix in (".gif", ".mp4"):
        # a child process: imageio's and ffmpeg's noise would come at exit, after main() returned
        argv = [sys.executable, "-m", "hrlbc.cli", "demos", "video", str(store), f"out={blocker}/v{suffix}"]
        result = subprocess.run(argv, capture_output=True, text=True)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith(f"hrlbc demos: error: cannot write the video {blocker}/v{suffix}: "), lines
    assert_cli_errors(capsys, [(["augment-preview", f"data={store}", "rows=100000"], "rows must be in [1, 32]")])


def test_a_full_disk_during_a_checkpoint_write_is_an_os_error_and_leaves_no_temp(tmp_path):
    """A file-size limit (RLIMIT_FSIZE) stands in for a full disk: the write fails at the same place."""
    import subprocess
    import sys

    code = f"""
import resource, signal, torch
from hrlbc.skills.policy import save_checkpoint
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
try:
    save_checkpoint({str(tmp_path / "last.pt")!r}, {{"weights": torch.zeros(100_000)}})
except OSError as exc:
    print("OSError", exc.strerror)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "OSError File too large", result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []
