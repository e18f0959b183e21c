"""The on-disk demonstration dataset: one zarr (v3) group of concatenated arrays + an episode index.

Layout (``T`` frames in all, ``E`` episodes, ``V`` camera views, ``H`` x ``W`` pixels, ``A`` action
size, ``D`` state size)::

    <root>/zarr.json              group attributes: "hrlbc" (provenance, config, task), "num_episodes"
    <root>/config.yaml            the collection config, for people
    <root>/data/depth             uint16 (T, V, H, W)  depth in [0, 1] quantised as round(d * 65535)
    <root>/data/mask              uint8  (T, V, H, W)  semantic mask (optional; 0 bg, 1 table, 2 robot, 3+ objects)
    <root>/data/rgb               uint8  (T, V, H, W, 3) (optional)
    <root>/data/action            float32 (T, A)       action executed at the frame (noise included)
    <root>/data/expert_action     float32 (T, A)       the scripted skill's clean action: the BC label
    <root>/data/skill             int16  (T,)          active skill id
    <root>/data/skill_done        bool   (T,)          the active skill reported completion at this frame
    <root>/data/state             float32 (T, D)       privileged state (layout in attrs hrlbc.state_layout)
    <root>/meta/episode_ends      int64  (E,)          exclusive end index of each episode in the frame arrays
    <root>/meta/seed              int64  (E,)          env seed of the episode (replay: reset(seed) + actions)
    <root>/meta/success           bool   (E,)
    <root>/meta/length            int32  (E,)
    <root>/meta/failure           int8   (E,)          0 none, 1 object_fell, 2 other
    <root>/meta/camera            float64 (E, V, 9)    target xyz, distance, yaw, pitch, fov, near, far

Frame ``t`` pairs the observation before step ``t`` with the action taken at it. Crash safety: zarr
writes each chunk and metadata file atomically; an episode is appended to every array first and
counted in ``num_episodes`` (the commit record) last, so a reader, and a resumed writer, see only
whole episodes. Arrays may be longer than the committed part after a crash; the writer truncates them
on resume, readers slice them by ``episode_ends[:num_episodes]``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from demos.io import atomic_write_text

SCHEMA_VERSION = 1
FAILURES = {None: 0, "object_fell": 1}
DEPTH_SCALE = 65535.0
META_ARRAYS = ("seed", "success", "length", "failure", "camera")


class DatasetError(ValueError):
    """A missing, incomplete or incompatible dataset."""


def quantise_depth(depth: np.ndarray) -> np.ndarray:
    return np.round(np.clip(depth, 0.0, 1.0) * DEPTH_SCALE).astype(np.uint16)


def dequantise_depth(depth: np.ndarray) -> np.ndarray:
    return depth.astype(np.float32) / DEPTH_SCALE


def _compressor():
    return BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")


class DemoWriter:
    """Appends whole episodes to a store; creates it, or reopens it to resume.

    Args:
        path: store directory.
        metadata: provenance and config saved at creation (``attrs["hrlbc"]``); on reopening its
            ``compat`` entry must equal the stored one, else :class:`DatasetError` (no silent mixing).
        frame_shapes: name -> (per-frame shape, dtype) of the ``data/`` arrays.
        n_views: camera views (for ``meta/camera``).
        chunk_frames: frames per chunk along the time axis.
        overwrite: delete an existing store first.
    """

    def __init__(
        self,
        path: str | Path,
        metadata: dict[str, Any],
        frame_shapes: dict[str, tuple[tuple[int, ...], str]],
        n_views: int,
        chunk_frames: int = 64,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        if overwrite and self.path.exists():
            shutil.rmtree(self.path)
        if self.path.exists() and any(self.path.iterdir()):
            self.root = _open_group(self.path, mode="r+")
            stored = dict(self.root.attrs.get("hrlbc", {}))
            if stored.get("compat") != metadata.get("compat"):
                diff = _describe_difference(stored.get("compat", {}), metadata.get("compat", {}))
                raise DatasetError(
                    f"the store at {self.path} was made with a different task or config ({diff}); "
                    "use another out= path, or overwrite=true to replace it"
                )
            self._truncate_to_committed()
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self.root = zarr.open_group(str(self.path), mode="w", zarr_format=3)
            data = self.root.create_group("data")
            for name, (shape, dtype) in frame_shapes.items():
                data.create_array(
                    name, shape=(0, *shape), chunks=(chunk_frames, *shape), dtype=dtype, compressors=_compressor()
                )
            meta = self.root.create_group("meta")
            meta.create_array("episode_ends", shape=(0,), chunks=(4096,), dtype="int64")
            for name, dtype, shape in (
                ("seed", "int64", ()),
                ("success", "bool", ()),
                ("length", "int32", ()),
                ("failure", "int8", ()),
                ("camera", "float64", (n_views, 9)),
            ):
                meta.create_array(name, shape=(0, *shape), chunks=(4096, *shape), dtype=dtype)
            self.root.attrs.update({"hrlbc": metadata, "num_episodes": 0, "schema_version": SCHEMA_VERSION})
        self.num_episodes = int(self.root.attrs["num_episodes"])
        ends = self.root["meta/episode_ends"]
        self.num_frames = int(ends[self.num_episodes - 1]) if self.num_episodes else 0

    def _truncate_to_committed(self) -> None:
        """Drop whatever a killed writer appended after the last committed episode."""
        n = int(self.root.attrs["num_episodes"])
        ends = self.root["meta/episode_ends"]
        frames = int(ends[n - 1]) if n else 0
        for name in self.root["data"].array_keys():
            arr = self.root[f"data/{name}"]
            if arr.shape[0] != frames:
                arr.resize((frames, *arr.shape[1:]))
        for name in ("episode_ends", *META_ARRAYS):
            arr = self.root[f"meta/{name}"]
            if arr.shape[0] != n:
                arr.resize((n, *arr.shape[1:]))

    def append(self, frames: dict[str, np.ndarray], episode: dict[str, Any]) -> None:
        """Append one episode: ``frames`` name -> (T, ...) arrays; ``episode`` seed, success, failure, camera."""
        length = len(frames["action"])
        start, end = self.num_frames, self.num_frames + length
        for name, values in frames.items():
            arr = self.root[f"data/{name}"]
            arr.resize((end, *arr.shape[1:]))
            arr[start:end] = values
        e = self.num_episodes
        row = {
            "seed": episode["seed"],
            "success": episode["success"],
            "length": length,
            "failure": FAILURES.get(episode["failure"], 2),
            "camera": episode["camera"],
            "episode_ends": end,
        }
        for name in (*META_ARRAYS, "episode_ends"):
            arr = self.root[f"meta/{name}"]
            arr.resize((e + 1, *arr.shape[1:]))
            arr[e] = row[name]
        self.root.attrs["num_episodes"] = e + 1  # the commit record: written last
        self.num_episodes, self.num_frames = e + 1, end

    def write_config_yaml(self, text: str) -> None:
        atomic_write_text(self.path / "config.yaml", text)


def _open_group(path: Path, mode: str = "r") -> zarr.Group:
    try:
        root = zarr.open_group(str(path), mode=mode)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError):
        raise DatasetError(f"no hrlbc dataset at {path} (expected a zarr store made by 'hrlbc collect')") from None
    if "num_episodes" not in root.attrs or "data" not in root:
        raise DatasetError(f"{path} is not an hrlbc dataset (no 'num_episodes' attribute / 'data' group)")
    return root


def _describe_difference(a: dict, b: dict) -> str:
    keys = sorted(set(a) | set(b))
    diffs = [f"{k}: stored {a.get(k)!r} vs now {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]
    return "; ".join(diffs) or "different provenance"


class DemoDataset:
    """Read access to a store: episodes, frames by global index, metadata. Nothing is loaded eagerly.

    Attributes:
        num_episodes, num_frames: committed sizes.
        episode_ends: (E,) int64 exclusive ends; episode ``i`` is frames ``[ends[i-1], ends[i])``.
        metadata: the ``attrs["hrlbc"]`` dict (task, config, provenance, state layout).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DatasetError(f"no dataset at {self.path}")
        self.root = _open_group(self.path)
        self.num_episodes = int(self.root.attrs["num_episodes"])
        self.episode_ends = np.asarray(self.root["meta/episode_ends"][: self.num_episodes], dtype=np.int64)
        self.num_frames = int(self.episode_ends[-1]) if self.num_episodes else 0
        self.metadata: dict[str, Any] = dict(self.root.attrs.get("hrlbc", {}))
        self.arrays: dict[str, zarr.Array] = {k: self.root[f"data/{k}"] for k in self.root["data"].array_keys()}
        self.episode_starts = np.concatenate([[0], self.episode_ends[:-1]]).astype(np.int64)

    @property
    def task(self) -> str:
        return self.metadata["task"]

    def meta(self, name: str) -> np.ndarray:
        """Per-episode array ``meta/<name>`` (E, ...), committed part only."""
        return np.asarray(self.root[f"meta/{name}"][: self.num_episodes])

    def episode_range(self, i: int) -> tuple[int, int]:
        if not 0 <= i < self.num_episodes:
            raise IndexError(f"episode {i} out of range: the dataset has {self.num_episodes} episodes")
        return int(self.episode_starts[i]), int(self.episode_ends[i])

    def episode(self, i: int, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """All frames of episode ``i``: name -> (T_i, ...); depth decoded to float32 in [0, 1]."""
        start, end = self.episode_range(i)
        return self._decode({k: self.arrays[k][start:end] for k in (keys or tuple(self.arrays))})

    def frame(self, index: int, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """One frame by global index; depth decoded to float32."""
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} out of range: the dataset has {self.num_frames} frames")
        return self._decode({k: self.arrays[k][index] for k in (keys or tuple(self.arrays))})

    def episode_of(self, index: np.ndarray | int) -> np.ndarray:
        """Episode index of global frame index(es)."""
        return np.searchsorted(self.episode_ends, index, side="right")

    @staticmethod
    def _decode(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "depth" in out:
            out["depth"] = dequantise_depth(out["depth"])
        return out

    def disk_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())


def open_dataset(path: str | Path) -> DemoDataset:
    """Open a demonstration store for reading (see the module docstring for the layout)."""
    return DemoDataset(path)
