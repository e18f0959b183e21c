"""UR5-Breakfast: physical pouring, sphere retention, success and failure predicates, API, expert."""

import gymnasium as gym
import numpy as np
import pybullet as pb
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from demos.collect import CollectConfig, collect
from envs.skills import tilt_of
from envs.tasks.breakfast import POUR_TILT, SPHERES_PER_CUP, tool_tilt


def _run_skill(env, obs, skill, max_steps=300):
    skill.reset()
    for _ in range(max_steps):
        action, done = skill.act(obs["state"])
        obs, _, terminated, truncated, info = env.step(action)
        if done or terminated or truncated:
            return obs, info
    raise AssertionError(f"{skill.name} did not finish in {max_steps} steps")


def test_registered_and_checkers_pass():
    env = gym.make("UR5-Breakfast-v0", image_size=32)
    assert env.action_space.shape == (7,), "linear (3) + wrist angular (3) + gripper"
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    env.close()


def test_same_seed_same_episode():
    def rollout():
        env = envs.make_env("breakfast", image_size=32)
        obs, _ = env.reset(seed=4)
        out = [obs["state"]]
        for t in range(15):
            obs, *_ = env.step(np.array([0.05, -0.03, 0.02, 0.0, 0.3 * (t > 5), 0.0, 1.0], np.float32))
            out.append(obs["state"])
        env.close()
        return np.stack(out), obs["depth"]

    (a, da), (b, db) = rollout(), rollout()
    assert np.array_equal(a, b) and np.array_equal(da, db)


def test_cup_left_alone_keeps_its_spheres_for_10_seconds():
    env = envs.make_env("breakfast", depth=False)
    env.reset(seed=0)
    for _ in range(100):  # 10 s at 10 Hz
        _, _, terminated, _, info = env.step(np.zeros(7))
        assert not terminated, info
    spheres = env.sphere_positions()
    for k in range(2):
        pos, _ = env.object_pose(k)
        mine = np.zeros(len(spheres), bool)
        mine[k * SPHERES_PER_CUP : (k + 1) * SPHERES_PER_CUP] = True
        assert np.array_equal(env.in_cup(spheres, k), mine), "each cup's footprint holds its own spheres only"
        assert np.all(spheres[mine, 2] < pos[2] + env.object_sizes[k, 2] / 2)
    env.close()


def test_tipping_a_full_cup_over_the_bowl_pours_it():
    env = envs.make_env("breakfast", depth=False)
    obs, _ = env.reset(seed=1)
    skills = envs.make_skills(env)
    assert env.in_bowl(env.sphere_positions()).sum() == 0
    obs, _ = _run_skill(env, obs, skills[0])  # grasp cup A
    assert env.robot.attached
    obs, info = _run_skill(env, obs, skills[2])  # pour
    for _ in range(10):
        obs, *_ = env.step(np.r_[np.zeros(6), -1.0])
    in_bowl = env.in_bowl(env.sphere_positions())
    assert in_bowl[:SPHERES_PER_CUP].sum() >= SPHERES_PER_CUP - 1, "cup A's spheres went into the bowl"
    assert in_bowl[SPHERES_PER_CUP:].sum() == 0, "cup B's did not move"
    env.close()


def test_pour_only_tips_forward_and_put_down_only_tips_back():
    """Each skill's wrist motion is one-way, so a policy that sees depth frames only can tell what to do next:
    pour tips the cup and holds it tipped (also after it is done); put_down tips it back, then sets it
    upright on the table, outside the bowl and the pouring zone, and lets go."""
    env = envs.make_env("breakfast", depth=False)
    obs, _ = env.reset(seed=4)  # before the free-spot search, this scene's cup was set down into the bowl
    skills = envs.make_skills(env)
    obs, _ = _run_skill(env, obs, skills[0])
    pour, put_down = skills[2], skills[3]
    tilts, done_at = [], None
    pour.reset()
    for t in range(150):  # the master's timescale: the pour is done after ~90 steps and then holds
        action, done = pour.act(obs["state"])
        done_at = t if done and done_at is None else done_at
        obs, _, terminated, *_ = env.step(action)
        assert not terminated
        tilts.append(tool_tilt(env.parse_state(obs["state"])["tcp_orn"]))
    assert done_at is not None and done_at < 140
    assert np.all(np.diff(tilts) > -0.01), "pour never tips back"
    assert tilts[-1] > POUR_TILT - 0.1 and env.robot.attached, "held tipped over the bowl after it is done"
    put_down.reset()
    tilts = []
    for _ in range(150):
        action, done = put_down.act(obs["state"])
        obs, _, terminated, *_ = env.step(action)
        assert not terminated
        tilts.append(tool_tilt(env.parse_state(obs["state"])["tcp_orn"]))
        if done:
            break
    assert done and not env.robot.attached
    upright = int(np.argmax(np.array(tilts) < 0.05))
    assert np.all(np.diff(tilts[: upright + 1]) < 0.01), "put_down tips back monotonically first"
    cup, orn = env.object_pose(0)
    bowl, _ = env.object_pose(2)
    assert tilt_of(orn) < 0.1 and cup[2] < env.object_sizes[0, 2] / 2 + 0.01, "standing on the table"
    assert np.linalg.norm(cup[:2] - bowl[:2]) > (env.object_sizes[0, 0] + env.object_sizes[2, 0]) / 2
    assert env.in_bowl(env.sphere_positions())[:SPHERES_PER_CUP].sum() >= SPHERES_PER_CUP - 1
    env.close()


def test_success_false_at_reset_true_with_spheres_in_the_bowl():
    env = envs.make_env("breakfast", depth=False)
    env.reset(seed=2)
    assert not env._success()
    bowl, _ = env.object_pose(2)
    bottom = bowl[2] - env.object_sizes[2, 2] / 2
    for i, body in enumerate(env.spheres):  # a loose heap at the bottom of the bowl
        angle, r = i * 2.4, 0.01 + 0.004 * (i % 8)
        pb.resetBasePositionAndOrientation(
            body,
            (bowl[0] + r * np.cos(angle), bowl[1] + r * np.sin(angle), bottom + 0.02 + 0.016 * (i // 8)),
            (0, 0, 0, 1),
            physicsClientId=env.client,
        )
    for _ in range(5):
        obs, reward, terminated, truncated, info = env.step(np.zeros(7))
        if terminated:
            break
    assert info["is_success"] and terminated and reward == 1.0
    env.close()


def test_knocked_over_cup_is_a_failure():
    env = envs.make_env("breakfast", depth=False)
    env.reset(seed=3)
    pos, _ = env.object_pose(1)
    env.set_object_pose(1, (pos[0], pos[1], 0.04), pb.getQuaternionFromEuler((np.pi / 2, 0, 0)))
    _, _, terminated, _, info = env.step(np.zeros(7))
    assert terminated and info["failure"] in ("cup_fell", "spilled")
    env.close()


def test_a_knock_moves_the_cup_with_its_spheres():
    """``perturb_step``: the knocked cup lands elsewhere with its 8 spheres still inside, nothing spilled."""
    env = envs.make_env("breakfast", depth=False, perturb_step=1)
    env.reset(seed=2)
    before, _ = env.object_pose(0)
    info = env.step(np.zeros(7))[-1]
    after, _ = env.object_pose(0)
    assert info["perturbed"] and np.linalg.norm(after[:2] - before[:2]) > 0.05
    for _ in range(30):  # 3 s for anything left hanging to fall
        _, _, terminated, _, info = env.step(np.zeros(7))
        assert not terminated, info["failure"]
    cup, _ = env.object_pose(0)
    spheres = env.sphere_positions()[:SPHERES_PER_CUP]
    assert (np.linalg.norm(spheres[:, :2] - cup[:2], axis=1) < env.object_sizes[0, 0] / 2).all()
    env.close()


def test_spheres_have_their_own_mask_class():
    env = envs.make_env("breakfast", image_size=64, mask=True)
    obs, _ = env.reset(seed=0)
    contents = 3 + len(env.object_names)
    assert all(env.mask_lut[body + 1] == contents for body in env.spheres)
    assert (obs["mask"] == contents).any()  # seen inside the cups
    env.close()


def test_expert_pours_both_cups():
    env = envs.make_env("breakfast", depth=False)
    obs, _ = env.reset(seed=7)
    expert = envs.make_expert(env)
    while True:
        obs, reward, terminated, truncated, info = env.step(expert.act(obs["state"]))
        if terminated or truncated:
            break
    assert info["is_success"], info
    assert env.in_bowl(env.sphere_positions()).mean() >= 0.9
    env.close()


def test_learning_stages_run_on_breakfast(tmp_path, monkeypatch):
    """collect -> train-skills -> train-master (learned skills) -> evaluate, on the 7-d action with angular velocity."""
    import dataclasses

    from conftest import tiny_master_config, tiny_skills_config

    from envs.tasks.breakfast import SPEC, BreakfastEnv
    from hrlbc.evaluate.run import EvaluateConfig, evaluate
    from hrlbc.master.train import train_master
    from hrlbc.skills.policy import SkillPolicy
    from hrlbc.skills.train import train_skills

    collect(
        CollectConfig(task="breakfast", episodes=2, workers=1, image_size=32, out=str(tmp_path / "d")), progress=False
    )
    ckpt = train_skills(
        tiny_skills_config(
            tmp_path / "d", tmp_path / "s", task="breakfast", max_batches=2, eval_every=0, augment="none"
        ),
        progress=False,
    )
    # The untrained master's episodes run to the limit: 300 steps, not 1200, for its validation and evaluation
    # (both in this process: one env, one worker).
    monkeypatch.setattr(BreakfastEnv, "spec_task", dataclasses.replace(SPEC, max_episode_steps=300))
    env = envs.make_env("breakfast", image_size=32)
    obs, _ = env.reset(seed=0)
    policy = SkillPolicy.load(str(ckpt), device="cpu")
    policy.reset()
    action = policy.act(obs, skill=2)  # pour
    assert action.shape == env.action_space.shape == (7,) and env.action_space.contains(action)
    env.close()
    master = train_master(
        tiny_master_config(tmp_path / "m", task="breakfast", skills=str(ckpt), features="skill", timescale=8)
    )
    report = evaluate(
        EvaluateConfig(
            task="breakfast", agent="master", checkpoint=str(master), episodes=1, workers=1, out=str(tmp_path / "e")
        ),
        progress=False,
    )
    assert report["episodes"] == 1 and report["config"]["task"] == "breakfast"
    assert report["mean_length"] <= 300, "the shortened episodes"
