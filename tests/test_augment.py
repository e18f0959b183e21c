"""Depth augmentation: presets keep shape/dtype/range, and all stacked frames share one transform."""

import numpy as np
import pytest

from hrlbc.config import ConfigError
from hrlbc.skills.augment import DepthAugment
from hrlbc.skills.config import preset_names


def _sample(seed=0, k=3, n=32):
    rng = np.random.default_rng(seed)
    depth = np.full((n, n), 0.6, np.float32) + rng.uniform(-0.05, 0.05, (n, n)).astype(np.float32)
    mask = np.ones((n, n), np.uint8)  # table
    mask[: n // 4] = 0  # background
    mask[10:16, 10:16] = 3  # an object, nearer
    depth[mask == 0] = 1.0
    depth[mask == 3] = 0.4
    return np.stack([depth] * k), np.stack([mask] * k)


def _hwk(frames: np.ndarray) -> np.ndarray:
    """(K, H, W) -> (H, W, K): the stack as one image whose channels are the frames."""
    return np.ascontiguousarray(np.moveaxis(frames, 0, -1))


def _chw(image: np.ndarray) -> np.ndarray:
    return np.moveaxis(image, -1, 0)


def test_presets_exist():
    assert {"none", "light", "sim2real"} <= set(preset_names())


@pytest.mark.parametrize("preset", ["none", "light", "sim2real"])
def test_shape_dtype_range_preserved(preset):
    depth, mask = _sample()
    aug = DepthAugment(preset, 32, seed=0)
    for _ in range(30):
        out = aug(depth, mask)
        assert out.shape == depth.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("preset", ["light", "sim2real"])
def test_stacked_frames_share_one_transform(preset):
    depth, mask = _sample()
    aug = DepthAugment(preset, 32, seed=1)
    changed = 0
    for _ in range(30):
        out = aug(depth, mask)
        # identical input frames must come out identical: same crop, rotation, noise draw, cutout
        assert np.array_equal(out[0], out[1]) and np.array_equal(out[1], out[2])
        changed += not np.allclose(out, depth)
    assert changed >= 10, "the preset should actually change most samples"


def test_remove_table_uses_the_mask():
    from hrlbc.skills.augment import RemoveTable

    depth, mask = _sample()
    mask[2, 20:24, 20:24] = 3  # an object only the newest frame's mask knows: each frame uses its own mask
    out = _chw(RemoveTable(p=1.0)(image=_hwk(depth), mask=_hwk(mask))["image"])
    for k in range(3):
        assert np.all(out[k][mask[k] == 1] == 1.0), "table pixels become far"
        assert np.array_equal(out[k][mask[k] == 3], depth[k][mask[k] == 3]), "objects are kept"
    assert np.all(out[:2, 20:24, 20:24] == 1.0) and np.all(out[2, 20:24, 20:24] < 1.0)


def test_edge_noise_hits_mask_edges_only():
    from hrlbc.skills.augment import EdgeNoise

    depth, mask = _sample()
    depth[:, mask[0] == 0] = 0.9  # make the background distinguishable from the drop-out value
    out = _chw(EdgeNoise(n_range=(20, 20), size_range=(2, 2), p=1.0)(image=_hwk(depth), mask=_hwk(mask))["image"])
    changed = np.argwhere(out[0] != depth[0])
    assert len(changed) > 0 and np.all(out[0][out[0] != depth[0]] == 1.0)
    # every changed pixel lies within 2 px of a class boundary
    edges = (np.abs(np.diff(mask[0].astype(int), axis=0, prepend=mask[0, :1])) > 0) | (
        np.abs(np.diff(mask[0].astype(int), axis=1, prepend=mask[0, :, :1])) > 0
    )
    ys, xs = np.nonzero(edges)
    for y, x in changed:
        assert np.min(np.abs(ys - y) + np.abs(xs - x)) <= 3


def test_edge_noise_box_at_the_border_is_clipped_not_lost_or_wrapped():
    from hrlbc.skills.augment import FAR, EdgeNoise

    image = np.zeros((8, 8, 3), np.float32)
    out = EdgeNoise(p=1.0).apply(image, boxes=[(0, 0, 4, 4), (7, 7, 4, 4)])
    # the top-left box keeps its inside half (a negative slice start would have dropped it)
    expected = np.zeros((8, 8), bool)
    expected[:2, :2] = expected[5:, 5:] = True
    assert np.array_equal(out[..., 0] == FAR, expected) and np.all(out[..., 1:] == out[..., :1])


def test_mask_preset_without_mask_is_a_clear_error():
    depth, _ = _sample()
    with pytest.raises(ConfigError, match="needs the segmentation mask"):
        DepthAugment("sim2real", 32)(depth, None)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown augmentation preset 'heavy'; valid: .*sim2real"):
        DepthAugment("heavy", 32)


def test_mask_follows_geometric_transforms_before_a_mask_transform(tmp_path):
    """A flip before RemoveTable must flip the mask too (the mask rides up to the last mask transform)."""
    preset = tmp_path / "flip_then_remove.yaml"
    preset.write_text(
        "transforms:\n  - {name: HorizontalFlip, p: 1.0}\n  - {name: RemoveTable, p: 1.0}\n"
        "  - {name: GaussNoise, std_range: [0.0, 0.0], p: 1.0}\n"
    )
    depth = np.full((3, 8, 8), 0.5, np.float32)
    mask = np.full((3, 8, 8), 3, np.uint8)
    mask[:, :, :4] = 1  # the table fills the left half
    out = DepthAugment(str(preset), 8, seed=0)(depth, mask)
    assert np.all(out[:, :, 4:] == 1.0), "after the flip the table is on the right: removed there"
    assert np.allclose(out[:, :, :4], 0.5), "the object, flipped to the left, is kept"
