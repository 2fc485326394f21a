"""ros2 launch modem_ros record_demos.launch.py mode:=sim task:=mw-pick-place teleop_device:=keyboard

The graph is modem_ros/graph.py's record_demos entry; this file adds nothing to it."""

from modem_ros.ros_launch import build


def generate_launch_description():
    return build("record_demos")
