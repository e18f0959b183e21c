"""The UR5 model: URDF kinematics against the DH reference, Cartesian control, grasping."""

import numpy as np
import pybullet as pb
import pytest

import envs
from envs.kinematics import UR5_JOINT_LIMITS, forward_kinematics
from envs.robot import ARM_JOINTS, FLANGE_LINK, UR5


def test_urdf_forward_kinematics_matches_dh():
    client = pb.connect(pb.DIRECT)
    try:
        robot = UR5(client, np.array([[0, -1, 0], [1, 1, 1]]))
        rng = np.random.default_rng(0)
        for _ in range(100):
            q = rng.uniform(UR5_JOINT_LIMITS[:, 0], UR5_JOINT_LIMITS[:, 1])
            for j, angle in zip(ARM_JOINTS, q):
                pb.resetJointState(robot.body, j, angle, physicsClientId=client)
            state = pb.getLinkState(robot.body, FLANGE_LINK, computeForwardKinematics=True, physicsClientId=client)
            pose = forward_kinematics(q)
            assert np.linalg.norm(np.array(state[4]) - pose[:3, 3]) < 1e-3
            rot = np.array(pb.getMatrixFromQuaternion(state[5])).reshape(3, 3)
            assert np.allclose(rot, pose[:3, :3], atol=1e-3)
    finally:
        pb.disconnect(client)


def test_velocity_command_moves_tool_and_is_clipped():
    env = envs.make_env("pick", depth=False)
    env.reset(seed=0)
    start = env.robot.tcp_pose()[0]
    for _ in range(10):
        env.step(np.array([1.0, 0.0, 0.0, 1.0]))  # 1 m/s asked, clipped to 0.075 m/s
    moved = env.robot.tcp_pose()[0] - start
    assert 0.05 < moved[0] <= 0.075 + 0.005  # 10 steps x 0.1 s x 0.075 m/s
    assert np.all(np.abs(moved[1:]) < 0.01)
    env.close()


def test_grasp_attaches_and_release_detaches():
    env = envs.make_env("pick", depth=False)
    obs, _ = env.reset(seed=1)
    cube, _ = env.object_pose(0)
    env.robot.reset(cube + np.array([0.0, 0.0, 0.0]))  # fingers open around the cube
    for _ in range(3):
        obs, *_ = env.step(np.array([0, 0, 0, -1.0]))
    assert env.robot.attached, "closing on the cube should attach it"
    assert obs["state"][env.state_layout["grasped"]][0] == 1.0
    for _ in range(15):
        env.step(np.array([0, 0, 0.075, -1.0]))
    assert env.object_pose(0)[0][2] > cube[2] + 0.05, "the attached cube rises with the tool"
    obs, *_ = env.step(np.array([0, 0, 0, 1.0]))
    assert not env.robot.attached
    assert obs["state"][env.state_layout["grasped"]][0] == 0.0
    env.close()


def test_closing_on_nothing_attaches_nothing():
    env = envs.make_env("pick", depth=False)
    env.reset(seed=2)
    for _ in range(5):
        env.step(np.array([0, 0, 0, -1.0]))
    assert not env.robot.attached
    assert env.robot.finger_position() < 0.005
    env.close()


def test_closed_fingers_pressed_onto_a_cube_do_not_pick_it_up():
    env = envs.make_env("pick", depth=False)
    env.reset(seed=1)
    cube, _ = env.object_pose(0)
    env.robot.reset(cube + np.array([0.0, 0.0, 0.08]))  # pads above the cube
    for _ in range(5):
        env.step(np.array([0, 0, 0, -1.0]))
    for _ in range(10):  # press the closed finger tips onto the cube's top face: both fingers touch it
        env.step(np.array([0, 0, -0.05, -1.0]))
    assert env.robot.tcp_pose()[0][2] - cube[2] < 0.05, "the finger tips reached the cube"
    assert not env.robot.attached
    for _ in range(15):
        env.step(np.array([0, 0, 0.075, -1.0]))
    assert env.object_pose(0)[0][2] < cube[2] + 0.01, "the cube stays on the table"
    env.close()


@pytest.mark.parametrize("task", ["pick", "bowl", "stack"])
def test_reset_puts_tool_in_start_box_pointing_down(task):
    env = envs.make_env(task, depth=False)
    env.reset(seed=5)
    pos, orn = env.robot.tcp_pose()
    assert np.all(pos >= env.start_low - 0.005) and np.all(pos <= env.start_high + 0.005)
    z_axis = np.array(pb.getMatrixFromQuaternion(orn)).reshape(3, 3)[:, 2]
    assert z_axis[2] < -0.99
    env.close()
