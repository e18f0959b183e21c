"""The skills stage's configs and augmentation presets, importable without torch or albumentations.

The CLI imports a command's config to print its keys (``--help``) and to check ``key=value`` overrides;
from here that takes a second, not the ~5-10 s of importing torch, torchvision and albumentations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

import envs
from hrlbc.config import CONFIG_DIR, ConfigError, require_at_least

WIDTHS = {"narrow": (32, 64, 128, 256), "full": (64, 128, 256, 512)}  # ResNet-18 stage widths
POOLS = ("auto", "avg", "keypoints", "flatten")  # pooling of the last feature map (hrlbc.skills.model)
ENCODERS = ("resnet18", "spatial")  # skill-network trunks (hrlbc.skills.model)
PRECISIONS = ("auto", "fp32", "bf16", "fast")  # training matmuls; see autocast_bf16


@dataclass
class TrainSkillsConfig:
    task: str = field(default="pick", metadata={"help": f"task of the dataset ({', '.join(envs.TASKS)})"})
    data: str = field(default="data/${task}", metadata={"help": "demonstration store (hrlbc collect)"})
    out: str = field(default="runs/${task}_skills", metadata={"help": "output directory for checkpoints, logs"})
    epochs: int = field(default=20, metadata={"help": "training epochs"})
    batch_size: int = field(default=64, metadata={"help": "batch size"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    encoder: str = field(
        default="spatial",
        metadata={"help": "trunk: spatial (compact CNN for 64 px depth, ~8x faster) or resnet18 (RLBC's)"},
    )
    width: str = field(default="narrow", metadata={"help": "ResNet-18 widths: narrow (32-256) or full (64-512)"})
    pool: str = field(
        default="auto",
        metadata={"help": "last map pooling: auto (resnet18: avg, spatial: flatten), avg, keypoints, flatten"},
    )
    ema: float = field(default=0.999, metadata={"help": "decay of the weight average the policy uses (0 = off)"})
    frames: int = field(default=3, metadata={"help": "stacked depth frames K"})
    frame_stride: int = field(default=1, metadata={"help": "steps between stacked frames"})
    action_offsets: list[int] = field(
        default_factory=lambda: [1, 10, 20, 30], metadata={"help": "predicted actions (1 = now)"}
    )
    gripper_lookahead: int = field(
        default=1,
        metadata={"help": "gripper label: close this many steps early (RLBC: 5; our fingers close in one step)"},
    )
    gripper_weight: float = field(default=0.1, metadata={"help": "lambda: weight of the gripper cross-entropy"})
    aux_state: float = field(
        default=0.0,
        metadata={
            "help": "weight of an auxiliary loss predicting the privileged state (objects relative to the tool, "
            "finger gap) from the image features; training only (0 = off)"
        },
    )
    keypoints: float = field(
        default=0.0,
        metadata={
            "help": "weight of the located-keypoint loss: the spatial encoder learns where each task object and the "
            "tool are in the image (privileged labels, training only) and its head reads those positions (0 = off)"
        },
    )
    image_size: int = field(default=0, metadata={"help": "expected depth resolution (0 = the dataset's)"})
    augment: str = field(default="light", metadata={"help": "augmentation preset: none, light, shift, sim2real"})
    flat: bool = field(default=False, metadata={"help": "flat BC: no skill input (one policy for the whole task)"})
    val_fraction: float = field(default=0.05, metadata={"help": "fraction of episodes held out for validation"})
    checkpoint_every: int = field(default=5, metadata={"help": "keep epoch_N.pt every N epochs (0 = never)"})
    eval_every: int = field(default=1, metadata={"help": "closed-loop success every N epochs (0 = off)"})
    eval_episodes: int = field(default=10, metadata={"help": "held-out seeds per closed-loop evaluation"})
    max_batches: int = field(default=0, metadata={"help": "cap on batches per epoch (0 = all; for smoke tests)"})
    device: str = field(default="auto", metadata={"help": "auto (cuda if present), cpu or cuda"})
    precision: str = field(
        default="auto",
        metadata={
            "help": "training matmuls: auto (bf16 on cuda, fp32 on cpu), fp32, bf16 (autocast; on a CPU with "
            "AVX512-BF16 or AMX ~1.5x the model's speed, on others ~3-5x slower), or fast (bf16 where the hardware "
            "computes it natively, else fp32); validation and rollouts stay fp32"
        },
    )
    num_workers: int = field(
        default=-1,
        metadata={"help": "DataLoader worker processes (-1 = auto: in-process on CPU, cores - 1 up to 8 on CUDA)"},
    )
    threads: int = field(
        default=0,
        metadata={"help": "torch CPU threads (0 = the cores other processes leave free, re-checked every 2 s)"},
    )
    cache_gb: float = field(default=4.0, metadata={"help": "load frames into RAM when they fit in this many GiB"})
    seed: int = field(default=0, metadata={"help": "seed (split, init, sampling, augmentation)"})
    resume: bool = field(default=False, metadata={"help": "continue from out/last.pt"})
    init: str = field(
        default="",
        metadata={
            "help": "start from this skills checkpoint's weights and action normalisation (fine-tuning, e.g. on "
            "a DAgger store); the same model keys"
        },
    )

    def validate(self) -> None:
        require_at_least(self, ("epochs", "batch_size", "frames", "frame_stride", "eval_episodes"))
        if self.lr <= 0:  # NaN and inf: hrlbc.config.check_finite, for every command's float keys
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.aux_state < 0:
            raise ConfigError(f"aux_state must be >= 0, got {self.aux_state}")
        if self.keypoints < 0:
            raise ConfigError(f"keypoints must be >= 0, got {self.keypoints}")
        if self.keypoints > 0 and self.encoder != "spatial":
            raise ConfigError(f"keypoints needs encoder=spatial (its 16x16 map), not {self.encoder!r}")
        if self.width not in WIDTHS:
            raise ConfigError(f"width must be one of {list(WIDTHS)}, got {self.width!r}")
        if self.encoder not in ENCODERS:
            raise ConfigError(f"encoder must be one of {list(ENCODERS)}, got {self.encoder!r}")
        if self.pool not in POOLS:
            raise ConfigError(f"pool must be one of {list(POOLS)}, got {self.pool!r}")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"ema must be in [0, 1), got {self.ema}")
        if not self.action_offsets or min(self.action_offsets) < 1:
            raise ConfigError(f"action_offsets must be >= 1, got {self.action_offsets}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.num_workers < -1:
            raise ConfigError(f"num_workers must be >= 0, or -1 for auto, got {self.num_workers}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision must be {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}, got {self.precision!r}"
            )
        load_preset(self.augment)  # unknown preset -> ConfigError now, not after loading data


@dataclass
class PreviewConfig:
    data: str = field(default="???", metadata={"help": "dataset directory"})
    augment: str = field(default="sim2real", metadata={"help": "preset: none, light, shift, sim2real"})
    out: str = field(default="augment.png", metadata={"help": "output PNG"})
    rows: int = field(default=4, metadata={"help": "frames shown (one row each)"})
    samples: int = field(default=6, metadata={"help": "augmented samples per frame"})
    seed: int = field(default=0, metadata={"help": "seed"})

    def validate(self) -> None:
        # One PNG meant for a person: a bound keeps a typo (rows=100000) from running for minutes into GBs.
        for name, most in (("rows", MAX_PREVIEW_ROWS), ("samples", MAX_PREVIEW_SAMPLES)):
            value = getattr(self, name)
            if not 1 <= value <= most:
                raise ConfigError(f"{name} must be in [1, {most}] (one figure), got {value}")
        load_preset(self.augment)


MAX_PREVIEW_ROWS, MAX_PREVIEW_SAMPLES = 32, 16


def preset_names() -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / "augment").glob("*.yaml"))


def load_preset(name: str) -> list[dict[str, Any]]:
    """The transform list of ``configs/augment/<name>.yaml`` (or a path to such a file)."""
    path = Path(name) if name.endswith(".yaml") else CONFIG_DIR / "augment" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown augmentation preset {name!r}; valid: {', '.join(preset_names())}")
    return OmegaConf.to_container(OmegaConf.load(path))["transforms"] or []
