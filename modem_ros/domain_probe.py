"""Which of the given node names already run on this ROS domain (the launcher's check before start).

Run as `python -m modem_ros.domain_probe SECONDS NAME...` with the graph's environment; prints a JSON
list of the names found (each as /namespace/name) and exits 0, or exits 3 when rclpy is not installed.
A separate process: the launcher itself stays free of DDS state.
"""

from __future__ import annotations

import json
import os
import sys
import time


def running(names: list[str], seconds: float) -> list[str]:
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(f"modem_ros_launch_probe_{os.getpid()}", context=context)
    found: list[str] = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not found:  # discovery of a live graph takes ~0.1-2.5 s
            found = sorted({f"{ns.rstrip('/')}/{name}" for name, ns in node.get_node_names_and_namespaces()
                            if name in names and ns == "/"})
            time.sleep(0.1)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
    return found


def main() -> int:
    try:
        import rclpy  # noqa: F401
    except ImportError:
        return 3
    print(json.dumps(running(sys.argv[2:], float(sys.argv[1]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
