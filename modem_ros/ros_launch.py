"""launch_ros actions from modem_ros/graph.py, for `ros2 launch modem_ros <name>.launch.py` on a ROS 2
install. Each launch file is one call to build(); this adds nothing the pip launcher does not do:
the same nodes, the same parameter file, the same arguments onto the same parameters."""

from __future__ import annotations

import sys

from modem_ros.graph import MODE_ARGUMENT, launch_spec
from modem_ros.paths import config_dir


def build(name: str):
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
    from launch.conditions import IfCondition
    from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PythonExpression
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue

    spec = launch_spec(name)
    params_file = str(config_dir() / spec.params_file)
    actions = [
        # as `modem-ros launch`: discovery on this host unless the user set it, large-image Fast DDS profile
        SetEnvironmentVariable("ROS_AUTOMATIC_DISCOVERY_RANGE",
                               EnvironmentVariable("ROS_AUTOMATIC_DISCOVERY_RANGE", default_value="LOCALHOST")),
        SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                               EnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                                                   default_value=str(config_dir() / "fastdds.xml"))),
    ]
    actions += [DeclareLaunchArgument(arg, default_value=a.default, description=a.description)
                for arg, a in spec.arguments.items()]
    if spec.modes:
        actions.append(DeclareLaunchArgument(MODE_ARGUMENT, default_value=spec.modes[0],
                                             choices=list(spec.modes),
                                             description=f"Bridges: {' | '.join(spec.modes)}."))
    for node in spec.nodes:
        overrides = {target.partition(".")[2]: ParameterValue(LaunchConfiguration(arg), value_type=a.kind)
                     for arg, a in spec.arguments.items() for target in a.targets
                     if target.partition(".")[0] == node.name}
        # a mode-specific node (a sim or hardware bridge) starts only in its modes, as `modem-ros launch` does
        in_mode = ["'", LaunchConfiguration(MODE_ARGUMENT), f"' in {list(node.modes)}"]
        condition = IfCondition(PythonExpression(in_mode)) if node.modes else None
        # `python -m module`: the same entry point as the pip launcher, no lib/<package> scripts needed
        actions.append(Node(executable=sys.executable, arguments=["-m", node.module], name=node.name,
                            parameters=[params_file, dict(node.params), overrides], remappings=list(node.remaps),
                            output="screen", emulate_tty=True, condition=condition))
    return LaunchDescription(actions)
