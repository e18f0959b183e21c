"""``hrlbc train-skills``: behavior cloning of every skill of a task from a demonstration store.

Reads top to bottom: config (``TrainSkillsConfig``, its keys and defaults in ``hrlbc/skills/config.py``)
-> data (split by episode) -> model -> loop (train, validate per skill, closed-loop success on held-out
seeds, checkpoints) -> curves. Loss: MSE on normalised velocities at every action offset +
``gripper_weight`` x cross-entropy on the gripper class.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

import envs
from demos import open_dataset
from demos.collect import VALIDATION_SEED_START
from demos.io import output_lock
from demos.progress import progress_bar
from hrlbc.config import ConfigError, run_checkpoint, save_config
from hrlbc.cpu import ThreadFit
from hrlbc.figures import pyplot, save_png
from hrlbc.skills.augment import DepthAugment
from hrlbc.skills.config import TrainSkillsConfig
from hrlbc.skills.data import (
    BCBatches,
    BlockShuffleSampler,
    FrameSource,
    aux_state_targets,
    batch_loader,
    build_targets,
    located_targets,
)
from hrlbc.skills.model import SkillNet, heatmap_loss
from hrlbc.skills.policy import (
    CHECKPOINT_FORMAT,
    TRAINING_ONLY_KEYS,
    SkillPolicy,
    load_checkpoint,
    policy_only,
    save_checkpoint,
)
from hrlbc.skills.rollout import run_skill_sequence


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a NaN loss); the last good checkpoint is kept."""


def autocast_bf16(precision: str, device: torch.device) -> bool:
    """Whether training runs under bf16 autocast for ``precision`` (auto, fp32, bf16 or fast) on ``device``.

    bf16 keeps fp32's exponent range, so its gradients need no loss scaling. ``auto`` leaves CPUs at fp32:
    the measured CPU recipes are fp32. ``fast`` takes bf16 wherever it is native (a GPU, a CPU with
    AVX512-BF16 or AMX) and fp32 elsewhere: a bf16 recipe that runs on any machine without the ~3-5x cost
    of emulated bf16 on other CPUs.
    """
    if precision == "fast":
        return device.type == "cuda" or cpu_has_bf16()
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def cpu_has_bf16() -> bool:
    """Whether oneDNN reports native bf16 on this CPU (AVX512-BF16 or AMX); False where torch cannot tell."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def loader_workers(requested: int, device: torch.device) -> int:
    """DataLoader workers for ``num_workers=requested`` (-1 = auto).

    On a CPU the model's threads already use every core, so a loader worker only takes one from them:
    on the 2-core EPYC, in-process loading was as fast or faster (`benchmarks/bc_throughput.py`,
    `sim2real`: ratio 0.78-0.86 vs 0.72-0.76; the quick preset's flat BC: 25 s epochs vs 30-38 s, its
    skills at the same pace). A GPU leaves the cores to augmentation: there the loader workers set the
    pace (docs/skills_studies.md, GPU).
    """
    if requested >= 0:
        return requested
    return min(8, max(1, (os.cpu_count() or 2) - 1)) if device.type == "cuda" else 0


def thread_fit(requested: int, device: torch.device) -> ThreadFit | None:
    """Training's torch threads for ``threads=requested``: a fixed count, or with 0 on a CPU a
    :class:`ThreadFit` that follows the cores other processes leave free (call its ``check()`` per batch).
    """
    if requested > 0 or device.type != "cpu":
        torch.set_num_threads(requested or os.cpu_count() or 1)
        return None
    return ThreadFit()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is available")
    return torch.device(name)


def check_dataset(cfg: TrainSkillsConfig, ds) -> None:
    """Refuse, before training, a dataset of another task or one the config cannot use."""
    meta = ds.metadata
    if meta.get("task") != cfg.task:
        raise ConfigError(f"dataset {cfg.data} holds task {meta.get('task')!r}, not {cfg.task!r}")
    spec = envs.get_task(cfg.task).spec
    if list(meta.get("skills", [])) != list(spec.skills):
        raise ConfigError(f"dataset {cfg.data} has skills {meta.get('skills')}, the task now has {list(spec.skills)}")
    if ds.num_episodes < 2:
        raise ConfigError(f"dataset {cfg.data} has {ds.num_episodes} episode(s); need >= 2 (train + validation)")
    size = int(ds.arrays["depth"].shape[-1])
    if cfg.image_size and cfg.image_size != size:
        raise ConfigError(f"dataset {cfg.data} has {size}px depth, the config asks for image_size={cfg.image_size}")
    if DepthAugment(cfg.augment, 1).needs_mask and "mask" not in ds.arrays:
        raise ConfigError(f"augment={cfg.augment} needs masks, but {cfg.data} was collected with mask=false")


def split_episodes(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) episode ids, split by episode so no frame of a validation episode is trained on."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(math.ceil(fraction * n))) if fraction > 0 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def frames_of(ds, episodes: np.ndarray) -> np.ndarray:
    parts = [np.arange(*ds.episode_range(int(e))) for e in episodes]
    return np.concatenate(parts) if parts else np.array([], np.int64)


def bc_loss(
    model: SkillNet,
    batch: dict[str, torch.Tensor],
    gripper_weight: float,
    flat: bool,
    aux_weight: float = 0.0,
    located_weight: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (total loss, per-sample loss (B,)) for a batch on the model's device.

    ``aux_weight`` > 0 adds that weight x the MSE of the auxiliary state prediction (``batch["aux"]``),
    ``located_weight`` > 0 that weight x the located keypoints' heatmap cross-entropy (``batch["located"]``).
    """
    out = model.forward_all(batch["depth"], None if flat else batch["skill"])
    mse = ((out.velocity.float() - batch["velocity"]) ** 2).mean(dim=(1, 2))
    grip = out.gripper.float().flatten(0, 1)
    ce = nn.functional.cross_entropy(grip, batch["gripper"].flatten(), reduction="none")
    per_sample = mse + gripper_weight * ce.view(len(mse), -1).mean(1)
    # Training only: validation reports the policy's loss alone.
    if out.aux is not None and aux_weight > 0:
        per_sample = per_sample + aux_weight * ((out.aux.float() - batch["aux"]) ** 2).mean(dim=1)
    if out.located is not None and located_weight > 0:
        per_sample = per_sample + located_weight * heatmap_loss(out.located, batch["located"])
    return per_sample.mean(), per_sample


def closed_loop_success(
    model: SkillNet, ckpt_meta: dict, cfg: TrainSkillsConfig, env: envs.ManipulationEnv, episodes: int
) -> float:
    """Learned skills in the expert order at the task timescale (flat: one policy for the whole episode)."""
    policy = SkillPolicy({**ckpt_meta, "state_dict": model.state_dict()}, device=next(model.parameters()).device)
    spec = env.spec_task
    sequence, timescale = ([0], spec.max_episode_steps) if cfg.flat else (list(spec.expert_order), spec.timescale)
    seeds = range(VALIDATION_SEED_START, VALIDATION_SEED_START + episodes)
    results = [run_skill_sequence(env, policy.act, sequence, s, timescale, on_reset=policy.reset) for s in seeds]
    return float(np.mean([r["success"] for r in results]))


def train_skills(cfg: TrainSkillsConfig, progress: bool = True) -> Path:
    """Train; return the path of ``best.pt``. See the module docstring."""
    with output_lock(Path(cfg.out)):  # two runs into one folder would overwrite each other's checkpoints
        return _train_skills(cfg, progress=progress)


def _train_skills(cfg: TrainSkillsConfig, progress: bool = True) -> Path:
    # ---------------------------------------------------------------- setup
    spec = envs.get_task(cfg.task).spec
    cfg.task = spec.name
    ds = open_dataset(cfg.data, verify=True)  # damaged frames are never trained on
    check_dataset(cfg, ds)
    out = Path(cfg.out)
    last_path, resuming = run_checkpoint(out, "last.pt", cfg.resume)
    device = resolve_device(cfg.device)
    workers = loader_workers(cfg.num_workers, device)
    threads = thread_fit(cfg.threads, device)
    torch.manual_seed(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")

    # ----------------------------------------------------------------- data
    image_size = int(ds.arrays["depth"].shape[-1])
    n_views = int(ds.arrays["depth"].shape[1])
    action_dim = int(ds.metadata["action_dim"])
    vel_dim = action_dim - 1
    train_eps, val_eps = split_episodes(ds.num_episodes, cfg.val_fraction, cfg.seed)
    train_frames, val_frames = frames_of(ds, train_eps), frames_of(ds, val_eps)
    # Velocity components are normalised by their spread, but never by less than 10% of their limit.
    limits = [spec.max_linear_speed] * 3 + [spec.max_angular_speed] * (vel_dim - 3)
    init = load_checkpoint(cfg.init) if cfg.init else None
    if init is not None and (init["task"] != spec.name or bool(init["flat"]) != cfg.flat):
        raise ConfigError(f"init={cfg.init} holds {'flat BC' if init['flat'] else 'skills'} of {init['task']}")
    targets = build_targets(
        ds,
        vel_dim,
        tuple(cfg.action_offsets),
        cfg.gripper_lookahead,
        stats_frames=train_frames,
        std_floor=0.1 * np.asarray(limits, np.float32),
        stats=None if init is None else (init["vel_mean"], init["vel_std"]),
    )
    if cfg.aux_state > 0:
        targets.aux = aux_state_targets(ds, train_frames)
    augment = DepthAugment(cfg.augment, image_size, seed=cfg.seed)
    if cfg.keypoints > 0:
        if augment.per_sample:  # per-sample transforms move the image without telling the labels
            raise ConfigError(f"keypoints needs augment=none or shift, not {cfg.augment!r}")
        targets.located = located_targets(ds)
    keys = ("depth", "mask") if augment.needs_mask else ("depth",)
    source = FrameSource(ds, keys, cfg.cache_gb * 2**30)
    train_set = BCBatches(source, targets, cfg.frames, cfg.frame_stride, n_views, augment, cfg.seed)
    val_set = BCBatches(source, targets, cfg.frames, cfg.frame_stride, n_views, None, cfg.seed)
    sampler = BlockShuffleSampler(train_frames, cfg.batch_size, cfg.seed)
    val_batches = [val_frames[i : i + 256] for i in range(0, len(val_frames), 256)]
    if len(sampler) == 0:
        raise ConfigError(f"{len(train_frames)} training frames make no batch of batch_size={cfg.batch_size}")

    # ---------------------------------------------------------------- model
    model_args = dict(
        n_skills=len(spec.skills),
        vel_dim=vel_dim,
        n_offsets=len(cfg.action_offsets),
        frames=cfg.frames,
        width=cfg.width,
        film=not cfg.flat,
        pool=cfg.pool,
        encoder=cfg.encoder,
        image_size=image_size,
        aux_dim=0 if targets.aux is None else targets.aux.shape[1],
        located=0 if targets.located is None else targets.located.shape[2],
    )
    model = SkillNet(**model_args).to(device)
    optimizer = adam(model.parameters(), cfg.lr, device)
    # The policy is the exponential moving average of the weights: single SGD iterates of a BC net
    # differ a lot in closed loop (success jumps between epochs); their average does not.
    ema = ema_model(model, cfg.ema) if cfg.ema > 0 else None
    policy_net = ema.module if ema is not None else model
    amp = autocast_bf16(cfg.precision, device)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "task": spec.name,
        "skills": list(spec.skills),
        "flat": cfg.flat,
        "model": model_args,
        "frames": cfg.frames,
        "frame_stride": cfg.frame_stride,
        "image_size": image_size,
        "action_dim": action_dim,
        "offsets": list(cfg.action_offsets),
        "vel_mean": targets.vel_mean.tolist(),
        "vel_std": targets.vel_std.tolist(),
        "config": asdict(cfg),
        "dataset": {
            "path": str(cfg.data),
            "episodes": ds.num_episodes,
            "frames": ds.num_frames,
            "created": ds.metadata.get("created"),
        },
    }
    history: dict[str, list] = {
        "epoch": [],
        "train_loss": [],
        "val_loss": [],
        "val_loss_per_skill": [],
        "success": [],
        "samples": [],
        "wall_s": [],
    }
    start_epoch, best, samples_seen, wall = 0, {"success": -1.0, "val_loss": float("inf"), "epoch": -1}, 0, 0.0
    if init is not None and not resuming:
        if init["model"] != model_args:
            raise ConfigError(f"init={cfg.init} is another model ({init['model']}); give the same model keys")
        model.load_state_dict(init["state_dict"])  # the weight average: the policy it ran
        if ema is not None:
            ema.module.load_state_dict(init["state_dict"])
    if resuming:
        ckpt = load_checkpoint(last_path, device)
        if ckpt["model"] != model_args or ckpt["task"] != spec.name:
            raise ConfigError(f"{last_path} was trained with another task or model; cannot resume with this config")
        if any(k not in ckpt for k in TRAINING_ONLY_KEYS):
            raise ConfigError(
                f"{last_path} is an exported policy without training state (export-skills); cannot resume"
            )
        state = ckpt["train_state"]
        if (ema is not None) != (state["ema_updates"] is not None):
            raise ConfigError(f"{last_path} was written without the weight average ema={cfg.ema} needs; cannot resume")
        if ema is None:
            model.load_state_dict(ckpt["state_dict"])
        else:  # "state_dict" holds the average, "train_state" the raw weights and the update count
            model.load_state_dict(state["model"])
            ema.module.load_state_dict(ckpt["state_dict"])
            ema.n_averaged.fill_(state["ema_updates"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch, history, best = ckpt["epoch"] + 1, ckpt["history"], ckpt["best"]
        samples_seen, wall = ckpt["samples_seen"], ckpt["wall_s"]
        torch.set_rng_state(ckpt["torch_rng"])
    env = envs.make_env(spec.name, image_size=image_size) if cfg.eval_every > 0 else None
    from torch.utils.tensorboard import SummaryWriter

    tb = SummaryWriter(str(out / "tb"))
    if progress:  # what this run is, before its first progress bar
        todo = f"epochs {start_epoch + 1}-{cfg.epochs}" if start_epoch < cfg.epochs else f"all {cfg.epochs} epochs done"
        print(
            f"train-skills {spec.name} ({'flat BC' if cfg.flat else 'skills'}): {len(train_frames)} frames of "
            f"{len(train_eps)} episodes to train, {len(val_frames)} of {len(val_eps)} to validate; {device.type}, "
            f"{'up to ' if threads is not None else ''}{torch.get_num_threads()} threads, "
            f"{'bf16' if amp else 'fp32'}, encoder={encoder_name(cfg)}, augment={cfg.augment}, {todo} -> {out}",
            flush=True,
        )
        native = device.type == "cpu" and cpu_has_bf16()
        if native and not amp:
            print("  this CPU computes bf16 natively: precision=bf16 trains ~1.4x faster (docs/design.md, Precision)")
        if device.type == "cpu" and amp and not native:
            print(
                "  this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 autocast runs ~3-5x slower than fp32 "
                "here; precision=fast takes bf16 only where it is native (docs/design.md, Precision)"
            )

    # ----------------------------------------------------------------- loop
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(cfg.lr, epoch, cfg.epochs)
        sampler.set_epoch(epoch)
        train_set.rng = np.random.default_rng([cfg.seed, epoch, 1])
        augment.set_seed(cfg.seed * 100003 + epoch)
        loader = batch_loader(train_set, sampler, workers, device, _worker_init(cfg.seed, epoch))
        n_batches = len(sampler) if cfg.max_batches <= 0 else min(len(sampler), cfg.max_batches)
        bar = progress_bar(
            total=n_batches * cfg.batch_size,
            unit="sa",
            unit_scale=True,
            disable=not progress,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
        )
        losses = []
        for i, batch in enumerate(loader):
            if i >= n_batches:
                break
            if threads is not None:
                threads.check()
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss, _ = bc_loss(model, batch, cfg.gripper_weight, cfg.flat, cfg.aux_state, cfg.keypoints)
            if not torch.isfinite(loss):
                bar.close()
                raise TrainingError(
                    f"non-finite loss ({loss.item()}) at epoch {epoch + 1}, batch {i}; "
                    f"stopped, the last good checkpoint is kept in {out} (try a lower lr)"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
            losses.append(loss.item())
            samples_seen += len(batch["skill"])
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", refresh=False)  # redrawing is update's job
            bar.update(len(batch["skill"]))
        bar.close()
        del loader

        # ------------------------------------- validation (of the policy weights)
        policy_net.eval()
        per_skill_sum, per_skill_n = np.zeros(len(spec.skills)), np.zeros(len(spec.skills))
        with torch.no_grad():
            for idx in val_batches:
                batch = {k: v.to(device) for k, v in val_set[idx].items()}
                _, per_sample = bc_loss(policy_net, batch, cfg.gripper_weight, cfg.flat)
                skills = batch["skill"].cpu().numpy()
                np.add.at(per_skill_sum, skills, per_sample.float().cpu().numpy())
                np.add.at(per_skill_n, skills, 1)
        val_loss = float(per_skill_sum.sum() / max(per_skill_n.sum(), 1))
        per_skill = (per_skill_sum / np.maximum(per_skill_n, 1)).tolist()
        success = None
        if env is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
            success = closed_loop_success(policy_net, meta, cfg, env, cfg.eval_episodes)
        wall += time.perf_counter() - t0
        for key, value in (
            ("epoch", epoch + 1),
            ("train_loss", float(np.mean(losses))),
            ("val_loss", val_loss),
            ("val_loss_per_skill", per_skill),
            ("success", success),
            ("samples", samples_seen),
            ("wall_s", wall),
        ):
            history[key].append(value)
        tb.add_scalar("loss/train", history["train_loss"][-1], samples_seen)
        tb.add_scalar("loss/val", val_loss, samples_seen)
        for name, value in zip(spec.skills, per_skill):
            tb.add_scalar(f"loss_val_skill/{name}", value, samples_seen)
        if success is not None:
            tb.add_scalar("success/closed_loop", success, samples_seen)
        message = f"epoch {epoch + 1}: train {history['train_loss'][-1]:.4f} val {val_loss:.4f}"
        message += "" if success is None else f" closed-loop success {success:.0%} ({cfg.eval_episodes} seeds)"
        bar.write(message) if progress else None

        # --------------------------------------------------- checkpoints
        improved = (success is not None and (success, -val_loss) > (best["success"], -best["val_loss"])) or (
            success is None and best["success"] < 0 and val_loss < best["val_loss"]
        )
        if improved:
            best = {"success": -1.0 if success is None else success, "val_loss": val_loss, "epoch": epoch + 1}
        payload = {
            **meta,
            "state_dict": policy_net.state_dict(),  # what SkillPolicy runs
            "train_state": {  # what resume needs beyond the policy weights (with ema=0 they are the raw ones)
                "model": model.state_dict() if ema is not None else None,
                "ema_updates": int(ema.n_averaged) if ema is not None else None,
            },
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "history": history,
            "best": best,
            "samples_seen": samples_seen,
            "wall_s": wall,
            "torch_rng": torch.get_rng_state(),
        }
        # Only last.pt is resumed from, so the others hold the policy alone: 1/4 of the size (11 MiB
        # instead of 44 for the default trunk), small enough to keep every few epochs or to commit.
        if improved:
            save_checkpoint(out / "best.pt", policy_only(payload))
        if cfg.checkpoint_every > 0 and (epoch + 1) % cfg.checkpoint_every == 0:
            save_checkpoint(out / f"epoch_{epoch + 1}.pt", policy_only(payload))
        save_checkpoint(last_path, payload)  # last: a crash before this line loses at most this epoch
    tb.close()
    if env is not None:
        env.close()
    what = "flat BC" if cfg.flat else "skills"
    plot_curves(history, out / "curves.png", f"{spec.env_id} {what} ({encoder_name(cfg)}, augment={cfg.augment})")
    return out / "best.pt"


def encoder_name(cfg: TrainSkillsConfig) -> str:
    """``spatial`` or ``resnet18-narrow``: the trunk as a label for logs and charts."""
    return cfg.encoder if cfg.encoder != "resnet18" else f"resnet18-{cfg.width}"


def adam(params: Iterable[torch.Tensor], lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam, with torch's fused kernel on the devices that have one (CPU, CUDA).

    On a CPU torch's default steps the trunk's ~60 tensors one by one; the fused kernel makes one pass
    over all of them (benchmarks/adam_step.py). A resumed run keeps the kind its checkpoint was written with.
    """
    return torch.optim.Adam(params, lr=lr, fused=device.type in ("cpu", "cuda"))


def ema_model(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """Exponential moving average of ``model``'s parameters and BatchNorm statistics.

    The statistics are averaged too, so they match the averaged weights rather than the latest ones.
    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so short runs are
    not dominated by the random initial weights.
    """

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        if not averaged[0].is_floating_point():  # the tensors come grouped by dtype: batch counters
            torch._foreach_copy_(averaged, current)
            return
        n = float(n_averaged)
        torch._foreach_lerp_(averaged, current, 1.0 - min(decay, (1.0 + n) / (10.0 + n)))

    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=update, use_buffers=True)


def cosine_lr(lr: float, epoch: int, epochs: int) -> float:
    """Cosine decay from ``lr`` to 1% of it: late epochs refine instead of jumping between solutions.

    A pure function of (epoch, epochs), so a resumed run follows the same schedule as a straight one.
    """
    return lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1))))


def _worker_init(seed: int, epoch: int):
    def init(worker_id: int) -> None:
        info = torch.utils.data.get_worker_info()
        info.dataset.rng = np.random.default_rng([seed, epoch, 2, worker_id])
        if info.dataset.augment is not None:
            info.dataset.augment.set_seed(seed * 100003 + epoch * 101 + worker_id + 1)

    return init


def plot_curves(history: dict[str, list], path: Path, title: str) -> None:
    """Losses (train, validation) and closed-loop success per epoch, as one PNG."""
    plt = pyplot()

    epochs = history["epoch"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(epochs, history["train_loss"], "o-", label="train")
    ax1.plot(epochs, history["val_loss"], "s-", label="validation")
    ax1.set_yscale("log")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax1.grid(alpha=0.3)
    pts = [(e, s) for e, s in zip(epochs, history["success"]) if s is not None]
    if pts:
        ax2.plot(*zip(*pts), "o-", color="tab:green")
    ax2.set_ylim(-0.05, 1.05)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("closed-loop success (validation seeds)")
    ax2.grid(alpha=0.3)
    save_png(fig, path, title)
