"""The PPO master: skill env, learning the skill order, learned-skill end to end, bad input."""

import json

import numpy as np
import pytest
import torch
from conftest import assert_cli_errors, tiny_master_config
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from hrlbc.cli import main
from hrlbc.config import ConfigError
from hrlbc.evaluate.agents import master_run_config
from hrlbc.master.skill_env import SkillEnv
from hrlbc.master.train import TrainMasterConfig, evaluate_master, make_eval_env, make_skill_env, train_master
from hrlbc.skills.policy import build_model, load_checkpoint


class RandomMaster:
    def __init__(self, n, seed=0):
        self.rng, self.n = np.random.default_rng(seed), n

    def predict(self, obs, deterministic=True):
        return self.rng.integers(self.n), None


def test_skill_env_passes_checkers():
    for obs in ("state", "depth", "depth_proprio"):
        env = SkillEnv("bowl", "scripted", obs=obs, image_size=32, timescale=5)
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=False)
        env.close()


def test_recent_skills_view_lists_the_last_choices_newest_first():
    env = SkillEnv("bowl", "scripted", obs="depth", image_size=32, timescale=5, recent_skills=2)
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=False)
    obs, _ = env.reset(seed=3)
    assert set(obs) == {"depth", "recent_skills"} and obs["depth"].shape == (3, 32, 32)
    assert not obs["recent_skills"].any(), "no choice yet"
    rows = []
    for k in (1, 0, 3):
        obs, *_ = env.step(k)
        rows.append(obs["recent_skills"].reshape(2, 4))
    assert rows[0].tolist() == [[0, 1, 0, 0], [0, 0, 0, 0]]
    assert rows[1].tolist() == [[1, 0, 0, 0], [0, 1, 0, 0]]
    assert rows[2].tolist() == [[0, 0, 0, 1], [1, 0, 0, 0]], "only the last 2, newest first"
    obs, _ = env.reset(seed=4)
    assert not obs["recent_skills"].any(), "a new episode forgets the last one's choices"
    env.close()
    env = SkillEnv("bowl", "scripted", obs="state", recent_skills=1)
    obs, _ = env.reset(seed=3)
    assert set(obs) == {"state", "recent_skills"} and obs["recent_skills"].shape == (4,)
    env.close()


def test_skill_step_runs_the_timescale_and_reports_it():
    env = SkillEnv("bowl", "scripted", obs="state", timescale=60)
    env.reset(seed=3)
    _, reward, terminated, truncated, info = env.step(1)  # grasp the cube
    assert info["skill"] == 1 and info["skill_steps"] == 60 and info["env_steps"] == 60
    assert env.env.robot.attached, "the scripted grasp skill grasps within one master step"
    _, reward, terminated, _, info = env.step(3)  # carry it to the bowl and release
    assert terminated and reward == 1.0 and info["is_success"] and info["skill_steps"] < 60
    env.close()


def test_each_skill_runs_its_own_time_with_a_skill_margin(tmp_path, capsys):
    import math

    from hrlbc.master.skill_env import skill_timescales

    spec = envs.get_task("bowl").spec
    assert skill_timescales(spec) == (60,) * 4 and skill_timescales(spec, 7) == (7,) * 4
    assert skill_timescales(spec, 0, 1.25) == tuple(math.ceil(1.25 * s) for s in spec.skill_steps) == (67, 17, 20, 49)
    env = SkillEnv("bowl", "scripted", obs="state", skill_margin=1.25)
    env.reset(seed=3)
    _, _, _, _, info = env.step(0)
    assert info["skill_steps"] == 67 and env.timescales == (67, 17, 20, 49) and env.perturb_span == 67 + 17 + 20 + 49
    _, _, _, _, info = env.step(1)
    assert info["skill_steps"] == 17 and info["env_steps"] == 84 and env.env.robot.attached
    env.close()
    assert_cli_errors(
        capsys,
        [
            (["train-master", "skill_margin=1.2", "timescale=40", f"out={tmp_path / 'a'}"], "not both"),
            (["train-master", "skill_margin=-1", f"out={tmp_path / 'a'}"], "skill_margin must be >= 0"),
        ],
    )


def test_proprio_tells_a_held_cube_from_an_empty_closed_gripper():
    env = SkillEnv("bowl", "scripted", obs="depth_proprio", image_size=32, timescale=60)
    obs, _ = env.reset(seed=3)
    assert obs["depth"].shape == (3, 32, 32) and obs["proprio"].shape == (8,)
    tcp = env.env.robot.tcp_pose()[0]
    assert np.allclose(obs["proprio"][:3], tcp, atol=1e-5)
    assert obs["proprio"][7] == pytest.approx(0.11, abs=0.002), "open gripper: 2 x 5.5 cm finger travel"
    obs, *_ = env.step(1)  # the scripted grasp holds the cube
    cube = env.env.object_sizes[0, 0]
    assert env.env.robot.attached and obs["proprio"][7] == pytest.approx(cube, abs=0.005)

    obs, _ = env.reset(seed=3)
    close = np.zeros(env.env.action_space.shape, np.float32)
    close[-1] = -1.0
    for _ in range(10):  # close in mid-air: nothing between the pads
        low_obs, *_ = env.env.step(close)
    env.view.push(low_obs)
    assert not env.env.robot.attached and env.view.observe(low_obs)["proprio"][7] < 0.005
    env.close()


def scripted_bowl_config(out, **overrides) -> TrainMasterConfig:
    """A 320-step master over Bowl's scripted skills on state observations (seconds, not minutes)."""
    base = dict(task="bowl", skills="scripted", obs="state", total_steps=320, progress=False, timescale=60)
    return TrainMasterConfig(out=str(out), **{**base, **overrides})


def test_ppo_learns_the_skill_order_well_above_random(tmp_path, monkeypatch):
    import hrlbc.master.train as train_module

    plotted = []  # validations in the history at each plot: the curve is redrawn at every validation

    def plot(history, path, title):
        plotted.append(len(history))
        real_plot(history, path, title)

    real_plot = train_module.plot_learning_curve
    monkeypatch.setattr(train_module, "plot_learning_curve", plot)
    best = train_master(scripted_bowl_config(tmp_path / "m", n_envs=2, eval_every=2, eval_episodes=10))
    from stable_baselines3 import PPO

    env = SkillEnv("bowl", "scripted", obs="state")
    seeds = list(range(7000, 7020))
    learned = evaluate_master(PPO.load(best), env, seeds)["success"]
    random = evaluate_master(RandomMaster(4), env, seeds)["success"]
    env.close()
    assert learned >= 0.9 and learned >= random + 0.3, (learned, random)
    history = json.loads((tmp_path / "m" / "history.json").read_text())
    assert history[-1]["env_steps"] > history[0]["env_steps"] > 0
    assert plotted == list(range(1, len(history) + 1)) and len(history) >= 2
    assert (tmp_path / "m" / "learning_curve.png").stat().st_size > 1000


def test_learned_skills_end_to_end_with_skill_features_and_resume(tiny_skills, tmp_path):
    kw = dict(skills=str(tiny_skills["pick"]), features="skill", n_steps=8, timescale=4)
    train_master(tiny_master_config(tmp_path / "m", total_steps=8, **kw))
    first = json.loads((tmp_path / "m" / "history.json").read_text())
    train_master(tiny_master_config(tmp_path / "m", total_steps=16, resume=True, **kw))
    history = json.loads((tmp_path / "m" / "history.json").read_text())
    assert len(history) == len(first) + 1 and history[-1]["master_steps"] == 16
    assert history[-1]["env_steps"] > first[-1]["env_steps"]
    for name in ("best.zip", "last.zip", "config.yaml", "master.json", "learning_curve.png"):
        assert (tmp_path / "m" / name).is_file(), name
    # The skill trunk stays the behavior-cloned one: SB3's orthogonal init and PPO updates must not touch it.
    trunk = PPO.load(str(tmp_path / "m" / "last.zip"), device="cpu").policy.features_extractor.trunk.state_dict()
    cloned = build_model(load_checkpoint(str(tiny_skills["pick"]))).state_dict()
    assert trunk.keys() == cloned.keys()
    assert all(torch.equal(trunk[k].cpu(), cloned[k].cpu()) for k in cloned)
    args = [f"{k}={v}" for k, v in kw.items()] + [f"out={tmp_path / 'm'}", "task=pick", "image_size=32"]
    assert main(["train-master", *args]) == 2  # the run exists and resume=true was not given


def test_learned_skills_with_proprio_train_freeze_the_trunk_and_evaluate(tiny_skills, tmp_path, capsys):
    kw = dict(skills=str(tiny_skills["pick"]), features="skill", obs="depth_proprio", n_steps=8, timescale=4)
    best = train_master(tiny_master_config(tmp_path / "m", total_steps=8, **kw))
    policy = PPO.load(str(best), device="cpu").policy
    extractor = policy.features_extractor
    trunk = extractor.depth.trunk.state_dict()
    cloned = build_model(load_checkpoint(str(tiny_skills["pick"]))).state_dict()
    assert all(torch.equal(trunk[k].cpu(), cloned[k].cpu()) for k in cloned), "SB3's init reached the frozen trunk"
    # The gripper gap reaches the features: an empty and a holding gripper look different to the master.
    depth = torch.rand(1, 3, 32, 32)
    held, empty = torch.zeros(1, 8), torch.zeros(1, 8)
    held[0, 7] = 0.045
    with torch.no_grad():
        features = [extractor({"depth": depth, "proprio": p}) for p in (held, empty)]
    assert not torch.allclose(*features)
    args = [f"checkpoint={best}", "task=pick", "agent=master", "episodes=2", "workers=1", f"out={tmp_path / 'e'}"]
    assert main(["evaluate", *args]) == 0
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["episodes"] == 2 and report["skills"] == str(tiny_skills["pick"])


def test_a_master_runs_over_replacement_skills(tiny_skills, tmp_path, capsys):
    """evaluate skills=: the master's choices stay its own, the actions come from the replacement skills,
    and a master whose skills file is gone runs over a copy of it."""
    import shutil

    import envs
    from demos.io import file_hash
    from hrlbc.evaluate.agents import MasterAgent
    from hrlbc.skills.model import SkillNet
    from hrlbc.skills.policy import save_checkpoint

    original = tmp_path / "trained_over.pt"
    shutil.copy(tiny_skills["pick"], original)
    kw = dict(skills=str(original), features="skill", n_steps=8, timescale=4)
    best = str(train_master(tiny_master_config(tmp_path / "m", total_steps=8, **kw)))
    shifted = load_checkpoint(str(original))
    original.rename(tmp_path / "copy.pt")  # the master moved to a machine where its skills lie elsewhere
    shifted["vel_mean"] = (np.asarray(shifted["vel_mean"]) + 0.01).tolist()  # every velocity +0.01
    save_checkpoint(tmp_path / "shifted.pt", shifted)
    world = envs.make_env("pick", image_size=32, depth=True)
    own = MasterAgent(best, world, skills=str(tmp_path / "copy.pt"))
    swapped = MasterAgent(best, world, skills=str(tmp_path / "shifted.pt"))
    obs, _ = world.reset(seed=3)
    own.reset(), swapped.reset()
    (a, k), (b, j) = own.act(obs), swapped.act(obs)
    assert k == j, "the master's choice does not depend on the skills that act"
    assert np.allclose(b[:-1] - a[:-1], 0.01, atol=1e-5) and b[-1] == a[-1]
    world.close()
    out = tmp_path / "e"
    args = [f"checkpoint={best}", "task=pick", "agent=master", "episodes=1", "workers=1", f"out={out}"]
    assert main(["evaluate", *args, f"skills={tmp_path / 'shifted.pt'}"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["skills"] == str(tmp_path / "shifted.pt")
    assert report["hashes"]["skills"] == file_hash(str(tmp_path / "shifted.pt")) != file_hash(str(tiny_skills["pick"]))
    assert "replacing the ones it was trained over" in (out / "report.md").read_text()
    capsys.readouterr()  # the run's progress bar
    # the frozen trunk the master reads keeps the .zip's weights, whatever the replacement's are
    from hrlbc.master.features import load_master

    save_checkpoint(tmp_path / "untrained.pt", {**shifted, "state_dict": SkillNet(**shifted["model"]).state_dict()})
    kept, rebuilt = load_master(best, str(tmp_path / "copy.pt")), load_master(best, str(tmp_path / "untrained.pt"))
    for (name, x), y in zip(kept.policy.state_dict().items(), rebuilt.policy.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    wide = {**shifted, "model": {**shifted["model"], "encoder": "resnet18", "width": "full"}}  # another trunk
    wide["state_dict"] = SkillNet(**wide["model"]).state_dict()
    save_checkpoint(tmp_path / "wide.pt", wide)
    assert_cli_errors(
        capsys,
        [
            (["evaluate", *args], "which are not there; skills=PATH runs it over a copy"),
            (["evaluate", *args, f"skills={tmp_path / 'gone.pt'}"], "skills checkpoint not found:"),
            (["evaluate", *args, f"skills={tmp_path / 'wide.pt'}"], "a trunk of another architecture"),
            (["evaluate", *args, f"skills={tiny_skills['bowl']}"], "holds skills of task 'bowl'"),
            (["evaluate", "task=pick", "agent=expert", f"skills={tmp_path / 'shifted.pt'}"], "agent=expert does not"),
        ],
    )


def test_recent_skills_master_trains_and_evaluates_on_the_same_view(tmp_path):
    from hrlbc.evaluate.agents import MasterAgent

    best = train_master(tiny_master_config(tmp_path / "m", recent_skills=2, timescale=3, total_steps=8))
    model = PPO.load(str(best), device="cpu")
    extractor = model.policy.features_extractor
    # the choices reach the features: the same frames after different choices look different
    depth, picks = torch.rand(1, 3, 32, 32), torch.zeros(2, 1, 2 * 3)  # 2 choices of Pick's 3 skills
    picks[0, 0, 0] = picks[1, 0, 1] = 1.0
    with torch.no_grad():
        features = [extractor({"depth": depth, "recent_skills": p}) for p in picks]
    assert not torch.allclose(*features)
    # hrlbc evaluate's agent builds the view the master was trained on, choice by choice
    import envs

    world = envs.make_env("pick", image_size=32, depth=True)
    agent = MasterAgent(str(best), world)
    seen, predict = [], agent.model.predict
    agent.model.predict = lambda o, deterministic: (seen.append(o), predict(o, deterministic=deterministic))[1]
    obs, _ = world.reset(seed=5)
    agent.reset()
    for _ in range(9):  # three master decisions
        obs, *_ = world.step(agent.act(obs)[0])
    train_env = make_skill_env(tiny_master_config(tmp_path / "m", recent_skills=2, timescale=3))
    expected = [train_env.reset(seed=5)[0]] + [train_env.step(k)[0] for k in agent.choices[:2]]
    assert len(seen) == 3 and seen[2]["recent_skills"].any()
    for got, want in zip(seen, expected):
        assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)
    world.close()
    train_env.close()
    args = [f"checkpoint={best}", "task=pick", "agent=master", "episodes=2", "workers=1", f"out={tmp_path / 'e'}"]
    assert main(["evaluate", *args]) == 0
    assert json.loads((tmp_path / "e" / "report.json").read_text())["episodes"] == 2


def test_cnn_features_on_depth_with_annealed_lr(tmp_path):
    cfg = tiny_master_config(tmp_path / "c", n_envs=2, timescale=3, total_steps=16, anneal_lr=True)
    assert train_master(cfg).is_file()
    model = PPO.load(str(tmp_path / "c" / "last.zip"), device="cpu")
    # Two updates of 8 master steps (CleanRL's schedule): the first at lr, the last at lr / 2; SB3 asks
    # after each rollout, with 1/2 then 0 of the run to go. last.zip holds the last update.
    assert model.lr_schedule(0.5) == pytest.approx(cfg.lr)
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(cfg.lr / 2)
    assert model.policy.features_extractor.cnn[0].stride == (4, 4)
    # A master saved before the stride-4 stem stores no stem_stride: it must load as the stride-2 net it is.
    model.policy_kwargs["features_extractor_kwargs"] = {}
    model.save(tmp_path / "old.zip")
    assert PPO.load(str(tmp_path / "old.zip"), device="cpu").policy.features_extractor.cnn[0].stride == (2, 2)


def test_rollouts_beside_env_workers_use_one_thread_and_updates_all(tmp_path, monkeypatch):
    from stable_baselines3.common.vec_env import SubprocVecEnv

    seen = {"rollout": set(), "update": set()}
    step_async, ppo_train = SubprocVecEnv.step_async, PPO.train
    monkeypatch.setattr(
        SubprocVecEnv, "step_async", lambda self, a: (seen["rollout"].add(torch.get_num_threads()), step_async(self, a))
    )
    monkeypatch.setattr(PPO, "train", lambda self: (seen["update"].add(torch.get_num_threads()), ppo_train(self)))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert train_master(tiny_master_config(tmp_path / "t", n_envs=2, timescale=3, total_steps=16)).is_file()
        assert seen == {"rollout": {1}, "update": {2}} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_auto_features_follow_the_observation_and_the_skills():
    assert TrainMasterConfig(obs="state").feature_kind() == "mlp"
    assert TrainMasterConfig(skills="scripted").feature_kind() == "cnn"
    assert TrainMasterConfig(skills="runs/bowl_skills/best.pt").feature_kind() == "skill"
    assert TrainMasterConfig(skills="runs/bowl_skills/best.pt", features="cnn").feature_kind() == "cnn"


def test_robustness_training_knocks_training_episodes_only():
    """``perturb=p``: a share p of training episodes get a knock at a seeded step within the expert span."""
    cfg = TrainMasterConfig(task="bowl", obs="state", perturb=0.5)
    env, clean = make_skill_env(cfg, training=True), make_skill_env(cfg)
    span = env.timescales[0] * 4  # Bowl's expert runs 4 skills, each for the one timescale

    def knocks(env, seeds):
        return [(env.reset(seed=s), env.env.perturb_step)[1] for s in seeds]

    steps = knocks(env, range(40))
    assert steps == knocks(env, range(40)), "the same seeds draw the same knocks"
    hit = [s for s in steps if s]
    assert 10 <= len(hit) <= 30 and all(1 <= s <= span for s in hit) and len(set(hit)) > 5
    assert knocks(clean, range(40)) == [0] * 40, "validation envs are never perturbed"
    env.reset(seed=0, options={"perturb_step": 7})
    assert env.env.perturb_step == 7, "a caller's own knock step wins over the draw"
    # A knocked training episode really reports the knock.
    seed = steps.index(min(hit))
    env.reset(seed=seed)
    info = {}
    for k in (1, 3, 1, 3):
        info = env.step(k)[-1]
        if info["perturbed"] or info["is_success"]:
            break
    assert info["perturbed"]
    env.close()
    clean.close()


def test_bad_inputs_fail_before_any_env(tiny_skills, tmp_path, capsys):
    with pytest.raises(ConfigError, match="task 'pick'.*task 'bowl' needs its 4 skills"):
        train_master(TrainMasterConfig(task="bowl", skills=str(tiny_skills["pick"]), out=str(tmp_path / "a")))
    with pytest.raises(ConfigError, match="skills checkpoint not found"):
        train_master(TrainMasterConfig(task="bowl", skills=str(tmp_path / "nope.pt"), out=str(tmp_path / "b")))
    with pytest.raises(ConfigError, match="trained on 32px depth"):
        train_master(TrainMasterConfig(task="pick", skills=str(tiny_skills["pick"]), out=str(tmp_path / "c")))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert_cli_errors(
        capsys,
        [
            (["train-master", "n_envs=0"], "n_envs must be >= 1"),
            (["train-master", f"skills={tmp_path / 'junk.pt'}"], "cannot read skills checkpoint"),
            (["train-master", "obs=state", "features=cnn"], "does not fit"),
            (["train-master", "features=skill"], "features=skill needs learned skills"),
            (["train-master", "perturb=1.5"], "perturb is a probability in [0, 1]"),
            (["train-master", "skills=flat", "perturb=0.5"], "ppo-flat (skills=flat) does not take it"),
            (["train-master", "recent_skills=-1"], "recent_skills must be >= 0, got -1"),
            (["train-master", "n_envs=1", "n_steps=8", "n_minibatches=8"], "PPO needs >= 2"),
        ],
    )
    assert not (tmp_path / "a").exists(), "nothing was created for refused input"


@pytest.mark.parametrize("obs,recent,margin", [("depth", 0, 0), ("depth_proprio", 0, 0), ("depth", 2, 0.2)])
def test_batched_placement_matches_skills_in_workers(tiny_skills, obs, recent, margin):
    from hrlbc.master.batched import BatchedSkillVecEnv

    def same(batch, single):
        if not isinstance(single, dict):
            return np.array_equal(batch[0], single)
        return batch.keys() == single.keys() and all(np.array_equal(batch[k][0], single[k]) for k in single)

    kw = dict(task="pick", skills=str(tiny_skills["pick"]), obs=obs, image_size=32, recent_skills=recent)
    kw |= {"skill_margin": margin} if margin else {"timescale": 5}  # margin 0.2: 15, 4 and 2 steps
    single = SkillEnv(**kw)
    # One env: batching must not change the semantics (with more envs, batched convolutions may differ
    # from single ones in the last float bits, so trajectories can drift apart, as on any other device).
    batched = BatchedSkillVecEnv([SkillEnv(**kw)])
    batched.seed(11)
    obs_b = batched.reset()
    obs_s, _ = single.reset(seed=11)
    assert same(obs_b, obs_s)
    for action in (0, 1, 2, 1):
        obs_s, r_s, term, trunc, info_s = single.step(action)
        obs_b, r_b, dones, infos = batched.step(np.array([action]))
        assert same(obs_b, obs_s) and r_b[0] == r_s
        assert infos[0]["skill_steps"] == info_s["skill_steps"] and infos[0]["env_steps"] == info_s["env_steps"]
        if term or trunc:
            break
    batched.close()
    single.close()


def test_sampled_validation_leaves_training_unchanged(tmp_path):
    """eval_deterministic=false samples validation picks from seeded RNGs, then restores training's RNG."""
    weights, histories = [], []
    for sampled in (False, True):
        out = tmp_path / f"m{sampled}"
        train_master(tiny_master_config(out, obs="state", total_steps=12, eval_deterministic=not sampled))
        weights.append(PPO.load(out / "last.zip").policy.state_dict())
        histories.append([h["skill_counts"] for h in json.loads((out / "history.json").read_text())])
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name
    assert len(histories[1]) == 3 and histories[0] != histories[1]


def test_parallel_validation_plays_each_seed_as_one_env_does():
    """Validation over n_envs worker envs gives the single env's result, picks sampled or not."""
    from stable_baselines3.common.vec_env import SubprocVecEnv

    cfg = TrainMasterConfig(task="bowl", skills="scripted", obs="state", n_envs=2, progress=False)
    single, parallel = make_skill_env(cfg), make_eval_env(cfg)
    assert isinstance(parallel, SubprocVecEnv) and parallel.num_envs == 2
    model = PPO("MlpPolicy", single, seed=0)  # untrained: near uniform, so sampled picks vary
    seeds = list(range(7000, 7005))  # more seeds than envs: each env plays several, in turn
    try:
        for deterministic in (True, False):
            one = evaluate_master(model, single, seeds, deterministic)
            assert evaluate_master(model, parallel, seeds, deterministic) == one, deterministic
        assert sum(c > 0 for c in one["skill_counts"]) >= 3, one  # the sampled run did sample
        # fewer seeds than envs: the spare env is reset and stepped, and ignored
        assert evaluate_master(model, parallel, seeds[:1]) == evaluate_master(model, single, seeds[:1])
    finally:
        single.close()
        parallel.close()


def test_an_interrupted_run_leaves_an_evaluable_best(tmp_path, monkeypatch):
    import hrlbc.master.train as train_module

    def interrupt(history, path, title):  # Ctrl-C right after the first validation's files are written
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "plot_learning_curve", interrupt)
    out = tmp_path / "m"
    cfg = scripted_bowl_config(out, n_envs=1, n_steps=8, n_minibatches=2, eval_every=1, eval_episodes=1)
    with pytest.raises(KeyboardInterrupt):
        train_master(cfg)
    assert json.loads((out / "history.json").read_text())[-1]["master_steps"] == 8
    assert master_run_config(str(out / "best.zip"))["total_steps"] == 320
    args = [f"checkpoint={out / 'best.zip'}", "task=bowl", "agent=master", "episodes=1", "workers=1"]
    assert main(["evaluate", *args, f"out={tmp_path / 'e'}"]) == 0


def test_scripted_master_sees_the_same_without_rendering_unobserved_frames():
    """Over scripted skills only the master's own frames are rendered; what it sees is unchanged."""
    from hrlbc.master.skill_env import SkillEnv

    runs = []
    for skip in (True, False):
        env = SkillEnv(
            "bowl", skills="scripted", obs="depth", image_size=32, timescale=8, env_options={"max_episode_steps": 30}
        )
        env.skip_renders = skip
        renders = 0
        original = env.env._observation

        def counted(original=original):
            nonlocal renders
            obs = original()
            renders += "depth" in obs
            return obs

        env.env._observation = counted
        obs, _ = env.reset(seed=5)
        seen = [obs]
        for k in (0, 1, 2, 3):  # 4 choices of 8 steps: the last one is cut at the 30-step limit
            obs, reward, terminated, truncated, info = env.step(k)
            seen.append((obs, reward, terminated, truncated, info["env_steps"]))
        runs.append((seen, renders))
        env.close()
    (skipped, n_skipped), (full, n_full) = runs
    assert n_full == 31 and n_skipped == 1 + 4 * 3  # reset, and the 3 frames before each decision or the limit
    for a, b in zip(skipped, full):
        if isinstance(a, tuple):
            assert np.array_equal(a[0], b[0]) and a[1:] == b[1:]
        else:
            assert np.array_equal(a, b)


def test_a_master_moved_with_its_skills_finds_them_by_relative_path(tiny_skills, tmp_path):
    """A master records where its skills lie relative to itself: the pair moves together (issue 50)."""
    import shutil

    import envs
    from hrlbc.evaluate.agents import MasterAgent

    home = tmp_path / "home"
    (home / "skills").mkdir(parents=True)
    shutil.copy(tiny_skills["pick"], home / "skills" / "best.pt")
    kw = dict(skills=str(home / "skills" / "best.pt"), features="skill", n_steps=8, timescale=4)
    train_master(tiny_master_config(home / "master", total_steps=8, **kw))
    assert json.loads((home / "master" / "master.json").read_text())["skills_relative"] == "../skills/best.pt"
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(home, moved)
    # while the original still exists, the skills beside the copy are the copy's
    assert master_run_config(str(moved / "master" / "best.zip"))["skills"] == str(moved / "skills" / "best.pt")
    shutil.rmtree(home)  # the recorded absolute path is gone
    world = envs.make_env("pick", image_size=32, depth=True)
    agent = MasterAgent(str(moved / "master" / "best.zip"), world)
    assert agent.skills_path == str(moved / "skills" / "best.pt")
    obs, _ = world.reset(seed=3)
    agent.reset()
    action, skill = agent.act(obs)
    assert action.shape == world.action_space.shape and 0 <= skill < 3
    world.close()
