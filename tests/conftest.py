import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


def assert_cli_errors(capsys, cases) -> None:
    """Each ``(args, message)``: exit status 2, one readable line containing ``message``, no traceback."""
    from hrlbc.cli import main

    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)


def tiny_skills_config(data, out, **overrides):
    """A one-epoch, batch-16 train-skills config for tests (in-process loading, one evaluation episode)."""
    from hrlbc.skills.config import TrainSkillsConfig

    base = dict(task="pick", data=str(data), out=str(out), epochs=1, batch_size=16, eval_episodes=1, num_workers=0)
    return TrainSkillsConfig(**{**base, **overrides})


def tiny_master_config(out, **overrides):
    """A seconds-long train-master config (32 px, a few PPO steps) for end-to-end tests."""
    from hrlbc.master.train import TrainMasterConfig

    base = dict(
        task="pick",
        skills="scripted",
        obs="depth",
        image_size=32,
        out=str(out),
        n_envs=1,
        n_steps=4,
        n_minibatches=2,
        total_steps=4,
        eval_every=1,
        eval_episodes=1,
        progress=False,
    )
    return TrainMasterConfig(**{**base, **overrides})


@pytest.fixture(scope="session")
def tiny_skills(tmp_path_factory):
    """A tiny (32 px, few batches) Pick skills checkpoint, and one of Bowl for mismatch tests."""
    from demos.collect import CollectConfig, collect
    from hrlbc.skills.train import train_skills

    root = tmp_path_factory.mktemp("skills")
    out = {}
    for task in ("pick", "bowl"):
        collect(
            CollectConfig(task=task, episodes=3, workers=1, image_size=32, out=str(root / f"d_{task}")), progress=False
        )
        out[task] = train_skills(
            tiny_skills_config(
                root / f"d_{task}", root / f"s_{task}", task=task, max_batches=2, eval_every=0, augment="none"
            ),
            progress=False,
        )
    return out
