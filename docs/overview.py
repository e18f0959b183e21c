"""Redraw the README's two pictures: ``python docs/overview.py`` -> docs/pipeline.png, docs/results_overview.png.

The results chart reads ``docs/overview.json`` (the figures of each task's results page); nothing is measured here.
"""

from __future__ import annotations

import json
from pathlib import Path

from hrlbc.figures import pyplot, save_png

DOCS = Path(__file__).resolve().parent
STAGES = [
    ("envs/ + demos/", "scripted experts\nsolve the task\n(hrlbc collect)", "#d9e7f5"),
    ("hrlbc/skills/", "skills behavior-cloned\nfrom depth frames\n(hrlbc train-skills)", "#e3f1dc"),
    ("hrlbc/master/", "PPO master picks\na skill every n steps\n(hrlbc train-master)", "#fbe5d6"),
    ("hrlbc/evaluate/", "success on held-out\nseeds, every agent\n(hrlbc evaluate)", "#efe1f3"),
]


def pipeline(path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 2.2))
    ax.set_xlim(0, 4 * 2.5), ax.set_ylim(0, 2.2), ax.axis("off")
    for i, (folder, text, colour) in enumerate(STAGES):
        x = i * 2.5 + 0.1
        ax.add_patch(plt.Rectangle((x, 0.2), 2.0, 1.6, facecolor=colour, edgecolor="#555555"))
        ax.text(x + 1.0, 1.55, folder, ha="center", va="center", fontsize=10, family="monospace")
        ax.text(x + 1.0, 0.85, text, ha="center", va="center", fontsize=9)
        if i < len(STAGES) - 1:
            ax.annotate("", xy=(x + 2.4, 1.0), xytext=(x + 2.05, 1.0), arrowprops={"arrowstyle": "->", "lw": 1.5})
    save_png(fig, path)


def results(path: Path) -> None:
    data = json.loads((DOCS / "overview.json").read_text())
    agents, tasks = data["agents"], data["tasks"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.6))
    width = 0.8 / len(agents)
    for j, agent in enumerate(agents):
        xs = [i + (j - (len(agents) - 1) / 2) * width for i in range(len(tasks))]
        ax.bar(xs, [tasks[t][j] for t in tasks], width, label=agent)
    ax.set_xticks(range(len(tasks)), list(tasks))
    ax.set_ylabel("success on 100 held-out seeds (%)")
    ax.set_ylim(0, 105)
    ax.legend(ncols=3, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    save_png(fig, path, title="preset=paper, one training seed per task")


if __name__ == "__main__":
    pipeline(DOCS / "pipeline.png")
    results(DOCS / "results_overview.png")
