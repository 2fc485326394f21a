"""The finished trainer node holds its process until a remote planner has acknowledged the last weights:
their transient-local copy dies with the process, so exiting early leaves the planner on older weights.
The subscriber is a real rclpy process; SIGSTOP makes it a peer that has matched but cannot acknowledge."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types

import pytest

pytest.importorskip("rclpy")

from std_msgs.msg import String, UInt8MultiArray  # noqa: E402

from modem_ros import topics  # noqa: E402
from modem_ros.nodes.common import LATCHED, WEIGHTS  # noqa: E402
from modem_ros.nodes.trainer import TrainerNode  # noqa: E402
from tests.ros_node import InProcessNode  # noqa: E402

SUBSCRIBER = f"""
import rclpy
from std_msgs.msg import String, UInt8MultiArray
from modem_ros.nodes.common import LATCHED, WEIGHTS
rclpy.init()
node = rclpy.create_node("remote_planner")
node.create_subscription(UInt8MultiArray, {topics.WEIGHTS!r},
                         lambda m: print("weights", len(m.data), flush=True), WEIGHTS)
node.create_subscription(String, {topics.CHECKPOINT!r}, lambda m: print("checkpoint", m.data, flush=True), LATCHED)
print("ready", flush=True)
rclpy.spin(node)
"""


class Logger:
    def __init__(self):
        self.warnings: list[str] = []

    def warning(self, text: str) -> None:
        self.warnings.append(text)


def test_the_last_weights_are_acknowledged_before_the_trainer_exits(monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", str(110 + os.getpid() % 30))
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    side = InProcessNode(env, "trainer_side")
    remote = subprocess.Popen([sys.executable, "-c", SUBSCRIBER], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert remote.stdout.readline().strip() == "ready"
        weights = side.node.create_publisher(UInt8MultiArray, topics.WEIGHTS, WEIGHTS)
        ckpt = side.node.create_publisher(String, topics.CHECKPOINT, LATCHED)
        deadline = time.monotonic() + 30
        while weights.get_subscription_count() < 1 or ckpt.get_subscription_count() < 1:
            assert time.monotonic() < deadline, "the remote subscriber was never matched"
            time.sleep(0.05)
        logger = Logger()
        trainer = types.SimpleNamespace(weights_pub=weights, ckpt_pub=ckpt, deliver_timeout=1.5,
                                        get_logger=lambda: logger)

        remote.send_signal(signal.SIGSTOP)  # matched, but can acknowledge nothing
        weights.publish(UInt8MultiArray(data=bytes(256 * 1024)))
        ckpt.publish(String(data="v2"))
        started = time.monotonic()
        TrainerNode.deliver_last(trainer)
        assert time.monotonic() - started >= 1.4  # it waited for the acknowledgement, up to deliver_timeout
        assert any(topics.WEIGHTS in w and "deliver_timeout" in w for w in logger.warnings), logger.warnings

        remote.send_signal(signal.SIGCONT)
        logger.warnings.clear()
        trainer.deliver_timeout = 30.0
        TrainerNode.deliver_last(trainer)  # returns once acknowledged: the data is at the remote side
        assert logger.warnings == []
        seen = [remote.stdout.readline().split()[0] for _ in range(2)]
        assert sorted(seen) == ["checkpoint", "weights"]
    finally:
        remote.send_signal(signal.SIGCONT)
        remote.kill()
        remote.wait()
        side.close()
