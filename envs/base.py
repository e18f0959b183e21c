"""The task-independent UR5 manipulation environment (gymnasium API).

A task subclasses :class:`ManipulationEnv`, declares a :class:`TaskSpec` and implements
``_build_objects``, ``_success`` and, where needed, ``_failure``.

Action (``Box``, float32, clipped to the space; out-of-range values are clipped, not rejected):
    ``[vx, vy, vz, (wx, wy, wz,) gripper]``: tool linear velocity in m/s (world = robot base frame),
    for tasks with wrist rotation the tool angular velocity in rad/s (world frame), then the gripper
    command (> 0 open, < 0 close, 0 keep).

Observation (``Dict``):
    ``depth``  float32 (H, W) in [0, 1], or (V, H, W) with ``n_views`` > 1: metric depth mapped from
               [near, far] m to [0, 1]. Absent when ``depth=False`` (camera off).
    ``state``  float32 (D,): privileged simulator state for experts and debugging; its layout is
               ``env.state_layout`` (name -> slice), parsed by ``env.parse_state``. Units m, rad, xyzw.
    ``rgb``    uint8 (H, W, 3) or (V, H, W, 3), with ``rgb=True``.
    ``mask``   uint8 (H, W) or (V, H, W), with ``mask=True``: 0 background, 1 table, 2 robot,
               3 + k the task's k-th object (``env.object_names``), then one class for loose contents
               (Breakfast's spheres: 3 + len(object_names)).

Reward is sparse: 1.0 on the step that reaches success (the episode then terminates), 0 otherwise.
An object off the table terminates the episode as a failure, ``info["failure"] = "object_fell"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as pb

from envs.camera import MASK_FIRST_OBJECT, MASK_ROBOT, MASK_TABLE, Camera, CameraParams
from envs.robot import UR5
from envs.scene import PLACEMENT_HIGH, PLACEMENT_LOW, TABLE_X, TABLE_Y, add_table

PHYSICS_HZ = 240
CONTROL_HZ = 10
CAMERA_MODES = ("fixed", "random")


@dataclass(frozen=True)
class TaskSpec:
    """What a task declares. Speeds in m/s and rad/s; durations in low-level (10 Hz) steps."""

    name: str
    env_id: str
    skills: tuple[str, ...]
    expert_order: tuple[int, ...]
    timescale: int
    max_episode_steps: int
    max_linear_speed: float
    max_angular_speed: float = 0.0  # 0: the task has no wrist rotation in its action
    description: str = ""
    # The scripted expert's longest run of each skill until done (benchmarks/skill_durations.py); a master
    # with train-master's skill_margin runs skill k for ceil(margin * skill_steps[k]) steps. () = unknown.
    skill_steps: tuple[int, ...] = ()


def checked_perturb_step(step) -> int:
    """The step (1-based) at which an episode is perturbed, 0 for never; anything else is refused."""
    if not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"perturb_step must be an integer >= 0 (0 = off), got {step!r}")
    return int(step)


class ManipulationEnv(gym.Env):
    """UR5 + gripper on a table, one task's objects, cameras. See the module docstring for the spaces."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}
    spec_task: TaskSpec
    object_names: tuple[str, ...] = ()
    # Tool workspace box (m): the tcp target is clamped to it.
    workspace = np.array([[0.25, -0.35, 0.01], [0.8, 0.35, 0.4]])
    start_low, start_high = np.array([0.35, -0.15, 0.18]), np.array([0.55, 0.15, 0.3])

    @property
    def mask_contents(self) -> int:
        """Segmentation class of the task's loose contents (Breakfast's spheres): the one after its objects."""
        return MASK_FIRST_OBJECT + len(self.object_names)

    def __init__(
        self,
        image_size: int = 64,
        camera: str = "fixed",
        n_views: int = 1,
        depth: bool = True,
        rgb: bool = False,
        mask: bool = False,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        render_size: int = 256,
        perturb_step: int = 0,
        occlude: tuple[int, int] | list[int] | None = None,
    ) -> None:
        if not isinstance(image_size, (int, np.integer)) or image_size <= 0:
            raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
        if camera not in CAMERA_MODES:
            raise ValueError(f"camera must be one of {CAMERA_MODES}, got {camera!r}")
        if not isinstance(n_views, (int, np.integer)) or n_views < 1:
            raise ValueError(f"n_views must be an integer >= 1, got {n_views!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if (rgb or mask) and not depth:
            raise ValueError("rgb/mask need the camera: depth=False turns it off")
        spec = self.spec_task
        self.image_size, self.camera_mode, self.n_views = int(image_size), camera, int(n_views)
        self.use_depth, self.use_rgb, self.use_mask = depth, rgb, mask
        self.max_episode_steps = int(max_episode_steps or spec.max_episode_steps)
        self.render_mode, self.render_size = render_mode, render_size
        if occlude is not None and (len(occlude) != 2 or occlude[0] < 0 or occlude[1] < 1):
            raise ValueError(f"occlude must be (start step >= 0, length >= 1), got {occlude!r}")
        if occlude is not None and not depth:
            raise ValueError("occlude needs the camera: depth=False turns it off")
        self.default_perturb_step = self.perturb_step = checked_perturb_step(perturb_step)
        self.occlude = tuple(int(x) for x in occlude) if occlude is not None else None
        self.perturbed = False
        # False: the next step's observation holds the state alone (no camera images). For callers that act on
        # the state and look at only some frames (a master over scripted skills): rendering is ~40% of a step.
        self.render_next = True
        self.substeps = PHYSICS_HZ // CONTROL_HZ
        self.dt = 1.0 / CONTROL_HZ

        v, w = spec.max_linear_speed, spec.max_angular_speed
        high = [v] * 3 + ([w] * 3 if w > 0 else []) + [1.0]
        self.action_space = gym.spaces.Box(-np.array(high, np.float32), np.array(high, np.float32), dtype=np.float32)
        self.state_layout = self._make_state_layout()
        self.state_dim = max(s.stop for s in self.state_layout.values())
        self.observation_space = gym.spaces.Dict(self._obs_spaces())

        self.client = pb.connect(pb.DIRECT)
        self.robot: UR5 | None = None
        self.cameras: list[Camera] = []
        self.objects: list[int] = []
        self.object_sizes = np.zeros((len(self.object_names), 3))
        self.steps = 0

    # ----------------------------------------------------------- spaces/state
    def _make_state_layout(self) -> dict[str, slice]:
        fields = [("joints", 6), ("tcp_pos", 3), ("tcp_orn", 4), ("gripper", 1), ("grasped", 1)]
        for name in self.object_names:
            fields += [(f"{name}_pos", 3), (f"{name}_orn", 4), (f"{name}_size", 3)]
        fields += self._extra_state_fields()
        layout, start = {}, 0
        for name, n in fields:
            layout[name] = slice(start, start + n)
            start += n
        return layout

    def _extra_state_fields(self) -> list[tuple[str, int]]:
        return []

    def _obs_spaces(self) -> dict[str, gym.Space]:
        views = () if self.n_views == 1 else (self.n_views,)
        hw = (*views, self.image_size, self.image_size)
        spaces: dict[str, gym.Space] = {
            "state": gym.spaces.Box(-np.inf, np.inf, (self.state_dim,), np.float32),
        }
        if self.use_depth:
            spaces["depth"] = gym.spaces.Box(0.0, 1.0, hw, np.float32)
        if self.use_rgb:
            spaces["rgb"] = gym.spaces.Box(0, 255, (*hw, 3), np.uint8)
        if self.use_mask:
            spaces["mask"] = gym.spaces.Box(0, 255, hw, np.uint8)
        return spaces

    def parse_state(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """Split a ``state`` vector (D,) into named arrays (see ``state_layout``)."""
        return {name: state[s] for name, s in self.state_layout.items()}

    # -------------------------------------------------------------- episode
    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Rebuild the scene from scratch (bit-identical episodes for the same seed).

        ``options={"perturb_step": N}`` perturbs this episode at step N (0: not at all) instead of at
        the constructor's ``perturb_step``; robustness training draws it per episode.
        """
        super().reset(seed=seed)
        self.perturb_step = checked_perturb_step((options or {}).get("perturb_step", self.default_perturb_step))
        rng = self.np_random
        c = self.client
        pb.resetSimulation(physicsClientId=c)
        pb.setGravity(0, 0, -9.81, physicsClientId=c)
        pb.setTimeStep(1.0 / PHYSICS_HZ, physicsClientId=c)
        pb.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=c)
        self.table = add_table(c)
        self.robot = UR5(c, self.workspace)
        self.objects = []
        self._build_objects(rng)
        self.robot.graspable = tuple(self._graspable())
        self.robot.reset(rng.uniform(self.start_low, self.start_high))
        lut = np.zeros(pb.getNumBodies(physicsClientId=c) + 2, np.uint8)  # + an occluder: background
        lut[self.table + 1], lut[self.robot.body + 1] = MASK_TABLE, MASK_ROBOT
        for k, body in enumerate(self.objects):
            lut[body + 1] = MASK_FIRST_OBJECT + k
        for body in self._contents():
            lut[body + 1] = self.mask_contents
        self.mask_lut = lut
        base = CameraParams()
        params = [base.jittered(rng) if self.camera_mode == "random" else base for _ in range(self.n_views)]
        self.cameras = [Camera(p, self.image_size) for p in params]
        self.occluder = self._add_occluder() if self.occlude else None
        self.render_next = True  # an episode's first observation is always whole
        self._settle()
        self.perturbed = False
        self.steps = 0
        return self._observation(), self._info(success=False, failure=None)

    def _settle(self) -> None:
        """Let freshly placed objects come to rest before the first observation."""
        for _ in range(self.substeps):
            pb.stepSimulation(physicsClientId=self.client)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply ``action`` (the module docstring's layout) for one control step of ``dt`` s.

        Returns (observation, reward 1.0 on success else 0.0, terminated on success or failure, truncated at
        ``max_episode_steps``, info with ``is_success``, ``failure``, ``steps`` and ``perturbed``).
        """
        action = np.clip(np.asarray(action, dtype=np.float64), self.action_space.low, self.action_space.high)
        linear = action[:3]
        angular = action[3:6] if self.spec_task.max_angular_speed > 0 else np.zeros(3)
        self.robot.apply(linear, angular, float(action[-1]), self.dt)
        for _ in range(self.substeps):
            pb.stepSimulation(physicsClientId=self.client)
        self.robot.update_grasp()
        self.steps += 1
        if self.steps == self.perturb_step:
            self._perturb()
        if self.occluder is not None:
            start, length = self.occlude
            self._place_occluder(start <= self.steps < start + length)
        success = self._success()
        failure = None if success else self._failure()
        terminated = success or failure is not None
        truncated = not terminated and self.steps >= self.max_episode_steps
        return self._observation(), float(success), terminated, truncated, self._info(success, failure)

    def _info(self, success: bool, failure: str | None) -> dict:
        return {"is_success": bool(success), "failure": failure, "steps": self.steps, "perturbed": self.perturbed}

    # ---------------------------------------------------------- observation
    def camera_params(self) -> np.ndarray:
        """(V, 9) parameters of the current cameras (see ``CameraParams.as_array``)."""
        return np.stack([cam.params.as_array() for cam in self.cameras])

    def _observation(self) -> dict[str, np.ndarray]:
        obs = {"state": self.state()}
        if self.use_depth and self.render_next:
            lut = self.mask_lut if self.use_mask else None
            views = [cam.render(self.client, rgb=self.use_rgb, mask_lut=lut) for cam in self.cameras]
            keys = [("depth", 0, True), ("rgb", 1, self.use_rgb), ("mask", 2, self.use_mask)]
            for key, i, wanted in keys:
                if wanted:
                    obs[key] = views[0][i] if self.n_views == 1 else np.stack([v[i] for v in views])
        return obs

    def state(self) -> np.ndarray:
        """The privileged state vector (D,) float32; see ``state_layout``."""
        c = self.client
        pos, orn = self.robot.tcp_pose()
        parts = [
            self.robot.joint_positions(),
            pos,
            orn,
            [2 * self.robot.finger_position()],
            [float(bool(self.robot.attached))],
        ]
        for body, size in zip(self.objects, self.object_sizes):
            p, o = pb.getBasePositionAndOrientation(body, physicsClientId=c)
            parts += [p, o, size]
        parts += self._extra_state()
        return np.concatenate([np.asarray(x, dtype=np.float64).ravel() for x in parts]).astype(np.float32)

    def _extra_state(self) -> list:
        return []

    def render(self) -> np.ndarray | None:
        """RGB (render_size, render_size, 3) uint8 from the first camera, for videos."""
        if self.render_mode != "rgb_array":
            return None
        _, image, _ = self.cameras[0].render(self.client, rgb=True, size=self.render_size)
        return image

    def close(self) -> None:
        if self.client is not None and pb.isConnected(self.client):
            pb.disconnect(self.client)
        self.client = None

    # ------------------------------------------------------------ task hooks
    def _build_objects(self, rng: np.random.Generator) -> None:
        """Create the task's objects (append to ``self.objects``, fill ``self.object_sizes``)."""
        raise NotImplementedError

    def _graspable(self) -> list[int]:
        return list(self.objects)

    def _success(self) -> bool:
        raise NotImplementedError

    def _contents(self) -> list[int]:
        """Loose bodies that are not task objects (Breakfast's spheres): one mask class of their own."""
        return []

    def _failure(self) -> str | None:
        """Default: any object off the table (below its top or outside it) is a failure."""
        for body in self.objects:
            (x, y, z), _ = pb.getBasePositionAndOrientation(body, physicsClientId=self.client)
            if z < -0.05 or abs(y) > TABLE_Y or not TABLE_X[0] < x < TABLE_X[1]:
                return "object_fell"
        return None

    # ----------------------------------------------------------- robustness
    def _perturb(self) -> None:
        """RLBC's perturbation: knock the held object out of the gripper, or move the first object.

        A held object is released and pushed 5-10 cm sideways; otherwise the first object is moved to a
        random nearby spot on the table. ``info["perturbed"]`` reports it from then on.
        """
        rng = self.np_random
        held = bool(self.robot.attached)
        for cid in self.robot.attached.values():
            pb.removeConstraint(cid, physicsClientId=self.client)
        self.robot.attached = {}
        pos, orn = self.object_pose(0)
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.1)
        xy = np.clip(pos[:2] + dist * np.array([np.cos(angle), np.sin(angle)]), PLACEMENT_LOW, PLACEMENT_HIGH)
        z = pos[2] if held else self.object_sizes[0, 2] / 2
        self.set_object_pose(0, (xy[0], xy[1], z), orn)
        self.perturbed = True

    def _add_occluder(self) -> int:
        """A visual-only (collision-free) board parked under the table, shown in front of camera 0 on cue."""
        vis = pb.createVisualShape(
            pb.GEOM_BOX, halfExtents=(0.08, 0.08, 0.005), rgbaColor=(0.3, 0.3, 0.3, 1), physicsClientId=self.client
        )
        body = pb.createMultiBody(0.0, -1, vis, (0, 0, -5), physicsClientId=self.client)
        view = np.array(self.cameras[0].view).reshape(4, 4).T  # column-major -> world-to-camera
        eye = -view[:3, :3].T @ view[:3, 3]
        target = np.array(self.cameras[0].params.target)
        # 35 % of the way from the target to the camera, facing it: hides about a third of the image.
        self._occluder_pose = (target + 0.35 * (eye - target), pb.getQuaternionFromEuler((0, np.pi / 4, 0)))
        return body

    def _place_occluder(self, visible: bool) -> None:
        pos, orn = self._occluder_pose if visible else ((0, 0, -5), (0, 0, 0, 1))
        pb.resetBasePositionAndOrientation(self.occluder, pos, orn, physicsClientId=self.client)

    # -------------------------------------------------------------- helpers
    def object_pose(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Position (3,) m and orientation (4,) xyzw of the k-th task object."""
        p, o = pb.getBasePositionAndOrientation(self.objects[k], physicsClientId=self.client)
        return np.array(p), np.array(o)

    def set_object_pose(self, k: int, pos, orn=(0, 0, 0, 1)) -> None:
        """Teleport the k-th task object (for constructing test states and perturbations)."""
        pb.resetBasePositionAndOrientation(self.objects[k], pos, orn, physicsClientId=self.client)
        pb.resetBaseVelocity(self.objects[k], (0, 0, 0), (0, 0, 0), physicsClientId=self.client)
