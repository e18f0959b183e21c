"""The skill recipe study (issue 49): held-out success in the expert order vs training minutes, per recipe.

    python benchmarks/recipe_study.py --data runs/study/bowl300 --out docs/recipe_study \
        --recipe spatial:shift:8 spatial:light:8 spatial:none:8 resnet18:light:3 [--eval-episodes 40]

A recipe is ``encoder:augment:epochs[:aux_state[:keypoints]]`` (train-skills' keys; ``resnet18`` is the narrow
ResNet-18). Each recipe trains ``hrlbc train-skills`` on the store ``--data`` with a checkpoint
every epoch (no closed-loop validation: its clock is the training's alone), then ``hrlbc evaluate
agent=skills`` runs the checkpoints of ``--at`` epochs (default: every other one and the last) on the
held-out seeds (1000000+). x = the training's wall-clock at that epoch, y = success with its Wilson
interval. An entry added to ``results.json`` by hand (another run's figure, with its ``source``) is plotted
too. Results go to ``<out>/results.json`` as they come (a re-run skips finished recipes and
evaluations) and ``<out>/recipe_study.png``. Several stores (``--data a b``) give one line per store and
recipe. Runs one thing at a time: the clock is only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from demos import open_dataset
from demos.io import atomic_write_text
from hrlbc.evaluate.run import EvaluateConfig, evaluate
from hrlbc.figures import pyplot, save_png
from hrlbc.skills.config import TrainSkillsConfig
from hrlbc.skills.policy import load_checkpoint
from hrlbc.skills.train import train_skills


def parse_recipe(text: str) -> tuple[str, str, int, float, float]:
    encoder, augment, epochs, *extra = text.split(":")
    aux, keypoints = (float(x) for x in (*extra, 0.0, 0.0)[:2])
    return encoder, augment, int(epochs), aux, keypoints


def eval_epochs(epochs: int, at: list[int]) -> list[int]:
    return sorted({e for e in at if e <= epochs} | {epochs}) if at else sorted(set(range(2, epochs + 1, 2)) | {epochs})


def run_recipe(data: Path, recipe: str, out: Path, at: list[int], episodes: int, results: dict) -> None:
    encoder, augment, epochs, aux, keypoints = parse_recipe(recipe)
    name = f"{data.name}:{recipe}"
    run_dir = out / "runs" / name.replace(":", "_")
    entry = results.setdefault(name, {"data": str(data), "encoder": encoder, "augment": augment, "epochs": epochs})
    entry.update({"aux_state": aux, "keypoints": keypoints})
    entry.setdefault("points", {})
    entry["episodes"] = open_dataset(str(data)).num_episodes
    last = run_dir / "last.pt"
    done = last.is_file() and load_checkpoint(last)["epoch"] + 1 >= epochs
    if not done:
        cfg = TrainSkillsConfig(
            task="bowl",
            data=str(data),
            out=str(run_dir),
            encoder=encoder,
            augment=augment,
            epochs=epochs,
            eval_every=0,
            checkpoint_every=1,
            resume=last.is_file(),
            aux_state=aux,
            keypoints=keypoints,
        )
        train_skills(cfg, progress=True)
    history = load_checkpoint(last)["history"]
    entry["wall_s"] = dict(zip(map(str, history["epoch"]), history["wall_s"]))
    entry["samples"] = dict(zip(map(str, history["epoch"]), history["samples"]))
    for epoch in eval_epochs(epochs, at):
        if str(epoch) in entry["points"]:
            continue
        report = evaluate(
            EvaluateConfig(
                task="bowl",
                agent="skills",
                checkpoint=str(run_dir / f"epoch_{epoch}.pt"),
                episodes=episodes,
                workers=2,
                batch=10,
                out=str(run_dir / f"eval_{epoch}"),
            )
        )
        entry["points"][str(epoch)] = {
            "train_min": history["wall_s"][epoch - 1] / 60,
            "success": report["success_rate"],
            "wilson95": report["wilson95"],
        }
        atomic_write_text(out / "results.json", json.dumps(results, indent=1))
        print(f"{name} epoch {epoch}: {report['success_rate']:.0%} after {history['wall_s'][epoch - 1] / 60:.1f} min")


def plot(results: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for entry in results.values():
        pts = sorted(entry["points"].values(), key=lambda p: p["train_min"])
        if not pts:
            continue
        xs, ys = [p["train_min"] for p in pts], [p["success"] for p in pts]
        lo = [p["success"] - p["wilson95"][0] for p in pts]
        hi = [p["wilson95"][1] - p["success"] for p in pts]
        aux = f", aux {entry['aux_state']}" if entry.get("aux_state") else ""
        aux += f", keypoints {entry['keypoints']}" if entry.get("keypoints") else ""
        label = (
            f"{entry['encoder']}, {entry['augment']}{aux}, {entry['episodes']} demos, {entry.get('epochs', '?')} epochs"
        )
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=label)
    ax.axhline(0.95, color="grey", ls=":", lw=1)
    ax.text(0.0, 0.955, " target 95%", fontsize=7, color="grey", transform=ax.get_yaxis_transform())
    ax.set_xlabel("training wall-clock (min, 2-core CPU)")
    ax.set_ylabel("skills in expert order: held-out success")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, 0.93))
    save_png(fig, path, "UR5-Bowl skills: success vs training time (Wilson 95%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", required=True, help="Bowl skill stores (hrlbc collect mode=skills)")
    parser.add_argument("--recipe", nargs="+", required=True, help="encoder:augment:epochs")
    parser.add_argument("--out", default="docs/recipe_study")
    parser.add_argument("--at", nargs="*", type=int, default=[], help="epochs to evaluate (default: even + last)")
    parser.add_argument("--eval-episodes", type=int, default=40)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for data in args.data:
        for recipe in args.recipe:
            run_recipe(Path(data), recipe, out, args.at, args.eval_episodes, results)
            atomic_write_text(path, json.dumps(results, indent=1))
            plot(results, out / "recipe_study.png")


if __name__ == "__main__":
    main()
