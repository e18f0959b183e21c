import os

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
    from hrlbc.skills.train import TrainSkillsConfig

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
