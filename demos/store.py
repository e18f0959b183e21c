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
    <root>/meta/checksum          uint64 (E, K)        per episode, a BLAKE2b-64 digest of each data array's frames
                                                       (columns: attrs "checksum_arrays"; stores made before: absent)

Frame ``t`` pairs the observation before step ``t`` with the action taken at it. Crash safety: zarr
writes each chunk and metadata file atomically; an episode is appended to every array first and
counted in ``num_episodes`` (the commit record) last, so a reader, and a resumed writer, see only
whole episodes. Arrays may be longer than the committed part after a crash; the writer truncates them
on resume, readers slice them by ``episode_ends[:num_episodes]``. A new store is built in a sibling
``<root>.creating`` directory and renamed into place once complete, so a kill during creation leaves nothing
that blocks the next run.

Integrity: each episode's checksums are computed from the frames as written, when the episode is committed.
:meth:`DemoDataset.verify` re-reads every committed frame and names each damaged array and episode (a
missing chunk, which zarr would otherwise read as zeros, an unreadable one, or different bytes).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from demos.io import atomic_write_text, first_line

SCHEMA_VERSION = 1
FAILURES = {None: 0, "object_fell": 1}
DEPTH_SCALE = 65535.0
META_ARRAYS = ("seed", "success", "length", "failure", "camera")
CREATING_SUFFIX = ".creating"
# Chunks equal to the fill value are written too: then a missing chunk file always means damage. (zarr skips
# them by default, and reads a missing chunk back as the fill value: lost frames would read as zeros.)
zarr.config.set({"array.write_empty_chunks": True})
# Stores made before checksums did skip such chunks; there, only arrays that are never all zero are checked.
NEVER_ZERO = ("data/depth", "meta/episode_ends", "meta/length")


def checksum(values: np.ndarray) -> int:
    """BLAKE2b-64 of an array's bytes (C order) as an unsigned int: one episode of one data array."""
    digest = hashlib.blake2b(np.ascontiguousarray(values).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


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
            problems = DemoDataset(self.path).verify()
            if problems:  # resuming would build on (or truncate) damaged data: refuse, change nothing
                raise DatasetError(damage_message(self.path, problems))
            self.root = _open_group(self.path, mode="r+")
            self.checksum_arrays = list(self.root.attrs.get("checksum_arrays", []))
            stored = dict(self.root.attrs.get("hrlbc", {}))
            if stored.get("compat") != metadata.get("compat"):
                diff = _describe_difference(stored.get("compat", {}), metadata.get("compat", {}))
                raise DatasetError(
                    f"the store at {self.path} was made with a different task or config ({diff}); "
                    "use another out= path, or overwrite=true to replace it"
                )
            self._truncate_to_committed()
        else:
            self.root = self._create(metadata, frame_shapes, n_views, chunk_frames)
            self.checksum_arrays = list(self.root.attrs["checksum_arrays"])
        self.num_episodes = int(self.root.attrs["num_episodes"])
        ends = self.root["meta/episode_ends"]
        self.num_frames = int(ends[self.num_episodes - 1]) if self.num_episodes else 0

    def _create(
        self, metadata: dict[str, Any], frame_shapes: dict[str, tuple[tuple[int, ...], str]], n_views: int, chunks: int
    ) -> zarr.Group:
        """Build the empty store beside its place and rename it in: a kill leaves only ``<path>.creating``."""
        tmp = self.path.with_name(self.path.name + CREATING_SUFFIX)
        if tmp.exists():
            shutil.rmtree(tmp)  # a creation killed before: nothing in it was ever committed
        tmp.mkdir(parents=True)
        root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        data = root.create_group("data")
        for name, (shape, dtype) in frame_shapes.items():
            data.create_array(name, shape=(0, *shape), chunks=(chunks, *shape), dtype=dtype, compressors=_compressor())
        meta = root.create_group("meta")
        meta.create_array("episode_ends", shape=(0,), chunks=(4096,), dtype="int64")
        names = sorted(frame_shapes)
        for name, dtype, shape in (
            ("seed", "int64", ()),
            ("success", "bool", ()),
            ("length", "int32", ()),
            ("failure", "int8", ()),
            ("camera", "float64", (n_views, 9)),
            ("checksum", "uint64", (len(names),)),
        ):
            meta.create_array(name, shape=(0, *shape), chunks=(4096, *shape), dtype=dtype)
        root.attrs.update(
            {"hrlbc": metadata, "num_episodes": 0, "schema_version": SCHEMA_VERSION, "checksum_arrays": names}
        )
        if self.path.exists():
            self.path.rmdir()  # empty (checked by the caller)
        tmp.rename(self.path)
        return zarr.open_group(str(self.path), mode="r+")

    def _truncate_to_committed(self) -> None:
        """Drop whatever a killed writer appended after the last committed episode."""
        n = int(self.root.attrs["num_episodes"])
        ends = self.root["meta/episode_ends"]
        frames = int(ends[n - 1]) if n else 0
        for name in self.root["data"].array_keys():
            arr = self.root[f"data/{name}"]
            if arr.shape[0] != frames:
                arr.resize((frames, *arr.shape[1:]))
        for name in ("episode_ends", *self._meta_arrays()):
            arr = self.root[f"meta/{name}"]
            if arr.shape[0] != n:
                arr.resize((n, *arr.shape[1:]))

    def _meta_arrays(self) -> tuple[str, ...]:
        return (*META_ARRAYS, "checksum") if self.checksum_arrays else META_ARRAYS

    def append(self, frames: dict[str, np.ndarray], episode: dict[str, Any]) -> None:
        """Append one episode: ``frames`` name -> (T, ...) arrays; ``episode`` seed, success, failure, camera."""
        length = len(frames["action"])
        start, end = self.num_frames, self.num_frames + length
        digests = {}
        for name, values in frames.items():
            arr = self.root[f"data/{name}"]
            values = np.asarray(values, dtype=arr.dtype)  # the bytes as stored
            digests[name] = checksum(values)
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
            "checksum": [digests[name] for name in self.checksum_arrays],
        }
        for name in (*self._meta_arrays(), "episode_ends"):
            arr = self.root[f"meta/{name}"]
            arr.resize((e + 1, *arr.shape[1:]))
            arr[e] = row[name]
        self.root.attrs["num_episodes"] = e + 1  # the commit record: written last
        self.num_episodes, self.num_frames = e + 1, end

    def write_config_yaml(self, text: str) -> None:
        atomic_write_text(self.path / "config.yaml", text)


def copy_store(src: DemoDataset, dst: str | Path, metadata: dict[str, Any]) -> None:
    """Start the new store ``dst`` as a copy of ``src``'s files (frames and checksums byte for byte), with
    ``metadata`` as its provenance; built beside its place and renamed in, like a new store. ``src`` is only
    read; verify it first (a copy keeps whatever damage it has).
    """
    dst = Path(dst)
    tmp = dst.with_name(dst.name + CREATING_SUFFIX)
    if tmp.exists():
        shutil.rmtree(tmp)  # a copy killed before
    shutil.copytree(src.path, tmp, ignore=shutil.ignore_patterns("config.yaml"))
    root = zarr.open_group(str(tmp), mode="r+")
    root.attrs["hrlbc"] = metadata
    if dst.exists():
        dst.rmdir()  # empty (checked by the caller)
    tmp.rename(dst)


def _open_group(path: Path, mode: str = "r") -> zarr.Group:
    try:
        root = zarr.open_group(str(path), mode=mode)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError):
        raise DatasetError(f"no hrlbc dataset at {path} (expected a zarr store made by 'hrlbc collect')") from None
    if "num_episodes" not in root.attrs or "data" not in root:
        raise DatasetError(
            f"{path} is not an hrlbc dataset (no 'num_episodes' attribute / 'data' group); if an older hrlbc "
            "collect was killed while creating it, delete the folder and run the command again"
        )
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

    def frame_shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """name -> (per-frame shape, dtype) of the ``data/`` arrays: what :class:`DemoWriter` takes."""
        return {name: (tuple(arr.shape[1:]), str(arr.dtype)) for name, arr in self.arrays.items()}

    def episode_of(self, index: np.ndarray | int) -> np.ndarray:
        """Episode index of global frame index(es)."""
        return np.searchsorted(self.episode_ends, index, side="right")

    @staticmethod
    def _decode(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "depth" in out:
            out["depth"] = dequantise_depth(out["depth"])
        return out

    def verify(self, max_frames_per_read: int = 8192) -> list[str]:
        """Check the structure and every committed episode; one line per problem, ``[]`` when intact.

        Structure: every committed row of every array has its chunk on disk (zarr reads a missing chunk as
        zeros), and the episode index agrees with the episode lengths. Episodes: every data array's frames
        are readable and, where the store has checksums, hash to the digests recorded at commit time.
        """
        problems: list[str] = []
        n, ends = self.num_episodes, self.episode_ends
        lengths = np.asarray(self.root["meta/length"][:n], dtype=np.int64)
        if len(lengths) < n or not np.array_equal(np.cumsum(lengths), ends):
            problems.append("meta/episode_ends: does not match meta/length (the episode index is damaged)")
        meta_names = [k for k in self.root["meta"].array_keys()]
        every_chunk_written = "checksum_arrays" in self.root.attrs
        for group, names, rows in (("meta", meta_names, n), ("data", list(self.arrays), self.num_frames)):
            for name in names:
                arr = self.root[f"{group}/{name}"]
                if arr.shape[0] < rows:
                    problems.append(f"{group}/{name}: {arr.shape[0]} rows, {rows} committed")
                    continue
                if not every_chunk_written and f"{group}/{name}" not in NEVER_ZERO:
                    continue
                for c, lo, hi in _missing_chunks(self.path, f"{group}/{name}", arr, rows):
                    where = f"rows {lo}-{hi - 1}" if group == "meta" else _episodes_text(self, lo, hi)
                    problems.append(f"{group}/{name}: chunk {c} missing ({where})")
        if problems:
            return problems  # the episode index itself may be wrong: reading episodes by it proves nothing
        names = list(self.root.attrs.get("checksum_arrays", []))
        digests = np.asarray(self.root["meta/checksum"][:n]) if names else None
        for name, arr in self.arrays.items():
            column = names.index(name) if name in names else None
            e = 0
            while e < n:  # a group of whole episodes per read
                last = int(np.searchsorted(ends, self.episode_starts[e] + max_frames_per_read, side="right"))
                last = max(last, e + 1)
                lo, hi = int(self.episode_starts[e]), int(ends[last - 1])
                try:
                    block = np.asarray(arr[lo:hi])
                except Exception as exc:  # a truncated or corrupt chunk: blosc, zstd or a short file
                    problems.append(f"data/{name}: unreadable ({_episodes_text(self, lo, hi)}): {first_line(exc)}")
                    e = last
                    continue
                if column is not None:
                    starts = self.episode_starts - lo
                    bad = [i for i in range(e, last) if checksum(block[starts[i] : ends[i] - lo]) != digests[i, column]]
                    if bad:
                        verb = "differs from its checksum" if len(bad) == 1 else "differ from their checksums"
                        problems.append(f"data/{name}: {_list_episodes(bad)} {verb}")
                e = last
        return problems

    def disk_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())


def _missing_chunks(root: Path, name: str, arr: zarr.Array, rows: int) -> list[tuple[int, int, int]]:
    """(chunk index, first row, end row) of each chunk along axis 0 that holds some of the first ``rows``
    rows but has no file (zarr would read zeros)."""
    rest, size = "/0" * (arr.ndim - 1), arr.chunks[0]
    n_chunks = -(-rows // size) if rows else 0
    missing = [c for c in range(n_chunks) if not (root / name / f"c/{c}{rest}").is_file()]
    return [(c, c * size, min((c + 1) * size, rows)) for c in missing]


def _episodes_text(ds: DemoDataset, lo: int, hi: int) -> str:
    """'episodes 3-5' for frames [lo, hi)."""
    first, last = int(ds.episode_of(lo)), int(ds.episode_of(max(hi - 1, lo)))
    return f"episode {first}" if first == last else f"episodes {first}-{last}"


def _list_episodes(episodes: list[int]) -> str:
    shown = ", ".join(map(str, episodes[:10])) + (f" and {len(episodes) - 10} more" if len(episodes) > 10 else "")
    return f"episode{'s' if len(episodes) > 1 else ''} {shown}"


def damage_message(path: Path, problems: list[str]) -> str:
    """One line: the first problem, how many more, and what to do."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return (
        f"the store {path} is damaged: {problems[0]}{more}; nothing was changed. "
        f"'hrlbc demos verify {path}' lists every problem; 'hrlbc demos salvage {path} out=NEW' keeps the intact "
        "episodes, or re-collect into a new out= path"
    )


def open_dataset(path: str | Path, verify: bool = False) -> DemoDataset:
    """Open a demonstration store for reading (see the module docstring for the layout).

    ``verify=True`` first checks every committed episode (:meth:`DemoDataset.verify`) and raises
    :class:`DatasetError` naming the damage: what training and ``demos info`` do before using a store.
    """
    ds = DemoDataset(path)
    if verify:
        problems = ds.verify()
        if problems:
            raise DatasetError(damage_message(ds.path, problems))
    return ds


FAILURE_NAMES = {code: name for name, code in FAILURES.items()} | {2: "other"}


def salvage(src: str | Path, dst: str | Path) -> tuple[int, list[int]]:
    """Copy the intact episodes of a (damaged) store ``src`` into a new store ``dst``, bytes unchanged.

    An episode is kept when every row of it, in every data and meta array, has its chunk on disk, reads
    back, and (where the store has checksums) hashes to its commit-time digest. Episode boundaries come
    from ``meta/length`` or, if that is damaged, ``meta/episode_ends``. ``dst`` is built beside its place
    and renamed in when complete (a killed salvage leaves nothing that blocks the next one).
    Returns (episodes kept, ids of the episodes dropped). ``src`` is only read.
    """
    ds, dst = DemoDataset(src), Path(dst)
    if dst.exists():
        raise DatasetError(f"{dst} exists; salvage writes a new store (give another out=)")
    n = ds.num_episodes
    meta = {name: ds.root[f"meta/{name}"] for name in ds.root["meta"].array_keys()}
    lengths_intact = not _missing_chunks(ds.path, "meta/length", meta["length"], n)
    if lengths_intact:
        ends = np.cumsum(np.asarray(meta["length"][:n], dtype=np.int64))
    elif not _missing_chunks(ds.path, "meta/episode_ends", meta["episode_ends"], n):
        ends = np.asarray(meta["episode_ends"][:n], dtype=np.int64)
    else:
        raise DatasetError(f"{src}: both meta/length and meta/episode_ends are damaged; episodes cannot be told apart")
    starts = np.concatenate([[0], ends[:-1]])
    bad: set[int] = set()
    for name, arr in meta.items():  # a meta row in a lost chunk cannot be trusted (it reads as zeros)
        if name == "episode_ends" or (name == "length" and not lengths_intact):  # boundaries: not copied, rebuilt
            continue
        for _, lo, hi in _missing_chunks(ds.path, f"meta/{name}", arr, n):
            bad.update(range(lo, hi))
    for name, arr in ds.arrays.items():
        for _, lo, hi in _missing_chunks(ds.path, f"data/{name}", arr, int(ends[-1]) if n else 0):
            bad.update(int(e) for e in np.flatnonzero((starts < hi) & (ends > lo)))
    names = list(ds.root.attrs.get("checksum_arrays", []))
    digests = np.asarray(meta["checksum"][:n]) if names else None
    tmp = dst.with_name(dst.name + ".salvage")
    if tmp.exists():
        shutil.rmtree(tmp)  # a salvage killed before
    metadata = ds.metadata | {"salvaged_from": str(Path(src).resolve())}
    shapes = ds.frame_shapes()
    writer = DemoWriter(tmp, metadata, shapes, int(meta["camera"].shape[1]), int(ds.arrays["depth"].chunks[0]))
    rows = {name: np.asarray(meta[name][:n]) for name in ("seed", "success", "failure", "camera")}
    for e in range(n):
        if e in bad:
            continue
        frames = {}
        try:
            for name, arr in ds.arrays.items():
                frames[name] = np.asarray(arr[int(starts[e]) : int(ends[e])])
        except Exception:  # an unreadable chunk
            bad.add(e)
            continue
        if digests is not None and any(checksum(frames[k]) != digests[e, i] for i, k in enumerate(names)):
            bad.add(e)
            continue
        failure = FAILURE_NAMES.get(int(rows["failure"][e]), "other")
        writer.append(frames, {"seed": rows["seed"][e], "success": rows["success"][e], "failure": failure,
                               "camera": rows["camera"][e]})  # fmt: skip
    if (ds.path / "config.yaml").is_file():
        writer.write_config_yaml((ds.path / "config.yaml").read_text())
    tmp.rename(dst)
    return writer.num_episodes, sorted(bad)
