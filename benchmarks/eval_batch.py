"""``hrlbc evaluate`` wall-clock: one episode per worker at a time (``batch=1``) vs ``batch=B`` side by side.

    python benchmarks/eval_batch.py --checkpoint runs/repro_bowl_quick/skills/best.pt [--agent skills]
        [--task bowl] [--episodes 16] [--batch 8] [--workers 2]

Evaluates the same held-out seeds both ways and prints each wall-clock, their ratio, and how many
episodes ended differently (a batched forward can differ from a forward of one in the last float bits).
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()
    times, reports = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in (1, args.batch):
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
            reports.append(evaluate(cfg, progress=False))
            times.append(time.perf_counter() - t0)
    steps = sum(e["length"] for e in reports[0]["per_episode"])
    differ = sum(a != b for a, b in zip(reports[0]["per_episode"], reports[1]["per_episode"]))
    print(
        f"{args.task}/{args.agent}, {args.episodes} episodes ({steps} low-level steps), {args.workers} workers: "
        f"batch=1 {times[0]:.1f} s ({times[0] / steps * args.workers * 1000:.1f} ms/step per worker), "
        f"batch={args.batch} {times[1]:.1f} s ({times[0] / times[1]:.2f}x); "
        f"success {reports[0]['success_rate']:.0%} vs {reports[1]['success_rate']:.0%}, "
        f"{differ} of {args.episodes} episodes ended differently"
    )


if __name__ == "__main__":
    main()
