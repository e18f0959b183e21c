"""DAgger (Ross et al., 2011): the learned skills act, the scripted skills label (``hrlbc dagger``).

Behavior cloning learns from the expert's states only; a learned skill that ends 1 cm off drifts into states
no demonstration shows (a grasp closing beside the cube, a skill held past its end), and the master's retries
start from exactly those. One DAgger round runs the trained skills on new scenes, in the same random skill
sequences as the demonstrations, and stores what the scripted skill would command in every state they reach.
Training on the demonstrations plus these episodes teaches the recoveries.

The new store starts as a byte copy of the demonstrations (``meta`` says where the DAgger episodes begin),
then the DAgger episodes are appended; it resumes like ``collect``, and refuses to mix checkpoints.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import envs
from demos.collect import VALIDATION_SEED_START, CollectConfig, fill, git_commit, record_episode
from demos.io import die_with_parent, file_hash, output_lock
from demos.parallel import check_backend
from demos.store import DatasetError, DemoWriter, copy_store, open_dataset
from hrlbc.config import ConfigError, require_at_least


@dataclass
class DaggerConfig:
    task: str = field(default="pick", metadata={"help": "task of the demonstrations and skills"})
    data: str = field(default="data/${task}", metadata={"help": "the demonstration store the skills learned from"})
    skills: str = field(default="???", metadata={"help": "skills checkpoint that acts (hrlbc train-skills)"})
    out: str = field(default="${data}_dagger", metadata={"help": "new store: data's episodes + the DAgger ones"})
    episodes: int = field(default=300, metadata={"help": "DAgger episodes to add"})
    hold_max: int = field(
        default=-1,
        metadata={"help": "each skill runs until the scripted one is done + up to this many steps (-1: timescale)"},
    )
    skip: float = field(
        default=0.0,
        metadata={
            "help": "probability of leaving each skill out of an episode's sequence, so the skills also act "
            "where a master's shortcuts leave them (grasp without going above, release without lifting)"
        },
    )
    seed: int = field(default=100_000, metadata={"help": "DAgger episode j uses env seed seed + j"})
    workers: int = field(default=2, metadata={"help": "parallel worker processes"})
    backend: str = field(default="local", metadata={"help": "local (process pool) or ray"})
    address: str = field(default="", metadata={"help": "backend=ray: a cluster's HOST:PORT; empty starts one here"})

    def validate(self) -> None:
        require_at_least(self, ("episodes", "workers"))
        if not 0 <= self.skip < 1:
            raise ConfigError(f"skip must be in [0, 1), got {self.skip}")
        if self.hold_max < -1:
            raise ConfigError(f"hold_max must be >= 0, or -1 for the task's timescale, got {self.hold_max}")
        if self.seed < 0 or self.seed + self.episodes > VALIDATION_SEED_START:
            raise ConfigError(f"seed must be in [0, {VALIDATION_SEED_START} - episodes), got {self.seed}")
        check_backend(self.backend)
        if Path(self.out).resolve() == Path(self.data).resolve():
            raise ConfigError("out must be a new store, not data (DAgger never writes into the demonstrations)")


_worker: dict[str, Any] = {}


def _init_worker(collect_cfg: CollectConfig, skills: str, skip: float, pool_worker: bool = True) -> None:
    import torch

    from hrlbc.skills.policy import SkillPolicy

    if pool_worker:
        die_with_parent()
    torch.set_num_threads(1)  # one core per worker: the workers are the parallelism
    _worker["cfg"], _worker["skip"] = collect_cfg, skip
    _worker["env"] = envs.make_env(collect_cfg.task, **collect_cfg.env_options())
    _worker["policy"] = SkillPolicy.load(skills)


def _work(j: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    cfg, policy = _worker["cfg"], _worker["policy"]
    policy.reset()
    rng = np.random.default_rng([cfg.seed, j])
    sequence = envs.sample_skill_sequence(cfg.task, rng)
    kept = [s for s in sequence if rng.random() >= _worker["skip"]] or sequence[-1:]
    env = _worker["env"]
    return record_episode(env, cfg.seed + j, "skills", 0.0, cfg.hold_max, rng, actor=policy.act, sequence=kept)


def dagger(cfg: DaggerConfig, progress: bool = True) -> Path:
    """Build ``cfg.out``: the demonstrations of ``cfg.data`` and ``cfg.episodes`` DAgger episodes.

    Returns the store path. A finished store is left as it is; a partial one resumes; a store made from
    other demonstrations or another checkpoint is refused (:class:`DatasetError`).
    """
    from hrlbc.skills.policy import load_checkpoint

    src = open_dataset(cfg.data, verify=True)  # a copy keeps damage: refuse it here
    ckpt = load_checkpoint(cfg.skills)
    spec = envs.get_task(cfg.task).spec
    if src.task != spec.name or ckpt["task"] != spec.name or ckpt.get("flat"):
        raise ConfigError(
            f"task={spec.name}, demonstrations of {src.task}, skills of {ckpt['task']}"
            + (" (flat BC)" if ckpt.get("flat") else "")
            + ": DAgger needs one task's demonstrations and its skills checkpoint"
        )
    fields = {f.name for f in dataclasses.fields(CollectConfig)}
    source_cfg = {k: v for k, v in src.metadata["config"].items() if k in fields}
    hold = spec.timescale if cfg.hold_max < 0 else cfg.hold_max
    n_src = src.num_episodes
    collect_cfg = dataclasses.replace(
        CollectConfig(**source_cfg),
        episodes=n_src + cfg.episodes,
        workers=cfg.workers,
        seed=cfg.seed,
        hold_max=hold,
        noise=0.0,
        out=cfg.out,
        backend=cfg.backend,
        address=cfg.address,
    )
    # What must match to resume: the demonstrations it copied and the checkpoint that acts.
    same = {"from_episodes": n_src, "seed": cfg.seed, "skills_sha256": file_hash(cfg.skills), "hold_max": hold,
            "skip": cfg.skip}  # fmt: skip
    provenance = {
        "from": str(src.path.resolve()),
        "first_dagger_episode": n_src,
        "skills": str(Path(cfg.skills).resolve()),
        **same,
        "config": asdict(cfg),
        "git_commit": git_commit(),
    }
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    metadata = dict(src.metadata) | {"dagger": provenance, "created": created}
    metadata["compat"] = dict(src.metadata.get("compat", {})) | {"dagger": same}
    out = Path(cfg.out)
    with output_lock(out):
        if not out.exists() or not any(out.iterdir()):
            copy_store(src, out, metadata)
        # The copy made the arrays; the shapes only matter to a writer creating a store.
        writer = DemoWriter(out, metadata, src.frame_shapes(), collect_cfg.cameras, collect_cfg.chunk_frames)
        if writer.num_episodes < n_src:
            raise DatasetError(f"{out} holds {writer.num_episodes} episodes, fewer than the {n_src} it copied")
        writer.write_config_yaml(_yaml(cfg))
        return fill(
            writer,
            collect_cfg,
            _init_worker,
            (collect_cfg, cfg.skills, cfg.skip),
            _work,
            first=n_src,
            progress=progress,
            desc=f"dagger {spec.name}",
        )


def _yaml(cfg: DaggerConfig) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
