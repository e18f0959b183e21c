"""``hrlbc envs`` and ``hrlbc render``: what the tasks are and what their cameras see."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import envs
from envs.camera import MASK_FIRST_OBJECT as MASK_FIRST
from hrlbc.config import ConfigError
from hrlbc.figures import pyplot, save_png


@dataclass
class RenderConfig:
    task: str = field(default="bowl", metadata={"help": f"task name ({', '.join(envs.TASKS)}) or gymnasium id"})
    seed: int = field(default=0, metadata={"help": "episode seed"})
    out: str = field(default="scene.png", metadata={"help": "output PNG path"})
    image_size: int = field(default=256, metadata={"help": "rendered resolution (pixels)"})
    camera: str = field(default="fixed", metadata={"help": "fixed or random"})
    n_views: int = field(default=1, metadata={"help": "number of camera views (one row each)"})


def list_envs() -> str:
    """A table of the tasks: ids, skills, expert order, timescale, episode limit, speed limit."""
    lines = []
    for task in envs.TASKS.values():
        s = task.spec
        lines.append(f"{s.name:<7} {s.env_id:<16} {s.description}")
        lines.append(
            f"        timescale {s.timescale} steps, episode limit {s.max_episode_steps} steps (10 Hz), "
            f"tool speed <= {s.max_linear_speed} m/s"
            + (f", wrist <= {s.max_angular_speed} rad/s" if s.max_angular_speed else "")
        )
        for i, name in enumerate(s.skills):
            lines.append(f"        skill {i}: {name}")
        lines.append("        expert order: " + " -> ".join(s.skills[i] for i in s.expert_order))
    return "\n".join(lines)


MASK_COLORS = np.array(
    [[0, 0, 0], [190, 160, 120], [90, 90, 100], [230, 60, 60], [60, 120, 230], [60, 200, 90], [230, 200, 50]],
    dtype=np.uint8,
)


def render_scene(cfg: RenderConfig) -> Path:
    """Save RGB | depth | segmentation of the task camera(s) at reset as one PNG; return its path."""
    plt = pyplot()

    env = envs.make_env(
        cfg.task, image_size=cfg.image_size, camera=cfg.camera, n_views=cfg.n_views, rgb=True, mask=True
    )
    obs, _ = env.reset(seed=cfg.seed)
    env.close()
    views = [obs[k] if cfg.n_views > 1 else obs[k][None] for k in ("rgb", "depth", "mask")]
    fig, axes = plt.subplots(cfg.n_views, 3, figsize=(9, 3.1 * cfg.n_views), squeeze=False)
    for v in range(cfg.n_views):
        rgb, depth, mask = (x[v] for x in views)
        axes[v, 0].imshow(rgb)
        im = axes[v, 1].imshow(depth, cmap="viridis", vmin=0, vmax=1)
        axes[v, 2].imshow(MASK_COLORS[np.minimum(mask, len(MASK_COLORS) - 1)])
        for ax, title in zip(axes[v], ("RGB", "depth (0 = near, 1 = far)", "segmentation")):
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.colorbar(im, ax=axes[:, 1].tolist(), fraction=0.046)
    names = ", ".join(f"{MASK_FIRST + k}={n}" for k, n in enumerate(env.object_names))
    if (obs["mask"] == env.mask_contents).any():  # a task's loose contents (Breakfast's spheres)
        names += f", {env.mask_contents}=contents"
    fig.suptitle(
        f"{env.spec_task.env_id}  seed {cfg.seed}  ({cfg.camera} camera; mask 1=table 2=robot {names})", fontsize=10
    )
    out = Path(cfg.out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"out must be a .png path, got {cfg.out!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_png(fig, out, tight_bbox=True)
