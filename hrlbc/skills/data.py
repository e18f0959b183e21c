"""Behavior-cloning samples from a demonstration store, fetched a batch at a time.

A sample for frame ``t``: the K stacked depth frames ``t-(K-1)s .. t`` of one camera view (frames
before the episode start repeat the first one), its skill id, and the targets: the clean expert
velocities at each action offset (offset 1 = the action executed now, 10 = nine steps later, ...,
clamped to the end of the current skill segment, whose skill the network is conditioned on) and the
gripper class: closed if the expert closes now or within ``gripper_lookahead`` steps ("early
closing", RLBC), open only when the expert opens (no early opening).

Frames come from RAM when the arrays fit in ``cache_gb``; otherwise from zarr through a small cache
of decoded chunks, with a sampler that shuffles blocks of consecutive chunks so each chunk is
decoded about once per epoch: training works on datasets larger than RAM.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from demos.store import DemoDataset
from envs.camera import project
from hrlbc.skills.augment import DepthAugment


@dataclass
class Targets:
    """Per-frame label arrays (T, ...) built once from the store's small arrays."""

    skill: np.ndarray  # (T,) int64
    episode: np.ndarray  # (T,) int64
    episode_start: np.ndarray  # (T,) int64, first frame of the frame's episode
    velocity: np.ndarray  # (T, n_offsets, vel_dim) float32, normalised
    gripper: np.ndarray  # (T, n_offsets) int64, 1 = open
    vel_mean: np.ndarray  # (vel_dim,)
    vel_std: np.ndarray  # (vel_dim,)
    aux: np.ndarray | None = None  # (T, D) float32, standardised privileged state (auxiliary targets)
    located: np.ndarray | None = None  # (T, V, N, 2) float32, image positions of the located keypoints


def build_targets(
    ds: DemoDataset,
    vel_dim: int,
    offsets: tuple[int, ...],
    lookahead: int,
    stats_frames: np.ndarray | None = None,
    std_floor: np.ndarray | None = None,
    stats: tuple[np.ndarray, np.ndarray] | None = None,
) -> Targets:
    """Labels for every frame; velocity statistics from ``stats_frames`` (the training frames), or
    ``stats`` (mean, std) as given (fine-tuning keeps the network's own).

    ``std_floor`` (vel_dim,): the smallest normalising std per velocity component. Without it, a component
    that barely varies (Breakfast's wrist corrections about x and z: std 0.006 and 0.0009 rad/s, against
    0.27 for the pouring axis) would be scaled up 50-500x and weigh in the loss like the motion itself.
    """
    n = ds.num_frames
    actions = np.asarray(ds.arrays["expert_action"][:n], dtype=np.float32)
    skill = np.asarray(ds.arrays["skill"][:n], dtype=np.int64)
    episode = ds.episode_of(np.arange(n))
    starts = ds.episode_starts[episode]
    # End (exclusive) of the contiguous same-skill segment each frame belongs to.
    boundary = np.ones(n, bool)
    boundary[:-1] = (skill[1:] != skill[:-1]) | (episode[1:] != episode[:-1])
    seg_end = np.empty(n, np.int64)
    ends = np.nonzero(boundary)[0] + 1
    seg_end[:] = np.repeat(ends, np.diff(np.concatenate([[0], ends])))
    t = np.arange(n)
    idx = np.minimum(t[:, None] + np.asarray(offsets)[None, :] - 1, seg_end[:, None] - 1)
    vel = actions[:, :vel_dim]
    ref = vel if stats_frames is None else vel[stats_frames]
    mean, std = ref.mean(0), ref.std(0) + 1e-6
    if std_floor is not None:
        std = np.maximum(std, std_floor)
    if stats is not None:
        mean, std = (np.asarray(x, np.float32) for x in stats)
    velocity = ((vel[idx] - mean) / std).astype(np.float32)
    # Close early (the fingers take time to close; RLBC's "early closing") but open on time: an
    # anticipated opening drops the held object while it is still moving (cm short of the target).
    grip_idx = np.minimum(idx + lookahead, seg_end[:, None] - 1)
    gripper = ((actions[idx, -1] > 0) & (actions[grip_idx, -1] > 0)).astype(np.int64)
    return Targets(skill, episode, starts, velocity, gripper, mean.astype(np.float32), std.astype(np.float32))


def aux_state_targets(ds: DemoDataset, stats_frames: np.ndarray) -> np.ndarray:
    """Auxiliary targets (T, D) float32: where each task object is relative to the tool, and the finger gap.

    From the store's privileged state: ``<object>_pos - tcp_pos`` (m, world frame) for every object, then
    ``gripper``; each column standardised over ``stats_frames``. Relative positions are what the skills
    steer by, and unlike absolute ones they survive a random shift of the image.
    """
    layout = {k: slice(*v) for k, v in ds.metadata["state_layout"].items()}
    state = np.asarray(ds.arrays["state"][: ds.num_frames], dtype=np.float32)
    tcp = state[:, layout["tcp_pos"]]
    objects = [k for k in layout if k.endswith("_pos") and k != "tcp_pos"]
    aux = np.concatenate([state[:, layout[k]] - tcp for k in objects] + [state[:, layout["gripper"]]], axis=1)
    ref = aux[stats_frames]
    return ((aux - ref.mean(0)) / (ref.std(0) + 1e-6)).astype(np.float32)


def located_names(layout: dict) -> list[str]:
    """What located keypoints find: each task object's position field, then the tool's (``tcp_pos``)."""
    return [k for k in layout if k.endswith("_pos") and k != "tcp_pos"] + ["tcp_pos"]


def located_targets(ds: DemoDataset) -> np.ndarray:
    """(T, V, N, 2) float32: where each of :func:`located_names` is in each view's image, (x, y) in [-1, 1].

    The store's privileged positions (m, world frame) projected through each episode's stored cameras.
    """
    layout = {k: slice(*v) for k, v in ds.metadata["state_layout"].items()}
    names = located_names(layout)
    state = np.asarray(ds.arrays["state"][: ds.num_frames], dtype=np.float64)
    points = np.stack([state[:, layout[k]] for k in names], axis=1)  # (T, N, 3)
    cameras = ds.meta("camera")  # (E, V, 9)
    out = np.empty((ds.num_frames, cameras.shape[1], len(names), 2), np.float32)
    for e in range(ds.num_episodes):
        lo, hi = ds.episode_range(e)
        for v in range(cameras.shape[1]):
            out[lo:hi, v] = project(cameras[e, v], points[lo:hi].reshape(-1, 3)).reshape(hi - lo, len(names), 2)
    return out


class FrameSource:
    """Depth (and mask) frames by global index: all in RAM, or through an LRU cache of zarr chunks."""

    def __init__(self, ds: DemoDataset, keys: tuple[str, ...], cache_bytes: float, chunk_cache: int = 256) -> None:
        self.arrays = {k: ds.arrays[k] for k in keys}
        self.n = ds.num_frames
        total = sum(np.prod(a.shape[1:]) * a.dtype.itemsize * self.n for a in self.arrays.values())
        self.in_ram = total <= cache_bytes
        self.ram = {k: np.asarray(a[: self.n]) for k, a in self.arrays.items()} if self.in_ram else None
        self.chunk = int(next(iter(self.arrays.values())).chunks[0])
        self.cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self.chunk_cache = chunk_cache

    def get(self, key: str, index: np.ndarray) -> np.ndarray:
        """``index`` (...,) int -> (..., *frame_shape) raw stored values."""
        if self.ram is not None:
            return self.ram[key][index]
        flat = index.reshape(-1)
        out = np.empty((len(flat), *self.arrays[key].shape[1:]), self.arrays[key].dtype)
        for c in np.unique(flat // self.chunk):
            sel = flat // self.chunk == c
            out[sel] = self._chunk(key, int(c))[flat[sel] - c * self.chunk]
        return out.reshape(*index.shape, *out.shape[1:])

    def _chunk(self, key: str, c: int) -> np.ndarray:
        hit = self.cache.get((key, c))
        if hit is not None:
            self.cache.move_to_end((key, c))
            return hit
        data = np.asarray(self.arrays[key][c * self.chunk : min((c + 1) * self.chunk, self.n)])
        self.cache[(key, c)] = data
        if len(self.cache) > self.chunk_cache:
            self.cache.popitem(last=False)
        return data


class BCBatches(torch.utils.data.Dataset):
    """Map-style dataset whose items are whole batches: ``batches[i]`` is a dict of tensors.

    Index it with an array of global frame indices (what :class:`BlockShuffleSampler` yields).
    """

    def __init__(
        self,
        source: FrameSource,
        targets: Targets,
        frames: int,
        stride: int,
        n_views: int,
        augment: DepthAugment | None,
        seed: int,
    ) -> None:
        self.source, self.targets, self.frames, self.stride, self.n_views = source, targets, frames, stride, n_views
        self.augment = augment
        self.rng = np.random.default_rng(seed)
        self.use_mask = augment is not None and augment.needs_mask

    def __len__(self) -> int:
        return len(self.targets.skill)

    def __getitem__(self, index: np.ndarray) -> dict[str, torch.Tensor]:
        index = np.asarray(index, dtype=np.int64)
        back = np.arange(self.frames - 1, -1, -1) * self.stride
        hist = np.maximum(index[:, None] - back[None, :], self.targets.episode_start[index][:, None])  # (B, K)
        view = (
            self.rng.integers(0, self.n_views, size=len(index))
            if self.augment is not None
            else np.zeros(len(index), int)
        )
        depth = self.source.get("depth", hist)[np.arange(len(index)), :, view]  # (B, K, H, W) uint16
        depth = depth.astype(np.float32) / 65535.0
        shift = None
        if self.augment is not None:
            mask = self.source.get("mask", hist)[np.arange(len(index)), :, view] if self.use_mask else None
            depth, shift = self.augment.batch_shifted(depth, mask)
        t = self.targets
        batch = {
            "depth": torch.from_numpy(depth),
            "skill": torch.from_numpy(t.skill[index]),
            "velocity": torch.from_numpy(t.velocity[index]),
            "gripper": torch.from_numpy(t.gripper[index]),
        }
        if t.aux is not None:
            batch["aux"] = torch.from_numpy(t.aux[index])
        if t.located is not None:
            located = t.located[index, view]  # (B, N, 2) in the newest frame
            if shift is not None:  # the image moved by (dx, dy) px: so did everything in it
                located = located + (shift[:, None, :] * 2.0 / np.array(depth.shape[-1:-3:-1], np.float32))
            batch["located"] = torch.from_numpy(np.ascontiguousarray(located, dtype=np.float32))
        return batch


class BlockShuffleSampler(torch.utils.data.Sampler):
    """Yields batches (index arrays) of ``frames``: blocks of ``block`` consecutive frames are visited in a
    random order and shuffled within groups of ``group`` blocks, so reads stay chunk-local while the
    batches stay well mixed. The order is a function of (seed, epoch): resuming reproduces it.
    """

    def __init__(
        self, frames: np.ndarray, batch_size: int, seed: int, block: int = 64, group: int = 32, drop_last: bool = True
    ) -> None:
        self.frames, self.batch_size, self.seed = np.sort(frames), batch_size, seed
        self.block, self.group, self.drop_last = block, group, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        blocks = np.array_split(self.frames, max(1, int(np.ceil(len(self.frames) / self.block))))
        order = rng.permutation(len(blocks))
        stream = []
        for g in range(0, len(order), self.group):
            chunk = np.concatenate([blocks[i] for i in order[g : g + self.group]])
            stream.append(rng.permutation(chunk))
        flat = np.concatenate(stream) if stream else np.array([], np.int64)
        n = len(flat) // self.batch_size * self.batch_size if self.drop_last else len(flat)
        for i in range(0, n, self.batch_size):
            yield flat[i : i + self.batch_size]

    def __len__(self) -> int:
        n = len(self.frames)
        return n // self.batch_size if self.drop_last else int(np.ceil(n / self.batch_size))


def batch_loader(
    data: BCBatches, sampler: BlockShuffleSampler, workers: int, device: torch.device, worker_init_fn=None
) -> torch.utils.data.DataLoader:
    """A loader of whole batches (the sampler yields index arrays, ``data`` turns one into a batch).

    ``workers`` 0 reads and augments in this process; more fork worker processes. Pinned memory on CUDA.
    """
    return torch.utils.data.DataLoader(
        data,
        sampler=sampler,
        batch_size=None,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=worker_init_fn,
        multiprocessing_context="fork" if workers > 0 else None,
    )
