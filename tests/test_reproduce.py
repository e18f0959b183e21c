"""`hrlbc reproduce`: the whole pipeline end to end on a tiny preset; a re-run skips finished stages."""

import json
import re
import time

from conftest import assert_cli_errors

from demos import open_dataset
from hrlbc.cli import main


def test_tiny_reproduce_runs_end_to_end_and_resumes(tmp_path, capsys):
    out = tmp_path / "repro"
    assert main(["reproduce", "task=pick", "preset=tiny", f"out={out}"]) == 0
    ran = re.findall(r"\[reproduce\] (\w+) \.\.\.", capsys.readouterr().out)
    # the method (and its evaluation) before the baselines
    assert ran[:8] == [
        "collect_skills",
        "train_skills",
        "dagger",
        "train_skills_dagger",
        "eval_skills",
        "train_master",
        "eval_RLBC_learned",
        "train_master_scripted",
    ]
    assert ran.index("eval_RLBC_learned") < ran.index("collect_full") < ran.index("train_ppo_flat")
    results = json.loads((out / "results.json").read_text())
    agents = [r["agent"] for r in results["rows"]]
    assert agents == [
        "expert",
        "flat-bc",
        "ppo-flat",
        "skills (expert order)",
        "RLBC, scripted skills",
        "RLBC, learned skills",
    ]
    assert results["rows"][0]["success"] == 1.0, "the scripted expert solves the evaluation seeds"
    assert (out / "results.png").stat().st_size > 1000 and "Wilson 95%" in (out / "results.md").read_text()
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()}
    assert len(stamps) == 15
    # the learned-skill agents ran the skills DAgger fine-tuned from the first ones
    assert json.loads((out / "eval_skills" / "report.json").read_text())["checkpoint"].endswith("skills_dagger/best.pt")
    assert open_dataset(out / "data_dagger").num_episodes == open_dataset(out / "data_skills").num_episodes + 2
    assert main(["reproduce", "task=pick", "preset=tiny", f"out={out}"]) == 0
    text = capsys.readouterr().out
    assert text.count("done already, skipped") == 15
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()}
    # a run directory moved elsewhere (as docs/runs/ copies are) keeps its table: rows are labelled by
    # their evaluation's folder, not by the checkpoint paths written in the reports
    moved = out.rename(tmp_path / "moved")
    assert main(["reproduce", "task=pick", "preset=tiny", f"out={moved}"]) == 0
    assert capsys.readouterr().out.count("done already, skipped") == 15
    assert [r["agent"] for r in json.loads((moved / "results.json").read_text())["rows"]] == agents


def test_partial_run_resumes_only_the_missing_stages(tmp_path, capsys, monkeypatch):
    import hrlbc.evaluate.reproduce as reproduce_module

    out = tmp_path / "repro"
    assert main(["reproduce", "task=pick", "preset=tiny", f"out={out}"]) == 0
    (out / "stages" / "eval_expert.json").unlink()

    def interrupted(cfg, progress=True):  # Ctrl-C 0.2 s into the stage
        time.sleep(0.2)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(reproduce_module, "evaluate", interrupted)
        assert main(["reproduce", "task=pick", "preset=tiny", f"out={out}"]) == 130
    assert float((out / "stages" / "eval_expert.elapsed").read_text()) >= 0.2
    assert not (out / "stages" / "eval_expert.json").exists()
    capsys.readouterr()
    assert main(["reproduce", "task=pick", "preset=tiny", f"out={out}"]) == 0
    text = capsys.readouterr().out
    assert "[reproduce] eval_expert ..." in text and text.count("skipped") == 14
    # the finished stage's wall-clock includes the interrupted attempt; its running clock is gone
    assert json.loads((out / "stages" / "eval_expert.json").read_text())["wall_s"] >= 0.2
    assert not (out / "stages" / "eval_expert.elapsed").exists()


def test_stage_killed_outright_keeps_its_clock(tmp_path, monkeypatch):
    """A session that ends kills the run with no chance to clean up: the time it ran still counts."""
    import multiprocessing
    import signal

    import hrlbc.evaluate.reproduce as reproduce_module

    monkeypatch.setattr(reproduce_module, "CLOCK_TICK_S", 0.05)
    child = multiprocessing.get_context("fork").Process(
        target=reproduce_module.run_stage, args=(tmp_path, "train", lambda: time.sleep(60))
    )
    child.start()
    time.sleep(1.0)
    child.kill()  # SIGKILL: no exception, no finally
    child.join()
    assert child.exitcode == -signal.SIGKILL
    killed = float((tmp_path / "train.elapsed").read_text())
    assert 0.3 <= killed <= 1.0 and not (tmp_path / "train.json").exists()

    reproduce_module.run_stage(tmp_path, "train", lambda: time.sleep(0.1))
    wall = json.loads((tmp_path / "train.json").read_text())["wall_s"]
    assert killed + 0.1 <= wall < killed + 1.0
    assert not (tmp_path / "train.elapsed").exists()


def test_unknown_preset(capsys):
    assert main(["reproduce", "preset=huge"]) == 2
    assert "unknown reproduce preset 'huge'; valid: paper, quick, tiny" in capsys.readouterr().err


def test_stage_config_layers_task_file_under_the_preset(tmp_path, monkeypatch):
    """Task defaults (configs/tasks/<task>.yaml) apply in reproduce too; the preset overrides them."""
    import hrlbc.config
    from demos.collect import CollectConfig
    from hrlbc.evaluate.reproduce import stage_config

    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "pick.yaml").write_text("collect: {hold_max: 17, noise: 0.2, episodes: 9}\n")
    monkeypatch.setattr(hrlbc.config, "CONFIG_DIR", tmp_path)
    preset = {"collect_skills": {"noise": 0.1}}
    cfg = stage_config(CollectConfig, preset, "collect_skills", "collect", task="pick", episodes=4)
    assert (cfg.hold_max, cfg.noise, cfg.episodes) == (17, 0.1, 4)


def test_agents_setting_runs_only_their_stages(tmp_path, capsys):
    out = tmp_path / "repro"
    args = ["reproduce", "task=pick", "preset=tiny", f"out={out}", "agents=[expert,rlbc-scripted]"]
    assert main(args) == 0
    ran = re.findall(r"\[reproduce\] (\w+) \.\.\.", capsys.readouterr().out)
    assert ran == ["train_master_scripted", "eval_RLBC_scripted", "eval_expert"]
    results = json.loads((out / "results.json").read_text())
    assert [r["agent"] for r in results["rows"]] == ["expert", "RLBC, scripted skills"]
    note = "Not run (the `agents` setting): flat-bc, ppo-flat, skills (expert order), RLBC, learned skills."
    assert note in (out / "results.md").read_text()
    assert not (out / "data_skills").exists() and not (out / "data_full").exists()
    # A marker another run's agents left in `out` is listed apart, not summed into this run's total.
    assert set(results["stage_wall_s"]) == {"train_master_scripted", "eval_RLBC_scripted", "eval_expert"}
    total = sum(results["stage_wall_s"].values())
    (out / "stages" / "train_ppo_flat.json").write_text(json.dumps({"stage": "train_ppo_flat", "wall_s": 6000.0}))
    assert main(args) == 0
    text = (out / "results.md").read_text()
    assert f"Total: {total / 60:.1f} min." in text
    assert "Stages of an earlier run with other agents (not in the total, s): train_ppo_flat 6000." in text


def test_preset_agents_list_and_bad_agent_names(tmp_path, capsys, monkeypatch):
    import hrlbc.evaluate.reproduce as reproduce_module

    (tmp_path / "reproduce").mkdir()
    (tmp_path / "reproduce" / "mine.yaml").write_text("agents: [expert]\nevaluate: {episodes: 2, workers: 1}\n")
    (tmp_path / "reproduce" / "typo.yaml").write_text("agents: [expert, flat_bc]\n")
    monkeypatch.setattr(reproduce_module, "CONFIG_DIR", tmp_path)
    assert main(["reproduce", "task=pick", "preset=mine", f"out={tmp_path / 'a'}"]) == 0
    assert re.findall(r"\[reproduce\] (\w+) \.\.\.", capsys.readouterr().out) == ["eval_expert"]
    assert main(["reproduce", "task=pick", "preset=typo", f"out={tmp_path / 'b'}"]) == 2
    err = capsys.readouterr().err
    assert "unknown agent(s) 'flat_bc' in configs/reproduce/typo.yaml; valid: skills, rlbc-learned" in err
    assert main(["reproduce", "task=pick", "preset=tiny", "agents=[masterr]"]) == 2
    assert "unknown agent(s) 'masterr' in agents" in capsys.readouterr().err
    assert not (tmp_path / "b" / "stages").exists(), "a bad preset fails before any stage"


def test_preset_task_sections_override_one_task_only(tmp_path, capsys, monkeypatch):
    import hrlbc.evaluate.reproduce as reproduce_module
    from hrlbc.evaluate.reproduce import load_preset

    (tmp_path / "reproduce").mkdir()
    (tmp_path / "reproduce" / "mine.yaml").write_text(
        "collect_skills: {episodes: 5, workers: 2}\ntasks:\n  bowl:\n    collect_skills: {episodes: 9}\n"
        "    train_skills: {epochs: 3}\n"
    )
    (tmp_path / "reproduce" / "badtask.yaml").write_text("tasks: {bowll: {train_skills: {epochs: 3}}}\n")
    (tmp_path / "reproduce" / "badkey.yaml").write_text("tasks: {bowl: {train_skill: {epochs: 3}}}\n")
    (tmp_path / "reproduce" / "badsetting.yaml").write_text("train_flat_bc: {epochs: 3, precison: bf16}\n")
    (tmp_path / "reproduce" / "badvalue.yaml").write_text("tasks: {bowl: {train_master: {gamma: fast}}}\n")
    monkeypatch.setattr(reproduce_module, "CONFIG_DIR", tmp_path)
    bowl = load_preset("mine", "bowl")
    assert bowl["collect_skills"] == {"episodes": 9, "workers": 2} and bowl["train_skills"] == {"epochs": 3}
    assert load_preset("mine", "pick") == {"collect_skills": {"episodes": 5, "workers": 2}}
    assert main(["reproduce", "task=bowl", "preset=badtask", f"out={tmp_path / 'a'}"]) == 2
    assert "unknown task(s) 'bowll' in configs/reproduce/badtask.yaml; valid: pick, bowl" in capsys.readouterr().err
    assert main(["reproduce", "task=pick", "preset=badkey", f"out={tmp_path / 'b'}"]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) 'train_skill' in configs/reproduce/badkey.yaml, tasks.bowl; valid: agents," in err
    # a stage's settings are checked before any stage runs too, even those of a stage run late
    assert main(["reproduce", "task=pick", "preset=badsetting", f"out={tmp_path / 'c'}"]) == 2
    assert "train_flat_bc: unknown config key 'precison'; valid keys: task," in capsys.readouterr().err
    assert main(["reproduce", "task=bowl", "preset=badvalue", f"out={tmp_path / 'd'}"]) == 2
    assert "train_master: bad value for 'gamma'" in capsys.readouterr().err
    assert not any((tmp_path / d / "stages").exists() for d in "abcd")


def test_shipped_presets_resolve_every_stage_for_every_task(tmp_path, monkeypatch):
    """A typo in a shipped preset fails here, not hours into a paper run."""
    import envs
    import hrlbc.evaluate.reproduce as reproduce_module
    from hrlbc.evaluate.reproduce import ReproduceConfig, load_preset, reproduce

    ran = []
    monkeypatch.setattr(reproduce_module, "run_stage", lambda stages, name, job: ran.append(name))
    monkeypatch.setattr(reproduce_module, "write_results", lambda *a: None)
    for preset in ("tiny", "quick", "paper"):
        for task in envs.TASKS:
            assert load_preset(preset, task)["evaluate"]["episodes"] > 0
            ran.clear()
            reproduce(ReproduceConfig(task=task, preset=preset, out=str(tmp_path / f"{task}_{preset}")))
            assert ran and ran[0] in ("collect_skills", "train_master_scripted"), (preset, task, ran)
    assert load_preset("paper", "breakfast")["train_skills"] == dict(
        epochs=8, eval_every=2, eval_episodes=20, augment="light", encoder="resnet18", precision="fast"
    )
    for task in envs.TASKS:  # the paper preset stays RLBC's network; the quick one trains the fast encoder
        assert load_preset("paper", task)["train_flat_bc"]["encoder"] == "resnet18"
        assert load_preset("quick", task)["train_skills"]["encoder"] == "spatial"
    # the main job runs the whole method: every agent, the master over learned skills included
    quick = load_preset("quick", "bowl")
    assert set(quick["agents"]) == {"skills", "rlbc-learned", "rlbc-scripted", "expert", "flat-bc", "ppo-flat"}
    assert quick["train_skills"]["keypoints"] > 0 and quick["train_flat_bc"]["keypoints"] > 0
    assert load_preset("paper", "bowl")["collect_skills"]["episodes"] == 1000
    assert load_preset("paper", "pick")["collect_skills"]["episodes"] == 500


def test_given_skills_replace_collection_and_training(tmp_path, capsys):
    """`skills=` runs the learned-skill agents over skills trained before; a run folder keeps one set."""
    import torch

    own, given = tmp_path / "own", tmp_path / "given"
    assert main(["reproduce", "task=pick", "preset=tiny", f"out={own}", "agents=[skills]"]) == 0
    ckpt = own / "skills" / "best.pt"
    capsys.readouterr()
    args = ["reproduce", "task=pick", "preset=tiny", f"out={given}", f"skills={ckpt}"]
    assert main([*args, "agents=[skills,rlbc-learned]"]) == 0
    ran = re.findall(r"\[reproduce\] (\w+) \.\.\.", capsys.readouterr().out)
    assert ran == ["eval_skills", "train_master", "eval_RLBC_learned"]
    assert not (given / "data_skills").exists() and not (given / "skills").exists()
    results = json.loads((given / "results.json").read_text())
    assert [r["agent"] for r in results["rows"]] == ["skills (expert order)", "RLBC, learned skills"]
    assert results["skills"] == str(ckpt) and set(results["stage_wall_s"]) == set(ran)
    assert f"Learned skills given (`skills=`): `{ckpt}` (sha256 " in (given / "results.md").read_text()
    master_cfg = (given / "master" / "config.yaml").read_text()
    assert f"skills: {ckpt}" in master_cfg, "the master trains over the given skills"

    bowl = tmp_path / "bowl.pt"
    torch.save({**torch.load(ckpt, weights_only=True), "task": "bowl"}, bowl)
    assert_cli_errors(
        capsys,
        [
            (
                ["reproduce", "task=pick", "preset=tiny", f"out={tmp_path / 'x'}", f"skills={bowl}"],
                f"{bowl} holds skills of task 'bowl' (3 skills); task 'pick' needs its 3 skills",
            ),
            (
                ["reproduce", "task=pick", "preset=tiny", f"out={tmp_path / 'x'}", f"skills={tmp_path / 'no.pt'}"],
                "skills checkpoint not found",
            ),
            # the folder's master and evaluations were made over the other skills
            (
                ["reproduce", "task=pick", "preset=tiny", f"out={given}"],
                f"{given} was run with skills={ckpt}, not its own",
            ),
            (
                ["reproduce", "task=pick", "preset=tiny", f"out={own}", f"skills={ckpt}"],
                f"{own} was run with the skills it trained ({own / 'skills'}), not skills={ckpt}",
            ),
        ],
    )
