"""The safety layer every command to a robot passes: one class, shared by every arm backend, whoever
produced the action (planner or teleop). No ROS, no robot: it turns a policy action and the measured
robot state into a bounded Cartesian target, and says what it changed.

Guarantees, for any sequence of inputs (tests/test_safety.py checks them with hypothesis):
- the TCP target stays in the workspace box and never moves more than `max_step` per command;
- target speed <= `max_speed` (norm); target acceleration <= `max_accel` per axis: near a wall of the
  box the target brakes early enough that it never has to stop faster than that. (One exception: when
  the measured TCP falls `max_lead` behind — the arm is blocked — the target stops advancing at once.)
- the commanded orientation is the home orientation, reached from wherever the tool is at no more than
  `max_rotation_step` per command; a measured tilt beyond `max_tilt` faults (holds) until reset;
- NaN/inf or wrongly sized actions are rejected (the arm holds); an e-stop latches until reset();
- gripper force <= `gripper_max_force`.
"Hold" = decelerate the target to rest within the acceleration limit and keep it there. Every
rejection, clip and hold is counted under a reason in `counts` and listed in the returned Decision.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from modem_ros.config import param
from modem_ros.robots import franka_spec as spec


@dataclass(frozen=True)
class SafetyLimits:
    """Every limit of the layer; each field's doc is also its ROS parameter description (franka_bridge)."""
    workspace_low: tuple[float, float, float] = param(tuple(map(float, spec.WORKSPACE_LOW)),
        "Lower corner of the box the TCP target must stay in (base frame, metres).")
    workspace_high: tuple[float, float, float] = param(tuple(map(float, spec.WORKSPACE_HIGH)),
        "Upper corner of that box.")
    max_step: float = param(0.035,
        "Metres the target may move per command (the policy's largest: 2 cm per axis, 3.5 cm diagonal).")
    max_speed: float = param(0.35, "Target speed limit, m/s (norm).")
    max_accel: float = param(3.5,
        "Target acceleration limit, m/s^2 per axis (full speed from rest, or to rest, in one 0.1 s step).")
    max_lead: float = param(0.05,
        "Metres the target may run ahead of the measured TCP (a blocked arm does not wind up).")
    workspace_margin: float = param(0.03,
        "Metres the measured TCP may be outside the box (tracking lag, contact) before the layer faults.")
    max_tilt: float = param(0.35,
        "Radians the measured tool orientation may deviate from home before the layer faults and holds.")
    max_rotation_step: float = param(0.05,
        "Radians the commanded orientation may turn per command (while returning to home orientation).")
    gripper_max_force: float = param(40.0, "Newtons the gripper may grasp with (Franka Hand: 70 N continuous).")
    watchdog: float = param(0.3, "Seconds without a fresh action or observation before the arm holds position.")

    def __post_init__(self):
        low, high = np.asarray(self.workspace_low), np.asarray(self.workspace_high)
        problems = []
        if low.shape != (3,) or high.shape != (3,) or not np.all(low < high):
            problems.append(f"workspace_low {list(low)} must be below workspace_high {list(high)} on every axis")
        for name in ("max_step", "max_speed", "max_accel", "max_lead", "workspace_margin", "max_tilt",
                     "max_rotation_step", "gripper_max_force", "watchdog"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                problems.append(f"{name} must be a positive number, got {value}")
        if problems:
            raise ValueError("safety limits: " + "; ".join(problems))


@dataclass
class ArmCommand:
    """What a backend sends: a TCP pose target (base frame) and a gripper command."""
    position: np.ndarray                 # metres, xyz
    quaternion: np.ndarray               # x, y, z, w (franky's and geometry_msgs' order)
    gripper_closed: bool                 # False = open to full width
    gripper_force: float                 # newtons, for a grasp
    hold: bool = False                   # no fresh valid action: braking to rest


@dataclass
class Decision:
    command: ArmCommand
    action: np.ndarray | None                         # the action as executed (clipped to [-1, 1]); None: rejected
                                                      # or held (watchdog, e-stop, fault): the arm did not act on it
    events: list[str] = field(default_factory=list)  # reasons this command differs from the action's wish


# --- quaternions (x, y, z, w) ---------------------------------------------------------------------------
def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz])


def quat_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Rotation angle (radians) between two unit quaternions."""
    return float(2.0 * np.arccos(np.clip(abs(np.dot(a, b)), 0.0, 1.0)))


def quat_towards(current: np.ndarray, goal: np.ndarray, max_angle: float) -> np.ndarray:
    """Rotate `current` towards `goal` by at most max_angle (slerp on the short arc)."""
    angle = quat_angle(current, goal)
    if angle <= max_angle:
        return np.asarray(goal, dtype=np.float64).copy()
    if np.dot(current, goal) < 0:
        goal = -goal
    half, frac = angle / 2.0, max_angle / angle
    out = (np.sin((1 - frac) * half) * current + np.sin(frac * half) * goal) / np.sin(half)
    return out / np.linalg.norm(out)


def _normalize(q) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return q / np.linalg.norm(q)


class SafetyLayer:
    """Bounded targets from actions. Call reset() with the measured pose after homing, then command()
    once per control period `dt` (seconds) with the newest action or None when there is none."""

    def __init__(self, limits: SafetyLimits, dt: float, home_quaternion, step_scale: float = 2 * spec.MAX_TRANSLATION,
                 grasp_force: float = 20.0, gripper_threshold: float = 0.0):
        self.limits, self.dt, self.step_scale = limits, float(dt), float(step_scale)
        self.low, self.high = np.asarray(limits.workspace_low, float), np.asarray(limits.workspace_high, float)
        self.home = _normalize(home_quaternion)
        self.grasp_force, self.gripper_threshold = float(grasp_force), float(gripper_threshold)
        self.counts: Counter[str] = Counter()
        self.estopped = False
        self.faulted = ""
        self.target = np.clip(np.asarray(spec.START_TCP, float), self.low, self.high)
        self.velocity = np.zeros(3)
        self.orientation = self.home.copy()
        self.gripper_closed = False

    # --- state ---------------------------------------------------------------------------------------
    def reset(self, measured_position, measured_quaternion) -> None:
        """Start from where the arm is (after homing, or after an e-stop / fault is cleared). A non-finite
        measurement cannot be a start: it raises ValueError and leaves the layer as it was."""
        position, quat = np.asarray(measured_position, float), np.asarray(measured_quaternion, float)
        if position.shape != (3,) or not np.all(np.isfinite(position)):
            raise ValueError(f"cannot reset the safety layer at measured TCP {position.tolist()} (not 3 finite values)")
        if quat.shape != (4,) or not np.all(np.isfinite(quat)) or np.linalg.norm(quat) < 1e-6:
            raise ValueError(f"cannot reset the safety layer at measured orientation {quat.tolist()}")
        self.target = np.clip(position, self.low, self.high)
        self.velocity = np.zeros(3)
        self.orientation = _normalize(measured_quaternion)
        self.estopped, self.faulted = False, ""

    def estop(self) -> None:
        """Latch: every command holds until reset() is called explicitly."""
        if not self.estopped:
            self.counts["estop"] += 1
        self.estopped = True

    # --- one command ---------------------------------------------------------------------------------
    def command(self, action, measured_position=None, measured_quaternion=None, stale: str = "") -> Decision:
        """The next target. `action`: the newest action (None = none fresh); `stale`: why inputs are stale
        (the watchdog's verdict; non-empty = hold)."""
        events: list[str] = []
        wish = self._parse(action, events)
        if stale:
            events.append(f"hold_watchdog: {stale}")
        if self.estopped:
            events.append("hold_estop")
        if measured_position is not None and not self.faulted:
            self._check_measured(np.asarray(measured_position, float))
        if measured_quaternion is not None and not self.faulted:
            quat = np.asarray(measured_quaternion, dtype=np.float64)
            norm = float(np.linalg.norm(quat)) if quat.shape == (4,) else float("nan")
            # NaN > max_tilt is False: a NaN or degenerate orientation must fault explicitly
            tilt = quat_angle(quat / norm, self.home) if np.isfinite(norm) and norm > 1e-6 else float("nan")
            if not np.isfinite(tilt):
                self.faulted = f"measured orientation {quat.tolist()} is not a rotation (NaN or zero quaternion)"
            elif tilt > self.limits.max_tilt:
                self.faulted = (f"tool tilted {np.degrees(tilt):.1f} deg from home "
                                f"(max {np.degrees(self.limits.max_tilt):.1f})")
        if self.faulted:
            events.append(f"hold_fault: {self.faulted}")
        hold = wish is None or bool(stale) or self.estopped or bool(self.faulted)
        delta = np.zeros(3) if hold else wish[:3] * self.step_scale
        self._move(delta, measured_position, events)
        self.orientation = quat_towards(self.orientation, self.home, self.limits.max_rotation_step)
        if not hold:
            self._gripper(wish[3])
        force = min(self.grasp_force, self.limits.gripper_max_force)
        if force < self.grasp_force:
            events.append("clipped_gripper_force")
        for event in events:
            self.counts[event.split(":")[0]] += 1
        return Decision(ArmCommand(self.target.copy(), self.orientation.copy(), self.gripper_closed, force, hold),
                        None if hold else wish, events)

    def _check_measured(self, position: np.ndarray) -> None:
        """The arm itself left the box (a folding arm, a controller gone wrong): fault, whatever the target."""
        outside = float(np.max(np.maximum(self.low - position, position - self.high)))
        if not np.all(np.isfinite(position)):
            self.faulted = f"measured TCP {position.tolist()} is not finite"
        elif outside > self.limits.workspace_margin:
            self.faulted = (f"measured TCP {np.round(position, 3).tolist()} is {100 * outside:.1f} cm outside the "
                            f"workspace (margin {100 * self.limits.workspace_margin:.1f} cm)")

    def _parse(self, action, events: list[str]) -> np.ndarray | None:
        if action is None:
            return None
        action = np.asarray(action, dtype=np.float64).ravel()
        if action.shape != (spec.ACTION_DIM,):
            events.append(f"rejected_shape: {action.shape[0]} values, expected {spec.ACTION_DIM}")
            return None
        if not np.all(np.isfinite(action)):
            events.append(f"rejected_nonfinite: {action.tolist()}")
            return None
        if np.any(np.abs(action) > 1.0):
            events.append("clipped_action_range")
        return np.clip(action, -1.0, 1.0)

    def _move(self, delta: np.ndarray, measured, events: list[str]) -> None:
        lim, dt = self.limits, self.dt
        norm = np.linalg.norm(delta)
        if norm > lim.max_step:
            delta, norm = delta * (lim.max_step / norm), lim.max_step
            events.append("clipped_step")
        velocity = delta / dt
        if norm / dt > lim.max_speed:
            velocity *= lim.max_speed / (norm / dt)
            events.append("clipped_speed")
        dv = np.clip(velocity - self.velocity, -lim.max_accel * dt, lim.max_accel * dt)
        if np.any(dv != velocity - self.velocity):
            events.append("clipped_accel")
        velocity = self.velocity + dv
        # brake before the walls: a target moving at v towards a wall d away must still be able to stop
        # within max_accel (discrete: v*dt + v^2 / (2a) <= d). Braking never needs more than max_accel.
        a = lim.max_accel
        room_up, room_down = self.high - self.target, self.target - self.low
        allowed_up = a * (-dt + np.sqrt(dt * dt + 2.0 * np.maximum(room_up, 0.0) / a))
        allowed_down = a * (-dt + np.sqrt(dt * dt + 2.0 * np.maximum(room_down, 0.0) / a))
        braked = np.clip(velocity, -allowed_down, allowed_up)
        if np.any(braked != velocity):
            events.append("clipped_workspace")
        velocity = braked
        target = np.clip(self.target + velocity * dt, self.low, self.high)
        if measured is not None:  # the target may not run away from a blocked arm
            measured = np.asarray(measured, float)
            if np.all(np.isfinite(measured)):
                # stop advancing on an axis that is too far ahead; never pull the target back (no jumps)
                low = np.minimum(self.target, measured - lim.max_lead)
                high = np.maximum(self.target, measured + lim.max_lead)
                led = np.clip(target, low, high)
                if np.any(led != target):
                    events.append("clipped_lead")
                    target = np.clip(led, self.low, self.high)
        self.velocity = (target - self.target) / dt
        self.target = target

    def _gripper(self, value: float) -> None:
        # hysteresis: a policy hovering around the threshold must not chatter the gripper
        if not self.gripper_closed and value > self.gripper_threshold + 0.2:
            self.gripper_closed = True
        elif self.gripper_closed and value < self.gripper_threshold - 0.2:
            self.gripper_closed = False


class Watchdog:
    """Stale-input verdicts for SafetyLayer.command(stale=...): each named input (action, observation)
    must have been fed within `deadline` seconds of `now` (a monotonic clock), or the arm holds."""

    def __init__(self, deadline: float, inputs: tuple[str, ...] = ("action", "observation")):
        self.deadline = float(deadline)
        self.last: dict[str, float | None] = dict.fromkeys(inputs)

    def feed(self, name: str, now: float) -> None:
        self.last[name] = now

    def verdict(self, now: float) -> str:
        """'' while every input is fresh, otherwise which is stale and for how long."""
        stale = [f"no {name} yet" if t is None else f"no {name} for {now - t:.2f} s"
                 for name, t in self.last.items() if t is None or now - t > self.deadline]
        return ", ".join(stale)
