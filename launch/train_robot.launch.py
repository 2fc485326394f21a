"""ros2 launch modem_ros train_robot.launch.py task:=franka-push robot_ip:=172.16.0.2 demo_dir:=demos/franka-push-robot

The graph is modem_ros/graph.py's train_robot entry; this file adds nothing to it."""

from modem_ros.ros_launch import build


def generate_launch_description():
    return build("train_robot")
