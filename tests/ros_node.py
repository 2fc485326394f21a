"""An rclpy node inside the test process, on a launch's ROS domain, spun by a background thread: what
the graph tests use to watch a launched graph or to stand in for one of its peers. Import it only after
`pytest.importorskip("rclpy")`."""

from __future__ import annotations

import os
import threading

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Float32MultiArray

from modem_ros import topics
from modem_ros.nodes.common import STREAM


class InProcessNode:
    """Subclasses create their publishers and subscriptions on `self.node`, then call start()."""

    def __init__(self, env: dict[str, str], name: str):
        for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):  # the launch's domain and discovery
            os.environ[key] = env.get(key, "LOCALHOST")
        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(name, context=self.context)
        self.alive = False

    def answer_observations(self, action: list[float]) -> None:
        """Stand in for the planner: one fixed action per observation of the bridge."""
        out = self.node.create_publisher(Float32MultiArray, topics.ACTION, STREAM)
        self.node.create_subscription(Float32MultiArray, topics.STATE,
                                      lambda _: out.publish(Float32MultiArray(data=action)), STREAM)

    def start(self) -> None:
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.alive = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while self.alive:
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        if self.alive:
            self.alive = False
            self.thread.join(timeout=2.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
