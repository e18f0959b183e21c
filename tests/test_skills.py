"""Behavior-cloned skills: model, data targets, overfitting, tiny end-to-end training, bad input."""

import shutil

import numpy as np
import pytest
import torch
import zarr
from conftest import assert_cli_errors, tiny_skills_config

import envs
from demos import open_dataset
from demos.collect import CollectConfig, collect
from hrlbc.cli import main
from hrlbc.config import ConfigError
from hrlbc.skills import train as train_module
from hrlbc.skills.config import TrainSkillsConfig
from hrlbc.skills.data import BCBatches, FrameSource, build_targets
from hrlbc.skills.model import SkillNet
from hrlbc.skills.policy import TRAINING_ONLY_KEYS, SkillPolicy, load_checkpoint
from hrlbc.skills.train import TrainingError, bc_loss, train_skills


@pytest.fixture(scope="module")
def pick_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "pick"
    collect(CollectConfig(task="pick", episodes=6, workers=1, image_size=32, out=str(path)), progress=False)
    return path


def tiny(data, out, **kw):
    return tiny_skills_config(data, out, **{"augment": "sim2real", "threads": 2, **kw})


@pytest.mark.parametrize("width", ["narrow", "full"])
def test_model_shapes_and_film(width):
    net = SkillNet(n_skills=4, vel_dim=3, n_offsets=4, frames=3, width=width)
    x = torch.rand(5, 3, 32, 32)
    vel, logits = net(x, torch.tensor([0, 1, 2, 3, 0]))
    assert vel.shape == (5, 4, 3) and logits.shape == (5, 4, 2)
    torch.nn.init.normal_(net.film.weight)
    net.eval()
    a, _ = net(x[:1], torch.tensor([0]))
    b, _ = net(x[:1], torch.tensor([1]))
    assert not torch.allclose(a, b), "the skill id conditions the output"
    flat = SkillNet(n_skills=4, vel_dim=3, n_offsets=4, film=False)
    assert flat(x)[0].shape == (5, 4, 3)


def test_keypoint_pooling_reports_where_features_are():
    net = SkillNet(n_skills=3, vel_dim=3, n_offsets=4, pool="keypoints")
    vel, logits = net(torch.rand(2, 3, 64, 64), torch.tensor([0, 2]))
    assert vel.shape == (2, 4, 3) and logits.shape == (2, 4, 2)
    maps = torch.zeros(1, net.feature_dim, 4, 4)
    maps[0, :, 3, 0] = 50.0  # all activation in the bottom-left cell
    torch.nn.init.ones_(net.keypoints.weight)
    points = net.pool(maps).view(-1, 2)  # (keypoints, (x, y)) in [-1, 1]
    assert torch.allclose(points, torch.tensor([-1.0, 1.0]).expand_as(points), atol=1e-3)
    with pytest.raises(ValueError, match="pool must be one of"):
        SkillNet(n_skills=3, vel_dim=3, n_offsets=4, pool="max")


def test_ema_averages_weights_and_batchnorm_statistics():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    ema = train_module.ema_model(net, decay=0.9)
    first = net[0].weight.detach().clone()
    net.train()
    for _ in range(30):
        with torch.no_grad():
            net[0].weight.add_(0.1)
        net(torch.randn(16, 4) + 3.0)  # moves the BatchNorm running mean towards the inputs' mean
        ema.update_parameters(net)
    avg, cur = ema.module[0].weight, net[0].weight
    assert (avg > first).all() and (avg < cur).all(), "the average lags behind the latest weights"
    assert not torch.allclose(ema.module[1].running_mean, net[1].running_mean), "statistics are averaged"
    assert ema.module[1].num_batches_tracked == net[1].num_batches_tracked == 30


def test_targets_respect_offsets_segments_and_lookahead(pick_data):
    ds = open_dataset(pick_data)
    t = build_targets(ds, 3, (1, 10), lookahead=5)
    actions = np.asarray(ds.arrays["expert_action"][:])
    skill = np.asarray(ds.arrays["skill"][:])
    vel = t.velocity * t.vel_std + t.vel_mean
    assert np.allclose(vel[:, 0], actions[:, :3], atol=1e-5), "offset 1 is the action executed now"
    start, end = ds.episode_range(0)
    for i in range(start, end):
        j = i + 9
        seg_end = i
        while seg_end + 1 < end and skill[seg_end + 1] == skill[i]:
            seg_end += 1
        assert np.allclose(vel[i, 1], actions[min(j, seg_end), :3], atol=1e-5)
        opened = actions[i, 3] > 0 and actions[min(i + 5, seg_end), 3] > 0  # closing early, opening on time
        assert t.gripper[i, 0] == int(opened)


def test_default_gripper_label_closes_with_the_pads_around_the_cube(pick_data):
    """The label may close early, but not before the pads reach the cube: a close above it misses
    under the pinch grasp. RLBC's 5 steps closed ~4 cm above the expert's closing height here."""
    ds = open_dataset(pick_data)
    t = build_targets(ds, 3, (1,), lookahead=TrainSkillsConfig().gripper_lookahead)
    state = np.asarray(ds.arrays["state"][:])
    grip = np.asarray(ds.arrays["expert_action"][:, -1])
    z = state[:, envs.make_env("pick", depth=False).state_layout["tcp_pos"]][:, 2]
    closes = np.nonzero((grip[1:] < 0) & (grip[:-1] > 0))[0] + 1  # the expert's closing frames
    assert len(closes) >= 3
    for c in closes:
        early = c
        while early > 0 and t.gripper[early - 1, 0] == 0 and grip[early - 1] > 0:
            early -= 1  # frames labelled "close" while the expert still holds the gripper open
        assert z[early] - z[c] < 0.01, (c, early, z[early] - z[c])


def test_velocity_std_floor(pick_data):
    """A component that barely varies is normalised by the floor, not by its own tiny spread."""
    ds = open_dataset(pick_data)
    free = build_targets(ds, 3, (1,), lookahead=5)
    floor = np.array([0.0, 0.0, 10 * free.vel_std[2]], np.float32)
    floored = build_targets(ds, 3, (1,), lookahead=5, std_floor=floor)
    assert np.allclose(floored.vel_std[:2], free.vel_std[:2]) and np.isclose(floored.vel_std[2], floor[2])
    assert np.allclose(floored.velocity[:, 0, 2] * floor[2], free.velocity[:, 0, 2] * free.vel_std[2], atol=1e-6)


def test_overfits_a_handful_of_frames(pick_data):
    torch.manual_seed(0)
    ds = open_dataset(pick_data)
    targets = build_targets(ds, 3, (1, 10, 20, 30), 5)
    batches = BCBatches(FrameSource(ds, ("depth",), 1e9), targets, 3, 1, 1, None, 0)
    idx = np.arange(5, 13)
    batch = batches[idx]
    net = SkillNet(n_skills=3, vel_dim=3, n_offsets=4)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    first = None
    for _ in range(150):
        loss, _ = bc_loss(net, batch, 0.1, flat=False)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        final, _ = bc_loss(net, batch, 0.1, flat=False)
    assert final.item() < first / 10, (first, final.item())


def test_streaming_source_equals_ram(pick_data):
    ds = open_dataset(pick_data)
    ram, stream = FrameSource(ds, ("depth",), 1e12), FrameSource(ds, ("depth",), 0, chunk_cache=2)
    assert ram.in_ram and not stream.in_ram
    idx = np.random.default_rng(0).integers(0, ds.num_frames, size=(50, 3))
    assert np.array_equal(ram.get("depth", idx), stream.get("depth", idx))


def test_tiny_training_checkpoints_resumes_exactly_and_acts(pick_data, tmp_path):
    def run(out, **kw):  # 6 batches an epoch: resuming mid-run is what is tested, not learning
        return train_skills(tiny(pick_data, tmp_path / out, max_batches=6, **kw), progress=False)

    straight = run("a", epochs=2)
    run("b", epochs=1)
    resumed = run("b", epochs=2, resume=True)
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert b["epoch"] == 1 and len(b["history"]["epoch"]) == 2
    assert b["optimizer"]["param_groups"][0]["fused"], "Adam's fused CPU kernel (benchmarks/adam_step.py)"
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    for name in ("best.pt", "last.pt", "config.yaml", "curves.png"):
        assert (tmp_path / "b" / name).is_file(), name
    best = load_checkpoint(tmp_path / "b" / "best.pt")
    assert not set(TRAINING_ONLY_KEYS) & set(best), "best.pt holds the policy alone; last.pt is resumed from"
    assert list((tmp_path / "b" / "tb").iterdir()), "TensorBoard events written"
    assert straight.is_file() and resumed.is_file()
    trained = b["train_state"]["model"]
    assert any(not torch.equal(b["state_dict"][k], trained[k]) for k in trained), "the policy is the EMA"
    last, exported = tmp_path / "b" / "last.pt", tmp_path / "shared" / "skills.pt"
    assert main(["export-skills", f"checkpoint={last}", f"out={exported}"]) == 0
    assert exported.stat().st_size < 0.5 * last.stat().st_size, "no raw weights or Adam moments"
    assert resumed.stat().st_size < 0.5 * last.stat().st_size, "best.pt is exported as it is written"
    (tmp_path / "c").mkdir()
    shutil.copy(exported, tmp_path / "c" / "last.pt")
    with pytest.raises(ConfigError, match="is an exported policy without training state"):
        run("c", epochs=2, resume=True)
    policies = [SkillPolicy.load(last), SkillPolicy.load(exported)]
    env = envs.make_env("pick", image_size=32)
    obs, _ = env.reset(seed=0)
    for policy in policies:
        policy.reset()
    for skill in range(3):
        action, again = (policy.act(obs, skill) for policy in policies)
        assert action.shape == env.action_space.shape and action.dtype == np.float32
        assert action[-1] in (-1.0, 1.0)
        np.testing.assert_array_equal(action, again)  # the exported policy is the same policy
        obs, *_ = env.step(action)
    env.close()


def test_workers_and_flat_mode(pick_data, tmp_path):
    best = train_skills(tiny(pick_data, tmp_path / "flat", flat=True, num_workers=1, max_batches=3), progress=False)
    policy = SkillPolicy.load(best)
    assert policy.flat and policy.model.film is None


def test_bf16_precision_trains_under_autocast_and_keeps_fp32_weights(pick_data, tmp_path, capsys):
    native = train_module.cpu_has_bf16()
    fast_as = "bf16" if native else "fp32"
    runs = {}
    for precision in ("fp32", "bf16", "fast"):
        cfg = tiny(pick_data, tmp_path / precision, precision=precision, augment="none", max_batches=3, eval_every=0)
        runs[precision] = load_checkpoint(train_skills(cfg, progress=True))
        header = capsys.readouterr().out.splitlines()
        resolved = fast_as if precision == "fast" else precision
        assert header[0].startswith("train-skills pick (skills): ") and f", {resolved}, " in header[0], header
        hint = resolved == "fp32" and native  # the hint is for CPU runs left at fp32 where bf16 is native
        assert any("precision=bf16 trains" in line for line in header) == hint, header
        warning = resolved == "bf16" and not native  # emulated bf16: slower than fp32
        assert any("no native bf16" in line for line in header) == warning, header
    assert runs["fast"]["history"]["train_loss"] == runs[fast_as]["history"]["train_loss"], "fast is one of the two"
    fp32, bf16 = (runs[p]["history"]["train_loss"][0] for p in ("fp32", "bf16"))
    assert np.isfinite(bf16) and bf16 != fp32, "the same seed and batches: only the matmul precision differs"
    weights = runs["bf16"]["state_dict"]
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())
    assert abs(bf16 - fp32) < 0.05 * fp32, (bf16, fp32)


def test_fast_precision_takes_bf16_only_where_native(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for native in (False, True):
        monkeypatch.setattr(train_module, "cpu_has_bf16", lambda native=native: native)
        assert train_module.autocast_bf16("fast", cpu) is native
        assert train_module.autocast_bf16("fast", cuda) is True
        # the other values do not look at the CPU
        assert train_module.autocast_bf16("auto", cpu) is False and train_module.autocast_bf16("auto", cuda) is True
        assert train_module.autocast_bf16("bf16", cpu) is True and train_module.autocast_bf16("fp32", cuda) is False


def test_nan_loss_stops_and_keeps_last_good_checkpoint(pick_data, tmp_path, monkeypatch):
    train_skills(tiny(pick_data, tmp_path / "n", epochs=1), progress=False)
    good = load_checkpoint(tmp_path / "n" / "last.pt")
    real = train_module.bc_loss

    def nan_loss(*args, **kwargs):
        loss, per = real(*args, **kwargs)
        return loss * float("nan"), per

    monkeypatch.setattr(train_module, "bc_loss", nan_loss)
    with pytest.raises(TrainingError, match="non-finite loss.*last good checkpoint is kept"):
        train_skills(tiny(pick_data, tmp_path / "n", epochs=3, resume=True), progress=False)
    kept = load_checkpoint(tmp_path / "n" / "last.pt")
    assert kept["epoch"] == good["epoch"] == 0
    for k in good["state_dict"]:
        assert torch.equal(good["state_dict"][k], kept["state_dict"][k])


def test_bad_inputs_fail_before_training(pick_data, tmp_path):
    with pytest.raises(ValueError, match="no dataset|not an hrlbc dataset"):  # a DatasetError
        train_skills(tiny(tmp_path / "missing", tmp_path / "o1"))
    with pytest.raises(ConfigError, match="holds task 'pick', not 'bowl'"):
        train_skills(tiny(pick_data, tmp_path / "o2", task="bowl"))
    with pytest.raises(ConfigError, match="32px depth.*image_size=64"):
        train_skills(tiny(pick_data, tmp_path / "o3", image_size=64))
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(pick_data, copy)
    root = zarr.open_group(str(copy), mode="r+")
    meta = dict(root.attrs["hrlbc"])
    meta["skills"] = meta["skills"][:2]
    root.attrs["hrlbc"] = meta
    with pytest.raises(ConfigError, match="has skills"):
        train_skills(tiny(copy, tmp_path / "o4"))
    train_skills(tiny(pick_data, tmp_path / "o5", max_batches=1, eval_every=0), progress=False)
    with pytest.raises(ConfigError, match="already holds a run; use resume=true"):
        train_skills(tiny(pick_data, tmp_path / "o5"))
    with pytest.raises(ConfigError, match="resume=true but .*o6 does not exist"):
        train_skills(tiny(pick_data, tmp_path / "o6", resume=True))
    # a run killed before its first checkpoint left a directory without last.pt: resume=true starts it over
    (tmp_path / "o6").mkdir()
    train_skills(tiny(pick_data, tmp_path / "o6", max_batches=1, eval_every=0, resume=True), progress=False)
    assert load_checkpoint(tmp_path / "o6" / "last.pt")["epoch"] == 0  # counted from 0: one epoch done
    train_skills(tiny(pick_data, tmp_path / "o7", max_batches=1, eval_every=0, ema=0.0), progress=False)
    with pytest.raises(ConfigError, match="without the weight average"):
        train_skills(tiny(pick_data, tmp_path / "o7", epochs=3, resume=True))


def test_auto_loader_workers_load_in_process_on_cpu_and_keep_cores_for_a_gpu(monkeypatch):
    monkeypatch.setattr(train_module.os, "cpu_count", lambda: 16)
    assert train_module.loader_workers(-1, torch.device("cpu")) == 0  # the model's threads hold the cores
    assert train_module.loader_workers(-1, torch.device("cuda")) == 8
    assert train_module.loader_workers(3, torch.device("cpu")) == 3  # an explicit count is kept
    monkeypatch.setattr(train_module.os, "cpu_count", lambda: 2)
    assert train_module.loader_workers(-1, torch.device("cuda")) == 1
    assert TrainSkillsConfig().num_workers == -1


def test_cli_train_skills_errors_and_preview(pick_data, tmp_path, capsys):
    assert_cli_errors(
        capsys,
        [
            (["train-skills", f"data={tmp_path / 'none'}"], "no dataset"),
            (["train-skills", "task=bowl", f"data={pick_data}"], "holds task 'pick'"),
            (["train-skills", "augment=heavy"], "unknown augmentation preset"),
            (["train-skills", "epochs=0"], "epochs must be >= 1"),
            (["train-skills", "widht=full"], "unknown config key 'widht'"),
            (["train-skills", "pool=max"], "pool must be one of"),
            (["train-skills", "ema=1.5"], "ema must be in [0, 1)"),
            (["train-skills", "num_workers=-2"], "num_workers must be >= 0, or -1 for auto"),
            (["train-skills", "precision=fp16"], "precision must be auto, fp32, bf16 or fast"),
            (["export-skills", f"out={tmp_path / 'x.pt'}"], "give checkpoint=..."),
            (["export-skills"], "give checkpoint=... (skills checkpoint to read (best.pt, last.pt, ...)); give out="),
            (["export-skills", f"checkpoint={tmp_path / 'none.pt'}", "out=x.pt"], "skills checkpoint not found"),
            (["demos", "info"], "give path=... (dataset directory"),
            (["augment-preview"], "give data=... (dataset directory)"),
        ],
    )
    out = tmp_path / "aug.png"
    assert main(["augment-preview", f"data={pick_data}", f"out={out}", "rows=2", "samples=3"]) == 0
    assert out.stat().st_size > 1000


def test_a_finished_run_resumed_says_so(pick_data, tmp_path, capsys):
    train_skills(tiny(pick_data, tmp_path / "f", max_batches=2, epochs=1), progress=False)
    capsys.readouterr()
    train_skills(tiny(pick_data, tmp_path / "f", max_batches=2, epochs=1, resume=True), progress=True)
    out = capsys.readouterr().out
    assert "all 1 epochs done" in out and "epochs 2-1" not in out
