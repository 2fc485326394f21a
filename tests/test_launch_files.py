"""launch/*.launch.py build exactly the nodes, parameter files and arguments of modem_ros/graph.py,
and every parameter the YAML files or launch arguments set is one a node declares.

`launch` and `launch_ros` cannot be installed without a ROS 2 distro (DESIGN.md), so the launch files
run here against FAKE stand-in modules that only record the actions they are asked to build.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from modem_ros import topics
from modem_ros.config import NODE_PARAMETERS
from modem_ros.graph import LAUNCHES, MODE_ARGUMENT
from modem_ros.paths import share_dir
from modem_ros.robots.safety import SafetyLimits

LAUNCH_DIR = share_dir() / "launch"
NODE_DIR = Path(__file__).resolve().parents[1] / "modem_ros" / "nodes"


class Recorded:
    """FAKE launch action / substitution: remembers its constructor arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


@pytest.fixture
def fake_launch(monkeypatch):
    kinds = {"launch": ["LaunchDescription"],
             "launch.actions": ["DeclareLaunchArgument", "OpaqueFunction", "SetEnvironmentVariable"],
             "launch.conditions": ["IfCondition"],
             "launch.substitutions": ["LaunchConfiguration", "EnvironmentVariable", "PythonExpression"],
             "launch_ros": [],
             "launch_ros.actions": ["Node"], "launch_ros.parameter_descriptions": ["ParameterValue"]}
    for module_name, classes in kinds.items():
        module = types.ModuleType(module_name)
        for name in classes:
            setattr(module, name, type(name, (Recorded,), {}))
        monkeypatch.setitem(sys.modules, module_name, module)
    # a launch configuration's value at launch time: the FAKE context is a dict of argument values
    sys.modules["launch.substitutions"].LaunchConfiguration.perform = lambda self, context: context[self.args[0]]
    # the domain check probes DDS for seconds: here it only records the node names it was given
    checked: list[list[str]] = []
    monkeypatch.setattr("modem_ros.launcher.refuse_shared_domain", lambda names, env: checked.append(names))
    return checked


def built_actions(name: str, **values: str) -> list:
    """The launch file's actions, its OpaqueFunctions run with the arguments' defaults and `values`."""
    path = LAUNCH_DIR / f"{name}.launch.py"
    spec_ = importlib.util.spec_from_file_location(f"{name}_launch", path)
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    spec = LAUNCHES[name]
    modes = {MODE_ARGUMENT: spec.modes[0]} if spec.modes else {}
    context = {arg: a.default for arg, a in spec.arguments.items()} | modes | values
    actions = []
    for action in module.generate_launch_description().args[0]:
        is_opaque = type(action).__name__ == "OpaqueFunction"
        actions += action.kwargs["function"](context) if is_opaque else [action]
    return actions


def declared_parameters(node: str) -> set[str]:
    """Names a node declares: self.param("name", ...) in its file, plus the task-wide parameters
    (config.NODE_PARAMETERS) when it resolves its config through ModemNode.task_config(), and the
    safety limits when it declares one parameter per SafetyLimits field."""
    names = {"use_sim_time"}  # declared by rclpy itself
    source = (NODE_DIR / f"{node}.py").read_text()
    if "self.task_config()" in source:
        names |= set(NODE_PARAMETERS)
    if "fields(SafetyLimits)" in source:  # one parameter per safety limit (franka_bridge)
        names |= {f.name for f in fields(SafetyLimits)}
    for path in (NODE_DIR / f"{node}.py", NODE_DIR / "common.py"):
        for call in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "param"
                    and call.args):
                continue
            if isinstance(call.args[0], ast.Constant):
                names.add(call.args[0].value)
            elif isinstance(call.args[0], ast.Name) and isinstance(getattr(topics, call.args[0].id, None), str):
                names.add(getattr(topics, call.args[0].id))  # a name shared by several nodes (topics.NO_FRAME_PARAM)
    return names


@pytest.mark.parametrize("name", sorted(LAUNCHES))
def test_launch_file_builds_the_graph_of_graph_py(name, fake_launch):
    path = LAUNCH_DIR / f"{name}.launch.py"
    calls = [c for c in ast.walk(ast.parse(path.read_text())) if isinstance(c, ast.Call)
             and getattr(c.func, "id", "") == "build"]
    assert [c.args[0].value for c in calls] == [name]  # one build() of its own launch, nothing added
    actions = built_actions(name)
    spec = LAUNCHES[name]
    declared = {a.args[0]: a.kwargs["default_value"] for a in actions if type(a).__name__ == "DeclareLaunchArgument"}
    modes = {MODE_ARGUMENT: spec.modes[0]} if spec.modes else {}
    assert declared == {**{arg: a.default for arg, a in spec.arguments.items()}, **modes}
    nodes = [a for a in actions if type(a).__name__ == "Node"]
    assert [n.kwargs["name"] for n in nodes] == [n.name for n in spec.nodes]
    for node, built in zip(spec.nodes, nodes, strict=True):
        assert built.kwargs["arguments"] == ["-m", node.module]
        condition = built.kwargs["condition"]
        if node.modes:  # started only when mode:= names one of its modes
            expression = condition.args[0].args[0]
            assert expression[1].args[0] == MODE_ARGUMENT and expression[2] == f"' in {list(node.modes)}"
        else:
            assert condition is None
        params_file, fixed, overrides = built.kwargs["parameters"]
        assert Path(params_file) == share_dir() / "config" / spec.params_file
        assert fixed == dict(node.params) and set(fixed) <= declared_parameters(node.name)
        expected = {t.partition(".")[2]: arg for arg, a in spec.arguments.items() for t in a.targets
                    if t.partition(".")[0] == node.name}
        assert {p: v.args[0].args[0] for p, v in overrides.items()} == expected
        assert set(expected) <= declared_parameters(node.name), node.name


def test_actors_argument_starts_each_actor_node_once_per_namespace_with_its_seed(fake_launch):
    actions = built_actions("train_sim", actors="3", seed="7")
    nodes = [a for a in actions if type(a).__name__ == "Node"]
    actor_nodes = LAUNCHES["train_sim"].actor_nodes
    assert [(n.kwargs.get("namespace", ""), n.kwargs["name"]) for n in nodes] == [
        *((f"actor_{i}", name) for i in range(3) for name in actor_nodes), ("", "trainer")]
    file_params = yaml.safe_load((share_dir() / "config" / "train_sim.yaml").read_text())
    for node in nodes[:-1]:
        i = int(node.kwargs["namespace"].removeprefix("actor_"))
        own, _, overrides = node.kwargs["parameters"]
        # the file's section as a dict (its key names the node outside any namespace)
        assert own == {**file_params["/**"]["ros__parameters"],
                       **file_params[node.kwargs["name"]]["ros__parameters"]}
        if i:
            assert overrides["seed"] == 7 + i
        else:
            assert overrides["seed"].args[0].args[0] == "seed"  # actor 0 keeps the launch's seed
        remaps = dict(node.kwargs["remappings"])
        assert remaps["/clock"] == f"/actor_{i}/clock"  # each actor's bridge is its own sim clock
        assert remaps["modem/weights"] == "/modem/weights" and remaps["modem/checkpoint"] == "/modem/checkpoint"
    # the trainer is told how many actors to read
    assert nodes[-1].kwargs["parameters"][2]["actors"].args[0].args[0] == "actors"


def test_ros2_launch_first_refuses_a_domain_where_its_nodes_already_run(fake_launch):
    """The same check as `modem-ros launch`, on the nodes this launch will start (mode, actors)."""
    built_actions("train_sim", actors="2")
    assert fake_launch[-1] == ["/actor_0/sim_bridge", "/actor_1/sim_bridge", "/actor_0/camera", "/actor_1/camera",
                               "/actor_0/planner", "/actor_1/planner", "/trainer"]
    built_actions("record_demos", mode="hardware")
    assert "/franka_bridge" in fake_launch[-1] and "/sim_bridge" not in fake_launch[-1]
    actions = built_actions("deploy")
    assert [type(a).__name__ for a in actions].count("Node") > 0 and len(fake_launch) == 3
    # once checked, the nodes are told so (they would otherwise each probe the domain for their own name)
    checked = [i for i, a in enumerate(actions) if type(a).__name__ == "SetEnvironmentVariable"
               and a.args == ("MODEM_ROS_DOMAIN_CHECKED", "1")]
    assert checked and checked[0] < min(i for i, a in enumerate(actions) if type(a).__name__ == "Node")


@pytest.mark.parametrize("name", sorted(LAUNCHES))
def test_parameter_files_only_set_declared_parameters(name):
    spec = LAUNCHES[name]
    data = yaml.safe_load((share_dir() / "config" / spec.params_file).read_text())
    shared = set(data.pop("/**", {}).get("ros__parameters", {}))
    assert set(data) == {n.name for n in spec.nodes}
    # the wildcard section reaches every node, and a node ignores what it does not declare (the RealSense
    # driver has no task): each of its parameters must be one some node of the launch declares
    assert shared <= set().union(*(declared_parameters(n.name) for n in spec.nodes))
    for node in spec.nodes:
        params = set(data[node.name]["ros__parameters"])
        assert params <= declared_parameters(node.name), (node.name, params - declared_parameters(node.name))
