"""Depth-image augmentation with albumentations, after the sim2real study of Pashevich et al. (IROS 2019).

A sample is K stacked depth frames (K, H, W) float32 in [0, 1] (1 = far) plus their semantic masks
(K, H, W) uint8. The stack goes through albumentations as ONE image whose K channels are the frames
(H, W, K), so every frame gets the same draw of every transform (same crop, same rotation, same noise
pattern): the frames stay a consistent short video. Channel-wise noise is switched off for that reason
(``per_channel=False`` unless a preset asks otherwise). One (H, W, K) image also skips the per-frame
loop of albumentations' ``images`` target: ~10% less augmentation time for K = 3 at 64 px here.
Two transforms that need the segmentation mask have no albumentations equivalent and are written
here: :class:`RemoveTable` and :class:`EdgeNoise`. Batch transforms (:data:`BATCHED`, e.g. ``RandomShift``)
run on a whole (B, K, H, W) batch at once, after the per-sample ones: a few array operations per batch
instead of a Python call per sample, so the data keeps up with a fast network.

Presets live in ``configs/augment/<name>.yaml``: a list of ``{name: <transform>, p: .., <kwargs>}``.
"""

from __future__ import annotations

import inspect
from typing import Any

import albumentations as A
import numpy as np

from hrlbc.config import ConfigError
from hrlbc.skills.config import load_preset

FAR = 1.0
TABLE, BACKGROUND = 1, 0


class RemoveTable(A.DualTransform):
    """Set the table's pixels (mask class 1) to far, as if the sensor saw no table. Needs ``mask``."""

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        return {"masks_hwk": data["mask"]}

    def apply(self, img: np.ndarray, masks_hwk: np.ndarray, **params) -> np.ndarray:
        """``img`` (H, W, K) frames, ``masks_hwk`` (H, W, K) their masks: each frame loses its own table."""
        return np.where(masks_hwk.reshape(img.shape) == TABLE, np.float32(FAR), img)

    def apply_to_mask(self, mask: np.ndarray, **params) -> np.ndarray:
        return mask


class EdgeNoise(A.DualTransform):
    """Sensor drop-outs along object boundaries: ``n`` small far-valued rectangles on mask edges.

    Real depth sensors lose pixels where depth jumps; the mask's class boundaries are those places.
    """

    def __init__(self, n_range: tuple[int, int] = (5, 20), size_range: tuple[int, int] = (2, 4), p: float = 0.5):
        super().__init__(p=p)
        self.n_range, self.size_range = tuple(n_range), tuple(size_range)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        mask = data["mask"][..., -1] if data["mask"].ndim == 3 else data["mask"]  # edges of the newest frame
        edge = np.zeros(mask.shape, bool)
        edge[:-1] |= mask[:-1] != mask[1:]
        edge[:, :-1] |= mask[:, :-1] != mask[:, 1:]
        ys, xs = np.nonzero(edge)
        rng = self.random_generator
        n = int(rng.integers(self.n_range[0], self.n_range[1] + 1)) if len(ys) else 0
        pick = rng.integers(0, max(len(ys), 1), size=n)  # with replacement: a repeat is one box fewer
        sizes = rng.integers(self.size_range[0], self.size_range[1] + 1, size=(n, 2))
        return {"boxes": np.column_stack([ys[pick], xs[pick], sizes]).tolist()}

    def apply(self, img: np.ndarray, boxes: list, **params) -> np.ndarray:
        out = img.copy()
        for y, x, h, w in boxes:
            out[max(y - h // 2, 0) : y - h // 2 + h, max(x - w // 2, 0) : x - w // 2 + w] = FAR
        return out

    def apply_to_mask(self, mask: np.ndarray, **params) -> np.ndarray:
        return mask


CUSTOM = {"RemoveTable": RemoveTable, "EdgeNoise": EdgeNoise}


def random_shift(
    depth: np.ndarray, pad: int, rng: np.random.Generator, fill: float = FAR
) -> tuple[np.ndarray, np.ndarray]:
    """DrQ / RAD random shift: pad each sample of (B, K, H, W) by ``pad`` px of ``fill`` (far), crop back.

    One offset per sample, the same for its K frames; offsets are uniform in [0, 2 * pad] per axis.
    Returns the batch and how far each sample's content moved, (B, 2) float32 (dx, dy) px.
    """
    b, _, h, w = depth.shape
    padded = np.pad(depth, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=fill)
    oy, ox = rng.integers(0, 2 * pad + 1, size=(2, b))
    out = np.empty_like(depth)
    for i in range(b):
        out[i] = padded[i, :, oy[i] : oy[i] + h, ox[i] : ox[i] + w]
    return out, np.stack([pad - ox, pad - oy], axis=1).astype(np.float32)


BATCHED = {"RandomShift": random_shift}  # name -> fn(batch, **kwargs, rng=...) -> (batch, shift (B, 2) px)


def _transform(spec: dict[str, Any], size: int) -> A.BasicTransform:
    spec = dict(spec)
    name = spec.pop("name")
    if name == "RandomResizedCrop":
        spec["size"] = (size, size)
    cls = CUSTOM.get(name) or getattr(A, name, None)
    if cls is None:
        raise ConfigError(f"unknown augmentation transform {name!r} (albumentations or {', '.join(CUSTOM)})")
    for key, value in spec.items():
        if isinstance(value, list):
            spec[key] = tuple(value)
    if name not in CUSTOM and "per_channel" in inspect.signature(cls).parameters:
        spec.setdefault("per_channel", False)  # the channels are the stacked frames: one draw for all
    try:
        return cls(**spec)
    except TypeError as exc:
        raise ConfigError(f"bad arguments for augmentation {name}: {exc}") from None


def _batched(spec: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    spec = dict(spec)
    fn = BATCHED[spec.pop("name")]
    spec.pop("p", None)  # a batch transform applies to every sample
    params = inspect.signature(fn).parameters
    unknown = [k for k in spec if k not in params or k in ("depth", "rng")]
    if unknown:
        raise ConfigError(f"bad arguments for augmentation {fn.__name__}: {', '.join(unknown)}")
    return fn, spec


class DepthAugment:
    """Callable ``(depth (K, H, W) float32, mask (K, H, W) uint8 | None) -> (K, H, W) float32 in [0, 1]``.

    The preset runs as two albumentations pipelines: the transforms up to the last one that reads the
    mask carry the mask along (it must stay aligned with the frames), the rest see the image alone.
    Carrying the mask through every transform warped, cropped and dropped out a second image nobody
    reads: with EdgeNoise's cheaper draw, ``sim2real`` went from 0.44 to 0.38 ms per sample (docs/benchmarks.md).
    """

    def __init__(self, preset: str, size: int, seed: int | None = None) -> None:
        self.name = preset
        specs = load_preset(preset)
        self.batched = [_batched(s) for s in specs if s["name"] in BATCHED]
        specs = [s for s in specs if s["name"] not in BATCHED]
        self.rng = np.random.default_rng()  # the batch transforms' draws; set_seed below seeds them
        split = max((i + 1 for i, s in enumerate(specs) if s["name"] in CUSTOM), default=0)
        transforms = [_transform(s, size) for s in specs]
        self.with_mask = A.Compose(transforms[:split]) if split else None
        self.image_only = A.Compose(transforms[split:]) if transforms[split:] else None
        if seed is not None:
            self.set_seed(seed)

    @property
    def needs_mask(self) -> bool:
        return self.with_mask is not None

    def __call__(self, depth: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        if self.with_mask is None and self.image_only is None:
            return depth
        image = np.ascontiguousarray(depth.transpose(1, 2, 0))  # (H, W, K): the frames as channels
        if self.with_mask is not None:
            if mask is None:
                raise ConfigError(
                    f"augmentation preset {self.name!r} needs the segmentation mask: collect with mask=true"
                )
            image = self.with_mask(image=image, mask=np.ascontiguousarray(mask.transpose(1, 2, 0)))["image"]
        if self.image_only is not None:
            image = self.image_only(image=image)["image"]
        out = image.reshape(depth.shape[1:] + depth.shape[:1]).transpose(2, 0, 1)
        return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)

    @property
    def per_sample(self) -> bool:
        """Whether the preset has per-sample (albumentations) transforms."""
        return self.with_mask is not None or self.image_only is not None

    def batch(self, depth: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Augment a batch (B, K, H, W) float32 in [0, 1]: the per-sample transforms, then the batched ones."""
        return self.batch_shifted(depth, mask)[0]

    def batch_shifted(self, depth: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`batch`, and how far the batch transforms moved each sample's content: (B, 2) (dx, dy) px."""
        if self.per_sample:
            depth = np.stack([self(depth[i], None if mask is None else mask[i]) for i in range(len(depth))])
        shift = np.zeros((len(depth), 2), np.float32)
        for fn, kwargs in self.batched:
            depth, moved = fn(depth, rng=self.rng, **kwargs)
            shift += moved
        return depth, shift

    def set_seed(self, seed: int) -> None:
        """Re-seed (per DataLoader worker, so workers draw different augmentations)."""
        self.rng = np.random.default_rng([seed, 7])
        for i, compose in enumerate((self.with_mask, self.image_only)):
            if compose is not None:
                compose.set_random_seed(seed + i)
