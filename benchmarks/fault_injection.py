"""kill -9 at random moments, resume with the same command, compare with an uninterrupted run.

    python benchmarks/fault_injection.py                      # 5 kill points per command, ~15 min
    python benchmarks/fault_injection.py --points 2 --commands collect train-skills

For each command (tiny configs, the real CLI in a child process): one uninterrupted reference run
measures the wall time T and the moment S its output directory appears (before it, a kill finds nothing
to damage: imports, checks); then, per kill point, a fresh run is killed (SIGKILL to its whole process
group: main process and workers, as a power cut or the OOM killer would) at a moment drawn uniformly
from [S, T) by a seeded generator, and the command is run again (``resume=true`` for the trainings, as
their Ctrl-C message says) until it finishes. Compared with the reference:

- ``collect``: every file of the store, byte for byte (where the store names its own path and creation
  time, those are set aside), and ``demos verify``.
- ``train-skills``: every tensor of ``last.pt`` and ``best.pt``. With ``threads=2``: the default
  ``threads=0`` follows the free cores, and 1 or 2 threads sum in another order (other low bits).
- ``train-master``: the validations finished before the kill are kept unchanged and the run reaches
  its ``total_steps``; exact when the policy's tensors equal the reference's (PPO resumes from its last
  validation with fresh episodes: the simulator's mid-episode state is not saved, so a kill after the
  first validation gives another, equally valid run, counted as resumed but not exact).
- ``reproduce``: the stages finished before the kill are kept byte for byte, every stage finishes and
  ``results.json`` gives the reference's table (exact).

"data lost" counts kill points after which something finished before the kill was changed or gone, a
resumed command failed, or a temporary file was left behind. The last line reads
``kill points: N, resumed exactly: E, data lost: L``; the exit status is 1 if L > 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TRAINING = ("train-skills", "train-master")


def command(name: str, out: Path, store: Path) -> list[str]:
    """The tiny configuration of each command (seconds of work, every stage of its code path)."""
    return {
        "collect": ["collect", "task=bowl", "episodes=6", "workers=2", "image_size=32", "chunk_frames=16"],
        "train-skills": [
            "train-skills", "task=bowl", f"data={store}", "epochs=3", "batch_size=16", "eval_every=0",
            "num_workers=0", "encoder=spatial", "augment=shift", "keypoints=0.1", "threads=2",
        ],
        "train-master": [
            "train-master", "task=pick", "skills=scripted", "obs=depth", "image_size=32", "n_envs=1", "n_steps=4",
            "n_minibatches=2", "total_steps=24", "eval_every=1", "eval_episodes=1", "progress=false",
        ],
        "reproduce": ["reproduce", "task=pick", "preset=tiny"],
    }[name] + [f"out={out}"]  # fmt: skip


def run(argv: list[str], kill_after: float | None = None, watch: Path | None = None) -> tuple[int, float, bool, float]:
    """(exit status, wall seconds, whether it was killed, seconds until ``watch`` appeared) of ``hrlbc argv``,
    in a new process group."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hrlbc.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    appeared, killed = float("nan"), False
    while proc.poll() is None:
        now = time.perf_counter() - t0
        if (
            watch is not None
            and appeared != appeared
            and any(  # a store is made as <out>.creating first
                p.name.startswith(watch.name) for p in watch.parent.iterdir()
            )
        ):
            appeared = now
        if kill_after is not None and now >= kill_after:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.02)
    proc.wait()
    err = proc.stderr.read().decode() if proc.stderr else ""
    if not killed and proc.returncode != 0:
        print(f"  {argv[0]} exited {proc.returncode}: {err.strip()[-300:]}", file=sys.stderr)
    return proc.returncode, time.perf_counter() - t0, killed, appeared


def file_digests(root: Path, under: str = "") -> dict[str, str]:
    """sha256 of every file under ``root/under`` (lock files aside), with ``root``'s own path in a file's
    text and a store's creation time set aside (the only bytes two identical runs may differ in)."""
    base = root / under if under else root
    if not base.is_dir():
        return {}
    digests = {}
    for p in sorted(base.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            data = p.read_bytes()
            if p.name in ("zarr.json", "config.yaml"):
                data = re.sub(rb'"created": "[^"]*"', b"", data.replace(str(root).encode(), b"OUT"))
            digests[str(p.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return digests


def temp_files(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]


def tensors(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def same_tensors(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def master_params(path: Path) -> dict:
    from stable_baselines3 import PPO

    return PPO.load(str(path), device="cpu").policy.state_dict()


def snapshot(name: str, out: Path) -> dict:
    """What a kill must not take away: the work finished so far."""
    if name == "train-master":
        history = out / "history.json"
        return {"history": json.loads(history.read_text()) if history.is_file() else []}
    if name == "reproduce":
        # finished stages only: a stage's running clock file is rewritten when it resumes
        return {"stages": {k: v for k, v in file_digests(out, "stages").items() if k.endswith(".json")}}
    if name == "train-skills":
        return {"had_checkpoint": (out / "last.pt").is_file()}
    return {}


def compare(name: str, out: Path, ref: Path, before: dict) -> tuple[bool, bool]:
    """(resumed exactly, nothing lost) for a finished resumed run ``out`` against the reference ``ref``."""
    if name == "collect":
        verified = subprocess.run([sys.executable, "-m", "hrlbc.cli", "demos", "verify", str(out)], capture_output=True)
        same = file_digests(out) == file_digests(ref)
        return same, verified.returncode == 0 and same
    if name == "train-skills":
        same = all(same_tensors(tensors(out / f), tensors(ref / f)) for f in ("last.pt", "best.pt"))
        return same, same
    if name == "train-master":
        history = json.loads((out / "history.json").read_text())
        total = json.loads((ref / "history.json").read_text())[-1]["master_steps"]
        kept = history[: len(before["history"])] == before["history"] and history[-1]["master_steps"] == total
        return same_tensors(master_params(out / "last.zip"), master_params(ref / "last.zip")), kept
    stages = file_digests(out, "stages")
    kept = all(stages.get(k) == v for k, v in before["stages"].items()) and len(stages) == len(
        file_digests(ref, "stages")
    )
    rows = [json.loads((d / "results.json").read_text())["rows"] for d in (out, ref)]
    return rows[0] == rows[1], kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=5, help="kill points per command")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    parser.add_argument("--commands", nargs="+", default=["collect", "train-skills", "train-master", "reproduce"])
    parser.add_argument("--work", default=None, help="a scratch directory (default: a new temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="faults_"))
    rng = np.random.default_rng(args.seed)
    store = work / "store"
    if "train-skills" in args.commands and not store.is_dir():
        assert run(command("collect", store, store))[0] == 0, "the training store could not be collected"

    total = exact_total = lost_total = 0
    for name in args.commands:
        ref = work / f"{name}_ref"
        status, wall, _, start = run(command(name, ref, store), watch=ref)
        assert status == 0, f"the uninterrupted {name} failed"
        exact = lost = 0
        for k in range(args.points):
            out = work / f"{name}_{k}"
            moment = float(rng.uniform(0 if start != start else start, wall))
            _, _, killed, _ = run(command(name, out, store), kill_after=moment)
            before = snapshot(name, out)
            resume = ["resume=true"] if name in TRAINING and out.is_dir() else []
            status = run(command(name, out, store) + resume)[0]
            same, kept = compare(name, out, ref, before) if status == 0 else (False, False)
            leftovers = temp_files(out)
            kept = kept and not leftovers
            exact += same and kept
            lost += not kept
            print(
                f"{name}: kill at {moment:5.1f} s of {wall:.1f}{'' if killed else ' (finished first)'}: "
                f"{'exact' if same else 'resumed'}{'' if kept else ', LOST ' + ', '.join(leftovers)}",
                flush=True,
            )
        print(f"{name}: {args.points} kill points, resumed exactly {exact}, data lost {lost}", flush=True)
        total, exact_total, lost_total = total + args.points, exact_total + exact, lost_total + lost
    print(f"kill points: {total}, resumed exactly: {exact_total}, data lost: {lost_total}")
    return 1 if lost_total else 0


if __name__ == "__main__":
    sys.exit(main())
