"""UR5 Denavit-Hartenberg kinematics (standard DH), independent of PyBullet.

The URDF in ``envs/assets/ur5.urdf`` is generated from these numbers; this module is the reference the
tests compare it against. Units: metres and radians, robot base frame.
"""

from __future__ import annotations

import numpy as np

UR5_D = (0.089159, 0.0, 0.0, 0.10915, 0.09465, 0.0823)
UR5_A = (0.0, -0.425, -0.39225, 0.0, 0.0, 0.0)
UR5_ALPHA = (np.pi / 2, 0.0, 0.0, np.pi / 2, -np.pi / 2, 0.0)
# Real UR5 limits: +-2pi on every joint; the elbow is limited to +-pi to avoid self-collision.
UR5_JOINT_LIMITS = np.array([[-2 * np.pi, 2 * np.pi]] * 2 + [[-np.pi, np.pi]] + [[-2 * np.pi, 2 * np.pi]] * 3)


def dh_transform(theta: float, d: float, a: float, alpha: float) -> np.ndarray:
    """Homogeneous 4x4 transform Rz(theta) Tz(d) Tx(a) Rx(alpha)."""
    ct, st, ca, sa = np.cos(theta), np.sin(theta), np.cos(alpha), np.sin(alpha)
    return np.array(
        [
            [ct, -st * ca, st * sa, a * ct],
            [st, ct * ca, -ct * sa, a * st],
            [0.0, sa, ca, d],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def forward_kinematics(q: np.ndarray) -> np.ndarray:
    """Flange (``tool0``) pose for joint angles ``q`` (6,) in rad: a 4x4 transform in the base frame."""
    pose = np.eye(4)
    for theta, d, a, alpha in zip(q, UR5_D, UR5_A, UR5_ALPHA):
        pose = pose @ dh_transform(theta, d, a, alpha)
    return pose
