"""UR5-Breakfast: pour the contents of two cups into a bowl, with the pouring done by the physics.

Scene: a tall narrow cup A, a short wide cup B (the policies see depth only, so the cups differ in
shape) and a bowl, all dynamic compound bodies (walls + bottom), placed without overlap. Each cup
holds 8 spheres (radius 7 mm, 5 g) that leave it only through the physics when it is tilted: nothing
is teleported or deleted (a knock, `perturb_step`, moves a cup together with its contents).

Success: >= 90% of all spheres rest in the bowl and no cup has fallen over. Failure (terminates): a
cup that is not held lies tilted more than 60 deg or leaves the table ("cup_fell" / "object_fell"),
or more than 10% of the spheres lie on the table outside the bowl ("spilled": success is then out of
reach). Actions include the wrist's angular velocity (world frame, <= 0.5 rad/s).
"""

from __future__ import annotations

import numpy as np
import pybullet as pb

from envs.base import ManipulationEnv, TaskSpec
from envs.scene import add_container, random_color, sample_positions
from envs.skills import CLOSE, DOWN_INV, OPEN, SAFE_Z, Context, Grasp, Skill, level_omega, tilt_of

SPEC = TaskSpec(
    name="breakfast",
    env_id="UR5-Breakfast-v0",
    skills=("grasp_a", "grasp_b", "pour", "put_down"),
    expert_order=(0, 2, 3, 1, 2),
    # From the expert's own durations (40 seeds, docs/design.md): grasp <= 59, pour <= 113, put down <= 90 steps.
    timescale=150,
    skill_steps=(57, 59, 113, 91),  # the expert's longest run of each skill (benchmarks/skill_durations.py)
    max_episode_steps=1200,
    max_linear_speed=0.1,
    max_angular_speed=0.5,
    description="pour two cups of spheres into a bowl (physical pouring)",
)
SPHERES_PER_CUP = 8
SPHERE_RADIUS, SPHERE_MASS = 0.007, 0.005
WALL = 0.006
SUCCESS_FRACTION = 0.9
# How far a cup is tipped (rad) and how high its mouth is over the bowl rim (m). With a top grasp the
# palm sits at the cup's mouth and the wrist points on beyond it: tipped further, or poured lower, the
# wrist hits the bowl.
POUR_TILT = 1.95
POUR_HEIGHT = 0.12
POUR_HOLD = 25  # steps (2.5 s) for the spheres to roll out
FALLEN_TILT = np.deg2rad(60)


class BreakfastEnv(ManipulationEnv):
    spec_task = SPEC
    object_names = ("cup_a", "cup_b", "bowl")

    def _extra_state_fields(self) -> list[tuple[str, int]]:
        return [("held", 2), ("spheres", 3 * 2 * SPHERES_PER_CUP)]

    def _extra_state(self) -> list:
        held = [float(self.objects[k] in self.robot.attached) for k in range(2)]
        spheres = [pb.getBasePositionAndOrientation(b, physicsClientId=self.client)[0] for b in self.spheres]
        return [held, np.ravel(spheres)]

    def _build_objects(self, rng: np.random.Generator) -> None:
        c = self.client
        ra, ha = rng.uniform(0.028, 0.032), rng.uniform(0.09, 0.11)  # tall, narrow
        rb, hb = rng.uniform(0.034, 0.037), rng.uniform(0.06, 0.07)  # short, wide (the open hand spans 11 cm)
        rbowl, hbowl = rng.uniform(0.075, 0.085), rng.uniform(0.05, 0.06)
        xy = sample_positions(rng, [ra, rb, rbowl], margin=0.04)
        for (r, h), p, mass in zip(((ra, ha), (rb, hb)), xy[:2], (0.15, 0.15)):
            self.objects.append(add_container(c, p, r, h, mass, random_color(rng), n_walls=8, wall=WALL))
        self.objects.append(add_container(c, xy[2], rbowl, hbowl, 1.0, random_color(rng)))
        self.object_sizes[:] = [(2 * ra, 2 * ra, ha), (2 * rb, 2 * rb, hb), (2 * rbowl, 2 * rbowl, hbowl)]
        col = pb.createCollisionShape(pb.GEOM_SPHERE, radius=SPHERE_RADIUS, physicsClientId=c)
        vis = pb.createVisualShape(
            pb.GEOM_SPHERE, radius=SPHERE_RADIUS, rgbaColor=(0.95, 0.85, 0.3, 1), physicsClientId=c
        )
        self.spheres = []
        for p in xy[:2]:
            for i in range(SPHERES_PER_CUP):  # two layers of four, inside the cup
                dx, dy = (0.008 if i % 2 else -0.008), (0.008 if (i // 2) % 2 else -0.008)
                z = WALL + SPHERE_RADIUS + 0.001 + (2 * SPHERE_RADIUS + 0.002) * (i // 4)
                body = pb.createMultiBody(SPHERE_MASS, col, vis, (p[0] + dx, p[1] + dy, z), physicsClientId=c)
                pb.changeDynamics(
                    body, -1, lateralFriction=0.3, rollingFriction=1e-4, restitution=0.1, physicsClientId=c
                )
                self.spheres.append(body)

    def _graspable(self) -> list[int]:
        return self.objects[:2]  # the cups; never the bowl or a sphere

    def _contents(self) -> list[int]:
        return self.spheres

    def set_object_pose(self, k: int, pos, orn=(0, 0, 0, 1)) -> None:
        """Teleport the k-th object; the spheres inside a container keep their place in it.

        A knock (``perturb_step``) teleports a cup: its contents move with it rigidly (and come to rest,
        like the cup), instead of being left hanging where the cup was.
        """
        c = self.client
        old_inv = pb.invertTransform(*self.object_pose(k), physicsClientId=c)
        radius, height = self.object_sizes[k, 0] / 2 - WALL, self.object_sizes[k, 2]
        riders = []
        for body in self.spheres:
            p, o = pb.getBasePositionAndOrientation(body, physicsClientId=c)
            local = pb.multiplyTransforms(*old_inv, p, o, physicsClientId=c)
            if np.hypot(*local[0][:2]) < radius and abs(local[0][2]) < height / 2 + SPHERE_RADIUS:
                riders.append((body, local))
        super().set_object_pose(k, pos, orn)
        for body, (p, o) in riders:
            new_p, new_o = pb.multiplyTransforms(pos, orn, p, o, physicsClientId=c)
            pb.resetBasePositionAndOrientation(body, new_p, new_o, physicsClientId=c)
            pb.resetBaseVelocity(body, (0, 0, 0), (0, 0, 0), physicsClientId=c)

    def _settle(self) -> None:
        for _ in range(3 * self.substeps):  # the spheres drop a few millimetres into place
            pb.stepSimulation(physicsClientId=self.client)

    def sphere_positions(self) -> np.ndarray:
        return np.array([pb.getBasePositionAndOrientation(b, physicsClientId=self.client)[0] for b in self.spheres])

    def in_bowl(self, spheres: np.ndarray) -> np.ndarray:
        bowl, _ = self.object_pose(2)
        radius, height = self.object_sizes[2, 0] / 2 - WALL, self.object_sizes[2, 2]
        return (np.linalg.norm(spheres[:, :2] - bowl[:2], axis=1) < radius) & (spheres[:, 2] < bowl[2] + height / 2)

    def in_cup(self, spheres: np.ndarray, k: int) -> np.ndarray:
        """(N,) bool: which of the spheres (N, 3), world frame, metres, lie within cup k's footprint."""
        pos, _ = self.object_pose(k)
        return np.linalg.norm(spheres[:, :2] - pos[:2], axis=1) < self.object_sizes[k, 0] / 2

    def _success(self) -> bool:
        if self._fallen_cup() is not None:
            return False
        return bool(self.in_bowl(self.sphere_positions()).mean() >= SUCCESS_FRACTION)

    def _fallen_cup(self) -> str | None:
        for k in range(2):
            if self.objects[k] not in self.robot.attached and tilt_of(self.object_pose(k)[1]) > FALLEN_TILT:
                return "cup_fell"
        return None

    def _failure(self) -> str | None:
        failure = super()._failure() or self._fallen_cup()
        if failure:
            return failure
        spheres = self.sphere_positions()
        spilled = (~self.in_bowl(spheres)) & (spheres[:, 2] < 2 * SPHERE_RADIUS + 0.003)
        inside_cup = self.in_cup(spheres, 0) | self.in_cup(spheres, 1)
        if (spilled & ~inside_cup).mean() > 1 - SUCCESS_FRACTION:
            return "spilled"
        return None


# ----------------------------------------------------------------- skills
def _cup(s: dict[str, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    name = ("cup_a", "cup_b")[k]
    return s[f"{name}_pos"], s[f"{name}_orn"], s[f"{name}_size"]


def tool_tilt(tcp_orn: np.ndarray) -> float:
    """Angle (rad) between the tool axis and straight down."""
    return tilt_of(np.array(pb.multiplyTransforms((0, 0, 0), tcp_orn, (0, 0, 0), DOWN_INV)[1]))


PUT_DOWN_X, PUT_DOWN_Y = (0.32, 0.72), (-0.28, 0.28)  # m: where put_down may set a cup (reachable, in view)
CARRY_Z = SAFE_Z + 0.05  # tcp height for carrying a cup: its bottom clears the other cup and the bowl


def carry_target(tcp: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Carry a cup towards ``target`` (xy) at the carry height, rising straight up first: a diagonal lift
    from the table sweeps the held cup into whatever stands next to it."""
    if tcp[2] < CARRY_Z - 0.02:
        return np.array([tcp[0], tcp[1], CARRY_Z])
    return np.array([target[0], target[1], CARRY_Z])


def _held_cup(s: dict[str, np.ndarray]) -> int | None:
    held = np.nonzero(s["held"] > 0.5)[0]
    return int(held[0]) if len(held) else None


def _up(orn: np.ndarray) -> np.ndarray:
    return np.array(pb.getMatrixFromQuaternion(orn)).reshape(3, 3)[:, 2]


class GraspCup(Grasp):
    """Grasp cup ``k`` around its middle from above; done when it is held (no-op if it already is)."""

    def __init__(self, ctx: Context, k: int, name: str) -> None:
        self.k = k
        super().__init__(ctx, ("cup_a", "cup_b")[k], name)

    def plan(self, s):
        if _held_cup(s) == self.k:
            return None, CLOSE, True
        return super().plan(s)

    @staticmethod
    def grasp_height(pos: np.ndarray, size: np.ndarray) -> float:
        """Near the rim: the palm (5 cm above the tcp) then clears the mouth by 2.5 cm, and the spheres can
        leave the cup when it is tipped (grasped at mid-height, a tall cup's mouth is shut by the palm)."""
        return float(pos[2] + size[2] / 2 - 0.025)


def pour_target(s: dict[str, np.ndarray], k: int) -> np.ndarray:
    """tcp target (3,) m that puts held cup ``k``'s mouth where pouring needs it, for its current tilt.

    Upright, the mouth waits beside the bowl on the robot's side, high enough for the cup bottom to clear
    the rim; as the cup tips (about the world y axis, mouth towards +x) the mouth target moves over the
    bowl centre. The tilt is the tool's own (what the arm was told); the mouth comes from the cup's pose.
    """
    pos, orn, size = _cup(s, k)
    bowl, bsize = s["bowl_pos"], s["bowl_size"]
    h = size[2]
    mouth = pos + _up(orn) * h / 2
    lean = min(tool_tilt(s["tcp_orn"]), np.pi / 2)
    goal = np.array([bowl[0] - (h / 2) * np.cos(lean), bowl[1], bowl[2] + bsize[2] / 2 + POUR_HEIGHT])
    return s["tcp_pos"] + (goal - mouth)


class Pour(Skill):
    """Carry the held cup beside the bowl, tip it over the bowl and hold it there; done after the hold.

    The tip is about the world +y axis (0.5 rad/s): that turns wrist 1 alone, far from the wrist singularity
    that a tip about x runs into (wrist 2 at 90 deg). The cup stays tipped once done: the tip back is
    ``put_down``'s first phase. A learned skill sees depth frames only, and a timed hold followed by a tip
    back at the same pose is invisible in them (measured: a learned pour stayed tipped at 110 deg); here
    every pour state maps to one action (move, tip while the tilt grows, hold when tipped). With no cup
    held it is done at once.
    """

    name = "pour"

    def reset(self) -> None:
        super().reset()
        self.phase, self.hold = "approach", 0

    def plan(self, s):
        k = _held_cup(s)
        if k is None:
            return None, OPEN if s["grasped"][0] < 0.5 else CLOSE, True
        tcp, target = s["tcp_pos"], pour_target(s, k)
        tilt = tool_tilt(s["tcp_orn"])
        if self.phase == "approach":
            self.omega = np.zeros(3)
            if tilt > 0.05:
                self.omega = level_omega(s["tcp_orn"], self.ctx.max_angular)
            elif np.linalg.norm(target - tcp) < 0.015:
                self.phase = "tip"
            if np.linalg.norm(target[:2] - tcp[:2]) >= 0.03:
                target = carry_target(tcp, target)
        if self.phase == "tip":
            self.omega = np.array([0.0, self.ctx.max_angular, 0.0])
            if tilt >= POUR_TILT:
                self.phase = "hold"
        if self.phase == "hold":
            self.omega = np.zeros(3)
            self.hold += 1
            return target, CLOSE, self.hold >= POUR_HOLD
        return target, CLOSE, False


class PutDown(Skill):
    """Tip the held cup back upright (where it was poured), set it on the table beside the bowl, away from
    the other cup, and let go; done once the hand is open and back up."""

    name = "put_down"

    def reset(self) -> None:
        super().reset()
        self.spot, self.upright = None, False

    def plan(self, s):
        k = _held_cup(s)
        if k is None:  # released (or nothing held): open and retreat straight up, clear of the cup
            opened = s["gripper"][0] > 0.09
            tcp = s["tcp_pos"]
            return np.array([tcp[0], tcp[1], max(tcp[2], SAFE_Z)]), OPEN, bool(opened and tcp[2] > SAFE_Z - 0.01)
        # Poured: tip back first (the wrist's levelling law, which turns the right way whatever the tilt),
        # the mouth steered as in the pour. Once upright, never again: a cup touching down tilts a little.
        self.upright = self.upright or tool_tilt(s["tcp_orn"]) < 0.05
        if not self.upright:
            return pour_target(s, k), CLOSE, False
        pos, orn, size = _cup(s, k)
        if self.spot is None:
            self.spot = self._free_spot(s, k)
        tcp = s["tcp_pos"]
        goal = np.array([self.spot[0], self.spot[1], size[2] / 2 + 0.005])
        target = tcp + (goal - pos)
        if np.linalg.norm(goal[:2] - pos[:2]) > 0.01:
            target = carry_target(tcp, target)
        elif abs(goal[2] - pos[2]) < 0.006:
            return target, OPEN, False
        return target, CLOSE, False

    @staticmethod
    def _free_spot(s, k: int) -> np.ndarray:
        """The free spot on the table nearest to the held cup (xy, m): clear of the bowl and the other cup,
        and out of the pouring zone.

        Pours happen from the robot's side of the bowl (-x): the strip in front of it, where the next pour's
        cup and wrist pass, is kept free. Candidates lie on a 1 cm grid over the reachable, visible table.
        """
        pos, _, size = _cup(s, k)
        other, _, osize = _cup(s, 1 - k)
        bowl, bsize = s["bowl_pos"], s["bowl_size"]
        r, rb = size[0] / 2, bsize[0] / 2
        xs, ys = np.meshgrid(np.arange(*PUT_DOWN_X, 0.01), np.arange(*PUT_DOWN_Y, 0.01), indexing="ij")
        spots = np.stack([xs.ravel(), ys.ravel()], axis=1)
        to_bowl = np.linalg.norm(spots - bowl[:2], axis=1)
        to_other = np.linalg.norm(spots - other[:2], axis=1)
        pouring_zone = (spots[:, 0] < bowl[0]) & (np.abs(spots[:, 1] - bowl[1]) < rb + r + 0.03)
        free = (to_bowl > rb + r + 0.04) & (to_other > r + osize[0] / 2 + 0.06) & ~pouring_zone
        if not free.any():  # never seen: the spot farthest from both
            return spots[np.argmax(np.minimum(to_bowl, to_other))]
        spots = spots[free]
        return spots[np.argmin(np.linalg.norm(spots - pos[:2], axis=1))]


def make_skills(ctx: Context) -> list[Skill]:
    return [GraspCup(ctx, 0, "grasp_a"), GraspCup(ctx, 1, "grasp_b"), Pour(ctx), PutDown(ctx)]


def sample_skill_sequence(rng: np.random.Generator) -> list[int]:
    """Skill-data episodes: either cup first, occasional detours (grasp a cup and put it back down
    unpoured, a pour or put-down with nothing held), failures kept."""
    first = int(rng.integers(2))
    order = [first, 2, 3, 1 - first, 2]
    if rng.random() < 0.3:  # detour: pick the second cup first and put it back
        order = [1 - first, 3] + order
    if rng.random() < 0.3:  # a no-op skill at the start (nothing held)
        order = [int(rng.choice([2, 3]))] + order
    return order
