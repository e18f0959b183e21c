"""The skill network: a torchvision ResNet-18 trunk on stacked depth frames, FiLM-conditioned on the skill.

Input: (B, K, H, W) depth in [0, 1] (K stacked frames, newest last), scaled to [-1, 1] inside.
Trunk: 7x7/2 stem (64 channels) + max-pool, then four stages of two torchvision ``BasicBlock``s,
widths 32-64-128-256 (``narrow``, RLBC's reference) or 64-128-256-512 (``full``, ResNet-18).
FiLM: a one-hot skill id -> linear -> per-stage (gamma, beta), applied as ``x * (1 + gamma) + beta``
after each stage, so one network serves all skills. ``film=False`` gives the flat-BC network.
Pooling of the last feature map: ``avg`` (global average, ResNet's) or ``keypoints`` (a spatial
softmax, as in robomimic: ``n`` learned keypoints, each the expected image position (x, y) in [-1, 1]
of a softmax over one 1x1-conv channel). Keypoints keep *where* features are, which average pooling
discards; on Pick they still did worse (93% / 83% at 64 / 128 px vs 97% / 99%, README), so ``avg``
is the default.
Heads, for each action offset: normalised velocities (``vel_dim``) and 2 gripper logits
(0 = close, 1 = open).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

from hrlbc.skills.config import POOLS, WIDTHS

KEYPOINTS = 32


def _stage(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
    return nn.Sequential(BasicBlock(inplanes, planes, stride, downsample), BasicBlock(planes, planes))


class SkillNet(nn.Module):
    """FiLM-conditioned ResNet-18 policy network (see the module docstring)."""

    def __init__(
        self,
        n_skills: int,
        vel_dim: int,
        n_offsets: int,
        frames: int = 3,
        width: str = "narrow",
        film: bool = True,
        pool: str = "avg",
    ) -> None:
        super().__init__()
        if width not in WIDTHS:
            raise ValueError(f"width must be one of {list(WIDTHS)}, got {width!r}")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {list(POOLS)}, got {pool!r}")
        widths = WIDTHS[width]
        self.n_skills, self.vel_dim, self.n_offsets, self.film_enabled = n_skills, vel_dim, n_offsets, film
        self.stem = nn.Sequential(
            nn.Conv2d(frames, 64, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        stages, inplanes = [], 64
        for i, planes in enumerate(widths):
            stages.append(_stage(inplanes, planes, 1 if i == 0 else 2))
            inplanes = planes
        self.stages = nn.ModuleList(stages)
        self.widths = widths
        self.film = nn.Linear(n_skills, 2 * sum(widths)) if film else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)  # start as the identity modulation
            nn.init.zeros_(self.film.bias)
        self.feature_dim = widths[-1]
        self.keypoints = nn.Conv2d(widths[-1], KEYPOINTS, kernel_size=1) if pool == "keypoints" else None
        pooled = 2 * KEYPOINTS if self.keypoints is not None else widths[-1]
        self.head = nn.Sequential(
            nn.Linear(pooled, 256), nn.ReLU(inplace=True), nn.Linear(256, n_offsets * (vel_dim + 2))
        )
        # NHWC: measured on the 2-core CPU, 1.2x training and 1.6x single-frame inference (README); the
        # weights keep this layout through load_state_dict, .to(device) and deep copies.
        self.to(memory_format=torch.channels_last)

    def features(self, depth: torch.Tensor, skill: torch.Tensor | None) -> torch.Tensor:
        """Trunk feature map (B, C, h, w) for ``depth`` (B, K, H, W) in [0, 1] and ``skill`` (B,) long."""
        x = self.stem((depth * 2.0 - 1.0).contiguous(memory_format=torch.channels_last))
        if self.film is not None:
            if skill is None:
                raise ValueError("this skill network is FiLM-conditioned: give a skill id")
            params = self.film(nn.functional.one_hot(skill, self.n_skills).to(x.dtype))
            chunks = torch.split(params, [2 * w for w in self.widths], dim=1)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if self.film is not None:
                gamma, beta = chunks[i].chunk(2, dim=1)
                x = x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
        return x

    def forward(self, depth: torch.Tensor, skill: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (velocities (B, n_offsets, vel_dim) normalised, gripper logits (B, n_offsets, 2))."""
        x = self.pool(self.features(depth, skill))
        out = self.head(x).view(-1, self.n_offsets, self.vel_dim + 2)
        return out[..., : self.vel_dim], out[..., self.vel_dim :]

    def pool(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) feature maps -> (B, D) pooled features (see the module docstring)."""
        if self.keypoints is None:
            return maps.mean(dim=(2, 3))
        logits = self.keypoints(maps).flatten(2).float()  # (B, n, h*w); softmax in fp32 under autocast
        attention = torch.softmax(logits, dim=-1)
        h, w = maps.shape[-2:]
        ys, xs = torch.meshgrid(
            torch.linspace(-1, 1, h, device=maps.device), torch.linspace(-1, 1, w, device=maps.device), indexing="ij"
        )
        grid = torch.stack([xs.flatten(), ys.flatten()], dim=1)  # (h*w, 2)
        return (attention @ grid).flatten(1).to(maps.dtype)  # (B, 2n): expected (x, y) per keypoint
