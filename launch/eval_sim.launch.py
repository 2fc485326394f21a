"""ros2 launch modem_ros eval_sim.launch.py [name:=value ...]

Evaluate a checkpoint in simulation: sim bridge + camera + planner, no exploration.
The nodes, parameters and arguments are defined once, in modem_ros/graph.py (see modem_ros/ros_launch.py);
`modem-ros launch eval_sim` starts the same graph without a ROS 2 distro."""

from modem_ros.ros_launch import build


def generate_launch_description():
    return build("eval_sim")
