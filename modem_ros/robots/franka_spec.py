"""The Franka task interface, one definition for the MuJoCo Franka cell and the hardware bridge.

A policy trained in sim runs on the robot with only the bridge swapped, so both read these numbers.
Frames and units follow REP-103: metres, the robot base frame (x forward, y left, z up).

Action (4-d, each in [-1, 1]): tool-centre-point translation dx, dy, dz as a fraction of
MAX_TRANSLATION per control period, then the gripper command (+1 close, -1 open; Meta-World's sign).
The tool keeps the home orientation (pointing down); orientation is not part of the action.
State (11-d float32): TCP position xyz, gripper opening width, the seven joint angles.
"""

from __future__ import annotations

import numpy as np

ACTION_DIM = 4
STATE_DIM = 11
STATE_FIELDS = ("tcp_x", "tcp_y", "tcp_z", "gripper_width", *(f"joint{i}" for i in range(1, 8)))
ACTION_FIELDS = ("tcp_dx", "tcp_dy", "tcp_dz", "gripper")

CONTROL_PERIOD = 0.05
"""Seconds per suite step (20 Hz); with action_repeat 2 the policy acts at 10 Hz."""
MAX_TRANSLATION = 0.01
"""Metres of TCP motion per control period at |action| = 1 (0.2 m/s)."""
GRIPPER_MAX_WIDTH = 0.08
"""Franka Hand fully open, metres."""

WORKSPACE_LOW = np.array([0.30, -0.25, 0.005])
"""Lower corner of the box the TCP target is kept in (base frame, metres; z just above the table)."""
WORKSPACE_HIGH = np.array([0.70, 0.25, 0.32])
"""Upper corner of that box. Every corner is reachable with the tool pointing down: the wrist centre
(TCP + 0.21 m up) stays within 0.77 m of the shoulder (z 0.333), short of the FR3's ~0.80 m at which
both the cell's IK and franky-sim's collapse (measured; the arm folds onto the table)."""
HOME_JOINTS = np.array([0.0, 0.0, 0.0, -1.57079, 0.0, 1.57079, -0.7853])
"""Joint angles of Franka's home pose (tool pointing down; its TCP, z = 0.51 m, is above the workspace)."""
START_TCP = np.array([0.5, 0.0, 0.3])
"""Where every episode starts: the TCP over the middle of the table, tool pointing down (base frame, m)."""
SUCCESS_RADIUS = {"franka-reach": 0.03, "franka-push": 0.04, "franka-pick-place": 0.04}
"""Metres within which the task's object (reach: the TCP; push, pick-place: the cube) counts as at its goal."""


def at_goal(task: str, point: np.ndarray, goal: np.ndarray) -> bool:
    """The sparse success of a Franka task: its object (`point`) within SUCCESS_RADIUS of the goal."""
    return bool(np.linalg.norm(np.asarray(point, np.float64) - np.asarray(goal, np.float64)) < SUCCESS_RADIUS[task])


def tcp_target(current_target: np.ndarray, action: np.ndarray) -> np.ndarray:
    """The next TCP target: current target moved by the action's translation, kept in the workspace."""
    step = np.clip(np.asarray(action[:3], dtype=np.float64), -1.0, 1.0) * MAX_TRANSLATION
    return np.clip(current_target + step, WORKSPACE_LOW, WORKSPACE_HIGH)


def towards(tcp: np.ndarray, point: np.ndarray, per_step: float) -> np.ndarray:
    """Translation action (3-d, in [-1, 1]) moving the TCP straight at `point`, `per_step` metres per step
    at full action: scaled, not clipped per axis, so the direction is kept."""
    move = (np.asarray(point, dtype=np.float64) - tcp) / per_step
    return move / max(1.0, np.abs(move).max())


def gripper_width(action: np.ndarray) -> float:
    """Commanded opening for the gripper action: -1 fully open, +1 closed."""
    return float((1.0 - np.clip(action[3], -1.0, 1.0)) / 2.0 * GRIPPER_MAX_WIDTH)


def state_vector(tcp: np.ndarray, width: float, joints: np.ndarray) -> np.ndarray:
    """Assemble the 11-d state in STATE_FIELDS order."""
    return np.concatenate([tcp, [width], joints]).astype(np.float32)
