"""``hrlbc evaluate`` wall-clock: one episode per worker at a time (``batch=1``) vs ``batch=B`` side by side.

    python benchmarks/eval_batch.py --checkpoint runs/repro_bowl_quick/skills/best.pt [--agent skills]
        [--task bowl] [--episodes 16] [--batch 8] [--workers 2] [--rounds 2]

Evaluates the same held-out seeds both ways, alternating, ``--rounds`` times (the host's pace moves between
runs), and prints each wall-clock, the median ratio, and how many episodes ended differently (a batched
forward can differ from a forward of one in the last float bits).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from hrlbc.evaluate.run import EvaluateConfig, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--agent", default="skills")
    parser.add_argument("--task", default="bowl")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    times: dict[int, list[float]] = {1: [], args.batch: []}
    reports = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for batch in times:
                cfg = EvaluateConfig(
                    task=args.task,
                    agent=args.agent,
                    checkpoint=args.checkpoint,
                    episodes=args.episodes,
                    workers=args.workers,
                    batch=batch,
                    out=f"{tmp}/b{batch}",
                )
                t0 = time.perf_counter()
                reports[batch] = evaluate(cfg, progress=False)
                times[batch].append(time.perf_counter() - t0)
    single, batched = reports[1], reports[args.batch]
    steps = sum(e["length"] for e in single["per_episode"])
    differ = sum(a != b for a, b in zip(single["per_episode"], batched["per_episode"]))
    ratios = [a / b for a, b in zip(times[1], times[args.batch])]
    print(
        f"{args.task}/{args.agent}, {args.episodes} episodes ({steps} low-level steps), {args.workers} workers, "
        f"{args.rounds} rounds: batch=1 {', '.join(f'{t:.1f}' for t in times[1])} s "
        f"({min(times[1]) / steps * args.workers * 1000:.1f} ms/step per worker at best), "
        f"batch={args.batch} {', '.join(f'{t:.1f}' for t in times[args.batch])} s; "
        f"ratio {', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f}x); "
        f"success {single['success_rate']:.0%} vs {batched['success_rate']:.0%}, "
        f"{differ} of {args.episodes} episodes ended differently"
    )


if __name__ == "__main__":
    main()
