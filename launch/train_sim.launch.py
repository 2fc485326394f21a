"""ros2 launch modem_ros train_sim.launch.py [name:=value ...]

Train MoDem in simulation: sim bridge + camera + planner + trainer, lock-step.
The nodes, parameters and arguments are defined once, in modem_ros/graph.py (see modem_ros/ros_launch.py);
`modem-ros launch train_sim` starts the same graph without a ROS 2 distro."""

from modem_ros.ros_launch import build


def generate_launch_description():
    return build("train_sim")
