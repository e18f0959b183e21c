"""The simulated UR5 with its parallel-jaw gripper: Cartesian velocity control and grasping.

Frames: everything is in the world frame, which is the robot base frame (the base sits at the origin
on the table top, z up). The tool centre point (``tcp``) lies between the finger pads; with the
default orientation the tool z axis points down and the fingers close along the world y axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pybullet as pb

URDF_PATH = Path(__file__).with_name("assets") / "ur5.urdf"
ARM_JOINTS = (0, 1, 2, 3, 4, 5)
FINGER_JOINTS = (7, 8)
FLANGE_LINK, TCP_LINK = 6, 9
FINGER_OPEN = 0.055  # finger joint travel (m); the gap between the pads is twice this
ARM_FORCES = (150.0, 150.0, 150.0, 28.0, 28.0, 28.0)  # N m, UR5 joint torques
FINGER_FORCE = 40.0  # N
# An object is held only when the pads press on it along the closing axis: closed finger tips pressed
# onto a cube's top face touch it with both fingers too, and used to attach it (a learned Stack grasp
# did). A contact counts when its normal is within 45 deg of the closing axis.
PINCH_COS = 0.7
# Elbow-up configuration with the tcp at (0.45, 0, 0.25) pointing down: the IK seed of every reset.
HOME_Q = (0.245, -1.477, -1.896, -1.339, 1.571, -1.326)
DOWN = pb.getQuaternionFromEuler((np.pi, 0.0, 0.0))


class UR5:
    """One UR5 in a PyBullet client.

    Control (``apply``) integrates commanded tool velocities into a target tcp pose, clamps it to the
    workspace box, solves IK and sends joint position targets; the caller steps the physics. Grasping
    follows the reference MImE environments: closing fingers stop on contact, and when both fingers
    touch the same graspable object a fixed constraint attaches it to the flange; opening releases it.
    """

    def __init__(self, client: int, workspace: np.ndarray) -> None:
        self.client = client
        self.workspace = np.asarray(workspace, dtype=np.float64)  # (2, 3): low and high corner (m)
        self.body = pb.loadURDF(
            str(URDF_PATH), useFixedBase=True, flags=pb.URDF_ENABLE_CACHED_GRAPHICS_SHAPES, physicsClientId=client
        )
        for link in (-1, *range(pb.getNumJoints(self.body, physicsClientId=client))):
            pb.changeDynamics(self.body, link, lateralFriction=1.0, physicsClientId=client)
        self.target_pos = np.zeros(3)
        self.target_orn = np.array(DOWN)
        self.gripper_closed = False
        self.attached: dict[int, int] = {}  # object body id -> constraint id
        self.graspable: tuple[int, ...] = ()

    # ------------------------------------------------------------------ reset
    def reset(self, tcp_pos: np.ndarray, tcp_orn: np.ndarray | None = None) -> None:
        """Teleport the arm so that its tcp is at ``tcp_pos`` (m) with orientation ``tcp_orn`` (xyzw)."""
        c = self.client
        orn = np.array(DOWN if tcp_orn is None else tcp_orn, dtype=np.float64)
        for j, q in zip(ARM_JOINTS, HOME_Q):
            pb.resetJointState(self.body, j, q, physicsClientId=c)
        for _ in range(4):  # IK from the current state; a few passes converge to sub-millimetre
            q = pb.calculateInverseKinematics(self.body, TCP_LINK, tcp_pos, orn, maxNumIterations=50, physicsClientId=c)
            for j in ARM_JOINTS:
                pb.resetJointState(self.body, j, q[j], physicsClientId=c)
        for j in FINGER_JOINTS:
            pb.resetJointState(self.body, j, FINGER_OPEN, physicsClientId=c)
        self.target_pos = np.array(tcp_pos, dtype=np.float64)
        self.target_orn = orn
        self.gripper_closed = False
        self.attached = {}
        self._send(q[:6], FINGER_OPEN)

    # ---------------------------------------------------------------- control
    def apply(self, linear: np.ndarray, angular: np.ndarray, gripper: float, dt: float) -> None:
        """Command one control step.

        Args:
            linear: tool linear velocity (3,) in m/s, world frame.
            angular: tool angular velocity (3,) in rad/s, world frame.
            gripper: > 0 opens, < 0 closes, 0 keeps the current state.
            dt: control period (s).
        """
        self.target_pos = np.clip(self.target_pos + linear * dt, self.workspace[0], self.workspace[1])
        if np.any(angular):
            angle = float(np.linalg.norm(angular)) * dt
            delta = pb.getQuaternionFromAxisAngle(angular / np.linalg.norm(angular), angle)
            _, orn = pb.multiplyTransforms((0, 0, 0), delta, (0, 0, 0), self.target_orn)
            self.target_orn = np.array(orn)
        if gripper > 0 and self.gripper_closed:
            self.gripper_closed = False
            for constraint in self.attached.values():
                pb.removeConstraint(constraint, physicsClientId=self.client)
            self.attached = {}
        elif gripper < 0:
            self.gripper_closed = True
        q = pb.calculateInverseKinematics(
            self.body, TCP_LINK, self.target_pos, self.target_orn, maxNumIterations=20, physicsClientId=self.client
        )
        finger = FINGER_OPEN
        if self.gripper_closed:
            # Holding an object: freeze the fingers where they touched it (closing stops on contact).
            finger = self.finger_position() if self.attached else 0.0
        self._send(q[:6], finger)

    def _send(self, arm_q, finger: float) -> None:
        c = self.client
        pb.setJointMotorControlArray(
            self.body, ARM_JOINTS, pb.POSITION_CONTROL, targetPositions=arm_q, forces=ARM_FORCES, physicsClientId=c
        )
        pb.setJointMotorControlArray(
            self.body,
            FINGER_JOINTS,
            pb.POSITION_CONTROL,
            targetPositions=(finger, finger),
            forces=(FINGER_FORCE, FINGER_FORCE),
            physicsClientId=c,
        )

    def update_grasp(self) -> None:
        """After the physics steps: attach a graspable object that both closing fingers pinch (see PINCH_COS)."""
        if not self.gripper_closed or self.attached:
            return
        c = self.client
        left = pb.getContactPoints(self.body, linkIndexA=FINGER_JOINTS[0], physicsClientId=c)
        if not left:
            return
        right = pb.getContactPoints(self.body, linkIndexA=FINGER_JOINTS[1], physicsClientId=c)
        flange = pb.getLinkState(self.body, FLANGE_LINK, computeForwardKinematics=True, physicsClientId=c)
        axis = np.array(pb.getMatrixFromQuaternion(flange[5])).reshape(3, 3)[:, 1]  # the fingers slide along y

        def pinched(contacts) -> set[int]:  # pt[2]: the other body; pt[7]: the contact normal (world frame)
            return {pt[2] for pt in contacts if abs(np.dot(pt[7], axis)) > PINCH_COS}

        for obj in sorted(pinched(left) & pinched(right) & set(self.graspable)):
            self.attach(obj)

    def attach(self, obj: int) -> None:
        """Attach ``obj`` rigidly to the flange at its current relative pose."""
        c = self.client
        flange = pb.getLinkState(self.body, FLANGE_LINK, computeForwardKinematics=True, physicsClientId=c)
        obj_pos, obj_orn = pb.getBasePositionAndOrientation(obj, physicsClientId=c)
        inv_pos, inv_orn = pb.invertTransform(flange[4], flange[5])
        rel_pos, rel_orn = pb.multiplyTransforms(inv_pos, inv_orn, obj_pos, obj_orn)
        cid = pb.createConstraint(
            self.body,
            FLANGE_LINK,
            obj,
            -1,
            pb.JOINT_FIXED,
            (0, 0, 0),
            rel_pos,
            (0, 0, 0),
            parentFrameOrientation=rel_orn,
            physicsClientId=c,
        )
        pb.changeConstraint(cid, maxForce=200.0, physicsClientId=c)
        self.attached[obj] = cid
        self.gripper_closed = True

    # ------------------------------------------------------------------ state
    def joint_positions(self) -> np.ndarray:
        """Arm joint angles (6,) in rad."""
        states = pb.getJointStates(self.body, ARM_JOINTS, physicsClientId=self.client)
        return np.array([s[0] for s in states])

    def finger_position(self) -> float:
        """Mean finger joint travel (m); the pad gap is twice this."""
        states = pb.getJointStates(self.body, FINGER_JOINTS, physicsClientId=self.client)
        return 0.5 * (states[0][0] + states[1][0])

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Measured tcp position (3,) in m and orientation (4,) xyzw, world frame."""
        state = pb.getLinkState(self.body, TCP_LINK, computeForwardKinematics=True, physicsClientId=self.client)
        return np.array(state[4]), np.array(state[5])
