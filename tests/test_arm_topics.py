"""The sim bridge's Franka cell publishes the hardware bridge's arm topics (joint_states, modem/ee_pose)
with the same names, frames and values as its state vector, so anything written against the robot's
streams runs unchanged in sim."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ros extra: scripts/install.sh ros")
pytest.importorskip("modem_ros.envs.franka_cell", reason="needs the sim extra: scripts/install.sh sim")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float32MultiArray  # noqa: E402

from modem_ros import topics  # noqa: E402
from modem_ros.nodes.common import STREAM, array_msg  # noqa: E402
from modem_ros.nodes.sim_bridge import SimBridge  # noqa: E402
from modem_ros.robots.arm import FINGER_NAMES, JOINT_NAMES  # noqa: E402

HOME_QUATERNION = np.array([0.70710678, 0.70710678, 0.0, 0.0])  # x y z w: tool down, as franky-sim reports it


def test_franka_cell_publishes_joint_states_and_ee_pose_matching_its_state(monkeypatch, tmp_path):
    monkeypatch.setenv("ROS_DOMAIN_ID", str(200 + os.getpid() % 30))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path))
    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "-p", "task:=franka-reach", "-p", "config_overrides:=img_size=48"],
               signal_handler_options=SignalHandlerOptions.NO)
    try:
        probe = rclpy.create_node("probe", context=context)
        states, joints, poses = [], [], []
        probe.create_subscription(Float32MultiArray, topics.STATE, lambda m: states.append(np.array(m.data)), STREAM)
        probe.create_subscription(JointState, topics.JOINT_STATES, joints.append, 10)
        probe.create_subscription(PoseStamped, topics.EE_POSE, poses.append, 10)
        actions = probe.create_publisher(Float32MultiArray, topics.ACTION, STREAM)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(probe)
        deadline = time.monotonic() + 30
        bridge = SimBridge(context=context)
        executor.add_node(bridge)
        for step in range(6):
            while len(poses) <= step or len(states) <= step or len(joints) <= step:
                assert time.monotonic() < deadline, "no arm topics from the sim bridge"
                executor.spin_once(timeout_sec=0.05)
            actions.publish(array_msg(np.array([1.0, -0.5, 0.5, 1.0], np.float32)))
        for state, joint, pose in zip(states, joints, poses, strict=False):
            p = pose.pose.position
            np.testing.assert_allclose([p.x, p.y, p.z], state[:3], atol=1e-6)
            q = pose.pose.orientation
            assert abs(abs(np.dot([q.x, q.y, q.z, q.w], HOME_QUATERNION)) - 1) < 1e-3  # tool down, the robot's frame
            assert pose.header.frame_id == topics.BASE_FRAME and joint.header.stamp == pose.header.stamp
            assert tuple(joint.name) == (*JOINT_NAMES, *FINGER_NAMES)
            np.testing.assert_allclose(joint.position[:7], state[4:], atol=1e-6)
            np.testing.assert_allclose(sum(joint.position[7:]), state[3], atol=1e-6)
        assert poses[-1].pose.position.x > poses[0].pose.position.x + 0.02  # it moved, and the topics followed
        bridge.destroy_node()
        probe.destroy_node()
    finally:
        rclpy.shutdown(context=context)
