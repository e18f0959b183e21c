"""Evaluation: Wilson intervals, report schema, agreement with the collector, workers, bad input."""

import json

import numpy as np
import pytest
from conftest import assert_cli_errors, tiny_master_config
from stable_baselines3 import PPO

import envs
from demos.collect import record_episode
from hrlbc.config import ConfigError
from hrlbc.evaluate.agents import ExpertAgent, act_group, make_agent
from hrlbc.evaluate.run import EvaluateConfig, evaluate, run_episode, wilson_interval
from hrlbc.master.skill_env import reset_episode
from hrlbc.master.train import evaluate_master, make_skill_env, train_master


@pytest.mark.parametrize(
    "k, n, low, high",
    [(8, 10, 0.4902, 0.9433), (0, 10, 0.0, 0.2775), (50, 100, 0.4038, 0.5962), (100, 100, 0.9630, 1.0)],
)
def test_wilson_interval_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_interval_contains_the_rate_exactly():
    """Bounds must hold k/n exactly: the results plot's error bars (rate - low, high - rate) must be >= 0."""
    for n in range(1, 201):
        for k in range(n + 1):
            lo, hi = wilson_interval(k, n)
            assert 0.0 <= lo <= k / n <= hi <= 1.0, (k, n, lo, hi)


def test_expert_evaluation_equals_the_collector_on_the_same_seeds():
    for task in ("pick", "stack"):
        env = envs.make_env(task, depth=False)
        agent = ExpertAgent(env)
        for seed in range(3):
            frames, ep = record_episode(env, seed, "full", 0.0, 0, np.random.default_rng(0))
            r = run_episode(env, agent, seed)
            assert r["success"] == ep["success"] and r["length"] == len(frames["action"])
        env.close()


def test_report_schema_and_workers_do_not_matter(tmp_path):
    one = evaluate(
        EvaluateConfig(task="pick", agent="expert", episodes=4, workers=1, out=str(tmp_path / "a")), progress=False
    )
    two = evaluate(
        EvaluateConfig(task="pick", agent="expert", episodes=4, workers=2, out=str(tmp_path / "b")), progress=False
    )
    assert one["per_episode"] == two["per_episode"]
    stored = json.loads((tmp_path / "a" / "report.json").read_text())
    for key in (
        "task",
        "agent",
        "episodes",
        "success_rate",
        "wilson95",
        "mean_length",
        "failures",
        "skill_choices",
        "seeds",
        "hashes",
        "config",
        "per_episode",
    ):
        assert key in stored, key
    assert stored["seeds"][0] >= 1_000_000, "evaluation seeds are never collection seeds"
    assert stored["success_rate"] == 1.0 and set(stored["skill_choices"]) == {"above_cube", "grasp_cube", "lift"}
    md = (tmp_path / "a" / "report.md").read_text()
    assert "Wilson 95%" in md and "100.0%" in md
    assert (tmp_path / "a" / "config.yaml").is_file()


def test_master_agent_and_video(tmp_path):
    best = train_master(tiny_master_config(tmp_path / "m"))
    r = evaluate(
        EvaluateConfig(
            task="pick", agent="master", checkpoint=str(best), episodes=2, workers=1, video=1, out=str(tmp_path / "e")
        ),
        progress=False,
    )
    # Every master decision counts, a repeated pick included: one per started timescale.
    timescale = envs.get_task("pick").spec.timescale
    decisions = sum(-(-e["length"] // timescale) for e in r["per_episode"])
    assert r["episodes"] == 2 and sum(v["count"] for v in r["skill_choices"].values()) == decisions
    assert r["hashes"]["checkpoint"] and len(list((tmp_path / "e").glob("episode_*.mp4"))) == 1


def test_a_master_with_a_skill_margin_picks_when_the_running_skill_is_done(tmp_path):
    """Evaluation gives each pick the skill's own time, as in training: the picks' times cover the episode."""
    from hrlbc.master.skill_env import skill_timescales

    best = train_master(tiny_master_config(tmp_path / "m", skill_margin=0.3))
    cfg = EvaluateConfig(
        task="pick", agent="master", checkpoint=str(best), episodes=2, workers=1, out=str(tmp_path / "e")
    )
    r = evaluate(cfg, progress=False)
    times = skill_timescales(envs.get_task("pick").spec, 0, 0.3)  # 22, 5 and 3 steps
    for e in r["per_episode"]:  # skill_counts: every pick, a repeated one included
        spans = sum(times[int(k)] * n for k, n in e["skill_counts"].items())
        shortest = min(times[int(k)] for k in e["skill_counts"])
        assert spans - shortest < e["length"] <= spans, (e["skill_counts"], e["length"])


def test_a_sampling_master_is_seeded_by_the_episode(tmp_path):
    """deterministic=false samples the master's picks, seeded by the episode: the same report for any workers,
    and the same picks in training's validation (the skill env) on each seed."""
    cfg = tiny_master_config(tmp_path / "m", obs="state")
    best = str(train_master(cfg))
    reports = [
        evaluate(
            EvaluateConfig(
                task="pick", agent="master", checkpoint=best, episodes=3, workers=w, deterministic=False, out=str(out)
            ),
            progress=False,
        )
        for w, out in ((1, tmp_path / "a"), (2, tmp_path / "b"))
    ]
    assert reports[0]["per_episode"] == reports[1]["per_episode"]
    # A master after 4 PPO steps is near uniform over the 3 skills: sampled picks vary.
    assert len(reports[0]["skill_choices"]) >= 2, reports[0]["skill_choices"]
    assert "actions sampled" in (tmp_path / "a" / "report.md").read_text()
    # Training's validation (the skill env, master step by master step) samples the same picks on each seed.
    model, env = PPO.load(best), make_skill_env(cfg)
    for e in reports[0]["per_episode"]:
        validation = evaluate_master(model, env, [e["seed"]], deterministic=False)
        assert validation["skill_counts"] == [e["skill_counts"].get(k, 0) for k in range(3)], (e, validation)
        assert (validation["success"], validation["length"]) == (e["success"], e["length"])


def test_agents_side_by_side_act_as_each_would_alone(tmp_path, tiny_skills):
    """act_group over an agent and its spawn copies (one forward for all) gives each episode the actions it
    gets alone, to float precision: each copy keeps its own frames, step count, picks and master view."""
    skills = str(tiny_skills["pick"])
    checkpoints = {
        "skills": skills,
        "master": str(train_master(tiny_master_config(tmp_path / "m", skills=skills))),
        "ppo-flat": str(train_master(tiny_master_config(tmp_path / "f", skills="flat"))),
    }
    seeds = [1_000_000, 1_000_001, 1_000_002]  # three scenes: a shared state would mix their frames
    for name, checkpoint in checkpoints.items():
        envs_ = [envs.make_env("pick", image_size=32) for _ in seeds]
        first = make_agent(name, envs_[0], checkpoint, None)
        group = [first] + [first.spawn(env) for env in envs_[1:]]
        alone = [make_agent(name, env, checkpoint, None) for env in envs_]
        obs = [reset_episode(env, seed) for env, seed in zip(envs_, seeds)]
        for agent in group + alone:
            agent.reset()
        skills_seen = set()
        for _ in range(envs.get_task("pick").spec.timescale + 5):
            acted = act_group(group, obs)
            for i, (action, skill) in enumerate(acted):
                ref_action, ref_skill = alone[i].act(obs[i])
                assert skill == ref_skill, (name, i)
                np.testing.assert_allclose(action, ref_action, atol=1e-5, err_msg=f"{name}, episode {i}")
                skills_seen.add(skill)
            obs = [env.step(action)[0] for env, (action, _) in zip(envs_, acted)]
        assert np.abs(acted[0][0] - acted[1][0]).max() > 0, f"{name}: different scenes, different actions"
        if name == "skills":
            assert len(skills_seen) >= 2, "the fixed sequence moved on to its second skill"
        if name == "master":
            assert [len(a.choices) for a in group] == [len(a.choices) for a in alone] and group[0].choices
        for env in envs_:
            env.close()


def test_batched_evaluation_does_not_depend_on_workers(tmp_path, tiny_skills):
    base = dict(task="pick", agent="skills", checkpoint=str(tiny_skills["pick"]), episodes=5, batch=3)
    one, two = (
        evaluate(EvaluateConfig(**base, workers=w, out=str(tmp_path / f"w{w}")), progress=False) for w in (1, 2)
    )
    assert one["per_episode"] == two["per_episode"]
    assert [e["seed"] for e in one["per_episode"]] == list(range(1_000_000, 1_000_005))
    assert one["config"]["batch"] == 3


def test_bad_input(tmp_path, capsys):
    (tmp_path / "skills.pt").write_bytes(b"x")
    assert_cli_errors(
        capsys,
        [
            (
                ["evaluate", "agent=master", f"checkpoint={tmp_path / 'skills.pt'}"],
                "is a skills checkpoint; agent=master",
            ),
            (["evaluate", "agent=skills", f"checkpoint={tmp_path / 'm.zip'}"], "is a master; agent=skills"),
            (["evaluate", "episodes=0"], "episodes must be >= 1"),
            (["evaluate", "agent=dqn"], "unknown agent 'dqn'"),
            (["evaluate", "agent=skills"], "needs checkpoint=PATH"),
            (["evaluate", "seed_start=3"], "evaluation seeds start at"),
            (["evaluate", "batch=0"], "batch must be >= 1"),
            (
                ["evaluate", "agent=master", f"checkpoint={tmp_path / 'm.zip'}", "batch=4", "deterministic=false"],
                "needs batch=1",
            ),
        ],
    )
    with pytest.raises(ConfigError):
        evaluate(EvaluateConfig(task="pick", agent="flat-bc", checkpoint=str(tmp_path / "none.pt")), progress=False)


def test_robustness_options_reach_the_env(tmp_path):
    base = dict(task="pick", agent="expert", episodes=3, workers=1)
    plain = evaluate(EvaluateConfig(**base, out=str(tmp_path / "p")), progress=False)
    hit = evaluate(EvaluateConfig(**base, perturb_step=30, occlude=[5, 10], out=str(tmp_path / "h")), progress=False)
    assert hit["config"]["perturb_step"] == 30 and hit["config"]["occlude"] == [5, 10]
    # the expert is closed-loop on the true state: it re-grasps the knocked cube, so it still succeeds,
    # but later than without the perturbation
    assert hit["success_rate"] == plain["success_rate"] == 1.0
    assert hit["mean_length"] > plain["mean_length"]


def test_ppo_flat_baseline_trains_and_evaluates(tmp_path):
    # recent_skills, a task file's default for its masters, does not apply to low-level actions
    cfg = tiny_master_config(tmp_path / "f", skills="flat", n_envs=2, n_steps=8, total_steps=16, recent_skills=2)
    best = train_master(cfg)
    assert json.loads((tmp_path / "f" / "master.json").read_text())["config"]["recent_skills"] == 0
    r = evaluate(
        EvaluateConfig(
            task="pick", agent="ppo-flat", checkpoint=str(best), episodes=1, workers=1, out=str(tmp_path / "e")
        ),
        progress=False,
    )
    assert r["episodes"] == 1 and r["mean_length"] == 200 and not r["skill_choices"]
    with pytest.raises(ConfigError, match="is a ppo-flat policy; use agent=ppo-flat"):
        evaluate(
            EvaluateConfig(
                task="pick", agent="master", checkpoint=str(best), episodes=1, workers=1, out=str(tmp_path / "x")
            ),
            progress=False,
        )
