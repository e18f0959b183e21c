"""A learned skill policy: load a checkpoint in one call, then ``reset()`` and ``act(obs, skill)``."""

from __future__ import annotations

import copy
import io
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from demos.io import atomic_write, first_line
from hrlbc.config import ConfigError
from hrlbc.skills.model import SkillNet

CHECKPOINT_FORMAT = "hrlbc-skills"


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a skills checkpoint; a missing file or another kind of file is a :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"skills checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # truncated file, not a torch file, ...
        raise ConfigError(f"cannot read skills checkpoint {path}: {first_line(exc)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path} is not an hrlbc skills checkpoint (made by 'hrlbc train-skills')")
    return ckpt


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write a skills checkpoint atomically (a crash leaves the previous file whole).

    Serialised in memory, then written by Python: a full disk is then ``OSError`` "No space left on
    device", where torch's own file writer says "[enforce fail at inline_container.cc] unexpected pos".
    """
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(buffer.getbuffer()))


# The parts of a training checkpoint that only resuming needs (raw weights, Adam's moments, RNG state):
# ~3/4 of its size.
TRAINING_ONLY_KEYS = ("train_state", "optimizer", "torch_rng")


def policy_only(ckpt: dict[str, Any]) -> dict[str, Any]:
    """``ckpt`` without :data:`TRAINING_ONLY_KEYS`: what running the policy needs, ~1/4 of the size."""
    return {k: v for k, v in ckpt.items() if k not in TRAINING_ONLY_KEYS}


def export_policy(src: str | Path, dst: str | Path) -> Path:
    """Write ``src``'s policy alone to ``dst``: its metadata, weights (fp32), history and best epoch.

    ``SkillPolicy.load``, ``hrlbc train-master skills=`` and ``hrlbc evaluate`` take the result like the
    original; ``train-skills resume=true`` does not. Returns ``dst``.
    """
    ckpt = load_checkpoint(src)
    dst = Path(dst)
    if dst.resolve() == Path(src).resolve():
        raise ConfigError(f"export to a new file, not over the training checkpoint {src}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(dst, policy_only(ckpt))
    return dst


def build_model(ckpt: dict[str, Any]) -> SkillNet:
    model = SkillNet(**ckpt["model"])
    model.load_state_dict(ckpt["state_dict"])
    return model


class SkillPolicy:
    """Runs a trained :class:`SkillNet` closed-loop on an env's observations.

    ``act(obs, skill)`` takes the env observation dict (uses ``obs["depth"]`` (H, W), or view 0 of
    (V, H, W)) and a skill id, keeps the last K frames itself, and returns the env action (A,) float32:
    de-normalised velocities of the first action offset and the gripper command (+1 open, -1 close).
    """

    def __init__(self, ckpt: dict[str, Any], device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.ckpt = ckpt
        self.model = build_model(ckpt).to(self.device).eval()
        self.task, self.skills, self.flat = ckpt["task"], list(ckpt["skills"]), bool(ckpt["flat"])
        self.frames, self.stride, self.image_size = ckpt["frames"], ckpt["frame_stride"], ckpt["image_size"]
        self.vel_mean = np.asarray(ckpt["vel_mean"], np.float32)
        self.vel_std = np.asarray(ckpt["vel_std"], np.float32)
        self.action_dim = ckpt["action_dim"]
        self.history: deque[np.ndarray] = deque(maxlen=(self.frames - 1) * self.stride + 1)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> SkillPolicy:
        return cls(load_checkpoint(path, device), device)

    def fork(self) -> SkillPolicy:
        """A policy sharing this one's network with a frame history of its own (one per env of a batch)."""
        twin = copy.copy(self)
        twin.history = deque(maxlen=self.history.maxlen)
        return twin

    def reset(self) -> None:
        self.history.clear()

    def stacked(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Push the newest frame and return the (K, H, W) stack (the first frame repeats at the start)."""
        depth = obs["depth"]
        frame = depth if depth.ndim == 2 else depth[0]
        if frame.shape[-1] != self.image_size:
            raise ConfigError(
                f"the skills were trained on {self.image_size}px depth, the env renders {frame.shape[-1]}px"
            )
        if not self.history:
            self.history.extend([frame] * self.history.maxlen)
        else:
            self.history.append(frame)
        return np.stack([self.history[i] for i in range(len(self.history) - 1, -1, -self.stride)][::-1])

    def act(self, obs: dict[str, np.ndarray], skill: int = 0) -> np.ndarray:
        return self.act_batch(self.stacked(obs)[None], np.array([skill]))[0]

    @torch.no_grad()
    def act_batch(self, stacks: np.ndarray, skills: np.ndarray) -> np.ndarray:
        """Actions (B, A) for frame stacks (B, K, H, W) and skill ids (B,): one forward pass for all."""
        depth = torch.from_numpy(np.ascontiguousarray(stacks, dtype=np.float32)).to(self.device)
        skill_t = torch.from_numpy(np.asarray(skills, dtype=np.int64)).to(self.device)
        vel, grip = self.model(depth, None if self.flat else skill_t)
        v = vel[:, 0].float().cpu().numpy() * self.vel_std + self.vel_mean
        actions = np.zeros((len(v), self.action_dim), np.float32)
        actions[:, : v.shape[1]] = v
        actions[:, -1] = np.where(grip[:, 0].argmax(-1).cpu().numpy() == 1, 1.0, -1.0)
        return actions
