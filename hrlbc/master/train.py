"""``hrlbc train-master``: PPO (stable-baselines3) over skills, from the sparse task reward only.

Reads top to bottom: config -> vectorised skill envs -> PPO -> learn with a success-rate callback
(held-out seeds, the most likely or a sampled skill, best checkpoint by success) -> learning-curve PNG.
``total_steps`` counts master steps (PPO timesteps); every figure also reports low-level env steps.
``skills=flat`` trains the ppo-flat baseline instead: PPO on low-level actions, where a "master step"
is one low-level step, so compare budgets in env steps.
Discounting is per master step (a semi-MDP over skills): gamma^n after n skill choices.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

import envs
from demos.collect import VALIDATION_SEED_START
from demos.io import atomic_write, atomic_write_text, output_lock
from demos.progress import progress_bar
from hrlbc.config import ConfigError, require_at_least, run_checkpoint, save_config
from hrlbc.figures import pyplot, save_png
from hrlbc.master.skill_env import FlatEnv, SkillEnv, check_obs_mode, check_skills_checkpoint

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

MASTER_FORMAT = "hrlbc-master"


@dataclass
class TrainMasterConfig:
    task: str = field(default="bowl", metadata={"help": f"task ({', '.join(envs.TASKS)})"})
    skills: str = field(
        default="scripted",
        metadata={"help": "'scripted', a train-skills checkpoint (best.pt), or 'flat' (ppo-flat: low-level actions)"},
    )
    obs: str = field(
        default="depth",
        metadata={"help": "master observation: depth (stacked frames), depth_proprio (+ tcp pose, gripper gap), state"},
    )
    features: str = field(
        default="auto",
        metadata={"help": "auto (state: mlp; learned skills: skill; else cnn), cnn, skill (frozen skill trunk), mlp"},
    )
    out: str = field(default="runs/${task}_master", metadata={"help": "output directory"})
    n_envs: int = field(default=2, metadata={"help": "parallel envs (SubprocVecEnv when > 1)"})
    placement: str = field(
        default="workers", metadata={"help": "learned skills: workers (in each env process) or batched"}
    )
    total_steps: int = field(default=4000, metadata={"help": "master steps (PPO timesteps) to train"})
    lr: float = field(default=7e-4, metadata={"help": "Adam learning rate (eps 1e-5)"})
    anneal_lr: bool = field(
        default=False, metadata={"help": "decay the learning rate linearly over total_steps, as CleanRL's PPO"}
    )
    n_steps: int = field(default=40, metadata={"help": "master steps per env per PPO update"})
    n_minibatches: int = field(default=8, metadata={"help": "minibatches per PPO epoch"})
    n_epochs: int = field(default=5, metadata={"help": "PPO epochs per update"})
    gamma: float = field(default=0.99, metadata={"help": "discount per master step"})
    gae_lambda: float = field(default=0.95, metadata={"help": "GAE lambda"})
    clip: float = field(default=0.2, metadata={"help": "PPO clip range"})
    ent_coef: float = field(default=0.05, metadata={"help": "entropy coefficient"})
    vf_coef: float = field(default=1.0, metadata={"help": "value loss coefficient"})
    max_grad_norm: float = field(default=0.5, metadata={"help": "gradient clipping"})
    image_size: int = field(default=64, metadata={"help": "depth resolution (must match learned skills)"})
    frames: int = field(default=3, metadata={"help": "stacked depth frames in the master observation"})
    recent_skills: int = field(
        default=0,
        metadata={
            "help": "the master also sees its last N skill choices (one-hot); 0: its observation alone, as RLBC. "
            "ppo-flat (skills=flat) has no choices and runs with 0"
        },
    )
    timescale: int = field(default=0, metadata={"help": "low-level steps per master step (0 = the task's)"})
    skill_margin: float = field(
        default=0.0,
        metadata={
            "help": "> 0: each skill runs its own time, ceil(margin x the expert's longest run of it), instead of "
            "one timescale for all (0, RLBC's)"
        },
    )
    perturb: float = field(
        default=0.0,
        metadata={"help": "robustness training: share of training episodes whose object is knocked at a random step"},
    )
    eval_every: int = field(default=5, metadata={"help": "evaluate success every N PPO updates"})
    eval_episodes: int = field(default=20, metadata={"help": "held-out validation seeds per evaluation"})
    eval_deterministic: bool = field(
        default=True, metadata={"help": "validation: most likely skill; false samples it (seeded per episode)"}
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda (PPO networks)"})
    seed: int = field(default=0, metadata={"help": "seed"})
    resume: bool = field(default=False, metadata={"help": "continue from out/last.zip"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def validate(self) -> None:
        require_at_least(
            self,
            ("n_envs", "total_steps", "n_steps", "n_minibatches", "n_epochs", "eval_every", "eval_episodes", "frames"),
        )
        if self.recent_skills < 0:
            raise ConfigError(f"recent_skills must be >= 0, got {self.recent_skills}")
        for name in ("lr", "clip", "max_grad_norm"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("ent_coef", "vf_coef"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        check_obs_mode(self.obs)
        if self.skill_margin < 0:
            raise ConfigError(f"skill_margin must be >= 0, got {self.skill_margin}")
        if self.skill_margin > 0 and self.timescale:
            raise ConfigError("give timescale (one for every skill) or skill_margin (each skill its own), not both")
        if self.features not in ("auto", "cnn", "skill", "mlp"):
            raise ConfigError(f"features must be auto, cnn, skill or mlp, got {self.features!r}")
        if self.placement not in ("workers", "batched"):
            raise ConfigError(f"placement must be workers or batched, got {self.placement!r}")
        if not 0.0 <= self.perturb <= 1.0:
            raise ConfigError(f"perturb is a probability in [0, 1], got {self.perturb}")
        if self.perturb and self.skills == "flat":
            raise ConfigError("perturb trains a master over skills; ppo-flat (skills=flat) does not take it")
        if self.rollout % self.n_minibatches:
            raise ConfigError("n_envs * n_steps must be divisible by n_minibatches")
        if self.rollout < 2 * self.n_minibatches:  # SB3 normalises advantages per minibatch
            raise ConfigError(
                f"minibatches of n_envs * n_steps / n_minibatches = {self.rollout // self.n_minibatches} step;"
                " PPO needs >= 2 (fewer n_minibatches or more n_steps)"
            )

    @property
    def rollout(self) -> int:
        """Master steps per PPO update (all envs)."""
        return self.n_envs * self.n_steps

    @property
    def learned_skills(self) -> bool:
        """True when ``skills`` names a train-skills checkpoint (not 'scripted' nor 'flat')."""
        return self.skills not in ("scripted", "flat")

    @property
    def batched_skills(self) -> bool:
        """True when all envs and their learned skills step in this process (``placement=batched``)."""
        return self.placement == "batched" and self.learned_skills

    def feature_kind(self) -> str:
        if self.features != "auto":
            return self.features
        if self.obs == "state":
            return "mlp"
        # RLBC's choice, and measured: on Bowl the skill trunk reached 75% validation success in 400 master
        # steps; the CNN, learned from the sparse reward alone, was still at 0% after 1200 (docs/design.md).
        return "skill" if self.learned_skills else "cnn"


def check_inputs(cfg: TrainMasterConfig) -> dict[str, Any] | None:
    """Everything that can be refused is refused here, before any env starts."""
    cfg.task = envs.get_task(cfg.task).spec.name
    if cfg.skills == "flat":
        cfg.recent_skills = 0  # no skill choices to remember (a task file's default is for its masters)
    kind = cfg.feature_kind()
    if (kind == "mlp") != (cfg.obs == "state"):
        raise ConfigError(f"features={kind} does not fit obs={cfg.obs}")
    ckpt = None
    if cfg.learned_skills:
        ckpt = check_skills_checkpoint(cfg.skills, cfg.task)
        if ckpt["image_size"] != cfg.image_size:
            raise ConfigError(
                f"{cfg.skills} was trained on {ckpt['image_size']}px depth; set image_size={ckpt['image_size']}"
            )
    if kind == "skill" and ckpt is None:
        raise ConfigError("features=skill needs learned skills: skills=PATH/best.pt")
    return ckpt


def make_skill_env(cfg: TrainMasterConfig, device: str = "cpu", training: bool = False) -> SkillEnv | FlatEnv:
    """The env the master acts in; only ``training`` envs get the robustness perturbations."""
    if cfg.skills == "flat":
        return FlatEnv(cfg.task, cfg.obs, cfg.image_size, cfg.frames)
    perturb = cfg.perturb if training else 0.0
    return SkillEnv(
        cfg.task,
        cfg.skills,
        cfg.obs,
        cfg.image_size,
        cfg.frames,
        cfg.timescale or None,
        device,
        perturb=perturb,
        recent_skills=cfg.recent_skills,
        skill_margin=cfg.skill_margin,
    )


def _env_factory(cfg: TrainMasterConfig, training: bool = True):
    def make():
        import torch

        torch.set_num_threads(1)  # one env per core: no oversubscription by the skill network
        from stable_baselines3.common.monitor import Monitor

        env = make_skill_env(cfg, training=training)
        return Monitor(env, info_keywords=("is_success",)) if training else env

    return make


def make_vec_env(cfg: TrainMasterConfig, device: str = "cpu") -> VecEnv:
    """``placement=workers``: a ``SubprocVecEnv`` whose workers each run their env and skills (CPU cores in
    parallel). ``placement=batched``: all envs in this process, learned skills batched on ``device``.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor

    from hrlbc.master.batched import BatchedSkillVecEnv

    if cfg.batched_skills:
        skill_envs = [make_skill_env(cfg, device, training=True) for _ in range(cfg.n_envs)]
        return VecMonitor(BatchedSkillVecEnv(skill_envs), info_keywords=("is_success",))
    factories = [_env_factory(cfg) for _ in range(cfg.n_envs)]
    # Env workers first: fork before this process runs any torch op (OpenMP pools do not survive a fork).
    return SubprocVecEnv(factories, start_method="fork") if cfg.n_envs > 1 else DummyVecEnv(factories)


def make_eval_env(cfg: TrainMasterConfig) -> VecEnv | SkillEnv | FlatEnv:
    """The validation env(s): with ``placement=workers`` and ``n_envs`` > 1, a ``SubprocVecEnv`` of
    ``n_envs`` unperturbed envs that play the validation seeds in parallel (they wait while training
    runs); otherwise one env in this process. Fork it before this process runs any torch op.
    """
    from stable_baselines3.common.vec_env import SubprocVecEnv

    if cfg.n_envs > 1 and not cfg.batched_skills:
        factories = [_env_factory(cfg, training=False) for _ in range(cfg.n_envs)]
        return SubprocVecEnv(factories, start_method="fork")
    return make_skill_env(cfg)


def evaluate_master(model, env, seeds: list[int], deterministic: bool = True) -> dict[str, Any]:
    """Success rate, mean episode length (low-level steps) and skill choice counts on ``seeds``.

    ``env`` is one env, or a VecEnv whose envs play the seeds in parallel, each taking the next seed
    when its episode ends. An episode does not depend on which env plays it or beside which others:
    it is reset with its seed, and ``deterministic=False`` samples the actions from torch's RNG seeded
    by that seed and kept per episode. So validation and ``hrlbc evaluate`` (``reset_episode``) play
    the same episode on the same seed. The caller's RNG state is restored afterwards, so validation
    does not change how training samples.
    """
    import torch
    from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

    vec = env if isinstance(env, VecEnv) else DummyVecEnv([lambda: env])
    discrete = isinstance(vec.action_space, gym.spaces.Discrete)
    counts = np.zeros(vec.action_space.n if discrete else 0, int)
    idle = np.zeros(vec.action_space.shape, vec.action_space.dtype)  # for an env with no seed left
    cuda = "cuda" in str(getattr(model, "device", "cpu"))  # the policy then samples on the GPU
    todo = list(enumerate(seeds))[::-1]
    playing: list[int | None] = [None] * vec.num_envs  # each env's episode: an index into seeds
    obs_of: list[Any] = [None] * vec.num_envs
    rng_of: list[Any] = [None] * vec.num_envs
    results: dict[int, tuple[bool, int]] = {}

    def rng_state() -> tuple:
        return torch.get_rng_state(), torch.cuda.get_rng_state() if cuda else None

    def start(i: int) -> None:
        playing[i], seed = todo.pop()
        [(obs_of[i], _)] = vec.env_method("reset", seed=seed, indices=[i])
        torch.manual_seed(seed)
        rng_of[i] = rng_state()

    with torch.random.fork_rng():  # CPU and any CUDA generator
        for i in range(vec.num_envs):
            if todo:
                start(i)
            else:  # more envs than seeds: a spare env is stepped too, so it must have been reset
                vec.env_method("reset", indices=[i])
        while any(k is not None for k in playing):
            actions, active = [idle] * vec.num_envs, [i for i, k in enumerate(playing) if k is not None]
            for i in active:
                torch.set_rng_state(rng_of[i][0])
                if cuda:
                    torch.cuda.set_rng_state(rng_of[i][1])
                actions[i], _ = model.predict(obs_of[i], deterministic=deterministic)
                rng_of[i] = rng_state()
                if discrete:
                    counts[int(actions[i])] += 1
            obs, _, dones, infos = vec.step(np.stack(actions))
            for i in active:
                if dones[i]:
                    results[playing[i]] = bool(infos[i]["is_success"]), int(infos[i]["env_steps"])
                    playing[i] = None
                    if todo:
                        start(i)
                else:
                    obs_of[i] = {key: v[i] for key, v in obs.items()} if isinstance(obs, dict) else obs[i]
    successes, lengths = zip(*(results[k] for k in range(len(seeds))))
    return {"success": float(np.mean(successes)), "length": float(np.mean(lengths)), "skill_counts": counts.tolist()}


def annealed_lr(cfg: TrainMasterConfig) -> Callable[[float], float]:
    """CleanRL's PPO schedule: update k of N runs at ``lr * (1 - (k - 1) / N)``, the last one at ``lr / N``.

    SB3 evaluates the schedule after each rollout, with the fraction of ``total_steps`` still to go
    (``1 - k / N`` at update k), hence the shift by one rollout; a plain linear-to-0 schedule would run
    the last update at lr 0 and waste its rollout. A resumed run keeps the schedule: SB3 counts the
    remaining steps against the same total.
    """
    from stable_baselines3.common.utils import LinearSchedule

    shift = cfg.rollout / cfg.total_steps  # one rollout, as a fraction of the run
    return LinearSchedule(cfg.lr * (1 + shift), cfg.lr * shift, 1.0)


def ppo_settings(cfg: TrainMasterConfig) -> dict[str, Any]:
    """The config's PPO hyperparameters as stable-baselines3's ``PPO`` keyword arguments."""
    return dict(
        learning_rate=annealed_lr(cfg) if cfg.anneal_lr else cfg.lr,
        n_steps=cfg.n_steps,
        batch_size=cfg.rollout // cfg.n_minibatches,
        n_epochs=cfg.n_epochs,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        clip_range=cfg.clip,
        ent_coef=cfg.ent_coef,
        vf_coef=cfg.vf_coef,
        max_grad_norm=cfg.max_grad_norm,
    )


def save_zip(model, path: Path) -> None:
    atomic_write(path, lambda tmp: model.save(tmp))  # tmp has a suffix, so SB3 adds no ".zip"


def train_master(cfg: TrainMasterConfig) -> Path:
    """Train the master; return the path of ``best.zip``."""
    with output_lock(Path(cfg.out)):  # two runs into one folder would overwrite each other's checkpoints
        return _train_master(cfg)


def _train_master(cfg: TrainMasterConfig) -> Path:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from hrlbc.master.features import STEM_STRIDE, DepthCNN, SkillFeatures, WithVectors
    from hrlbc.skills.train import resolve_device

    # ---------------------------------------------------------------- setup
    check_inputs(cfg)
    out = Path(cfg.out)
    last, resuming = run_checkpoint(out, "last.zip", cfg.resume)
    device = resolve_device(cfg.device)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    vec = make_vec_env(cfg, str(device))
    vec.seed(cfg.seed)
    eval_env = make_eval_env(cfg)

    # ---------------------------------------------------------------- model
    kind = cfg.feature_kind()
    dict_view = isinstance(vec.observation_space, gym.spaces.Dict)  # depth_proprio, recent_skills
    policy_kwargs: dict[str, Any] = {"optimizer_kwargs": {"eps": 1e-5}}
    if kind != "mlp":
        extractor = {"cnn": DepthCNN, "skill": SkillFeatures}[kind]
        extractor_kwargs = {"checkpoint": cfg.skills} if kind == "skill" else {"stem_stride": STEM_STRIDE}
        if dict_view:
            extractor, extractor_kwargs = WithVectors, {"image": kind, **extractor_kwargs}
        policy_kwargs |= {
            "features_extractor_class": extractor,
            "features_extractor_kwargs": extractor_kwargs,
            "normalize_images": False,
        }
    history_path = out / "history.json"
    if resuming:
        model = PPO.load(str(last), env=vec, device=device)
        history = json.loads(history_path.read_text()) if history_path.is_file() else []
    else:
        model = PPO(
            "MultiInputPolicy" if dict_view else "MlpPolicy",
            vec,
            **ppo_settings(cfg),
            policy_kwargs=policy_kwargs,
            tensorboard_log=str(out / "tb"),
            seed=cfg.seed,
            device=device,
            verbose=0,
        )
        history = []
    seeds = list(range(VALIDATION_SEED_START, VALIDATION_SEED_START + cfg.eval_episodes))
    best = max((h["success"] for h in history), default=-1.0)

    # ------------------------------------------------------------- callback
    # SB3's own bar (rich) prints nothing when stdout is no terminal (nohup, CI); tqdm writes to logs.
    bar = progress_bar(
        total=cfg.total_steps,
        initial=min(model.num_timesteps, cfg.total_steps),
        unit="step",
        disable=not cfg.progress,
        desc=f"master {cfg.task}",
    )

    picks = "most likely" if cfg.eval_deterministic else "sampled"
    memory = f", recent_skills={cfg.recent_skills}" if cfg.recent_skills else ""
    title = f"{cfg.task} master ({cfg.skills}, obs={cfg.obs}{memory}; validation: {picks} actions)"

    def evaluate_and_save(env_steps: int, wall_s: float) -> None:
        """Success on the validation seeds; best.zip on a new best; last.zip, history and its plot always."""
        nonlocal best
        torch.set_num_threads(eval_threads)
        try:
            result = evaluate_master(model, eval_env, seeds, cfg.eval_deterministic)
        finally:
            torch.set_num_threads(update_threads)
        history.append(
            {"master_steps": int(model.num_timesteps), "env_steps": int(env_steps), "wall_s": wall_s, **result}
        )
        model.logger.record("eval/success_rate", result["success"])
        model.logger.record("eval/episode_env_steps", result["length"])
        model.logger.record("eval/env_steps", env_steps)
        if result["success"] >= best:  # a tie goes to the later, longer-trained policy
            best = result["success"]
            save_zip(model, out / "best.zip")
        save_zip(model, last)
        atomic_write_text(history_path, json.dumps(history, indent=1))
        # with every save, not at the end: evaluate needs it beside best.zip, also of a run still going or stopped
        info = {"format": MASTER_FORMAT, "config": asdict(cfg), "best_success": best}
        if cfg.skills not in ("scripted", "flat"):  # the master and its skills can move together
            info["skills_relative"] = os.path.relpath(Path(cfg.skills).resolve(), out.resolve())
        atomic_write_text(out / "master.json", json.dumps(info, indent=1))
        plot_learning_curve(history, out / "learning_curve.png", title)  # a run of hours shows its curve as it goes
        bar.set_postfix(env_steps=env_steps, success=f"{result['success']:.0%}", best=f"{best:.0%}")
        if cfg.progress:
            bar.write(
                f"master step {model.num_timesteps} ({env_steps} env steps, {wall_s / 60:.1f} min): "
                f"validation success {result['success']:.0%} on {len(seeds)} seeds (best {best:.0%})"
            )

    # While the env workers step, they hold the cores: this process's per-step forward (batch n_envs) then
    # runs on one thread, and OpenMP threads spinning beside the workers cost more than they give (ppo-flat
    # alone on 2 cores: rollouts 22 s with 1 thread vs 30 s with 2; the update 22 s vs 15 s; with another
    # job on the cores, 2 threads tripled the whole run). The update and validation get all threads back.
    update_threads = torch.get_num_threads()
    rollout_threads = 1 if isinstance(vec.unwrapped, SubprocVecEnv) else update_threads
    eval_threads = 1 if isinstance(eval_env, SubprocVecEnv) else update_threads

    class SuccessCallback(BaseCallback):
        """Counts low-level env steps; evaluates every ``eval_every`` PPO updates."""

        def __init__(self) -> None:
            super().__init__()
            self.updates, self.env_steps = 0, history[-1]["env_steps"] if history else 0
            self.wall0 = time.perf_counter() - (history[-1]["wall_s"] if history else 0.0)

        def _on_step(self) -> bool:
            self.env_steps += sum(info.get("skill_steps", 0) for info in self.locals["infos"])
            bar.update(len(self.locals["infos"]))
            return True

        def _on_rollout_start(self) -> None:
            torch.set_num_threads(rollout_threads)

        def _on_rollout_end(self) -> None:
            torch.set_num_threads(update_threads)
            self.updates += 1
            if self.updates % cfg.eval_every == 0:
                evaluate_and_save(self.env_steps, time.perf_counter() - self.wall0)

    # ----------------------------------------------------------------- learn
    callback = SuccessCallback()
    try:
        remaining = cfg.total_steps - model.num_timesteps
        if remaining > 0:
            model.learn(
                remaining,
                callback=callback,
                reset_num_timesteps=not resuming,
                tb_log_name="ppo",
            )
        if not history or history[-1]["master_steps"] != model.num_timesteps:
            evaluate_and_save(callback.env_steps, time.perf_counter() - callback.wall0)
        else:  # the callback saved before the last rollout's update; keep that update
            save_zip(model, last)
    finally:
        torch.set_num_threads(update_threads)  # also after an interrupted rollout
        bar.close()
        vec.close()
        eval_env.close()
    return out / "best.zip"


def plot_learning_curve(history: list[dict], path: Path, title: str) -> None:
    """Success rate vs low-level env steps and vs wall-clock, one PNG."""
    import matplotlib.ticker

    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    if history:
        succ = [h["success"] for h in history]
        ax1.plot([h["env_steps"] for h in history], succ, "o-")
        ax2.plot([h["wall_s"] / 60 for h in history], succ, "o-", color="tab:orange")
    ax1.set_xlabel("low-level env steps")
    ax1.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter())  # 50k, not 50000: six-digit labels overlapped
    ax2.set_xlabel("wall-clock (min)")
    ax1.set_ylabel("success rate (validation seeds)")
    for ax in (ax1, ax2):
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    save_png(fig, path, title)
