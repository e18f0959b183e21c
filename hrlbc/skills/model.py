"""The skill network: a trunk on stacked depth frames, FiLM-conditioned on the skill, and action heads.

Input: (B, K, H, W) depth in [0, 1] (K stacked frames, newest last), scaled to [-1, 1] inside.
Trunks (``encoder``):

- ``resnet18``: RLBC's. A 7x7/2 stem (64 channels) + max-pool, then four stages of two torchvision
  ``BasicBlock``s, widths 32-64-128-256 (``width=narrow``, RLBC's reference) or 64-128-256-512
  (``full``). ~50 M multiply-adds per 64x64 sample (narrow).
- ``spatial``: a compact CNN for 64x64 depth (~6 M multiply-adds). Objects are 1-3 px wide there, so
  nothing is thrown away before the first convolution has seen every pixel (3x3 kernels at stride 2
  overlap, no max-pool); two coordinate channels (CoordConv) tell every filter where it is; capacity
  goes to the 16x16 and 8x8 maps, where the objects are a few pixels apart; and the last map is
  flattened, not averaged (``pool=flatten``), so the head sees *where* things are.

FiLM: a one-hot skill id -> linear -> per-stage (gamma, beta), applied as ``x * (1 + gamma) + beta``
after each stage, so one network serves all skills. ``film=False`` gives the flat-BC network.
Pooling of the last feature map: ``avg`` (global average, ResNet's), ``keypoints`` (a spatial softmax,
as in robomimic: ``n`` learned keypoints, each the expected image position (x, y) in [-1, 1] of a
softmax over one 1x1-conv channel) or ``flatten`` (a 1x1 convolution to a few channels, then every
position's values). ``auto`` is ``avg`` for ``resnet18`` and ``flatten`` for ``spatial``.
Heads, for each action offset: normalised velocities (``vel_dim``) and 2 gripper logits
(0 = close, 1 = open).

Located keypoints (``located=N``, spatial trunk only; train-skills' ``keypoints`` key): N channels of the
16x16 map are each a softmax over positions, trained (with privileged labels, in training only) to peak
where one task object or the tool is in the image; their expected positions (x, y) in [-1, 1] join the
head's input. Found objects' positions are what the skills steer by, and a heatmap label teaches a small
convolution to find a 3 px cube from a few hundred scenes, where the action loss alone does not.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

from hrlbc.skills.config import ENCODERS, POOLS, WIDTHS

KEYPOINTS = 32
# The spatial trunk's stages: (output channels, stride) of one 3x3 convolution + BatchNorm + ReLU each,
# FiLM after each. 64 -> 32 -> 16 -> 16 -> 8 px.
SPATIAL_STAGES = ((16, 2), (32, 2), (32, 1), (64, 2))
FLATTEN_CHANNELS = 16  # pool=flatten: channels kept per position of the last map (8 x 8 x 16 = 1024 values)
LOCATE_STAGE = 2  # located keypoints read the spatial trunk's third stage: 16 x 16 at 64 px, a cube 0.75 cells


class NetOutput(NamedTuple):
    """Everything one forward pass gives (B = batch)."""

    velocity: torch.Tensor  # (B, n_offsets, vel_dim), normalised
    gripper: torch.Tensor  # (B, n_offsets, 2) logits, 1 = open
    aux: torch.Tensor | None  # (B, aux_dim) auxiliary state prediction, or None
    located: torch.Tensor | None  # (B, N, h, w) logits of the located keypoints' heatmaps, or None


def _stage(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
    return nn.Sequential(BasicBlock(inplanes, planes, stride, downsample), BasicBlock(planes, planes))


def _conv_bn_relu(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(planes),
        nn.ReLU(inplace=True),
    )


def coord_channels(depth: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) -> (B, K + 2, H, W): the frames and each pixel's (x, y) in [-1, 1] (CoordConv)."""
    b, _, h, w = depth.shape
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, h, device=depth.device, dtype=depth.dtype),
        torch.linspace(-1, 1, w, device=depth.device, dtype=depth.dtype),
        indexing="ij",
    )
    return torch.cat([depth, torch.stack([xs, ys]).expand(b, 2, h, w)], dim=1)


class SkillNet(nn.Module):
    """FiLM-conditioned policy network (see the module docstring for encoders and pooling)."""

    def __init__(
        self,
        n_skills: int,
        vel_dim: int,
        n_offsets: int,
        frames: int = 3,
        width: str = "narrow",
        film: bool = True,
        pool: str = "avg",
        encoder: str = "resnet18",
        image_size: int = 64,
        aux_dim: int = 0,
        located: int = 0,
    ) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {list(ENCODERS)}, got {encoder!r}")
        if width not in WIDTHS:
            raise ValueError(f"width must be one of {list(WIDTHS)}, got {width!r}")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {list(POOLS)}, got {pool!r}")
        if pool == "auto":
            pool = "flatten" if encoder == "spatial" else "avg"
        if located and encoder != "spatial":
            raise ValueError(f"located keypoints need the spatial encoder, not {encoder!r}")
        self.n_skills, self.vel_dim, self.n_offsets, self.film_enabled = n_skills, vel_dim, n_offsets, film
        self.encoder = encoder
        if encoder == "resnet18":
            widths = WIDTHS[width]
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
            map_size = -(-image_size // 32)  # each stride-2 layer rounds up
        else:
            widths = tuple(c for c, _ in SPATIAL_STAGES)
            self.stem = nn.Identity()
            stages, inplanes = [], frames + 2  # + the coordinate channels
            for planes, stride in SPATIAL_STAGES:
                stages.append(_conv_bn_relu(inplanes, planes, stride))
                inplanes = planes
            map_size = -(-image_size // 8)
        self.stages = nn.ModuleList(stages)
        self.widths = widths
        self.film = nn.Linear(n_skills, 2 * sum(widths)) if film else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)  # start as the identity modulation
            nn.init.zeros_(self.film.bias)
        self.feature_dim = widths[-1]
        self.keypoints = nn.Conv2d(widths[-1], KEYPOINTS, kernel_size=1) if pool == "keypoints" else None
        self.squeeze = None
        if pool == "flatten":
            self.squeeze = nn.Sequential(nn.Conv2d(widths[-1], FLATTEN_CHANNELS, 1), nn.ReLU(inplace=True))
        pooled = {"keypoints": 2 * KEYPOINTS, "flatten": FLATTEN_CHANNELS * map_size**2}.get(pool, widths[-1])
        self.locate = nn.Conv2d(widths[LOCATE_STAGE], located, kernel_size=1) if located else None
        self.head = nn.Sequential(
            nn.Linear(pooled + 2 * located, 256), nn.ReLU(inplace=True), nn.Linear(256, n_offsets * (vel_dim + 2))
        )
        # Training only: a linear read-out of privileged state (object positions relative to the tool) from
        # the pooled features, so the trunk learns to localise from a dense signal (train-skills' aux_state).
        self.aux = nn.Linear(pooled, aux_dim) if aux_dim > 0 else None
        # NHWC: measured on the 2-core CPU, 1.2x training and 1.6x single-frame inference (docs/benchmarks.md); the
        # weights keep this layout through load_state_dict, .to(device) and deep copies.
        self.to(memory_format=torch.channels_last)

    def features(self, depth: torch.Tensor, skill: torch.Tensor | None) -> torch.Tensor:
        """Trunk feature map (B, C, h, w) for ``depth`` (B, K, H, W) in [0, 1] and ``skill`` (B,) long."""
        return self._trunk(depth, skill)[0]

    def _trunk(self, depth: torch.Tensor, skill: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(the last feature map, the map the located keypoints read or None)."""
        x = depth * 2.0 - 1.0
        if self.encoder == "spatial":
            x = coord_channels(x)
        x = self.stem(x.contiguous(memory_format=torch.channels_last))
        if self.film is not None:
            if skill is None:
                raise ValueError("this skill network is FiLM-conditioned: give a skill id")
            params = self.film(nn.functional.one_hot(skill, self.n_skills).to(x.dtype))
            chunks = torch.split(params, [2 * w for w in self.widths], dim=1)
        mid = None
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if self.film is not None:
                gamma, beta = chunks[i].chunk(2, dim=1)
                x = x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
            if i == LOCATE_STAGE and self.locate is not None:
                mid = x
        return x, mid

    def forward(self, depth: torch.Tensor, skill: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (velocities (B, n_offsets, vel_dim) normalised, gripper logits (B, n_offsets, 2))."""
        return self.forward_all(depth, skill)[:2]

    def forward_all(self, depth: torch.Tensor, skill: torch.Tensor | None = None) -> NetOutput:
        """``forward``'s outputs, the auxiliary state prediction and the located keypoints' heatmap logits."""
        maps, mid = self._trunk(depth, skill)
        x = self.pool(maps)
        aux = None if self.aux is None else self.aux(x)
        located = None
        if self.locate is not None:
            located = self.locate(mid)
            x = torch.cat([x, soft_argmax(located)], dim=1)
        out = self.head(x).view(-1, self.n_offsets, self.vel_dim + 2)
        return NetOutput(out[..., : self.vel_dim], out[..., self.vel_dim :], aux, located)

    def pool(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) feature maps -> (B, D) pooled features (see the module docstring)."""
        if self.squeeze is not None:
            return self.squeeze(maps).flatten(1)
        if self.keypoints is None:
            return maps.mean(dim=(2, 3))
        return soft_argmax(self.keypoints(maps))


def soft_argmax(logits: torch.Tensor) -> torch.Tensor:
    """(B, n, h, w) logits -> (B, 2n): each channel's expected position (x, y) in [-1, 1] under its softmax."""
    h, w = logits.shape[-2:]
    attention = torch.softmax(logits.flatten(2).float(), dim=-1)  # fp32 under autocast
    ys, xs = torch.meshgrid(
        torch.linspace(-1, 1, h, device=logits.device), torch.linspace(-1, 1, w, device=logits.device), indexing="ij"
    )
    grid = torch.stack([xs.flatten(), ys.flatten()], dim=1)  # (h*w, 2)
    return (attention @ grid).flatten(1).to(logits.dtype)


def heatmap_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each heatmap (B, n, h, w) with its point ``target`` (B, n, 2) as (x, y) in [-1, 1].

    The point's probability mass is split over its four nearest cells (bilinear), so the label keeps its
    sub-cell position; points outside the image are clamped to its border. Returns (B,): mean over the n maps.
    """
    b, n, h, w = logits.shape
    x = (target[..., 0].clamp(-1, 1) + 1) / 2 * (w - 1)
    y = (target[..., 1].clamp(-1, 1) + 1) / 2 * (h - 1)
    x0, y0 = x.floor().clamp(0, w - 2), y.floor().clamp(0, h - 2)
    fx, fy = x - x0, y - y0
    log_p = torch.log_softmax(logits.flatten(2).float(), dim=-1)  # (B, n, h*w)
    ce = torch.zeros(b, n, device=logits.device)
    for dy, dx, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        cell = ((y0 + dy) * w + x0 + dx).long()
        ce = ce - weight * log_p.gather(2, cell[..., None])[..., 0]
    return ce.mean(dim=1)
