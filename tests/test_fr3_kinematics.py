"""fr3_kinematics (Franka's DH table, numpy) against an independent model of the same arm: the cell's MJCF,
whose body offsets come from mujoco_menagerie's FR3. IK reaches the whole workspace with the tool down
and walks continuously, as the JointTrajectoryController path needs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco", reason="the cell's MJCF needs the sim extra")

from modem_ros.envs.franka_cell import scene_path  # noqa: E402
from modem_ros.robots import fr3_kinematics as kinematics  # noqa: E402
from modem_ros.robots import franka_spec as spec  # noqa: E402


@pytest.fixture(scope="module")
def cell():
    model = mujoco.MjModel.from_xml_path(str(scene_path()))
    return model, mujoco.MjData(model), model.site("tcp").id


def mujoco_tcp(cell, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    model, data, tcp = cell
    data.qpos[:7] = q
    mujoco.mj_kinematics(model, data)
    return data.site_xpos[tcp].copy(), data.site_xmat[tcp].reshape(3, 3).copy()


def home_quaternion() -> np.ndarray:
    quaternion = np.zeros(4)
    mujoco.mju_mat2Quat(quaternion, kinematics.forward(spec.HOME_JOINTS)[0][:3, :3].ravel())
    return np.roll(quaternion, -1)  # w, x, y, z -> x, y, z, w


def test_joint_limits_are_the_cells(cell):
    np.testing.assert_allclose(cell[0].jnt_range[:7], np.stack([kinematics.JOINT_LOWER, kinematics.JOINT_UPPER], 1))


def test_forward_kinematics_matches_the_mjcf_over_the_joint_space(cell):
    rng = np.random.default_rng(0)
    for _ in range(200):
        q = rng.uniform(kinematics.JOINT_LOWER, kinematics.JOINT_UPPER)
        pose, _ = kinematics.forward(q)
        position, rotation = mujoco_tcp(cell, q)
        np.testing.assert_allclose(pose[:3, 3], position, atol=1e-9)
        np.testing.assert_allclose(pose[:3, :3], rotation, atol=1e-6)


def test_jacobian_is_the_derivative_of_the_pose():
    rng = np.random.default_rng(1)
    for _ in range(20):
        q = rng.uniform(kinematics.JOINT_LOWER, kinematics.JOINT_UPPER)
        pose, jacobian = kinematics.forward(q)
        for j in range(7):
            dq = np.zeros(7)
            dq[j] = 1e-7
            moved = kinematics.forward(q + dq)[0]
            np.testing.assert_allclose((moved[:3, 3] - pose[:3, 3]) / 1e-7, jacobian[:3, j], atol=1e-5)
            spin = (moved[:3, :3] - pose[:3, :3]) / 1e-7 @ pose[:3, :3].T  # skew(omega)
            np.testing.assert_allclose([spin[2, 1], spin[0, 2], spin[1, 0]], jacobian[3:, j], atol=1e-5)


def test_ik_reaches_every_workspace_corner_with_the_tool_down(cell):
    down = home_quaternion()
    start, error = kinematics.inverse(spec.START_TCP, down, spec.HOME_JOINTS)
    assert error < 1e-5
    for corner in itertools.product(*zip(spec.WORKSPACE_LOW, spec.WORKSPACE_HIGH, strict=True)):
        q, error = kinematics.inverse(np.array(corner), down, start)
        position, rotation = mujoco_tcp(cell, q)  # checked on the other model
        assert np.linalg.norm(position - corner) < 1e-4 and error < 1e-4
        np.testing.assert_allclose(rotation, kinematics.quaternion_matrix(down), atol=1e-3)
        assert np.all(q >= kinematics.JOINT_LOWER) and np.all(q <= kinematics.JOINT_UPPER)


def test_ik_walks_continuously_through_small_steps():
    """Seeded with the arm's joints, 2 cm steps give joint steps of the same small order: no branch flips
    that a one-period trajectory would turn into a lunge."""
    down, rng = home_quaternion(), np.random.default_rng(2)
    q, _ = kinematics.inverse(spec.START_TCP, down, spec.HOME_JOINTS)
    target = spec.START_TCP.copy()
    for _ in range(300):
        target = np.clip(target + rng.uniform(-0.02, 0.02, 3), spec.WORKSPACE_LOW, spec.WORKSPACE_HIGH)
        following, error = kinematics.inverse(target, down, q)
        assert error < 1e-4 and np.abs(following - q).max() < 0.25
        q = following


def test_an_unreachable_target_reports_its_residual():
    _, error = kinematics.inverse(np.array([1.5, 0.0, 0.3]), home_quaternion(), spec.HOME_JOINTS)
    assert error > 0.5  # 1.5 m out: the arm reaches ~0.85 m; the caller refuses it (franka_ros2_arm)
