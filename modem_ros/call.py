"""`modem-ros call NAME`: call one of a robot graph's Trigger services from a terminal.

The pip install has rclpy but no `ros2` CLI, and clearing an e-stop must be a deliberate act of the
operator (no teleop key does it): this is that act, on the same domain and discovery settings as
`modem-ros launch` (launcher.ros_environment)."""

from __future__ import annotations

import os
import time

from modem_ros import topics

SERVICES = {
    "estop": topics.ESTOP,              # latch the e-stop
    "estop-reset": topics.ESTOP_RESET,  # clear it (in train_robot the bridge then homes for the next episode)
    "reset": topics.RESET,              # end the running episode and start the next
    "recover": topics.RECOVER,          # clear the robot's reflex errors after a fault
}


def call(name: str, timeout: float = 10.0) -> tuple[bool, str]:
    """(success, message): the service's answer, or why there was none."""
    from modem_ros.launcher import ros_environment  # here, not at import: the CLI reads SERVICES at start-up

    service = SERVICES[name]
    os.environ.update(ros_environment())  # before rclpy creates its DDS participant
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    from std_srvs.srv import Trigger

    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("modem_ros_call", context=context)
    try:
        client = node.create_client(Trigger, service)
        domain = os.environ.get("ROS_DOMAIN_ID", "0")
        if not client.wait_for_service(timeout_sec=timeout):
            return False, (f"nothing offers {service} on ROS_DOMAIN_ID={domain} within {timeout:g} s: is the robot "
                           "graph running, with the same ROS_DOMAIN_ID?")
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        future = client.call_async(Trigger.Request())
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        if not future.done():
            return False, f"{service} did not answer within {timeout:g} s"
        answer = future.result()
        return bool(answer.success), f"{service}: {answer.message}"
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
