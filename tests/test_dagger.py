"""DAgger: another policy acts while the scripted skills label; the new store copies the demonstrations."""

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_cli_errors, tiny_skills_config

import envs
from demos import open_dataset
from demos.collect import record_episode


def test_an_actor_acts_while_the_scripted_skill_labels():
    env = envs.make_env("pick", image_size=32)
    still = np.zeros(env.action_space.shape[0], np.float32)
    still[-1] = 1.0  # open, not moving
    calls = []

    def actor(obs, skill):
        calls.append(skill)
        return still

    rng = np.random.default_rng(0)
    frames, _ = record_episode(env, 3, "skills", 0.0, 2, rng, actor=actor)
    env.close()
    assert len(calls) == len(frames["action"]) and calls == frames["skill"].tolist()
    assert np.all(frames["action"] == still)  # the actor's commands are what ran and what is stored
    # The labels are the scripted skill's, from the states the actor left the robot in: it never moved, so
    # the expert keeps commanding motion (towards the cube) that the actor did not make.
    moving = np.linalg.norm(frames["expert_action"][:, :3], axis=1) > 1e-3
    assert moving.mean() > 0.5
    tcp = frames["state"][:, :3]
    assert np.abs(tcp - tcp[0]).max() < 0.01  # the robot stayed where the actor kept it


def test_dagger_store_keeps_the_demonstrations_and_resumes(tiny_skills, tmp_path, capsys):
    from hrlbc.skills.dagger import DaggerConfig, dagger

    src_path = Path(tiny_skills["pick"]).parent.parent / "d_pick"
    src = open_dataset(src_path)
    out = tmp_path / "dagger"
    cfg = DaggerConfig(task="pick", data=str(src_path), skills=str(tiny_skills["pick"]), out=str(out), episodes=2,
                       workers=1, hold_max=3)  # fmt: skip
    dagger(cfg, progress=False)
    ds = open_dataset(out, verify=True)
    n = src.num_episodes
    assert ds.num_episodes == n + 2
    assert ds.metadata["dagger"]["first_dagger_episode"] == n
    for name, arr in src.arrays.items():  # the demonstrations, byte for byte
        assert np.array_equal(np.asarray(ds.arrays[name][: src.num_frames]), np.asarray(arr[: src.num_frames]))
    assert np.array_equal(ds.meta("checksum")[:n], src.meta("checksum"))
    assert ds.meta("seed")[n:].tolist() == [100_000, 100_001]
    lo, hi = ds.episode_range(n)
    dag = ds.episode(n)
    assert not np.array_equal(dag["action"], dag["expert_action"])  # the skills acted, the expert labelled
    assert hi - lo == len(dag["action"])

    kept = ds.meta("checksum")
    dagger(cfg, progress=False)  # finished: nothing to do
    assert "nothing to do" in capsys.readouterr().out
    cfg.episodes = 3
    dagger(cfg, progress=False)  # one more, appended; nothing else rewritten
    ds = open_dataset(out, verify=True)
    assert ds.num_episodes == n + 3
    for name in src.arrays:
        assert np.array_equal(
            np.asarray(ds.arrays[name][: src.num_frames]), np.asarray(src.arrays[name][: src.num_frames])
        )
    assert np.array_equal(ds.meta("checksum")[: n + 2], kept)  # the episodes it had, as they were
    assert np.array_equal(open_dataset(src_path).meta("checksum"), src.meta("checksum"))  # the source: untouched


def test_dagger_refuses_other_skills_and_writing_into_the_demonstrations(tiny_skills, tmp_path, capsys):
    src = str(Path(tiny_skills["pick"]).parent.parent / "d_pick")
    out = tmp_path / "dagger"
    common = ["task=pick", f"data={src}", "episodes=1", "workers=1", "hold_max=2"]
    assert_cli_errors(
        capsys,
        [
            (["dagger", *common, f"skills={tiny_skills['bowl']}", f"out={out}"], "skills of bowl"),
            (["dagger", *common, f"skills={tiny_skills['pick']}", f"out={src}"], "out must be a new store"),
            (["dagger", *common, "skills=nowhere.pt", f"out={out}"], "skills checkpoint not found"),
            (["dagger", *common, f"skills={tiny_skills['pick']}", f"out={out}", "hold_max=-2"], "hold_max"),
        ],
    )
    from hrlbc.skills.dagger import DaggerConfig, dagger

    dagger(DaggerConfig(task="pick", data=src, skills=str(tiny_skills["pick"]), out=str(out), episodes=1, workers=1,
                        hold_max=2), progress=False)  # fmt: skip
    other = tmp_path / "other.pt"  # the same skills, other bytes: another checkpoint
    import torch

    ckpt = torch.load(tiny_skills["pick"], weights_only=True)
    ckpt["note"] = "another"
    torch.save(ckpt, other)
    assert_cli_errors(
        capsys, [(["dagger", *common, f"skills={other}", f"out={out}", "episodes=2"], "different task or config")]
    )


def test_init_fine_tunes_from_a_checkpoint_with_its_normalisation(tiny_skills, tmp_path, capsys):
    import torch

    from hrlbc.skills.policy import load_checkpoint
    from hrlbc.skills.train import train_skills

    data = Path(tiny_skills["pick"]).parent.parent / "d_pick"
    init = load_checkpoint(tiny_skills["pick"])
    cfg = tiny_skills_config(data, tmp_path / "ft", max_batches=2, eval_every=0, augment="none", lr=1e-12,
                             init=str(tiny_skills["pick"]), seed=5)  # fmt: skip
    tuned = load_checkpoint(train_skills(cfg, progress=False))
    assert tuned["vel_mean"] == init["vel_mean"] and tuned["vel_std"] == init["vel_std"]
    for k, v in init["state_dict"].items():  # a 1e-12 step from the initial weights: still them
        if v.is_floating_point() and "running_" not in k:  # BatchNorm statistics follow the batches, not lr
            assert torch.allclose(tuned["state_dict"][k], v, atol=1e-5), k
    cfg = tiny_skills_config(data, tmp_path / "fresh", max_batches=2, eval_every=0, augment="none", lr=1e-12, seed=5)
    fresh = load_checkpoint(train_skills(cfg, progress=False))  # the same run without init: other weights
    assert any(not torch.allclose(fresh["state_dict"][k], v) for k, v in init["state_dict"].items() if "weight" in k)
    assert_cli_errors(
        capsys,
        [
            (
                [
                    "train-skills",
                    "task=pick",
                    f"data={data}",
                    f"out={tmp_path / 'x'}",
                    "epochs=1",
                    "max_batches=1",
                    "eval_every=0",
                    "encoder=resnet18",
                    f"init={tiny_skills['pick']}",
                ],
                "another model",
            ),  # fmt: skip
            (
                [
                    "train-skills",
                    "task=bowl",
                    f"data={data}",
                    f"out={tmp_path / 'y'}",
                    "epochs=1",
                    f"init={tiny_skills['pick']}",
                ],
                "pick",
            ),  # fmt: skip
        ],
    )


@pytest.mark.parametrize("episodes", [0])
def test_dagger_episodes_must_be_positive(episodes, capsys):
    assert_cli_errors(capsys, [(["dagger", "task=pick", "skills=x.pt", f"episodes={episodes}"], "episodes")])


def test_skip_leaves_skills_out_of_the_sampled_sequences(tiny_skills):
    from demos.collect import CollectConfig
    from hrlbc.skills import dagger as dagger_module

    def segments(skill_ids):  # the sequence of skills an episode ran
        return [int(s) for i, s in enumerate(skill_ids) if i == 0 or s != skill_ids[i - 1]]

    cfg = CollectConfig(task="pick", image_size=32, seed=100_000, hold_max=0, mask=True)
    ran = {}
    for skip in (0.0, 0.99):
        dagger_module._init_worker(cfg, str(tiny_skills["pick"]), skip, pool_worker=False)
        ran[skip] = [segments(dagger_module._work(j)[0]["skill"].tolist()) for j in range(4)]
    for j in range(4):
        rng = np.random.default_rng([100_000, j])
        sampled = envs.sample_skill_sequence("pick", rng)
        kept = [s for s in sampled if rng.random() >= 0.99] or sampled[-1:]
        assert len(kept) < len(sampled)
        for skip, expected in ((0.0, sampled), (0.99, kept)):
            merged = [s for i, s in enumerate(expected) if i == 0 or s != expected[i - 1]]
            assert ran[skip][j] == merged[: len(ran[skip][j])], (skip, j)  # (an episode may end early)


def test_dagger_refuses_damaged_demonstrations_and_writes_nothing(tiny_skills, tmp_path, capsys):
    import shutil

    src = tmp_path / "damaged"
    shutil.copytree(Path(tiny_skills["pick"]).parent.parent / "d_pick", src)
    (src / "data/depth/c/0/0/0/0").unlink()  # the first frames' chunk: zarr alone would read zeros
    out = tmp_path / "dagger"
    args = ["dagger", "task=pick", f"data={src}", f"skills={tiny_skills['pick']}", f"out={out}", "episodes=1"]
    assert_cli_errors(capsys, [(args, "data/depth")])
    assert not out.exists() or not any(out.iterdir())
