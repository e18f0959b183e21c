"""Episodes/s of collect and evaluate with the local process pool and with Ray, on this machine, in one run.

    python benchmarks/ray_overhead.py [--episodes 40] [--workers 2] [--rounds 2]

Rounds alternate local and Ray (the CPU is shared and noisy); each Ray round starts its own local Ray
instance, as ``backend=ray`` with an empty ``address`` does, and that start-up is timed apart. Per command
it prints the episodes/s of both backends (medians over rounds), their ratio (goal >= 0.9) and the Ray
start-up seconds. Scripted experts: collect's Bowl skill episodes at 64 px with masks, evaluate's expert
on held-out seeds.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from demos.collect import CollectConfig, collect
from hrlbc.evaluate.run import EvaluateConfig, evaluate


def timed(command: str, backend: str, episodes: int, workers: int, out: Path) -> tuple[float, float]:
    """(episodes/s of the work, seconds Ray took to start before it) for one run."""
    import ray

    startup = 0.0
    if backend == "ray":
        t0 = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, configure_logging=False, logging_level="ERROR")
        startup = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        if command == "collect":
            cfg = CollectConfig(task="bowl", episodes=episodes, workers=workers, backend=backend, out=str(out))
            collect(cfg, progress=False)
        else:
            cfg = EvaluateConfig(task="bowl", agent="expert", episodes=episodes, workers=workers, backend=backend)
            cfg.out = str(out)
            evaluate(cfg, progress=False)
        return episodes / (time.perf_counter() - t0), startup
    finally:
        shutil.rmtree(out, ignore_errors=True)
        if backend == "ray":
            ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ray_overhead_"))
    for command in ("collect", "evaluate"):
        rates: dict[str, list[float]] = {"local": [], "ray": []}
        startups = []
        for r in range(args.rounds):
            for backend in ("local", "ray") if r % 2 == 0 else ("ray", "local"):
                rate, startup = timed(command, backend, args.episodes, args.workers, work / f"{command}_{backend}")
                rates[backend].append(rate)
                if backend == "ray":
                    startups.append(startup)
        local, ray_ = np.median(rates["local"]), np.median(rates["ray"])
        print(
            f"{command}: local {local:.2f} episodes/s, ray {ray_:.2f} episodes/s, ray/local {ray_ / local:.2f} "
            f"(rounds {[f'{x:.2f}' for x in rates['local']]} vs {[f'{x:.2f}' for x in rates['ray']]}); "
            f"Ray start-up {np.median(startups):.1f} s",
            flush=True,
        )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
