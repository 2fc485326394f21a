"""ros2 launch modem_ros deploy.launch.py checkpoint:=... robot_ip:=... [name:=value ...]

Run a trained policy on a Franka: RealSense + camera + planner + teleop gate + Franka bridge (safety layer).
The nodes, parameters and arguments are defined once, in modem_ros/graph.py (see modem_ros/ros_launch.py);
`modem-ros launch deploy` starts the same graph without a ROS 2 distro."""

from modem_ros.ros_launch import build


def generate_launch_description():
    return build("deploy")
