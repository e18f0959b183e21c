"""Feature extractors for the PPO master (stable-baselines3 ``BaseFeaturesExtractor``s).

``cnn``: a small CNN on the (frames, H, W) depth stack, trained with the master.
``skill``: as in RLBC, the frozen skill network's trunk run once per skill condition on the same
depth stack; the K feature maps (K x C x h x w) are concatenated on channels and go through
conv 3x3 -> 64, tanh, conv 3x3 -> 64, tanh, global average pool.
For a dict view (``obs=depth_proprio``, ``recent_skills=N``) either of them reads the depth stack and
:class:`WithVectors` appends the view's vectors (proprioception, recent skill choices), each through a
small MLP, to its features.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

STEM_STRIDE = 4  # DepthCNN's first stride for new masters (why: DepthCNN)


class DepthCNN(BaseFeaturesExtractor):
    """Three convolutions (strides ``stem_stride``, 2, 2) + a linear layer on (B, frames, H, W) depth in
    [0, 1]; the last map is average-pooled to 4 x 4 x 64 (the identity at 64 px with stride 4).

    ``train-master`` builds it with ``stem_stride=STEM_STRIDE`` (4), as in the Nature DQN CNN: a quarter
    of the cost of stride 2 (a PPO minibatch of 64, forward, backward and Adam: 14.7 vs 43-56 ms on the 2-core CPU,
    ``benchmarks/ppo_update.py``;
    the update is over half of ppo-flat's wall-clock). The default 2 is the layout of the masters saved
    before: their stored extractor arguments lack the key, and the weights have the same shapes, so a
    different default would load them without error into the wrong network.
    """

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 256, stem_stride: int = 2) -> None:
        super().__init__(observation_space, features_dim)
        c = observation_space.shape[0]
        self.cnn = nn.Sequential(
            nn.Conv2d(c, 32, 5, stride=stem_stride, padding=2),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
        )
        self.linear = nn.Sequential(nn.Linear(64 * 16, features_dim), nn.ReLU())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(obs * 2.0 - 1.0))


class SkillFeatures(BaseFeaturesExtractor):
    """Frozen FiLM skill trunk, once per skill, + a small trainable conv head (RLBC's master input)."""

    def __init__(self, observation_space: gym.spaces.Box, checkpoint: str, features_dim: int = 64) -> None:
        super().__init__(observation_space, features_dim)
        from hrlbc.skills.policy import build_model, load_checkpoint

        ckpt = load_checkpoint(checkpoint)
        self.trunk = build_model(ckpt).eval()
        for p in self.trunk.parameters():
            p.requires_grad_(False)
        self.n_skills = self.trunk.n_skills
        channels = self.trunk.feature_dim * self.n_skills
        self.head = nn.Sequential(
            nn.Conv2d(channels, 64, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(64, features_dim, 3, padding=1),
            nn.Tanh(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def apply(self, fn):
        # SB3's ortho_init runs features_extractor.apply(init_weights): that must reach the head only,
        # or the frozen skill trunk becomes a random network (it did, until this override).
        self.head.apply(fn)
        fn(self)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self.trunk.eval()  # batch-norm statistics stay those of behavior cloning
        return self

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        b = obs.shape[0]
        with torch.no_grad():
            skills = torch.arange(self.n_skills, device=obs.device).repeat_interleave(b)
            maps = self.trunk.features(obs.repeat(self.n_skills, 1, 1, 1), skills)  # (K*B, C, h, w)
            maps = maps.view(self.n_skills, b, *maps.shape[1:]).transpose(0, 1).flatten(1, 2)
        return self.head(maps)


# Per entry of MasterView's proprio vector (tcp position m, orientation xyzw, pad gap m): scales that
# bring each to O(1), as the image features are; the gap (0 to 0.11 m) would otherwise barely register.
PROPRIO_SCALE = (5.0, 5.0, 5.0, 1.0, 1.0, 1.0, 1.0, 10.0)


class WithVectors(BaseFeaturesExtractor):
    """A depth extractor (``cnn`` or ``skill``) on ``obs["depth"]``, plus linear -> 32, tanh on each vector
    of a dict view: the scaled ``obs["proprio"]`` (B, 8) and ``obs["recent_skills"]`` (B, N * K) where
    present; the feature vectors are concatenated.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        image: str = "cnn",
        checkpoint: str | None = None,
        stem_stride: int = 2,
    ) -> None:
        spaces = observation_space.spaces
        if image == "skill":
            depth = SkillFeatures(spaces["depth"], checkpoint)
        else:
            depth = DepthCNN(spaces["depth"], stem_stride=stem_stride)
        vectors = [k for k in ("proprio", "recent_skills") if k in spaces]
        super().__init__(observation_space, depth.features_dim + 32 * len(vectors))
        self.depth = depth
        # attribute names as in the masters saved before recent_skills existed, so they load
        if "proprio" in spaces:
            self.proprio = nn.Sequential(nn.Linear(spaces["proprio"].shape[0], 32), nn.Tanh())
            self.register_buffer("scale", torch.tensor(PROPRIO_SCALE))
        if "recent_skills" in spaces:
            self.recent_skills = nn.Sequential(nn.Linear(spaces["recent_skills"].shape[0], 32), nn.Tanh())

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [self.depth(obs["depth"])]
        if "proprio" in obs:
            parts.append(self.proprio(obs["proprio"] * self.scale))
        if "recent_skills" in obs:
            parts.append(self.recent_skills(obs["recent_skills"]))
        return torch.cat(parts, dim=1)


WithProprio = WithVectors  # the name masters saved before recent_skills existed refer to


def load_master(path: str, skills: str | None = None) -> PPO:
    """A saved master (SB3 ``PPO`` .zip) on CPU; ``skills`` rebuilds its frozen skill trunk from that checkpoint.

    A ``skill``-features master records the skills checkpoint it was trained over by path, and building its
    extractor reads that file for the trunk's architecture (its weights then come from the .zip). ``skills``
    stands in for that file: a copy of it on another machine, or retrained skills of the same architecture.
    Raises ``ValueError`` when the .zip's trunk does not fit the one ``skills`` builds.
    """
    import zipfile

    from stable_baselines3.common.save_util import json_to_data

    custom: dict = {}
    if skills:
        with zipfile.ZipFile(path) as archive:
            policy_kwargs = json_to_data(archive.read("data").decode())["policy_kwargs"]
        extractor_kwargs = policy_kwargs.get("features_extractor_kwargs", {})
        if "checkpoint" in extractor_kwargs:
            rebuilt = extractor_kwargs | {"checkpoint": skills}
            custom["policy_kwargs"] = policy_kwargs | {"features_extractor_kwargs": rebuilt}
    try:
        return PPO.load(path, device="cpu", custom_objects=custom)
    except RuntimeError:  # load_state_dict: a trunk of another width or depth
        if not custom:
            raise
        raise ValueError(
            f"the skills {skills} build a trunk of another architecture (width, frames) than the master {path}'s"
        ) from None
