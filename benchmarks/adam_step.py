"""Adam for the skill trunk: torch's default CPU step (one tensor at a time) vs the fused kernel, side by side.

    python benchmarks/adam_step.py [--widths narrow full] [--batch-size 64] [--steps 20] [--rounds 5]

For each trunk width prints, in ms (medians of ``--rounds`` interleaved rounds of ``--steps`` steps): the
optimizer step alone, and one whole BC training step (forward, backward, optimizer, weight average) on a
batch of random 64x64 depth stacks, for each implementation, then fused / default. ``train-skills`` uses
the fused one (``hrlbc.skills.train.adam``). Uses CUDA when present.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from bc_throughput import fake_batch, step_fn, sync  # this folder's: run as a script

from hrlbc.skills.model import SkillNet
from hrlbc.skills.train import adam, ema_model

KINDS = ("default", "fused")


def runners(width: str, batch: int, device: torch.device, kind: str):
    """(optimizer step, whole training step) runners: ``run(n)`` -> ms per step over n steps."""
    model = SkillNet(4, 3, 4, width=width).to(device)
    if kind == "fused":
        optimizer = adam(model.parameters(), 1e-3, device)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ema = ema_model(model, 0.999)
    step = step_fn(model, optimizer, device, "fp32")
    fake = {k: v.to(device) for k, v in fake_batch(batch, 64).items()}

    def train_step():
        step(fake)
        ema.update_parameters(model)

    for _ in range(3):  # warm-up, and leaves gradients for the optimizer-only runner
        train_step()
    return timed(optimizer.step, device), timed(train_step, device)


def timed(fn, device: torch.device):
    def run(n: int) -> float:
        sync(device)
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        sync(device)
        return (time.perf_counter() - t0) / n * 1e3

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", nargs="*", default=["narrow", "full"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch_size}, 64x64 depth, K=3; "
        f"ms per step, medians of {args.rounds} interleaved rounds of {args.steps} steps"
    )
    print(f"{'width':<8} {'Adam':<8} {'optimizer step':>14} {'training step':>14}")
    for width in args.widths:
        run = {kind: runners(width, args.batch_size, device, kind) for kind in KINDS}
        # Interleaved: the CPU's clock and other load drift over a run; each round measures every kind.
        rounds = [[[r(args.steps) for r in run[kind]] for kind in KINDS] for _ in range(args.rounds)]
        ms = np.median(np.array(rounds), axis=0)  # (kind, [optimizer, training])
        for kind, (opt, step) in zip(KINDS, ms):
            print(f"{width:<8} {kind:<8} {opt:>14.1f} {step:>14.1f}")
        (opt0, step0), (opt1, step1) = ms
        print(
            f"{width:<8} fused / default: optimizer step {opt0 / opt1:.2f}x faster, training step {step0 / step1:.2f}x"
        )


if __name__ == "__main__":
    main()
