"""Bowl skill-data collection throughput with one 64x64 depth camera (+ mask), 1 vs 2 workers.

    python benchmarks/collect_throughput.py [--episodes 250]

Runs the real ``hrlbc collect`` path (workers, zarr writes) into a temporary store and prints
frames/s for 1 and 2 workers with the speed-up, and the wall-clock of the 2-worker run.
Target (issue 3): 250 Bowl skill-collection episodes in <= 5 min on 2 cores; near-linear scaling.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from demos import open_dataset  # noqa: E402
from demos.collect import CollectConfig, collect  # noqa: E402


def run(episodes: int, workers: int, root: str) -> tuple[float, int, float]:
    out = os.path.join(root, f"w{workers}")
    t0 = time.perf_counter()
    collect(CollectConfig(task="bowl", episodes=episodes, workers=workers, out=out, mode="skills"), progress=False)
    elapsed = time.perf_counter() - t0
    ds = open_dataset(out)
    return ds.num_frames / elapsed, ds.num_frames, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=250)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        fps1, n1, t1 = run(args.episodes, 1, root)
        fps2, n2, t2 = run(args.episodes, 2, root)
    print(f"{'workers':>7} {'episodes':>8} {'frames':>7} {'seconds':>8} {'frames/s':>9}")
    print(f"{1:>7} {args.episodes:>8} {n1:>7} {t1:>8.1f} {fps1:>9.0f}")
    print(f"{2:>7} {args.episodes:>8} {n2:>7} {t2:>8.1f} {fps2:>9.0f}")
    print(f"speed-up 2 vs 1 workers: {fps2 / fps1:.2f}x (ideal 2.00x)")
    print(
        f"{args.episodes} Bowl skill episodes with 2 workers: {t2:.0f} s (target <= 300 s): "
        f"{'OK' if t2 <= 300 * args.episodes / 250 else 'SLOW'}"
    )


if __name__ == "__main__":
    main()
