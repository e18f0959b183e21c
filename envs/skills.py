"""Scripted skill controllers and the experts built from them.

Every controller is closed-loop on the privileged ``state`` vector (parsed with the env's
``state_layout``) and emits exactly the env's action format, so a scripted skill and a learned one
are interchangeable. Motions use a saturated proportional law with an acceleration limit: a
trapezoid-like velocity profile (ramp up, cruise at the task's speed limit, slow down on arrival).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

OPEN, CLOSE = 1.0, -1.0
SAFE_Z = 0.16  # tcp height (m) at which a held cube clears bowls and cubes when travelling
ABOVE_CLEARANCE = 0.06  # tcp height above an object's top when hovering (fingertips ~4 cm above)
GRASP_MIN_Z = 0.025  # lowest tcp height for grasping: the fingertips just clear the table
REACHED = 0.008  # position tolerance (m)
GAIN = 4.0  # 1/s: proportional gain of the position loop
ACCEL = 0.6  # m/s^2: acceleration limit (0.06 m/s change per 10 Hz step)
RELEASE_XY = 0.01  # m: how close to the target the held object must be before the gripper opens


@dataclass
class Context:
    """What controllers need to know about the env: state layout, speed limit, action size."""

    layout: dict[str, slice]
    max_speed: float
    action_dim: int
    dt: float = 0.1
    max_angular: float = 0.0  # rad/s, tasks with wrist rotation

    def parse(self, state: np.ndarray) -> dict[str, np.ndarray]:
        return {k: np.asarray(state[s], dtype=np.float64) for k, s in self.layout.items()}


class Skill:
    """A scripted skill: ``reset()`` before running it, then ``act(state) -> (action, done)``.

    After ``done`` the skill keeps emitting a hold action (zero velocity, its last gripper command; the
    wrist keeps its orientation if the skill steered it, else it is levelled), as it must when a master
    runs it for a fixed number of steps.
    """

    name = "skill"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.reset()

    def reset(self) -> None:
        self.velocity = np.zeros(3)
        self.gripper = OPEN
        self.finished = False
        self.omega: np.ndarray | None = None  # a plan may set the tool angular velocity (rad/s) for this step

    def act(self, state: np.ndarray) -> tuple[np.ndarray, bool]:
        s = self.ctx.parse(state)
        if not self.finished:
            self.omega = None
            target, gripper, self.finished = self.plan(s)
            velocity = self._velocity_towards(s["tcp_pos"], target) if target is not None else np.zeros(3)
            self.gripper = gripper
        else:
            velocity = np.zeros(3)
            if self.omega is not None:  # a skill that steered the wrist holds its orientation once done
                self.omega = np.zeros(3)
        self.velocity = self._limit_accel(velocity) if not self.finished else np.zeros(3)
        action = np.zeros(self.ctx.action_dim, dtype=np.float32)
        action[:3] = self.velocity
        if self.ctx.action_dim == 7:  # the task has wrist rotation: pour, or keep the tool pointing down
            action[3:6] = self.omega if self.omega is not None else level_omega(s["tcp_orn"], self.ctx.max_angular)
        action[-1] = self.gripper
        return action, self.finished

    def plan(self, s: dict[str, np.ndarray]) -> tuple[np.ndarray | None, float, bool]:
        """Return (tcp target position (3,) m or None to stay, gripper command, done)."""
        raise NotImplementedError

    def _velocity_towards(self, pos: np.ndarray, target: np.ndarray) -> np.ndarray:
        v = GAIN * (target - pos)
        speed = np.linalg.norm(v)
        return v if speed <= self.ctx.max_speed else v * (self.ctx.max_speed / speed)

    def _limit_accel(self, v: np.ndarray) -> np.ndarray:
        dv = v - self.velocity
        step = ACCEL * self.ctx.dt
        norm = np.linalg.norm(dv)
        return v if norm <= step else self.velocity + dv * (step / norm)


DOWN_INV = (1.0, 0.0, 0.0, 0.0)  # inverse of the tool-down quaternion (pi about x): itself, up to sign


def tilt_of(orn: np.ndarray) -> float:
    """Angle (rad) between an object's z axis (orientation xyzw) and the world up axis."""
    x, y, z, w = orn
    up_z = 1 - 2 * (x * x + y * y)
    return float(np.arccos(np.clip(up_z, -1.0, 1.0)))


def level_omega(tcp_orn: np.ndarray, max_angular: float, gain: float = 2.0) -> np.ndarray:
    """World-frame angular velocity (3,) rad/s turning the tool back to pointing straight down."""
    import pybullet as pb

    # rotation error e with e * DOWN = current (world frame), as a rotation vector
    err = pb.multiplyTransforms((0, 0, 0), tcp_orn, (0, 0, 0), DOWN_INV)[1]
    axis, angle = pb.getAxisAngleFromQuaternion(err)
    angle = angle if angle <= np.pi else angle - 2 * np.pi
    omega = -gain * angle * np.asarray(axis)
    norm = np.linalg.norm(omega)
    return omega if norm <= max_angular or norm == 0 else omega * (max_angular / norm)


def travel_target(tcp: np.ndarray, goal: np.ndarray, tolerance: float = 0.02) -> np.ndarray:
    """Go to ``goal`` through the safe height when far from it in xy (no sweeping through objects)."""
    if np.linalg.norm(goal[:2] - tcp[:2]) > tolerance:
        return np.array([goal[0], goal[1], max(goal[2], SAFE_Z if tcp[2] < SAFE_Z - 0.03 else tcp[2])])
    return goal


class GoAbove(Skill):
    """Hover above object ``obj`` (its top + clearance) with the gripper open; releases what it holds."""

    def __init__(self, ctx: Context, obj: str, name: str) -> None:
        self.obj, self.name = obj, name
        super().__init__(ctx)

    def plan(self, s):
        pos, size = s[f"{self.obj}_pos"], s[f"{self.obj}_size"]
        goal = np.array([pos[0], pos[1], pos[2] + size[2] / 2 + ABOVE_CLEARANCE])
        tcp = s["tcp_pos"]
        opened = s["gripper"][0] > 0.09 and s["grasped"][0] < 0.5
        return travel_target(tcp, goal), OPEN, bool(np.linalg.norm(goal - tcp) < REACHED and opened)


class Grasp(Skill):
    """Align above ``obj``, descend with the gripper open, close; done once the object is attached."""

    def __init__(self, ctx: Context, obj: str, name: str) -> None:
        self.obj, self.name = obj, name
        super().__init__(ctx)

    def plan(self, s):
        if s["grasped"][0] > 0.5:
            return None, CLOSE, True
        pos, size = s[f"{self.obj}_pos"], s[f"{self.obj}_size"]
        tcp = s["tcp_pos"]
        grasp = np.array([pos[0], pos[1], self.grasp_height(pos, size)])
        hover = np.array([pos[0], pos[1], pos[2] + size[2] / 2 + ABOVE_CLEARANCE])
        if np.linalg.norm(tcp[:2] - grasp[:2]) > 0.012 and tcp[2] < hover[2] - 0.01:
            # Too low and off-centre: rise first, so the fingers do not land on the object.
            return np.array([tcp[0], tcp[1], hover[2]]), OPEN, False
        if np.linalg.norm(tcp[:2] - grasp[:2]) > 0.012:
            return travel_target(tcp, hover), OPEN, False
        if tcp[2] - grasp[2] > REACHED:
            return grasp, OPEN, False
        return grasp, CLOSE, False

    @staticmethod
    def grasp_height(pos: np.ndarray, size: np.ndarray) -> float:
        """tcp height (m) at which the fingers close: the object's centre."""
        return max(float(pos[2]), GRASP_MIN_Z)


class Lift(Skill):
    """Raise the tcp to the safe height with the gripper closed."""

    name = "lift"

    def plan(self, s):
        tcp = s["tcp_pos"]
        goal = np.array([tcp[0], tcp[1], SAFE_Z])
        return goal, CLOSE, bool(tcp[2] > SAFE_Z - REACHED)


class PlaceOn(Skill):
    """Carry the held object above ``target`` and release it so it lands ``drop`` (m) above the target top.

    The held object's own position is steered (not the tcp's), so an off-centre grasp still places it
    centred. Done once the gripper has opened and nothing is held.
    """

    def __init__(self, ctx: Context, held: str, target: str, name: str, drop: float) -> None:
        self.held, self.target, self.name, self.drop = held, target, name, drop
        self.released = False
        super().__init__(ctx)

    def reset(self) -> None:
        super().reset()
        self.released = False

    def plan(self, s):
        tcp, obj = s["tcp_pos"], s[f"{self.held}_pos"]
        if s["grasped"][0] < 0.5:
            # Nothing held (released, or the skill was started empty-handed): open and hover.
            self.released = True
            return None, OPEN, bool(s["gripper"][0] > 0.09)
        tpos, tsize = s[f"{self.target}_pos"], s[f"{self.target}_size"]
        hsize = s[f"{self.held}_size"]
        offset = tcp - obj  # tcp relative to the held object's centre
        obj_goal = np.array([tpos[0], tpos[1], tpos[2] + tsize[2] / 2 + hsize[2] / 2 + self.drop])
        goal = obj_goal + offset
        goal = travel_target(tcp, goal, tolerance=0.01)
        if np.linalg.norm(obj[:2] - obj_goal[:2]) < RELEASE_XY and abs(obj[2] - obj_goal[2]) < 0.015:
            return goal, OPEN, False
        return goal, CLOSE, False


def pick_and_place(
    ctx: Context, names: tuple[str, ...], obj: str, target: str | None = None, drop: float = 0.0
) -> list[Skill]:
    """The go-above, grasp, lift chain on ``obj``, then a place on ``target`` (released ``drop`` m above it).

    ``names`` are the task spec's skill names in that order (3 without a target, 4 with one).
    """
    if len(names) != (3 if target is None else 4):
        raise ValueError(f"skills {list(names)} do not match the task's chain of {3 if target is None else 4}")
    skills: list[Skill] = [GoAbove(ctx, obj, names[0]), Grasp(ctx, obj, names[1]), Lift(ctx)]
    if target is not None:
        skills.append(PlaceOn(ctx, obj, target, names[3], drop=drop))
    if [s.name for s in skills] != list(names):
        raise ValueError(f"skills {[s.name for s in skills]} do not match the task's {list(names)}")
    return skills


class Expert:
    """Runs skills in a fixed order, each until done, then holds. ``act(state) -> action``."""

    def __init__(self, skills: list[Skill], order: tuple[int, ...], noise: float = 0.0, rng=None) -> None:
        self.skills, self.order, self.noise = skills, tuple(order), noise
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.reset()

    def reset(self) -> None:
        self.index = 0
        for skill in self.skills:
            skill.reset()

    @property
    def current_skill(self) -> int:
        return self.order[min(self.index, len(self.order) - 1)]

    def act(self, state: np.ndarray) -> np.ndarray:
        skill = self.skills[self.current_skill]
        action, done = skill.act(state)
        if done and self.index < len(self.order) - 1:
            self.index += 1
            self.skills[self.current_skill].reset()
        return add_noise(action, self.noise, self.skills[0].ctx.max_speed, self.rng)


def add_noise(action: np.ndarray, sigma: float, max_speed: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise on the linear velocity, ``sigma`` as a fraction of the speed limit."""
    if sigma <= 0:
        return action
    noisy = action.copy()
    noisy[:3] = np.clip(noisy[:3] + rng.normal(0.0, sigma * max_speed, 3), -max_speed, max_speed)
    return noisy


SkillFactory = Callable[[Context], list[Skill]]


def sample_skill_sequence(rng: np.random.Generator, n_skills: int, expert_order: tuple[int, ...]) -> list[int]:
    """A skill-data episode as in RLBC: 0-2 random skills (out of order on purpose), then the expert order.

    The random prefix leaves the scene in states a master may leave it in (gripper over the wrong
    object, lifted with nothing held, ...), so the skills learn to work from there too.
    """
    prefix = rng.integers(0, n_skills, size=int(rng.integers(0, 3))).tolist()
    return prefix + list(expert_order)
