"""The node graph of every launch, as data: which nodes, their parameter file, remaps and the launch
arguments that set parameters. launch/*.launch.py (ROS 2 install) and `modem-ros launch` (pip) both
build their processes from here and add nothing."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from modem_ros import topics


@dataclass(frozen=True)
class NodeSpec:
    name: str                 # ROS node name; its ros__parameters live under this key in the params file
    module: str               # python module whose main() runs the node (`python -m <module>`)
    remaps: tuple[tuple[str, str], ...] = ()
    modes: tuple[str, ...] = ()  # the launch's modes (mode:=) this node runs in; empty = all of them
    params: tuple[tuple[str, object], ...] = ()  # fixed by this entry (per mode): over the YAML, under arguments


@dataclass(frozen=True)
class Argument:
    default: str
    description: str
    targets: tuple[str, ...]  # "node.parameter" entries this argument sets
    kind: type = str          # the parameters' type: str, int, float or bool


@dataclass(frozen=True)
class LaunchSpec:
    name: str
    description: str
    params_file: str          # under config/: node parameters, `<node>: ros__parameters: {...}`
    nodes: tuple[NodeSpec, ...]
    arguments: dict[str, Argument] = field(default_factory=dict)
    main_node: str = ""       # the node whose normal exit ends the launch (others are stopped then)
    modes: tuple[str, ...] = ()   # values of the mode:= argument (first = default); empty = no such argument
    actor_nodes: tuple[str, ...] = ()  # the nodes actors:=N starts once per actor, each in its own namespace

    def mode_nodes(self, mode: str) -> tuple[NodeSpec, ...]:
        return tuple(n for n in self.nodes if not n.modes or mode in n.modes)


SIM_BRIDGE = NodeSpec("sim_bridge", "modem_ros.nodes.sim_bridge")
TELEOP = NodeSpec("teleop", "modem_ros.nodes.teleop")
RECORDER = NodeSpec("recorder", "modem_ros.nodes.recorder")
MODE_ARGUMENT = "mode"  # selects a launch's node set (sim or hardware bridges); not a node parameter
CAMERA = NodeSpec("camera", "modem_ros.nodes.camera")
PLANNER = NodeSpec("planner", "modem_ros.nodes.planner")
TRAINER = NodeSpec("trainer", "modem_ros.nodes.trainer")
REALSENSE = NodeSpec("realsense_camera", "modem_ros.nodes.realsense_camera")
FRANKA_BRIDGE = NodeSpec("franka_bridge", "modem_ros.nodes.franka_bridge")
OPERATOR_VIEW = NodeSpec("operator_view", "modem_ros.nodes.operator_view")

_ALL = ("sim_bridge", "camera", "planner", "trainer")


def _everywhere(param: str, nodes: tuple[str, ...] = _ALL) -> tuple[str, ...]:
    return tuple(f"{node}.{param}" for node in nodes)


_TASK_ARGUMENTS = {
    "task": Argument("toy-reach", "Task (config/suites/*.yaml).", _everywhere("task")),
    "seed": Argument("1", "Seed of the env, the agent and the episode resets.", _everywhere("seed"), int),
    "preset": Argument("cpu-small", "Budget preset (config/presets); 'reference' = MoDem's full budget.",
                       _everywhere("preset")),
    "device": Argument("auto", "Torch device of planner and trainer: auto, cpu, cuda[:N].",
                       ("planner.device", "trainer.device")),
    "use_sim_time": Argument("true", "Nodes follow the sim bridge's /clock.",
                             _everywhere("use_sim_time", ("camera", "planner", "trainer")), bool),
}

# The hardware bridges' arguments, shared by deploy and record_demos mode:=hardware.
_HARDWARE_ARGUMENTS = {
    "robot_ip": Argument("", "The robot's FCI address (franky backend; required there).", ("franka_bridge.robot_ip",)),
    "backend": Argument("franky", "franky (direct FCI) or franka_ros2 (official driver's topics).",
                        ("franka_bridge.backend",)),
    "realtime": Argument("true", "franky: require a real-time kernel (false for franky-sim).",
                         ("franka_bridge.realtime",), bool),
    "serial": Argument("", "RealSense serial number; empty = the first camera found.", ("realsense_camera.serial",)),
    "playback_file": Argument("", "Play a recorded .db3 instead of a live camera (offline checks).",
                              ("realsense_camera.playback_file",)),
}
_INTERVENTION_DEVICE = Argument("keyboard", "Intervention device: keyboard (this terminal), gamepad, spacemouse.",
                                ("teleop.device",))
# Per mode: the sim bridge's /clock, or the wall clock on the robot.
_SIM_TIME = {"sim": {"use_sim_time": True}, "hardware": {"use_sim_time": False}}
# The camera relay per mode. sim: the bridge's frames one for one. hardware: best-effort from the
# RealSense, one frame per robot observation.
_CAMERA_PARAMS = {"sim": {**_SIM_TIME["sim"], "reliable": True, "sample_on_state": False},
                  "hardware": {**_SIM_TIME["hardware"], "reliable": False, "sample_on_state": True}}
# teleop driving alone: in sim it paces the lock-step at a person's rate; on hardware the bridge's control
# period paces, so it answers each observation at once (at its own 10 Hz, phase jitter would miss steps)
# In sim a person sets the lock-step's pace: SIM_TELEOP_RATE steps/s (a 50-step episode in 10 s; the data
# keeps the agent's 10 Hz sim clock), and the recorder's cadence report expects that pace.
SIM_TELEOP_RATE = 5.0
_TELEOP_PARAMS = {"sim": {**_SIM_TIME["sim"], "rate": SIM_TELEOP_RATE},
                  "hardware": {**_SIM_TIME["hardware"], "rate": 100.0, "robot": True}}
# The recorder gives up a start whose episode never began: in sim the bridge starts it within the reset
# call; a robot homes and approaches the start pose first (franka_bridge approach_timeout 30 s, plus homing).
_RECORDER_PARAMS = {"sim": {**_SIM_TIME["sim"], "target_rate": SIM_TELEOP_RATE, "start_timeout": 10.0},
                    "hardware": {**_SIM_TIME["hardware"], "start_timeout": 120.0, topics.NO_FRAME_PARAM: True}}


# Several actors (actors:=N > 1): actor i's bridge, camera and planner run in namespace actor_<i>, so their
# streams, /clock and episode events stay apart; the weights and announcements of the one trainer are shared.
ACTORS_ARGUMENT = "actors"
SHARED_TOPICS = (topics.WEIGHTS, topics.CHECKPOINT)


def actor_name(index: int, actors: int) -> str:
    """Actor `index`'s namespace: empty in the single-actor graph (the plain topic names)."""
    return f"actor_{index}" if actors > 1 else ""


@dataclass(frozen=True)
class ActorCopy:
    namespace: str                       # "" or actor_<i>
    seed_offset: int                     # added to the seed: each actor resets and samples differently
    remaps: tuple[tuple[str, str], ...]  # the node's own remaps, then the actor's


def actor_copies(node: NodeSpec, actors: int) -> tuple[ActorCopy, ...]:
    """How an actor node runs with `actors` actors: one plain copy for 1, else one per namespace."""
    if actors <= 1:
        return (ActorCopy("", 0, node.remaps),)
    copies = []
    for i in range(actors):
        ns = actor_name(i, actors)
        remaps = (("/clock", f"/{ns}/clock"), *((t, f"/{t}") for t in SHARED_TOPICS))
        copies.append(ActorCopy(ns, i, node.remaps + remaps))
    return tuple(copies)


def actor_topic(actor: str, topic: str) -> str:
    """Where the trainer (root namespace) reads actor `actor`'s stream `topic`."""
    return f"{actor}/{topic}" if actor else topic


def _per_mode(node: NodeSpec, params: dict[str, dict[str, object]]) -> tuple[NodeSpec, ...]:
    """One entry of `node` per mode, each with that mode's fixed parameters."""
    return tuple(replace(node, modes=(mode,), params=tuple(p.items())) for mode, p in params.items())


LAUNCHES: dict[str, LaunchSpec] = {
    "train_sim": LaunchSpec(
        name="train_sim",
        description="Train MoDem in simulation: sim bridge + camera + planner + trainer, lock-step.",
        params_file="train_sim.yaml",
        nodes=(SIM_BRIDGE, CAMERA, PLANNER, TRAINER),
        arguments={
            **_TASK_ARGUMENTS,
            "run_dir": Argument("", "Run directory; empty = runs/<task>-<time>. An existing one resumes.",
                                ("trainer.run_dir",)),
            "steps": Argument("0", "Agent steps to train; 0 = the preset's train_steps.", ("trainer.steps",), int),
            "demo_dir": Argument("", "Demonstrations; empty = generated by the task's expert on first use.",
                                 ("trainer.demo_dir",)),
            ACTORS_ARGUMENT: Argument("1", "Actor graphs (sim bridge + camera + planner) feeding the one trainer; "
                                      "N > 1 runs actor i in namespace actor_<i> with seed + i.",
                                      ("trainer.actors",), int),
        },
        main_node="trainer",
        actor_nodes=("sim_bridge", "camera", "planner"),
    ),
    "eval_sim": LaunchSpec(
        name="eval_sim",
        description="Evaluate a checkpoint in simulation: sim bridge + camera + planner, no exploration.",
        params_file="eval_sim.yaml",
        nodes=(SIM_BRIDGE, CAMERA, PLANNER),
        arguments={
            **{k: replace(a, targets=tuple(t for t in a.targets if not t.startswith("trainer.")))
               for k, a in _TASK_ARGUMENTS.items()},
            "checkpoint": Argument("", "Checkpoint file to evaluate (required).", ("planner.checkpoint",)),
            "episodes": Argument("10", "Evaluation episodes.", ("sim_bridge.max_episodes",), int),
            "results_file": Argument("", "JSON file for per-episode results and round-trip latencies.",
                                     ("sim_bridge.results_file",)),
        },
        main_node="sim_bridge",
    ),
    "record_demos": LaunchSpec(
        name="record_demos",
        description="Record teleoperated demonstrations: bridge + camera + teleop + recorder (rosbag2 per episode); "
                    "mode:=hardware records on a Franka + RealSense through the safety layer.",
        params_file="record_demos.yaml",
        nodes=(replace(SIM_BRIDGE, modes=("sim",)), replace(REALSENSE, modes=("hardware",)),
               replace(FRANKA_BRIDGE, modes=("hardware",)), *_per_mode(CAMERA, _CAMERA_PARAMS),
               *_per_mode(TELEOP, _TELEOP_PARAMS), *_per_mode(RECORDER, _RECORDER_PARAMS),
               replace(OPERATOR_VIEW, modes=("sim",), params=(("use_sim_time", True),))),
        arguments={
            # use_sim_time is the mode's (the nodes' entries above), not an argument
            **{k: replace(a, targets=tuple(t.replace("planner.", "teleop.").replace("trainer.", "recorder.")
                                           for t in a.targets) + (f"franka_bridge.{k}", f"operator_view.{k}"))
               for k, a in _TASK_ARGUMENTS.items() if k not in ("device", "use_sim_time")},
            **_HARDWARE_ARGUMENTS,
            "teleop_device": Argument("keyboard", "Input device: keyboard (this terminal), gamepad, spacemouse.",
                                      ("teleop.device",)),
            "teleop_rate": Argument(str(SIM_TELEOP_RATE), "Sim only: agent steps per second while you drive (the "
                                    "data keeps the 10 Hz sim clock; lower = more time per episode).",
                                    ("teleop.rate", "recorder.target_rate"), float),
            "view": Argument("true", "Sim only: a window with the camera view, the task's progress and your keys "
                             "(without a display the progress is logged instead).", ("operator_view.window",), bool),
            "dataset_dir": Argument("", "Dataset directory; empty = demos/<task> (demos/<task>-robot on hardware). "
                                    "An existing one is continued.",
                                    ("recorder.dataset_dir",)),
            "episodes": Argument("0", "Stop after saving this many episodes; 0 = until Ctrl-C.",
                                 ("recorder.episodes",), int),
            "operator": Argument("", "Stored in every episode's metadata.", ("recorder.operator",)),
            "notes": Argument("", "Stored in every episode's metadata.", ("recorder.notes",)),
        },
        main_node="recorder",
        modes=("sim", "hardware"),
    ),
    "train_robot": LaunchSpec(
        name="train_robot",
        description="Train MoDem on a Franka + RealSense: train_sim's planner, trainer and camera with the robot "
                    "bridges in place of the sim bridge; every command passes the safety layer, the teleop gate "
                    "lets an operator take over, and the trainer learns from what the bridge executed.",
        params_file="train_robot.yaml",
        nodes=(REALSENSE, replace(CAMERA, params=tuple(_CAMERA_PARAMS["hardware"].items())),
               replace(PLANNER, remaps=(("modem/action", "modem/planner/action"),),
                       params=(("use_sim_time", False), ("reliable", False), ("sync_weights", False))),
               # key n (the recorder's "start") starts the next episode at the bridge instead
               replace(TELEOP, remaps=(("modem/recorder/start", "modem/reset"),),
                       params=(("use_sim_time", False), ("robot", True))),
               FRANKA_BRIDGE, replace(TRAINER, params=(("use_sim_time", False), (topics.NO_FRAME_PARAM, True)))),
        arguments={
            **{k: replace(a, targets=tuple(t.replace("sim_bridge.", "franka_bridge.") for t in a.targets)
                          + (("teleop." + k,) if k in ("task", "preset") else ()))
               for k, a in _TASK_ARGUMENTS.items() if k != "use_sim_time"},
            "task": Argument("franka-reach", "Franka task (config/suites/franka.yaml).",
                             _everywhere("task", ("camera", "planner", "teleop", "franka_bridge", "trainer"))),
            **_HARDWARE_ARGUMENTS,
            "run_dir": Argument("", "Run directory; empty = runs/<task>-<time>. An existing one resumes.",
                                ("trainer.run_dir",)),
            "steps": Argument("0", "Agent steps to train; 0 = the preset's train_steps.", ("trainer.steps",), int),
            "demo_dir": Argument("", "Demonstrations (record them with record_demos mode:=hardware).",
                                 ("trainer.demo_dir",)),
            "wait_for_operator": Argument("false", "Before each episode wait for the operator (key n, or a "
                                          "modem/reset call) so the scene can be reset; false: home and go on.",
                                          ("franka_bridge.wait_for_operator",), bool),
            "reward_source": Argument("operator", "operator (key y marks success), goal (franka-reach: the TCP "
                                      "at `goal`) or classifier (a learned success detector, see classifier:=).",
                                      ("franka_bridge.reward_source",)),
            "classifier": Argument("", "reward_source classifier: the file `modem-ros classifier` wrote.",
                                   ("franka_bridge.classifier",)),
            "teleop_device": _INTERVENTION_DEVICE,
        },
        main_node="trainer",
    ),
    "deploy": LaunchSpec(
        name="deploy",
        description="Run a trained policy on a Franka: RealSense + camera + planner (checkpoint) + teleop gate "
                    "+ Franka bridge with the safety layer. mode:=sim rehearses it on the Franka cell: the same "
                    "graph, with the bridge driving the simulated arm in real time and publishing its camera.",
        params_file="deploy.yaml",
        nodes=(replace(REALSENSE, modes=("hardware",)),
               replace(CAMERA, params=tuple(_CAMERA_PARAMS["hardware"].items())),
               replace(PLANNER, remaps=(("modem/action", "modem/planner/action"),)),
               replace(TELEOP, params=(("robot", True),)),
               *_per_mode(FRANKA_BRIDGE, {"hardware": {"simulate": False},
                                          "sim": {"simulate": True, "reward_source": "sim"}})),
        arguments={
            "task": Argument("franka-reach", "Franka task the checkpoint was trained on (config/suites/franka.yaml).",
                             _everywhere("task", ("camera", "planner", "teleop", "franka_bridge"))),
            "preset": Argument("cpu-small", "Preset the checkpoint was trained with (sets the image size).",
                               _everywhere("preset", ("camera", "planner", "teleop", "franka_bridge"))),
            "seed": Argument("1", "Seed of the planner's sampling.", ("planner.seed",), int),
            "device": Argument("auto", "Torch device of the planner: auto, cpu, cuda[:N].", ("planner.device",)),
            "checkpoint": Argument("", "Checkpoint file to act with (required).", ("planner.checkpoint",)),
            **_HARDWARE_ARGUMENTS,
            "dry_run": Argument("false", "Compute and log every robot command without sending it.",
                                ("franka_bridge.dry_run",), bool),
            "episodes": Argument("1", "Episodes to run (each starts from home); 0 = until Ctrl-C.",
                                 ("franka_bridge.max_episodes",), int),
            "results_file": Argument("", "JSON rewritten after every episode: steps, executed policy actions, "
                                     "safety counts, observation -> action latency.", ("franka_bridge.results_file",)),
            "teleop_device": _INTERVENTION_DEVICE,
        },
        main_node="franka_bridge",
        modes=("hardware", "sim"),
    ),
}

# Arguments of `modem-ros launch` itself (not node parameters), accepted by every launch:
NODES_ARGUMENT = "nodes"  # comma-separated subset of the graph's nodes to start (multi-machine)
PARAMS_FILE_ARGUMENT = "params_file"  # a node-parameter YAML used instead of config/<launch>.yaml


def launch_spec(name: str) -> LaunchSpec:
    if name not in LAUNCHES:
        raise KeyError(f"unknown launch '{name}'; known: {', '.join(LAUNCHES)}")
    return LAUNCHES[name]
