"""``hrlbc augment-preview``: original vs augmented frames, to see what a preset does."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from demos import open_dataset
from hrlbc.config import ConfigError
from hrlbc.figures import pyplot, save_png
from hrlbc.skills.augment import DepthAugment
from hrlbc.skills.config import PreviewConfig


def augment_preview(cfg: PreviewConfig) -> Path:
    """One row per random frame: the original, then ``samples`` augmentations of it (newest frame of K=3)."""
    plt = pyplot()

    ds = open_dataset(cfg.data, verify=True)
    size = int(ds.arrays["depth"].shape[-1])
    aug = DepthAugment(cfg.augment, size, seed=cfg.seed)
    if aug.needs_mask and "mask" not in ds.arrays:
        raise ConfigError(f"preset {cfg.augment} needs masks; {cfg.data} has none")
    rng = np.random.default_rng(cfg.seed)
    fig, axes = plt.subplots(
        cfg.rows, cfg.samples + 1, figsize=(1.6 * (cfg.samples + 1), 1.7 * cfg.rows), squeeze=False
    )
    for r, t in enumerate(rng.integers(2, ds.num_frames, size=cfg.rows)):
        frames = ds.frame(int(t))  # the newest frame; stack it with its two predecessors
        idx = [int(t) - 2, int(t) - 1, int(t)]
        depth = np.stack([ds.frame(i, keys=("depth",))["depth"][0] for i in idx])
        mask = np.stack([np.asarray(ds.arrays["mask"][i][0]) for i in idx]) if "mask" in ds.arrays else None
        masks = None if mask is None else mask[None]
        images = [frames["depth"][0]] + [aug.batch(depth[None], masks)[0, -1] for _ in range(cfg.samples)]
        for c, img in enumerate(images):
            axes[r, c].imshow(img, cmap="gray", vmin=0, vmax=1)
            axes[r, c].axis("off")
            if r == 0:
                axes[r, c].set_title("original" if c == 0 else f"{cfg.augment} #{c}", fontsize=8)
    return save_png(fig, Path(cfg.out), dpi=90)
