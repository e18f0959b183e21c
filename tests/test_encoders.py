"""Skill-network encoders (resnet18, spatial) and the batched random-shift augmentation."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import tiny_master_config, tiny_skills_config

import envs
from demos.collect import CollectConfig, collect
from hrlbc.config import ConfigError, resolve
from hrlbc.master.features import SkillFeatures
from hrlbc.master.train import train_master
from hrlbc.skills.augment import DepthAugment, random_shift
from hrlbc.skills.config import TrainSkillsConfig
from hrlbc.skills.data import BCBatches, FrameSource, build_targets, located_targets
from hrlbc.skills.model import SkillNet, coord_channels, heatmap_loss, soft_argmax
from hrlbc.skills.policy import SkillPolicy, build_model, load_checkpoint, save_checkpoint
from hrlbc.skills.train import train_skills


@pytest.fixture(scope="module")
def bowl_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("enc") / "bowl"
    collect(CollectConfig(task="bowl", episodes=3, workers=1, image_size=32, out=str(path)), progress=False)
    return path


@pytest.mark.parametrize("encoder, keypoints", [("spatial", 0.0), ("spatial", 0.1), ("resnet18", 0.0)])
def test_each_encoder_trains_and_serves_evaluation_and_the_master(bowl_data, tmp_path, encoder, keypoints):
    cfg = tiny_skills_config(
        bowl_data, tmp_path / "s", task="bowl", encoder=encoder, max_batches=3, eval_every=0, augment="shift",
        keypoints=keypoints,
    )  # fmt: skip
    best = train_skills(cfg, progress=False)
    ckpt = load_checkpoint(best)
    assert ckpt["model"]["encoder"] == encoder, "the checkpoint records its encoder"
    assert ckpt["model"]["located"] == (3 if keypoints else 0), "cube, bowl and tool are located"
    net = build_model(ckpt)
    assert net.encoder == encoder
    assert (net.squeeze is not None) == (encoder == "spatial"), "pool=auto: flatten for spatial, avg for resnet18"
    # evaluation: the policy acts on an env observation
    env = envs.make_env("bowl", image_size=32)
    obs, _ = env.reset(seed=3)
    action = SkillPolicy(ckpt).act(obs, 1)
    assert action.shape == env.action_space.shape and np.isfinite(action).all()
    env.close()
    # the master's features: the frozen trunk once per skill
    features = SkillFeatures(gym.spaces.Box(0.0, 1.0, (3, 32, 32), np.float32), str(best))
    assert features(torch.rand(2, 3, 32, 32)).shape == (2, features.features_dim)
    # and a real (tiny) master trains over these skills
    master = train_master(tiny_master_config(tmp_path / "m", task="bowl", skills=str(best), timescale=2))
    assert master.is_file()


def test_old_checkpoint_without_encoder_key_loads_as_resnet(bowl_data, tmp_path):
    cfg = tiny_skills_config(bowl_data, tmp_path / "s", task="bowl", encoder="resnet18", max_batches=2, eval_every=0)
    ckpt = load_checkpoint(train_skills(cfg, progress=False))
    old = dict(ckpt, model={k: v for k, v in ckpt["model"].items() if k not in ("encoder", "image_size")})
    save_checkpoint(tmp_path / "old.pt", old)
    net = build_model(load_checkpoint(tmp_path / "old.pt"))
    assert net.encoder == "resnet18" and net.stem[0].kernel_size == (7, 7)
    x = torch.rand(1, 3, 32, 32)
    a = SkillPolicy(old).model(x, torch.tensor([0]))[0]
    b = SkillPolicy(ckpt).model(x, torch.tensor([0]))[0]
    assert torch.equal(a, b), "the old checkpoint is the same network"


def test_spatial_encoder_is_smaller_and_conditions_on_the_skill():
    spatial, resnet = SkillNet(4, 3, 4, encoder="spatial", pool="auto"), SkillNet(4, 3, 4)
    n = [sum(p.numel() for p in m.parameters()) for m in (spatial, resnet)]
    assert n[0] < n[1] / 5
    torch.nn.init.normal_(spatial.film.weight)
    spatial.eval()
    x = torch.rand(1, 3, 64, 64)
    assert not torch.allclose(spatial(x, torch.tensor([0]))[0], spatial(x, torch.tensor([2]))[0])
    assert spatial.features(x, torch.tensor([0])).shape == (1, 64, 8, 8)


def test_coord_channels_give_each_pixel_its_position():
    out = coord_channels(torch.zeros(2, 3, 4, 5))
    assert out.shape == (2, 5, 4, 5)
    assert torch.equal(out[0, 3, 0], torch.linspace(-1, 1, 5)) and torch.equal(
        out[1, 4, :, 0], torch.linspace(-1, 1, 4)
    )


def test_flatten_pooling_keeps_where_a_feature_is():
    net = SkillNet(4, 3, 4, encoder="spatial", pool="flatten")
    a, b = torch.zeros(1, 64, 8, 8), torch.zeros(1, 64, 8, 8)
    a[..., 1, 1], b[..., 6, 6] = 1.0, 1.0  # the same feature, elsewhere
    assert torch.allclose(a.mean((2, 3)), b.mean((2, 3))), "average pooling cannot tell them apart"
    with torch.no_grad():
        torch.nn.init.ones_(net.squeeze[0].weight)
        assert not torch.allclose(net.pool(a), net.pool(b))


def test_random_shift_moves_each_sample_by_at_most_pad_and_fills_far():
    rng = np.random.default_rng(0)
    depth = np.full((32, 3, 16, 16), 0.5, np.float32)
    depth[:, :, 8, 8] = 0.2  # a marker, the same in every frame
    out, shift = random_shift(depth, 4, rng)
    assert out.shape == depth.shape and out.dtype == np.float32 and shift.shape == (32, 2)
    moves = set()
    for i in range(len(out)):
        ys, xs = np.nonzero(out[i, 0] == np.float32(0.2))
        assert len(ys) == 1 and abs(ys[0] - 8) <= 4 and abs(xs[0] - 8) <= 4
        assert (xs[0] - 8, ys[0] - 8) == tuple(shift[i]), "the reported shift is where the content went"
        moves.add((ys[0], xs[0]))
        assert np.array_equal(out[i, 0], out[i, 1]) and np.array_equal(out[i, 1], out[i, 2]), "one shift per sample"
        assert set(np.unique(out[i])) <= {np.float32(0.2), np.float32(0.5), np.float32(1.0)}, "padding is far"
    assert len(moves) > 10, "samples are shifted independently"
    again, _ = random_shift(depth, 4, np.random.default_rng(0))
    assert np.array_equal(out, again), "seeded"


def test_shift_preset_runs_batched_and_reseeds():
    aug = DepthAugment("shift", 16, seed=3)
    assert not aug.per_sample and not aug.needs_mask
    depth = np.random.default_rng(1).uniform(0, 1, (8, 3, 16, 16)).astype(np.float32)
    a = aug.batch(depth)
    aug.set_seed(3)
    b = aug.batch(depth)
    aug.set_seed(4)
    c = aug.batch(depth)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_bad_encoder_and_batched_transform_arguments_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="encoder must be one of"):
        resolve(TrainSkillsConfig, ["encoder=vit"])
    preset = tmp_path / "p.yaml"
    preset.write_text("transforms:\n  - {name: RandomShift, pad: 4, scale: 2}\n")
    with pytest.raises(ConfigError, match="RandomShift|random_shift"):
        DepthAugment(str(preset), 16)


def test_aux_state_targets_are_objects_relative_to_the_tool(bowl_data, tmp_path):
    from demos import open_dataset
    from hrlbc.skills.data import aux_state_targets

    ds = open_dataset(str(bowl_data))
    frames = np.arange(ds.num_frames)
    aux = aux_state_targets(ds, frames)
    assert aux.shape == (ds.num_frames, 3 + 3 + 1)  # cube - tcp, bowl - tcp, finger gap
    assert np.allclose(aux.mean(0), 0, atol=1e-4) and np.allclose(aux.std(0), 1, atol=1e-3)
    layout = {k: slice(*v) for k, v in ds.metadata["state_layout"].items()}
    state = np.asarray(ds.arrays["state"][: ds.num_frames])
    rel = state[:, layout["cube_pos"]] - state[:, layout["tcp_pos"]]
    assert np.corrcoef(rel[:, 0], aux[:, 0])[0, 1] > 0.999, "column 0 is the cube's x relative to the tool"
    # trained with it: the checkpoint carries the read-out, the policy ignores it, validation loss excludes it
    cfg = tiny_skills_config(bowl_data, tmp_path / "s", task="bowl", aux_state=0.5, max_batches=2, eval_every=0)
    ckpt = load_checkpoint(train_skills(cfg, progress=False))
    assert ckpt["model"]["aux_dim"] == 7
    env = envs.make_env("bowl", image_size=32)
    obs, _ = env.reset(seed=0)
    assert SkillPolicy(ckpt).act(obs, 0).shape == env.action_space.shape
    env.close()


def test_thread_fit_leaves_the_cores_other_processes_use(monkeypatch):
    import hrlbc.cpu as cpu

    clock = {"t": 0.0, "busy": 0.0, "own": 0.0}
    monkeypatch.setattr(cpu.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(cpu.time, "monotonic", lambda: clock["t"])
    monkeypatch.setattr(cpu, "_busy_jiffies", lambda: clock["busy"])
    monkeypatch.setattr(cpu.os, "times", lambda: type("T", (), {"user": clock["own"], "system": 0.0})())
    threads = torch.get_num_threads()
    try:
        fit = cpu.ThreadFit()
        assert fit.threads == 2

        def run(seconds: float, own_cores: float, other_cores: float) -> int:
            clock["t"] += seconds
            clock["own"] += own_cores * seconds
            clock["busy"] += (own_cores + other_cores) * seconds
            return fit.check()

        assert run(1.0, 2, 1) == 2, "not re-checked before CHECK_EVERY_S"
        assert run(2.0, 1, 1) == 1 and torch.get_num_threads() == 1, "one core busy elsewhere: one thread"
        assert run(3.0, 1, 1) == 1
        assert run(3.0, 1, 0) == 2 and torch.get_num_threads() == 2, "the other process ended: every core again"
        assert run(3.0, 2, 2) == 1, "never fewer than one thread"
    finally:
        torch.set_num_threads(threads)


def test_located_targets_are_the_objects_in_the_image(bowl_data):
    from demos import open_dataset

    ds = open_dataset(bowl_data)
    located = located_targets(ds)  # (T, V, 3, 2): cube, bowl, tool
    assert located.shape == (ds.num_frames, 1, 3, 2)
    env = envs.make_env("bowl", image_size=32, mask=True)
    seed = int(ds.meta("seed")[1])
    obs, _ = env.reset(seed=seed)
    start, _ = ds.episode_range(1)
    rows, cols = np.nonzero(obs["mask"] == 3)  # the cube's pixels in the first frame of episode 1
    x, y = located[start, 0, 0]
    assert abs((x + 1) / 2 * 32 - (cols.mean() + 0.5)) < 1.5 and abs((y + 1) / 2 * 32 - (rows.mean() + 0.5)) < 2.5
    env.close()


def test_located_targets_follow_the_random_shift(bowl_data):
    from demos import open_dataset

    ds = open_dataset(bowl_data)
    targets = build_targets(ds, 3, (1,), 1)
    targets.located = located_targets(ds)
    source = FrameSource(ds, ("depth",), 1e9)
    plain = BCBatches(source, targets, 3, 1, 1, None, 0)[np.arange(8)]
    shifted = BCBatches(source, targets, 3, 1, 1, DepthAugment("shift", 32, seed=1), 0)[np.arange(8)]
    moved = (shifted["located"] - plain["located"]).numpy() * 32 / 2  # px
    assert np.abs(moved).max() <= 4 and np.abs(moved).max() > 0
    assert np.allclose(moved, moved[:, :1]), "every keypoint of a sample moves with its image"
    for i in range(8):  # the image moved by as much
        dx, dy = np.rint(moved[i, 0]).astype(int)
        a, b = plain["depth"][i, -1].numpy(), shifted["depth"][i, -1].numpy()
        h = a.shape[0]
        assert np.array_equal(b[max(dy, 0) : h + min(dy, 0), max(dx, 0) : h + min(dx, 0)],
                              a[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : h + min(-dx, 0)])  # fmt: skip


def test_heatmap_loss_is_lowest_at_the_labelled_point():
    target = torch.tensor([[[0.5, -0.25]]])  # (x, y)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    peaked = -((xs - 0.5) ** 2 + (ys + 0.25) ** 2)[None, None] * 200
    elsewhere = -((xs + 0.5) ** 2 + (ys - 0.5) ** 2)[None, None] * 200
    assert heatmap_loss(peaked, target) < heatmap_loss(elsewhere, target)
    assert torch.allclose(soft_argmax(peaked), target.flatten(1), atol=0.02)


def test_keypoints_need_spatial_and_a_shift_only_augmentation(bowl_data, tmp_path):
    with pytest.raises(ConfigError, match="keypoints needs encoder=spatial"):
        resolve(TrainSkillsConfig, ["data=x", "out=y", "keypoints=0.1", "encoder=resnet18"])
    cfg = tiny_skills_config(bowl_data, tmp_path / "s", task="bowl", keypoints=0.1, augment="light", max_batches=1)
    with pytest.raises(ConfigError, match="keypoints needs augment=none or shift"):
        train_skills(cfg, progress=False)
