"""launch_ros actions from modem_ros/graph.py, for `ros2 launch modem_ros <name>.launch.py` on a ROS 2
install. Each launch file is one call to build(); this adds nothing the pip launcher does not do:
the same nodes, the same parameter file, the same arguments onto the same parameters."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from modem_ros.graph import ACTORS_ARGUMENT, MODE_ARGUMENT, actor_copies, launch_spec
from modem_ros.paths import config_dir


def build(name: str):
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
    from launch.conditions import IfCondition
    from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PythonExpression
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue

    spec = launch_spec(name)
    params_file = str(config_dir() / spec.params_file)
    file_params = yaml.safe_load(Path(params_file).read_text()) or {}
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

    def actor_count(context) -> int:
        """actors:=N at launch time (1 for a graph without actor nodes)."""
        return max(1, int(LaunchConfiguration(ACTORS_ARGUMENT).perform(context))) if spec.actor_nodes else 1

    def refuse_a_shared_domain(context):
        """As `modem-ros launch` does: refuse to start when a node of this graph already runs on the domain
        (two graphs on one domain would mix their streams), naming it and another ROS_DOMAIN_ID."""
        from modem_ros.launcher import DOMAIN_CHECKED, Process, refuse_shared_domain

        mode = LaunchConfiguration(MODE_ARGUMENT).perform(context) if spec.modes else None
        actors = actor_count(context)
        names = []
        for node in spec.nodes:
            if node.modes and mode not in node.modes:
                continue
            namespaces = ([c.namespace for c in actor_copies(node, actors)] if node.name in spec.actor_nodes
                          else [""])
            names += [Process(node, namespace).fqn for namespace in namespaces]
        # the SetEnvironmentVariable actions above have run: launch keeps its environment in os.environ
        refuse_shared_domain(names, dict(os.environ))
        return [SetEnvironmentVariable(DOMAIN_CHECKED, "1")]  # its nodes need not check their names again

    actions.append(OpaqueFunction(function=refuse_a_shared_domain))

    def node_action(node, namespace: str = "", remaps=None, seed_offset: int = 0, context=None):
        overrides = {target.partition(".")[2]: ParameterValue(LaunchConfiguration(arg), value_type=a.kind)
                     for arg, a in spec.arguments.items() for target in a.targets
                     if target.partition(".")[0] == node.name}
        if seed_offset:  # actor i of several: its own seed (resets, sampling), as `modem-ros launch` gives it
            overrides["seed"] = int(LaunchConfiguration("seed").perform(context)) + seed_offset
        # a mode-specific node (a sim or hardware bridge) starts only in its modes, as `modem-ros launch` does
        in_mode = ["'", LaunchConfiguration(MODE_ARGUMENT), f"' in {list(node.modes)}"]
        condition = IfCondition(PythonExpression(in_mode)) if node.modes else None
        # `python -m module`: the same entry point as the pip launcher, no lib/<package> scripts needed
        # a params file's section "planner" names /planner only: an actor's copy gets its section as a dict
        own = params_file if not namespace else {
            **file_params.get("/**", {}).get("ros__parameters", {}),
            **file_params.get(node.name, {}).get("ros__parameters", {})}
        return Node(executable=sys.executable, arguments=["-m", node.module], name=node.name,
                    parameters=[own, dict(node.params), overrides],
                    remappings=list(node.remaps if remaps is None else remaps), output="screen", emulate_tty=True,
                    condition=condition, **({"namespace": namespace} if namespace else {}))

    def actor_actions(context):
        """actors:=N: each actor node once per actor (graph.actor_copies), known only at launch time."""
        actors = actor_count(context)
        copies = [(node, actor_copies(node, actors)) for node in spec.nodes if node.name in spec.actor_nodes]
        out = []
        for i in range(actors):  # actor by actor: bridge, camera, planner
            for node, node_copies in copies:
                copy = node_copies[i]
                out.append(node_action(node, copy.namespace, copy.remaps, copy.seed_offset, context))
        return out

    for node in spec.nodes:
        if node.name not in spec.actor_nodes:
            actions.append(node_action(node))
        elif node.name == spec.actor_nodes[0]:
            actions.append(OpaqueFunction(function=actor_actions))
    return LaunchDescription(actions)
