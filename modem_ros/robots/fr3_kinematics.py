"""FR3 (and Panda) kinematics from Franka's published Denavit-Hartenberg table: the TCP pose of seven
joint angles, its Jacobian, and damped least-squares IK, for backends that command joints (the
franka_ros2 JointTrajectoryController path). Numpy only: no MuJoCo on the robot's machine.

Craig's (modified) convention, as Franka documents it; the TCP is the Franka Hand's, 0.1034 m past the
flange and turned -45 degrees about its z, the frame franky and the cell's `tcp` site report.
"""

from __future__ import annotations

import numpy as np

# a_{i-1} (m), d_i (m), alpha_{i-1} (rad) of joints 1..7, then the flange (theta 0)
DH = np.array([[0.0, 0.333, 0.0], [0.0, 0.0, -np.pi / 2], [0.0, 0.316, np.pi / 2], [0.0825, 0.0, np.pi / 2],
               [-0.0825, 0.384, -np.pi / 2], [0.0, 0.0, np.pi / 2], [0.088, 0.0, np.pi / 2], [0.0, 0.107, 0.0]])
TCP_OFFSET = 0.1034
"""Metres from the flange to the Franka Hand's TCP, along the flange's z."""
HAND_YAW = -np.pi / 4
"""The hand's mounting rotation about the flange's z."""
JOINT_LOWER = np.array([-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159])
"""FR3 joint position limits, radians (Franka's datasheet; the cell's MJCF carries the same)."""
JOINT_UPPER = np.array([2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159])


def _link(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
    ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
    return np.array([[ct, -st, 0.0, a], [st * ca, ct * ca, -sa, -d * sa], [st * sa, ct * sa, ca, d * ca],
                     [0.0, 0.0, 0.0, 1.0]])


def _tcp_in_flange() -> np.ndarray:
    c, s = np.cos(HAND_YAW), np.sin(HAND_YAW)
    return np.array([[c, -s, 0.0, 0.0], [s, c, 0.0, 0.0], [0.0, 0.0, 1.0, TCP_OFFSET], [0.0, 0.0, 0.0, 1.0]])


def forward(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The TCP's 4x4 pose in the base frame, and the 6x7 geometric Jacobian (linear; angular) there."""
    transform, axes, origins = np.eye(4), [], []
    for i, (a, d, alpha) in enumerate(DH):
        transform = transform @ _link(a, d, alpha, q[i] if i < 7 else 0.0)
        if i < 7:  # joint i turns about its own frame's z
            axes.append(transform[:3, 2].copy())
            origins.append(transform[:3, 3].copy())
    tcp = transform @ _tcp_in_flange()
    axes, origins = np.array(axes), np.array(origins)
    linear = np.cross(axes, tcp[:3, 3] - origins).T
    return tcp, np.vstack([linear, axes.T])


def quaternion_matrix(xyzw: np.ndarray) -> np.ndarray:
    """Rotation matrix of a unit quaternion in (x, y, z, w) order."""
    x, y, z, w = np.asarray(xyzw, np.float64) / np.linalg.norm(xyzw)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _rotation_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Angular velocity direction turning `current` towards `target` (both 3x3), ~ the axis-angle for small
    errors (Siciliano's orientation error)."""
    return 0.5 * np.cross(current.T, target.T).sum(axis=0)


def inverse(position: np.ndarray, quaternion: np.ndarray, seed: np.ndarray, iterations: int = 50,
            damping: float = 1e-2) -> tuple[np.ndarray, float]:
    """Joint angles reaching the TCP pose, by damped least squares from `seed` (the arm's joints: the
    nearest solution, so consecutive targets give a continuous trajectory), kept inside the joint limits.
    Returns the joints and the remaining position error in metres."""
    q = np.clip(np.asarray(seed, np.float64), JOINT_LOWER, JOINT_UPPER)
    target_rotation = quaternion_matrix(quaternion)
    for _ in range(iterations):
        tcp, jacobian = forward(q)
        error = np.concatenate([position - tcp[:3, 3], _rotation_error(tcp[:3, :3], target_rotation)])
        if np.linalg.norm(error[:3]) < 1e-5 and np.linalg.norm(error[3:]) < 1e-4:
            break
        step = jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + damping ** 2 * np.eye(6), error)
        q = np.clip(q + step, JOINT_LOWER, JOINT_UPPER)
    return q, float(np.linalg.norm(position - forward(q)[0][:3, 3]))
