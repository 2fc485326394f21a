"""`modem-ros launch <name> key:=value ...`: the graph of modem_ros/graph.py as supervised processes.

Without a ROS 2 distro there is no `ros2 launch`; this starts the same nodes with the same parameter
files (`--ros-args --params-file`), prefixes their output, and stops all of them when one exits or on
Ctrl-C/SIGTERM: SIGINT to each process group, SIGTERM after a grace period, SIGKILL last. Children
also get SIGTERM if the launcher itself dies (PR_SET_PDEATHSIG), so nothing is left orphaned.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modem_ros.announce import MAX_ACTORS, run_id_of
from modem_ros.config import ConfigError, load_node_config
from modem_ros.graph import (
    ACTORS_ARGUMENT,
    MODE_ARGUMENT,
    NODES_ARGUMENT,
    PARAMS_FILE_ARGUMENT,
    Argument,
    LaunchSpec,
    NodeSpec,
    actor_copies,
    launch_spec,
)
from modem_ros.paths import config_dir, default_dataset_dir, default_run_dir

WILDCARD = "/**"
PR_SET_PDEATHSIG = 1


def parse_arguments(spec: LaunchSpec, items: list[str]) -> dict[str, str]:
    """`key:=value` items -> values for every argument of the launch (defaults filled in)."""
    values = {name: arg.default for name, arg in spec.arguments.items()}
    values[NODES_ARGUMENT] = ""  # empty: every node of the mode
    values[PARAMS_FILE_ARGUMENT] = ""
    if spec.modes:
        values[MODE_ARGUMENT] = spec.modes[0]
    for item in items:
        key, sep, value = item.partition(":=")
        if not sep:
            raise ConfigError(f"launch argument '{item}' is not of the form name:=value")
        if key not in values:
            raise ConfigError(f"unknown argument '{key}' for launch {spec.name}; known: {', '.join(sorted(values))}")
        values[key] = value
    if spec.modes and values[MODE_ARGUMENT] not in spec.modes:
        raise ConfigError(f"mode:={values[MODE_ARGUMENT]} is not one of {', '.join(spec.modes)}")
    return values


def _typed(name: str, arg: Argument, text: str) -> Any:
    """A launch argument's text as its parameters' type; a clear error naming the argument if not."""
    if arg.kind is bool and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if arg.kind in (int, float):
        with contextlib.suppress(ValueError):
            value = arg.kind(text)
            if arg.kind is int or math.isfinite(value):
                return value
    if arg.kind is str:
        return text
    raise ConfigError(f"launch argument {name}:={text!r} must be {arg.kind.__name__}")


def given_arguments(items: list[str]) -> set[str]:
    """The launch arguments named on the command line (not their defaults)."""
    return {item.partition(":=")[0] for item in items}


def node_parameters(spec: LaunchSpec, values: dict[str, str], given: set[str] | None = None) -> dict[str, dict]:
    """Every node's parameters: the launch's YAML (wildcard section expanded), then what the graph fixes
    for the node in this mode, then the arguments. An argument's default fills only what the YAML
    leaves unset; an argument `given` on the command line overrides it (None: every argument does)."""
    path = Path(values.get(PARAMS_FILE_ARGUMENT) or config_dir() / spec.params_file)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read node parameters: {err}") from err
    names = [node.name for node in spec.nodes]
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected '<node>: ros__parameters: {{...}}' sections, got {type(data).__name__}")
    for key, section in data.items():
        if key != WILDCARD and key not in names:
            raise ConfigError(f"{path}: section '{key}' is not a node of {spec.name} ({', '.join(names)})")
        if not isinstance(section, dict) or set(section) != {"ros__parameters"} or not isinstance(
                section["ros__parameters"], dict):
            raise ConfigError(f"{path}: section '{key}' must hold exactly one mapping, 'ros__parameters'")
    shared = (data.get(WILDCARD) or {}).get("ros__parameters", {})
    params = {name: {**shared, **(data.get(name) or {}).get("ros__parameters", {})} for name in names}
    for node in spec.mode_nodes(values.get(MODE_ARGUMENT, "")):
        params[node.name].update(node.params)
    for arg_name, arg in spec.arguments.items():
        for target in arg.targets:
            node, _, param = target.partition(".")
            if given is None or arg_name in given or param not in params[node]:
                params[node][param] = _typed(arg_name, arg, values[arg_name])
    return params


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    thread: threading.Thread


def die_with_parent() -> None:
    """preexec_fn of every child: it dies with its parent (PR_SET_PDEATHSIG), whatever ends the parent."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the process-group stop still applies
        ctypes.CDLL("libc.so.6").prctl(PR_SET_PDEATHSIG, signal.SIGTERM)



def ros_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Discovery on this host only unless the user chose otherwise; our Fast DDS profile for large images
    (sockets on loopback only, or on every interface when discovery is opened to the subnet)."""
    env = dict(os.environ if base is None else base)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    # loopback-only sockets unless the user opened discovery to other hosts
    profile = "fastdds.xml" if env["ROS_AUTOMATIC_DISCOVERY_RANGE"] in ("LOCALHOST", "OFF") else "fastdds_multihost.xml"
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(config_dir() / profile))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Supervisor:
    def __init__(self, log_dir: Path | None = None, out=sys.stdout, grace: float = 5.0):
        self.children: list[Child] = []
        self.log_dir, self.out, self.grace = log_dir, out, grace
        self.lock = threading.Lock()
        self.width = 10  # prefix column: the longest node name

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True, preexec_fn=die_with_parent)
        thread = threading.Thread(target=self._pump, args=(name, process), daemon=True)
        thread.start()
        self.children.append(Child(name, process, thread))

    def _pump(self, name: str, process: subprocess.Popen) -> None:
        log = (self.log_dir / f"{name}.log").open("a") if self.log_dir else None
        prefix = f"[{name}]".ljust(self.width + 2)
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            with self.lock:
                self.out.write(f"{prefix} {line}\n")
                self.out.flush()
            if log:
                log.write(line + "\n")
                log.flush()
        if log:
            log.close()

    def wait(self) -> tuple[str, int]:
        """Block until a child exits (name, code) or a signal arrives (KeyboardInterrupt)."""
        while True:
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    return child.name, code
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGINT every process group, then SIGTERM, then SIGKILL; returns when all are gone."""
        for sig, timeout in ((signal.SIGINT, self.grace), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            alive = [c for c in self.children if c.process.poll() is None]
            if not alive:
                break
            if sig != signal.SIGINT:
                self.out.write(f"[launch] {', '.join(c.name for c in alive)} still running; sending {sig.name}\n")
                self.out.flush()
            for child in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, sig)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and any(c.process.poll() is None for c in alive):
                time.sleep(0.05)
        for child in self.children:  # a grandchild may still hold the pipe; don't wait on it forever
            child.thread.join(timeout=1.0)


# Set in the environment of nodes a launcher starts after refuse_shared_domain checked the whole graph
# (a node started by hand checks its own name instead).
DOMAIN_CHECKED = "MODEM_ROS_DOMAIN_CHECKED"
DISCOVERY_WAIT = 4.0  # seconds to look for a graph already on the domain (first discovery ~2.5 s here)


def nodes_already_running(names: list[str], env: dict[str, str], wait: float = DISCOVERY_WAIT) -> list[str]:
    """Those of `names` that some process already runs on this ROS domain (empty without rclpy)."""
    probe = subprocess.run([sys.executable, "-m", "modem_ros.domain_probe", str(wait), *names], env=env,
                           capture_output=True, text=True, timeout=wait + 120)
    if probe.returncode != 0:
        return []
    return json.loads(probe.stdout.strip().splitlines()[-1])


def refuse_shared_domain(names: list[str], env: dict[str, str]) -> None:
    """Two graphs of ours on one domain silently mix their streams and weights: refuse to start a node
    whose name is taken. Nodes split across launches (trainer here, robot side there) keep working."""
    taken = nodes_already_running(names, env)
    if taken:
        domain = env.get("ROS_DOMAIN_ID", "0")
        other = (int(domain) + 1) % 102 if domain.isdigit() else 1
        raise ConfigError(f"another graph already runs {', '.join(taken)} on ROS_DOMAIN_ID={domain}; its "
                          f"streams and weights would mix with this one. Stop it, or start this graph on "
                          f"another domain, e.g. ROS_DOMAIN_ID={other} modem-ros launch ...")


@dataclass(frozen=True)
class Process:
    """One node process of a launch: a graph node, or one actor's copy of it."""

    node: NodeSpec
    namespace: str = ""
    remaps: tuple[tuple[str, str], ...] = ()
    params: dict[str, Any] | None = None

    @property
    def label(self) -> str:  # output prefix and log file name
        return f"{self.namespace}.{self.node.name}" if self.namespace else self.node.name

    @property
    def fqn(self) -> str:  # its fully qualified ROS name
        return f"/{self.namespace}/{self.node.name}" if self.namespace else f"/{self.node.name}"

    @property
    def section(self) -> str:  # its key in the parameter file: the fully qualified name inside a namespace
        return self.fqn if self.namespace else self.node.name


def actor_count(spec: LaunchSpec, params: dict[str, dict]) -> int:
    if not spec.actor_nodes:
        return 1
    actors = params["trainer"].get(ACTORS_ARGUMENT, 1)
    if isinstance(actors, bool) or not isinstance(actors, int) or not 1 <= actors <= MAX_ACTORS:
        raise ConfigError(f"{ACTORS_ARGUMENT}:={actors!r} must be an integer from 1 to {MAX_ACTORS}")
    return actors


def processes(spec: LaunchSpec, nodes: list[NodeSpec], params: dict[str, dict]) -> list[Process]:
    """The processes to start: each node once, an actor node once per actor (its namespace, its seed)."""
    actors = actor_count(spec, params)
    out = []
    for node in nodes:
        if node.name not in spec.actor_nodes:
            out.append(Process(node, "", node.remaps, params[node.name]))
            continue
        for copy in actor_copies(node, actors):
            own = dict(params[node.name])
            if copy.seed_offset and "seed" in own:
                own["seed"] = int(own["seed"]) + copy.seed_offset
            out.append(Process(node, copy.namespace, copy.remaps, own))
    return out


class _QuotedStrings(yaml.SafeDumper):
    """Every string quoted: rcl's parameter parser reads an unquoted scalar as a number where strtod can (a run
    id such as 23765864795e0 became a DOUBLE and the trainer refused it); a quoted one is always a string."""


_QuotedStrings.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style='"'))


def ros_params_yaml(params: dict) -> str:
    """A ROS 2 parameter file's text in which each value keeps its Python type under rcl's parser."""
    return yaml.dump(params, Dumper=_QuotedStrings, sort_keys=False)


def node_command(module: str, name: str, params_file: Path, remaps=(), namespace: str = "") -> list[str]:
    command = [sys.executable, "-m", module, "--ros-args", "-r", f"__node:={name}", "--params-file", str(params_file)]
    if namespace:
        command += ["-r", f"__ns:=/{namespace}"]
    for src, dst in remaps:
        command += ["-r", f"{src}:={dst}"]
    return command


def prepare(name: str, items: list[str]) -> tuple[LaunchSpec, list[NodeSpec], dict[str, dict], Path]:
    """Resolve and check everything before a process starts: unknown task, argument or malformed file
    fail here with one message. Returns the spec, the nodes to start (this mode's entries, in graph
    order), node parameters and launch dir."""
    spec = launch_spec(name)
    values = parse_arguments(spec, items)
    params = node_parameters(spec, values, given_arguments(items))
    mode_nodes = spec.mode_nodes(values.get(MODE_ARGUMENT, ""))
    in_mode = [n.name for n in mode_nodes]
    wanted = [n for n in values[NODES_ARGUMENT].split(",") if n] or in_mode
    unknown = set(wanted) - set(in_mode)
    if unknown:
        raise ConfigError(f"nodes:= names {sorted(unknown)}, not nodes of {name}"
                          + (f" in mode {values[MODE_ARGUMENT]}" if spec.modes else ""))
    configs = {node: load_node_config(params[node]) for node in wanted}  # what each node will resolve
    if "franka_bridge" in configs and configs["franka_bridge"].suite != "franka":
        raise ConfigError(f"{name} on the robot needs a Franka task (franka-reach, franka-push, franka-pick-place), "
                          f"not task:={configs['franka_bridge'].task}")
    if "trainer" in wanted:
        if not params["trainer"].get("run_dir"):
            params["trainer"]["run_dir"] = str(default_run_dir(configs["trainer"].task))
        launch_dir = Path(params["trainer"]["run_dir"]) / "launch"
    else:
        launch_dir = Path("runs") / "launch" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    if name == "train_robot" and "trainer" in wanted and not params["trainer"].get("demo_dir"):
        robot_demos = default_dataset_dir(configs["trainer"].task, robot=True)
        if not Path(robot_demos).is_dir():
            raise ConfigError(f"train_robot needs demonstrations recorded on the robot: record them with "
                              f"`modem-ros launch record_demos mode:=hardware task:={configs['trainer'].task}` "
                              f"(into {robot_demos}) or pass demo_dir:=")
        params["trainer"]["demo_dir"] = str(robot_demos)
    if values.get(MODE_ARGUMENT) == "hardware" and "teleop_rate" in given_arguments(items):
        raise ConfigError("teleop_rate:= paces sim recording; on the robot the bridge's control period paces")
    if "recorder" in wanted and not params["recorder"].get("dataset_dir"):
        params["recorder"]["dataset_dir"] = str(default_dataset_dir(configs["recorder"].task,
                                                                    robot="franka_bridge" in in_mode))
    if name == "eval_sim" and "planner" in wanted and not params["planner"].get("checkpoint"):
        raise ConfigError("eval_sim needs checkpoint:=<path to a .pt file>")
    return spec, [n for n in mode_nodes if n.name in wanted], params, launch_dir


def launch(name: str, items: list[str], out=sys.stdout) -> int:
    spec, nodes, params, launch_dir = prepare(name, items)
    wanted = [node.name for node in nodes]
    if "trainer" in wanted:  # one identity for the run: the planner loads only its trainer's weights
        params["trainer"]["run_id"] = run_id_of(Path(params["trainer"]["run_dir"]))
        if "planner" in wanted:
            params["planner"]["run_id"] = params["trainer"]["run_id"]
    procs = processes(spec, nodes, params)
    launch_dir.mkdir(parents=True, exist_ok=True)
    params_file = launch_dir / f"{name}.params.yaml"  # the exact parameters of this run, a snapshot
    params_file.write_text(ros_params_yaml({p.section: {"ros__parameters": p.params} for p in procs}))
    env = ros_environment()
    refuse_shared_domain([p.fqn for p in procs], env)
    env[DOMAIN_CHECKED] = "1"
    if sys.stdin.isatty():  # nodes run in their own sessions: tell the teleop node which terminal is ours
        env.setdefault("MODEM_ROS_TTY", os.ttyname(sys.stdin.fileno()))
    supervisor = Supervisor(log_dir=launch_dir, out=out)
    supervisor.width = max(10, *(len(p.label) for p in procs))
    out.write(f"[launch] {name}: {', '.join(p.label for p in procs)}; parameters {params_file}; "
              f"ROS_DOMAIN_ID={env.get('ROS_DOMAIN_ID', '0')} discovery {env['ROS_AUTOMATIC_DISCOVERY_RANGE']}\n")
    out.flush()
    # Ctrl-C and SIGTERM both stop the graph (SIGINT set explicitly: a background start may inherit it ignored).
    # Only the first one interrupts: another while stopping (Ctrl-C twice, `timeout`) must not abort the stop,
    # or nodes would be left running in their own sessions and the trainer cut off while it saves.
    stopping = False

    def interrupt(*_):
        if stopping:
            out.write(f"[launch] already stopping: nodes get {supervisor.grace:.0f} s to save, then SIGTERM, "
                      "then SIGKILL\n")
            out.flush()
            return
        raise KeyboardInterrupt

    previous_int = signal.signal(signal.SIGINT, interrupt)
    previous = signal.signal(signal.SIGTERM, interrupt)
    code = 0
    try:
        for proc in procs:
            supervisor.start(proc.label, node_command(proc.node.module, proc.node.name, params_file, proc.remaps,
                                                      proc.namespace), env)
        ended, code = supervisor.wait()
        stopping = True
        if ended == spec.main_node and code == 0:
            out.write(f"[launch] {ended} finished; stopping the others\n")
        else:
            out.write(f"[launch] {ended} exited with code {code}; stopping the others\n")
            code = code or 1  # a node that should run until stopped has ended: that is a failure
    except KeyboardInterrupt:
        stopping = True
        out.write("[launch] interrupted; stopping all nodes\n")
        code = 130
    finally:
        stopping = True
        out.flush()
        supervisor.stop()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    return code
