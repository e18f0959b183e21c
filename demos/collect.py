"""Parallel, resumable demonstration collection (``hrlbc collect``).

Episode ``i`` uses env seed ``seed + i`` and an expert-noise generator seeded with ``(seed, i)``, so the
dataset does not depend on the number of workers; workers (one PyBullet client each) return whole
episodes, in order, to the one process that writes the store.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import envs
from demos.io import die_with_parent, output_lock
from demos.parallel import check_backend, parallel_map
from demos.progress import progress_bar
from demos.store import DatasetError, DemoWriter, quantise_depth
from envs.skills import add_noise

# Seed ranges (documented in docs/design.md): collection uses seed + i; evaluation never uses seeds below this.
EVAL_SEED_START = 1_000_000
VALIDATION_SEED_START = 500_000


@dataclass
class CollectConfig:
    task: str = field(default="pick", metadata={"help": f"task: {', '.join(envs.TASKS)} (or a gymnasium id)"})
    episodes: int = field(default=20, metadata={"help": "number of episodes in the finished store"})
    workers: int = field(default=2, metadata={"help": "parallel worker processes"})
    out: str = field(default="data/${task}", metadata={"help": "store directory (zarr)"})
    mode: str = field(default="skills", metadata={"help": "skills (random skill sequences) or full (expert)"})
    cameras: int = field(default=1, metadata={"help": "camera views rendered per step"})
    random_camera: bool = field(default=False, metadata={"help": "jitter each camera at every reset"})
    image_size: int = field(default=64, metadata={"help": "image resolution (pixels)"})
    rgb: bool = field(default=False, metadata={"help": "also store RGB"})
    mask: bool = field(default=True, metadata={"help": "also store the segmentation mask (augmentations use it)"})
    noise: float = field(default=0.05, metadata={"help": "expert action noise, fraction of the speed limit"})
    hold_max: int = field(default=5, metadata={"help": "skills mode: up to this many hold steps after a skill"})
    seed: int = field(default=0, metadata={"help": "base seed: episode i uses env seed seed + i"})
    chunk_frames: int = field(default=64, metadata={"help": "frames per zarr chunk"})
    overwrite: bool = field(default=False, metadata={"help": "replace an existing store at out"})
    backend: str = field(default="local", metadata={"help": "local (process pool) or ray (the same bytes)"})
    address: str = field(default="", metadata={"help": "backend=ray: a cluster's HOST:PORT; empty starts one here"})

    def validate(self) -> None:
        for name in ("episodes", "workers", "cameras", "image_size", "chunk_frames"):
            if getattr(self, name) < 1:
                raise DatasetError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.mode not in ("skills", "full"):
            raise DatasetError(f"mode must be 'skills' or 'full', got {self.mode!r}")
        if self.noise < 0 or self.hold_max < 0:
            raise DatasetError("noise and hold_max must be >= 0")
        if self.seed < 0:
            raise DatasetError(f"seed must be >= 0, got {self.seed}")
        check_backend(self.backend)
        if self.seed + self.episodes > VALIDATION_SEED_START:
            raise DatasetError(
                f"collection seeds must stay below {VALIDATION_SEED_START} (reserved for validation/evaluation)"
            )

    def env_options(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size,
            "camera": "random" if self.random_camera else "fixed",
            "n_views": self.cameras,
            "rgb": self.rgb,
            "mask": self.mask,
        }

    def compat(self) -> dict[str, Any]:
        """What must match for episodes to be appended to an existing store."""
        d = asdict(self)
        for k in ("episodes", "workers", "out", "overwrite", "backend", "address"):
            d.pop(k)
        return d


Actor = Callable[[dict[str, np.ndarray], int], np.ndarray]  # (observation, skill id) -> action (A,)


def record_episode(
    env: envs.ManipulationEnv,
    seed: int,
    mode: str,
    noise: float,
    hold_max: int,
    rng: np.random.Generator,
    actor: Actor | None = None,
    sequence: list[int] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Run one scripted episode; return (frames name -> (T, ...) arrays, episode info).

    ``mode="full"``: the expert runs the task's skills in its expert order. ``mode="skills"``: a
    random skill sequence (:func:`envs.sample_skill_sequence`), each skill until done plus up to
    ``hold_max`` hold steps, at most the task timescale; failed episodes are kept.

    ``actor`` (DAgger): another policy acts (``actor(obs, skill)``, the stored ``action``) while the
    scripted skill still labels every frame (``expert_action``), from the velocity actually commanded:
    the label is what the expert would do in the states that policy reaches. ``noise`` is then unused.
    ``sequence`` (skills mode): these skill ids instead of a sampled sequence.
    """
    spec = env.spec_task
    obs, _ = env.reset(seed=seed)
    skills = envs.make_skills(env)
    if mode == "full":
        sequence, hold_steps = list(spec.expert_order), [0] * len(spec.expert_order)
    else:
        sequence = envs.sample_skill_sequence(spec.name, rng) if sequence is None else list(sequence)
        hold_steps = rng.integers(0, hold_max + 1, size=len(sequence)).tolist()
    views = env.n_views > 1
    rec: dict[str, list] = {
        k: [] for k in ("depth", "mask", "rgb", "action", "expert_action", "skill", "skill_done", "state")
    }
    info: dict[str, Any] = {"is_success": False, "failure": None}
    finished = False
    for k, (skill_id, hold) in enumerate(zip(sequence, hold_steps)):
        skill = skills[skill_id]
        skill.reset()
        last = mode == "full" and k == len(sequence) - 1
        steps_in_skill, held = 0, 0
        while not finished:
            label, done = skill.act(obs["state"])
            if actor is None:
                action = add_noise(label, noise, spec.max_linear_speed, rng)
            else:
                action = np.asarray(actor(obs, skill_id), dtype=np.float32)
                skill.velocity = action[:3].astype(np.float64)  # its acceleration limit starts from the real motion
            for key in ("depth", "mask", "rgb"):
                if key in obs:
                    rec[key].append(obs[key] if views else obs[key][None])
            rec["state"].append(obs["state"])
            rec["action"].append(action)
            rec["expert_action"].append(label)
            rec["skill"].append(skill_id)
            rec["skill_done"].append(done)
            obs, _, terminated, truncated, info = env.step(action)
            finished = terminated or truncated
            steps_in_skill += 1
            held += done
            if not last and ((done and held > hold) or (mode == "skills" and steps_in_skill >= spec.timescale)):
                break
        if finished:
            break
    frames = {k: np.stack(v) for k, v in rec.items() if v}
    if "depth" in frames:
        frames["depth"] = quantise_depth(frames["depth"])
    frames["skill"] = frames["skill"].astype(np.int16)
    frames["skill_done"] = frames["skill_done"].astype(bool)
    episode = {
        "seed": seed,
        "success": bool(info["is_success"]),
        "failure": info["failure"],
        "camera": env.camera_params() if env.cameras else np.zeros((env.n_views, 9)),
    }
    return frames, episode


# ------------------------------------------------------------------ workers
_worker_env: envs.ManipulationEnv | None = None
_worker_cfg: CollectConfig | None = None


def _init_worker(cfg: CollectConfig, pool_worker: bool = True) -> None:
    global _worker_env, _worker_cfg
    if pool_worker:
        die_with_parent()
    _worker_cfg = cfg
    _worker_env = envs.make_env(cfg.task, **cfg.env_options())


def _work(index: int):
    cfg = _worker_cfg
    rng = np.random.default_rng([cfg.seed, index])
    return record_episode(_worker_env, cfg.seed + index, cfg.mode, cfg.noise, cfg.hold_max, rng)


def frame_shapes(cfg: CollectConfig, env: envs.ManipulationEnv) -> dict[str, tuple[tuple[int, ...], str]]:
    v, n = cfg.cameras, cfg.image_size
    shapes = {
        "depth": ((v, n, n), "uint16"),
        "action": ((env.action_space.shape[0],), "float32"),
        "expert_action": ((env.action_space.shape[0],), "float32"),
        "skill": ((), "int16"),
        "skill_done": ((), "bool"),
        "state": ((env.state_dim,), "float32"),
    }
    if cfg.mask:
        shapes["mask"] = ((v, n, n), "uint8")
    if cfg.rgb:
        shapes["rgb"] = ((v, n, n, 3), "uint8")
    return shapes


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def collect(cfg: CollectConfig, progress: bool = True) -> Path:
    """Fill the store at ``cfg.out`` up to ``cfg.episodes`` episodes (resuming a partial one).

    Returns the store path. Raises :class:`DatasetError` for an incompatible store and ``OSError``
    with a readable message when the disk is full or the path unwritable (the store stays consistent).
    """
    cfg.task = envs.get_task(cfg.task).spec.name
    probe = envs.make_env(cfg.task, **cfg.env_options())
    spec = probe.spec_task
    metadata = {
        "task": spec.name,
        "env_id": spec.env_id,
        "skills": list(spec.skills),
        "expert_order": list(spec.expert_order),
        "timescale": spec.timescale,
        "action_dim": int(probe.action_space.shape[0]),
        "state_layout": {k: [s.start, s.stop] for k, s in probe.state_layout.items()},
        "env_options": cfg.env_options(),
        "config": asdict(cfg),
        "compat": cfg.compat(),
        "version": _version(),
        "git_commit": git_commit(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    shapes = frame_shapes(cfg, probe)
    probe.close()
    out = Path(cfg.out)
    with output_lock(out):  # two collections into one store would interleave their episodes
        try:
            writer = DemoWriter(out, metadata, shapes, cfg.cameras, cfg.chunk_frames, cfg.overwrite)
            writer.write_config_yaml(_yaml(cfg))
        except PermissionError:
            raise DatasetError(f"cannot write to {out}: permission denied") from None
        return fill(writer, cfg, _init_worker, (cfg,), _work, progress=progress)


def fill(
    writer: DemoWriter,
    cfg: CollectConfig,
    init: Callable[..., None],
    init_args: tuple,
    work: Callable[[int], tuple[dict[str, np.ndarray], dict[str, Any]]],
    first: int = 0,
    progress: bool = True,
    desc: str = "",
) -> Path:
    """Append episodes ``work(i)`` for ``i`` from the store's count - ``first`` up to ``cfg.episodes`` -
    ``first``, computed by ``cfg.workers`` workers started with ``init(*init_args)``; the caller holds the
    output lock. ``first``: episodes the store held before this kind of episode began (DAgger's copy).
    """
    out = writer.path
    todo = list(range(writer.num_episodes - first, cfg.episodes - first))
    if not todo:
        print(f"{out}: already has {writer.num_episodes} episodes (>= {cfg.episodes}); nothing to do")
        return out
    successes = int(np.sum(np.asarray(writer.root["meta/success"][first : writer.num_episodes])))
    bar = progress_bar(
        total=cfg.episodes - first,
        initial=writer.num_episodes - first,
        unit="ep",
        disable=not progress,
        desc=desc or f"collect {cfg.task}/{cfg.mode}",
    )
    start, frames = time.perf_counter(), 0
    results = parallel_map(init, init_args, work, todo, cfg.workers, cfg.backend, cfg.address)
    try:
        for ep_frames, episode in results:
            try:
                writer.append(ep_frames, episode)
            except OSError as exc:
                raise OSError(
                    f"writing {out} failed ({exc.strerror or exc}); the store keeps its {writer.num_episodes} "
                    "finished episodes; free space and re-run to resume"
                ) from None
            successes += episode["success"]
            frames += len(ep_frames["action"])
            elapsed = time.perf_counter() - start
            rate = successes / (writer.num_episodes - first)
            bar.set_postfix(frames_s=f"{frames / elapsed:.0f}", success=f"{rate:.0%}", refresh=False)
            bar.update(1)
    finally:
        bar.close()
        results.close()  # stops the workers
    return out


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hrlbc")
    except PackageNotFoundError:
        return "unknown"


def _yaml(cfg: CollectConfig) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
