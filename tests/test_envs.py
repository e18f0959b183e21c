"""Task envs: API conformance, determinism, success predicates, bad input."""

import gymnasium as gym
import numpy as np
import pybullet as pb
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs.skills import pick_and_place

TASKS = ["pick", "bowl", "stack"]


@pytest.mark.parametrize("task", TASKS)
def test_check_env_gymnasium_and_sb3(task):
    env = gym.make(envs.get_task(task).spec.env_id, image_size=32)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    env.close()


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_episode(task):
    def rollout():
        env = envs.make_env(task, image_size=32, mask=True)
        obs, _ = env.reset(seed=11)
        frames, states = [obs["depth"]], [obs["state"]]
        rng = np.random.default_rng(0)
        for _ in range(25):
            obs, *_ = env.step(env.action_space.sample() * 0 + rng.uniform(-1, 1, env.action_space.shape) * 0.1)
            frames.append(obs["depth"])
            states.append(obs["state"])
        env.close()
        return np.stack(frames), np.stack(states)

    (f1, s1), (f2, s2) = rollout(), rollout()
    assert np.array_equal(f1, f2) and np.array_equal(s1, s2)


def test_different_seeds_differ_and_reset_reseeds():
    env = envs.make_env("bowl", image_size=32)
    a, _ = env.reset(seed=1)
    b, _ = env.reset(seed=2)
    c, _ = env.reset(seed=1)
    assert not np.array_equal(a["state"], b["state"])
    assert np.array_equal(a["state"], c["state"]) and np.array_equal(a["depth"], c["depth"])
    env.close()


@pytest.mark.parametrize("task", TASKS)
def test_observation_keys_shapes_and_ranges(task):
    env = envs.make_env(task, image_size=48, n_views=2, rgb=True, mask=True, camera="random")
    obs, info = env.reset(seed=0)
    assert obs["depth"].shape == (2, 48, 48) and obs["depth"].dtype == np.float32
    assert 0.0 <= obs["depth"].min() and obs["depth"].max() <= 1.0
    assert obs["rgb"].shape == (2, 48, 48, 3) and obs["rgb"].dtype == np.uint8
    mask = obs["mask"]
    assert {1, 2} <= set(np.unique(mask)), "table and robot are visible"
    assert 3 in set(np.unique(mask)), "the first task object is visible"
    assert not np.array_equal(obs["depth"][0], obs["depth"][1]), "random views differ"
    assert env.observation_space.contains(obs)
    assert info["is_success"] is False and info["failure"] is None
    env.close()


def test_camera_off_has_state_only():
    env = envs.make_env("pick", depth=False)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"state"}
    parsed = env.parse_state(obs["state"])
    assert parsed["cube_size"][0] >= 0.03 and parsed["cube_size"][0] <= 0.08
    env.close()


def _settle(env, steps=5):
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(np.zeros(env.action_space.shape))
    return reward, terminated, info


def test_pick_success_predicate():
    env = envs.make_env("pick", depth=False)
    env.reset(seed=0)
    assert not env._success()
    pos, _ = env.object_pose(0)
    env.set_object_pose(0, (pos[0], pos[1], 0.2))
    assert env._success()
    env.close()


def test_bowl_success_predicate():
    env = envs.make_env("bowl", depth=False)
    env.reset(seed=3)
    assert not env._success()
    bowl, _ = env.object_pose(1)
    side, height = env.object_sizes[0, 0], env.object_sizes[1, 2]
    env.set_object_pose(0, (bowl[0], bowl[1], bowl[2] - height / 2 + 0.01 + side / 2))
    reward, terminated, info = _settle(env, 1)
    assert info["is_success"] and terminated and reward == 1.0
    env.close()


def test_stack_success_predicate():
    env = envs.make_env("stack", depth=False)
    env.reset(seed=4)
    assert not env._success()
    large, _ = env.object_pose(1)
    small, big = env.object_sizes[0, 0], env.object_sizes[1, 0]
    env.set_object_pose(0, (large[0], large[1], large[2] + big / 2 + small / 2 + 0.002))
    reward, terminated, info = _settle(env, 1)
    assert info["is_success"] and terminated and reward == 1.0
    env.close()


def test_object_off_table_is_a_failure():
    env = envs.make_env("pick", depth=False)
    env.reset(seed=0)
    env.set_object_pose(0, (0.5, 0.9, 0.1))  # beyond the table edge
    reward, terminated, info = _settle(env, 3)
    assert terminated and reward == 0.0 and info["failure"] == "object_fell"
    env.close()


def test_episode_limit_truncates():
    env = envs.make_env("pick", depth=False, max_episode_steps=3)
    env.reset(seed=0)
    results = [env.step(np.zeros(4)) for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True]
    env.close()


def test_unknown_task_lists_valid_ones():
    with pytest.raises(ValueError, match="pick.*bowl.*stack"):
        envs.get_task("UR5-Fly-v0")
    assert envs.get_task("UR5-Bowl-v0").spec.name == "bowl"


@pytest.mark.parametrize(
    "kwargs, option",
    [
        ({"image_size": 0}, "image_size"),
        ({"image_size": -5}, "image_size"),
        ({"camera": "fisheye"}, "camera"),
        ({"n_views": 0}, "n_views"),
    ],
)
def test_invalid_options_name_the_option(kwargs, option):
    with pytest.raises(ValueError, match=option):
        envs.make_env("pick", **kwargs)


@pytest.mark.parametrize("task", TASKS)
def test_scripted_expert_solves_a_few_seeds(task):
    env = envs.make_env(task, depth=False)
    for seed in range(3):
        obs, _ = env.reset(seed=1000 + seed)
        expert = envs.make_expert(env)
        while True:
            obs, reward, terminated, truncated, info = env.step(expert.act(obs["state"]))
            if terminated or truncated:
                break
        assert info["is_success"], f"{task} expert failed on seed {1000 + seed}: {info}"
    env.close()


def test_skill_names_must_match_the_task_spec():
    env = envs.make_env("stack", depth=False)
    env.reset(seed=0)
    assert [s.name for s in envs.make_skills(env)] == list(env.spec_task.skills)
    with pytest.raises(ValueError, match="do not match"):
        pick_and_place(envs.skill_context(env), ("above", "grasp", "raise"), "small")
    with pytest.raises(ValueError, match="do not match"):
        pick_and_place(envs.skill_context(env), env.spec_task.skills[:3], "small", "large")
    env.close()


def test_perturb_knocks_the_held_cube_out():
    def run(perturb_step):
        env = envs.make_env("pick", depth=False, perturb_step=perturb_step)
        obs, _ = env.reset(seed=1)
        expert = envs.make_expert(env)
        trace = []
        for _ in range(80):
            obs, _, terminated, _, info = env.step(expert.act(obs["state"]))
            trace.append((bool(env.robot.attached), env.object_pose(0)[0], info))
            if terminated:
                break
        env.close()
        return trace

    plain = run(0)
    grasped_at = next(i for i, (held, _, _) in enumerate(plain) if held) + 1  # steps are 1-based
    trace = run(grasped_at + 2)
    held, pos_before, _ = trace[grasped_at]  # state after step grasped_at + 1: still held
    after_held, pos_after, info = trace[grasped_at + 1]  # after the perturbation step
    assert held and not after_held and info["perturbed"]
    assert 0.04 < np.linalg.norm(pos_after[:2] - pos_before[:2]) < 0.12
    assert not plain[-1][2]["perturbed"] and plain[-1][2]["is_success"]


def test_the_perturbation_step_can_be_chosen_per_episode():
    env = envs.make_env("pick", depth=False, perturb_step=3)
    for options, expected in [({"perturb_step": 5}, 5), (None, 3), ({"perturb_step": 0}, None)]:
        env.reset(seed=1, options=options)
        first = next((t for t in range(1, 9) if env.step(np.zeros(4))[-1]["perturbed"]), None)
        assert first == expected, options
    with pytest.raises(ValueError, match="perturb_step must be an integer >= 0"):
        env.reset(seed=1, options={"perturb_step": -2})
    env.close()


def test_occluder_hides_part_of_the_view_only_in_its_window():
    plain = envs.make_env("bowl", image_size=32)
    occluded = envs.make_env("bowl", image_size=32, occlude=(2, 3))
    a, _ = plain.reset(seed=0)
    b, _ = occluded.reset(seed=0)
    assert np.array_equal(a["depth"], b["depth"])
    for step in range(1, 7):
        a, *_ = plain.step(np.zeros(4))
        b, *_ = occluded.step(np.zeros(4))
        differs = not np.array_equal(a["depth"], b["depth"])
        assert differs == (2 <= step < 5), step
        if differs:
            changed = np.mean(a["depth"] != b["depth"])
            assert 0.05 < changed < 0.6, changed
            assert np.array_equal(a["state"], b["state"]), "the occluder has no physical effect"
    with pytest.raises(ValueError, match="occlude"):
        envs.make_env("bowl", occlude=(2, 0))


def test_bowl_cannot_be_grasped():
    env = envs.make_env("bowl", depth=False)
    env.reset(seed=0)
    bowl, _ = env.object_pose(1)
    radius = env.object_sizes[1, 0] / 2
    env.robot.reset(np.array([bowl[0], bowl[1] + radius, bowl[2]]))  # fingers around the bowl's wall
    for _ in range(5):
        env.step(np.array([0, 0, 0, -1.0]))
    assert not env.robot.attached
    env.close()


def test_bowl_leaves_room_for_the_open_fingers():
    """An open finger reaches ~6 cm from the cube's centre; it must never land on the bowl's rim."""
    env = envs.make_env("bowl", depth=False)
    gaps = []
    for seed in range(300):
        env.reset(seed=seed)
        (cube, _), (bowl, _) = env.object_pose(0), env.object_pose(1)
        gaps.append(np.linalg.norm(cube[:2] - bowl[:2]) - env.object_sizes[1, 0] / 2)
    assert min(gaps) > 0.07
    # The closest scene of those: the scripted grasp, straight from the start pose, touches only the cube.
    obs, _ = env.reset(seed=int(np.argmin(gaps)))
    grasp, touched = envs.make_skills(env)[1], set()
    for _ in range(70):
        obs, *_ = env.step(grasp.act(obs["state"])[0])
        touched |= {c[2] for c in pb.getContactPoints(bodyA=env.robot.body, physicsClientId=env.client)}
        if env.robot.attached:
            break
    assert env.robot.attached and env.objects[1] not in touched
    env.close()
