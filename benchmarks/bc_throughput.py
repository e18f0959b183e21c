"""BC training throughput: the full loop (data + augmentation + model) vs the model alone, side by side.

    python benchmarks/bc_throughput.py [--batches 40] [--rounds 5] [--augment shift]
                                       [--encoders spatial resnet18-narrow resnet18-full] [--precisions fp32 bf16]
                                       [--threads 1] [--workers 1]

For each encoder (train-skills' ``encoder``, ResNet-18 with its ``width``) prints: samples/s of pure
forward/backward on random tensors, samples/s of the real training loop (zarr store -> BCBatches ->
DataLoader -> model), and their ratio: medians of ``--rounds`` interleaved rounds of ``--batches``
batches each, with the range of the per-round ratios. Target (issues 4, 49): ratio >= 0.8, i.e. the
data pipeline does not starve the model. Then each encoder's speed relative to the first. Uses CUDA
when present. With several ``--precisions`` (train-skills' ``precision``), one row per encoder and
precision.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

from demos import open_dataset
from demos.collect import CollectConfig, collect
from hrlbc.skills.augment import DepthAugment
from hrlbc.skills.config import PRECISIONS
from hrlbc.skills.data import BCBatches, BlockShuffleSampler, FrameSource, batch_loader, build_targets
from hrlbc.skills.model import SkillNet
from hrlbc.skills.train import adam, autocast_bf16, bc_loss, loader_workers, thread_fit

ENCODERS = {  # label -> SkillNet keyword arguments
    "spatial": {"encoder": "spatial", "pool": "auto"},
    "resnet18-narrow": {"encoder": "resnet18", "width": "narrow"},
    "resnet18-full": {"encoder": "resnet18", "width": "full"},
}


def make_model(encoder: str, device) -> SkillNet:
    """The skills network (4 skills, 3 velocities, 4 offsets) with ``encoder``'s trunk."""
    return SkillNet(4, 3, 4, **ENCODERS[encoder]).to(device)


def step_fn(model, optimizer, device, precision: str, threads=None):
    """One training step as train-skills takes it (``threads``: its ThreadFit, checked per batch)."""
    amp = autocast_bf16(precision, device)

    def step(batch):
        if threads is not None:
            threads.check()
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss, _ = bc_loss(model, batch, 0.1, flat=False)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def fake_batch(batch: int, size: int) -> dict[str, torch.Tensor]:
    """A BC batch of random tensors: K=3 depth frames (B, 3, size, size), 4 skills, 4 action offsets."""
    return {
        "depth": torch.rand(batch, 3, size, size),
        "skill": torch.randint(0, 4, (batch,)),
        "velocity": torch.randn(batch, 4, 3),
        "gripper": torch.randint(0, 2, (batch, 4)),
    }


def model_only(encoder: str, batch: int, size: int, device, precision: str, threads=None) -> Callable[[int], float]:
    """A runner: ``run(n)`` -> samples/s of n forward/backward steps on random tensors."""
    model = make_model(encoder, device)
    step = step_fn(model, adam(model.parameters(), 1e-3, device), device, precision, threads)
    fake = fake_batch(batch, size)
    return _timed(step, lambda: fake, batch, device)


def full_loop(
    ds, encoder: str, batch: int, augment: str, workers: int, device, precision: str, threads=None
) -> Callable[[int], float]:
    """A runner: ``run(n)`` -> samples/s of n steps of the real loop (store -> augmentation -> model)."""
    size = int(ds.arrays["depth"].shape[-1])
    targets = build_targets(ds, 3, (1, 10, 20, 30), 5)
    aug = DepthAugment(augment, size, seed=0)
    keys = ("depth", "mask") if aug.needs_mask else ("depth",)
    data = BCBatches(FrameSource(ds, keys, 4 * 2**30), targets, 3, 1, 1, aug, 0)
    sampler = BlockShuffleSampler(np.arange(ds.num_frames), batch, 0)
    loader = batch_loader(data, sampler, workers, device)
    model = make_model(encoder, device)
    step = step_fn(model, adam(model.parameters(), 1e-3, device), device, precision, threads)
    batches = itertools.chain.from_iterable(itertools.repeat(loader))  # epochs back to back
    return _timed(step, lambda: next(batches), batch, device)


def _timed(step, next_batch, batch: int, device) -> Callable[[int], float]:
    for _ in range(3):  # warm-up: allocator, thread pools, loader workers
        step(next_batch())

    def run(n: int) -> float:
        sync(device)
        t0 = time.perf_counter()
        for _ in range(n):
            step(next_batch())
        sync(device)
        return n * batch / (time.perf_counter() - t0)

    return run


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved model-only / full-loop rounds")
    parser.add_argument("--augment", default="shift")
    parser.add_argument("--workers", type=int, default=-1, help="loader workers (-1: train-skills' auto choice)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: train-skills' adaptive choice)")
    parser.add_argument("--encoders", nargs="*", default=list(ENCODERS), choices=list(ENCODERS))
    parser.add_argument("--precisions", nargs="*", default=["auto"], choices=PRECISIONS)
    parser.add_argument("--data", default=None, help="an existing Bowl store (default: collect 60 episodes)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args.workers = loader_workers(args.workers, device)
    threads = thread_fit(args.threads, device)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.data or os.path.join(tmp, "bowl")
        if args.data is None:
            collect(CollectConfig(task="bowl", episodes=60, workers=2, out=path), progress=False)
        ds = open_dataset(path)
        print(
            f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch_size}, "
            f"64x64 depth, K=3, augment={args.augment}, loader workers {args.workers}, "
            f"medians of {args.rounds} rounds of {args.batches} batches"
        )
        head = ("encoder", "precision", "model-only sa/s", "full-loop sa/s", "ratio")
        print(f"{head[0]:<16} {head[1]:<9} {head[2]:>16} {head[3]:>15} {head[4]:>6}  [ratio range]")
        speed_of = {}
        for encoder in args.encoders:
            speeds = []
            for precision in args.precisions:
                pure = model_only(encoder, args.batch_size, 64, device, precision, threads)
                loop = full_loop(ds, encoder, args.batch_size, args.augment, args.workers, device, precision, threads)
                # Interleaved rounds: the CPU's clock and other load drift over a run, so each ratio compares
                # two measurements taken seconds apart, and the median discards an outlier round.
                rounds = [(pure(args.batches), loop(args.batches)) for _ in range(args.rounds)]
                ratios = [lp / p for p, lp in rounds]
                p, lp = np.median(rounds, axis=0)
                r = float(np.median(ratios))
                verdict = "OK" if r >= 0.8 else "LOW"
                span = f"[{min(ratios):.2f}, {max(ratios):.2f}]"
                print(f"{encoder:<16} {precision:<9} {p:>16.0f} {lp:>15.0f} {r:>6.2f} {verdict}  {span}")
                speeds.append((p, lp))
                speed_of[encoder, precision] = (p, lp)
            (p0, lp0), first = speeds[0], args.precisions[0]
            for precision, (p, lp) in zip(args.precisions[1:], speeds[1:]):
                print(f"{encoder:<16} {precision} / {first}: model-only {p / p0:.2f}x, full loop {lp / lp0:.2f}x")
        base = args.encoders[-1]  # the slowest by default (resnet18-full): every other one's speed-up over it
        for encoder, precision in speed_of:
            if encoder != base:
                (p, lp), (p0, lp0) = speed_of[encoder, precision], speed_of[base, precision]
                print(f"{encoder} / {base} ({precision}): model-only {p / p0:.2f}x, full loop {lp / lp0:.2f}x")


if __name__ == "__main__":
    main()
