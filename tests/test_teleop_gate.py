"""The teleop node beside a planner: the planner's actions pass through until the operator takes over,
then each observation is answered with the device's action without waiting for the planner; never more
than one action out per observation (a lock-step sim steps once per action). Each action says in its own
message whether the operator drove it: the bridges flag interventions from that label."""

from __future__ import annotations

import os
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ros extra: scripts/install.sh ros")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from std_msgs.msg import Float32MultiArray  # noqa: E402

from modem_ros import topics  # noqa: E402
from modem_ros.nodes.common import STREAM, operator_action_msg, operator_driven  # noqa: E402
from modem_ros.nodes.teleop import Teleop  # noqa: E402


def spin_until(executor, condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        executor.spin_once(timeout_sec=0.05)


def test_operator_takes_over_from_the_planner_and_hands_back(monkeypatch, tmp_path):
    monkeypatch.setenv("ROS_DOMAIN_ID", str(200 + os.getpid() % 30))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path))
    master, slave = os.openpty()
    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "-p", f"keyboard_tty:={os.ttyname(slave)}",
                                      "-p", f"planner_action_topic:={topics.PLANNER_ACTION}", "-p", "task:=toy-reach",
                                      "-p", "key_hold:=30.0"],
               signal_handler_options=SignalHandlerOptions.NO)  # pytest keeps its own Ctrl-C
    executor = SingleThreadedExecutor(context=context)
    teleop = Teleop(context=context)
    probe = rclpy.create_node("probe", context=context)
    try:
        planner = probe.create_publisher(Float32MultiArray, topics.PLANNER_ACTION, STREAM)
        state = probe.create_publisher(Float32MultiArray, topics.STATE, STREAM)
        out: list[list[float]] = []
        operator: list[bool] = []  # per action out: labelled as the operator's

        def on_action(msg):
            out.append(list(msg.data))
            operator.append(operator_driven(msg))

        probe.create_subscription(Float32MultiArray, topics.ACTION, on_action, STREAM)
        executor.add_node(teleop)
        executor.add_node(probe)
        spin_until(executor, lambda: planner.get_subscription_count() and state.get_subscription_count()
                   and teleop.action_pub.get_subscription_count())

        def observe():  # until the gate holds it open or has answered it
            n = len(out)
            state.publish(Float32MultiArray(data=[0.0, 0.0]))
            spin_until(executor, lambda: teleop.pending or len(out) > n)

        def answered(n):
            spin_until(executor, lambda: len(out) > n)
            return out[-1]

        def idle(seconds=0.3):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=0.02)

        observe()
        planner.publish(Float32MultiArray(data=[0.25, -0.5]))
        assert answered(0) == pytest.approx([0.25, -0.5]) and operator == [False]  # planner drives
        planner.publish(Float32MultiArray(data=[0.5, 0.5]))      # a second answer to the same observation
        idle()
        assert len(out) == 1                                     # dropped: the sim would step twice
        os.write(master, b"td")  # take over, then 'd' (toy plane: +1 on action 0)
        spin_until(executor, lambda: teleop.engaged)
        observe()
        assert answered(1) == pytest.approx([1.0, 0.0])          # the operator answers, no planner needed
        assert operator == [False, True]                         # and says so in the action itself
        planner.publish(Float32MultiArray(data=[0.25, -0.5]))    # the planner's late answer to it
        idle()
        assert len(out) == 2                                     # dropped
        os.write(master, b"t")
        spin_until(executor, lambda: not teleop.engaged)
        observe()
        idle()
        assert len(out) == 2                                     # handed back: the planner answers again
        planner.publish(operator_action_msg([0.1, 0.2]))         # a planner claiming the operator's label
        assert answered(2) == pytest.approx([0.1, 0.2])
        assert operator == [False, True, False]                  # passes as the planner's: only the gate labels
        idle()
        assert len(out) == 3  # one out per observation, never more
    finally:
        teleop.destroy_node()
        probe.destroy_node()
        rclpy.shutdown(context=context)
        os.close(master)
        os.close(slave)
