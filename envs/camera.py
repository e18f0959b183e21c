"""Cameras: depth (normalised metric), RGB and semantic segmentation from PyBullet's TinyRenderer.

TinyRenderer runs on the CPU in every process, so rendering needs no display and no GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pybullet as pb

# Semantic mask classes (uint8): 0 background, 1 table, 2 robot, 3 + k the task's k-th object, then
# one class for a task's loose contents (ManipulationEnv._contents).
MASK_BACKGROUND, MASK_TABLE, MASK_ROBOT, MASK_FIRST_OBJECT = 0, 1, 2, 3


@dataclass(frozen=True)
class CameraParams:
    """A pinhole camera aimed at ``target`` (m, world frame) from ``distance`` (m), ``yaw``/``pitch`` (deg).

    Depth is metric z-depth mapped linearly from [near, far] (m) to [0, 1]; 1 also means "nothing".
    """

    # Framed for 64x64 depth: the placement area and the gripper up to ~0.3 m fill the image. (RLBC's
    # 1.62 m / -28 deg / fov 60 camera rendered 224 px; at 64 px a cube would be 2 pixels wide.)
    target: tuple[float, float, float] = (0.5, 0.0, 0.1)
    distance: float = 1.05
    yaw: float = 90.0
    pitch: float = -45.0
    fov: float = 50.0
    near: float = 0.3
    far: float = 1.6

    def jittered(self, rng: np.random.Generator) -> CameraParams:
        """A random camera as in RLBC: target +-5 cm per axis, distance +-5 cm, yaw +-20 deg, pitch +-6 deg."""
        return replace(
            self,
            target=tuple(float(t) for t in np.asarray(self.target) + rng.uniform(-0.05, 0.05, 3)),
            distance=self.distance + float(rng.uniform(-0.05, 0.05)),
            yaw=self.yaw + float(rng.uniform(-20.0, 20.0)),
            pitch=self.pitch + float(rng.uniform(-6.0, 6.0)),
        )

    def as_array(self) -> np.ndarray:
        """(9,) float64: target xyz, distance, yaw, pitch, fov, near, far (stored with demonstrations)."""
        return np.array([*self.target, self.distance, self.yaw, self.pitch, self.fov, self.near, self.far])


def project(params: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Image positions of world points: ``params`` (9,) as ``CameraParams.as_array``, ``points`` (N, 3) m.

    Returns (N, 2) float32 (x, y), -1 and 1 at the image's edges (x to the right, y down), for any
    resolution; points outside the view fall outside [-1, 1].
    """
    target, (distance, yaw, pitch, fov, near, far) = params[:3], params[3:]
    view = np.array(pb.computeViewMatrixFromYawPitchRoll(target.tolist(), distance, yaw, pitch, 0.0, 2)).reshape(4, 4)
    proj = np.array(pb.computeProjectionMatrixFOV(fov, 1.0, near, far)).reshape(4, 4)
    clip = np.c_[points, np.ones(len(points))] @ view @ proj  # PyBullet's matrices are column-major: row vectors
    ndc = clip[:, :2] / clip[:, 3:4]
    return np.stack([ndc[:, 0], -ndc[:, 1]], axis=1).astype(np.float32)


class Camera:
    """Renders one view of size ``size`` x ``size``; matrices are computed once per pose."""

    def __init__(self, params: CameraParams, size: int) -> None:
        self.params = params
        self.size = size
        self.view = pb.computeViewMatrixFromYawPitchRoll(
            params.target, params.distance, params.yaw, params.pitch, 0.0, 2
        )
        self.proj = pb.computeProjectionMatrixFOV(params.fov, 1.0, params.near, params.far)

    def render(
        self, client: int, rgb: bool = False, mask_lut: np.ndarray | None = None, size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Render the scene.

        Returns:
            depth (H, W) float32 in [0, 1]; rgb (H, W, 3) uint8 or None; mask (H, W) uint8 or None, the
            segmentation mapped through ``mask_lut`` (index: PyBullet body id + 1, so -1 = background).
        """
        n = size or self.size
        flags = 0 if mask_lut is not None else pb.ER_NO_SEGMENTATION_MASK
        _, _, color, zbuf, seg = pb.getCameraImage(
            n, n, self.view, self.proj, shadow=0, renderer=pb.ER_TINY_RENDERER, flags=flags, physicsClientId=client
        )
        near, far = self.params.near, self.params.far
        zbuf = np.asarray(zbuf, dtype=np.float32).reshape(n, n)
        metric = far * near / (far - (far - near) * zbuf)
        depth = np.clip((metric - near) / (far - near), 0.0, 1.0).astype(np.float32)
        image = np.asarray(color, dtype=np.uint8).reshape(n, n, 4)[..., :3] if rgb else None
        mask = None
        if mask_lut is not None:
            seg = np.asarray(seg, dtype=np.int64).reshape(n, n)
            mask = mask_lut[np.clip(seg + 1, 0, len(mask_lut) - 1)]
        return depth, image, mask
