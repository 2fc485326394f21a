"""Which of the given node names already run on this ROS domain (the launcher's check before start):
discovered, and answering (a node killed moments ago is still discovered until its DDS lease ends).

Run as `python -m modem_ros.domain_probe SECONDS NAME...` with the graph's environment (a NAME is a node's
fully qualified name, /actor_0/planner; a bare name means the root namespace); prints a JSON list of the
names found (each as /namespace/name) and exits 0, or exits 3 when rclpy is not installed.
A separate process: the launcher itself stays free of DDS state.
"""

from __future__ import annotations

import json
import os
import sys
import time


def fully_qualified(name: str, namespace: str = "/") -> str:
    return name if name.startswith("/") else f"{namespace.rstrip('/')}/{name}"


def running(names: list[str], seconds: float) -> list[str]:
    """Those of `names` whose node is discovered and answers its parameter service: a process killed
    moments ago stays discovered until its DDS lease runs out, but answers nothing."""
    names = [fully_qualified(n) for n in names]
    import rclpy
    from rcl_interfaces.srv import ListParameters
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(f"modem_ros_launch_probe_{os.getpid()}", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    alive: set[str] = set()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not alive:  # discovery of a live graph takes ~0.1-2.5 s
            seen = {fully_qualified(name, ns) for name, ns in node.get_node_names_and_namespaces()} & set(names)
            for name in sorted(seen - alive):
                client = node.create_client(ListParameters, f"{name}/list_parameters")
                if client.wait_for_service(timeout_sec=4.0):  # services are discovered after their node
                    future = client.call_async(ListParameters.Request())
                    executor.spin_until_future_complete(future, timeout_sec=3.0)
                    if future.done() and future.result() is not None:
                        alive.add(name)
                node.destroy_client(client)
            time.sleep(0.1)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
    return sorted(alive)


def main() -> int:
    try:
        import rclpy  # noqa: F401
    except ImportError:
        return 3
    print(json.dumps(running(sys.argv[2:], float(sys.argv[1]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
