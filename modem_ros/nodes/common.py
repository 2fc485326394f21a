"""What every node shares: parameter declaration with descriptions, QoS profiles, message <-> numpy,
the task configuration, and a main() that turns setup errors into one clear line and exit code 2."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float32MultiArray, MultiArrayDimension, String

from modem_ros import topics
from modem_ros.config import NODE_PARAMETERS, ConfigError, ModemConfig, load_node_config
from modem_ros.images import is_no_frame
from modem_ros.launcher import DOMAIN_CHECKED, nodes_already_running
from modem_ros.robots.arm import FINGER_NAMES, JOINT_NAMES, ArmState
from modem_ros.robots.safety import ArmCommand
from modem_ros.weights import MAX_CHUNKS

# Lock-step streams (sim, and everything the trainer learns from): nothing may be lost or reordered,
# a whole episode may queue while the trainer updates (1024 > the longest episode + 1), and a node that
# joins late (the trainer imports torch for seconds) still gets the episode from its first message.
STREAM = QoSProfile(reliability=ReliabilityPolicy[topics.STREAM_QOS["reliability"].upper()],
                    history=HistoryPolicy[topics.STREAM_QOS["history"].upper()], depth=topics.STREAM_QOS["depth"],
                    durability=DurabilityPolicy[topics.STREAM_QOS["durability"].upper()])
# A consumer of a stream published either way (STREAM in sim, plain reliable on hardware, e.g. the planner
# with reliable:=false): reliable + volatile matches both; it only forgoes a late joiner's history.
FOLLOW = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=1024,
                    durability=DurabilityPolicy.VOLATILE)
# Camera frames on hardware: the newest frame matters, a late one is useless (consumer side).
SENSOR = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST, depth=1)
# Weights as chunks (modem_ros/weights.py): reliable, and the newest set kept for a planner that joins late.
WEIGHTS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                     depth=MAX_CHUNKS, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Announcements a late joiner must still get (the latest checkpoint).
LATCHED = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=1,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


class NodeSetupError(RuntimeError):
    """A node cannot start with its parameters (the message says which and why)."""


class ModemNode(Node):
    """A Node with described parameters and the task configuration every modem_ros node shares."""

    NAME = ""  # the node's ROS name before remapping (each node sets it; run_node checks the domain for it)

    def param(self, name: str, default: Any, description: str) -> Any:
        return self.declare_parameter(name, default, ParameterDescriptor(description=description)).value

    def task_config(self) -> ModemConfig:
        """The MoDem config from the task/preset/seed/config_overrides parameters (one source of truth:
        config/suites + config/presets, exactly as `modem-ros train` resolves it)."""
        params = {name: self.param(name, default, doc) for name, (default, doc) in NODE_PARAMETERS.items()}
        try:
            return load_node_config(params)
        except ConfigError as err:
            raise NodeSetupError(f"parameters task/preset/config_overrides: {err}") from err

    def stream_qos(self, reliable: bool) -> QoSProfile:
        return STREAM if reliable else SENSOR


def pose_msg(state: ArmState | ArmCommand, stamp, frame_id: str = topics.BASE_FRAME) -> PoseStamped:
    """A TCP pose (measured, or a target) in the robot base frame (REP-103): what both Franka bridges
    publish on EE_POSE, and the franka_ros2 backend's Cartesian target."""
    msg = PoseStamped()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in state.position)
    q = msg.pose.orientation
    q.x, q.y, q.z, q.w = (float(v) for v in state.quaternion)
    return msg


def joint_state_msg(state: ArmState, stamp) -> JointState:
    """Arm joints + both fingers (half the opening each), as franka_ros2's joint_states names them."""
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = [*JOINT_NAMES, *FINGER_NAMES]
    msg.position = [float(v) for v in state.joints] + [state.gripper_width / 2.0] * 2
    return msg


def image_msg(frame_hwc: np.ndarray, stamp, frame_id: str) -> Image:
    msg = Image()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.height, msg.width = frame_hwc.shape[:2]
    msg.encoding, msg.is_bigendian, msg.step = "rgb8", 0, frame_hwc.shape[1] * 3
    msg.data = np.ascontiguousarray(frame_hwc, np.uint8).tobytes()  # bytes: 1000x faster than an ndarray
    return msg


def camera_info(size: int, fovy_deg: float, stamp, frame_id: str, width: int | None = None) -> CameraInfo:
    """Pinhole intrinsics of a MuJoCo camera rendered `size` pixels high and `width` (default `size`) wide:
    square pixels, MuJoCo's vertical field of view, centred principal point."""
    width = width or size
    f = 0.5 * size / math.tan(math.radians(fovy_deg) / 2)
    cx, cy = (width - 1) / 2, (size - 1) / 2
    msg = CameraInfo()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.height, msg.width = size, width
    msg.distortion_model, msg.d = "plumb_bob", [0.0] * 5
    msg.k = [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


class NoFrame(ValueError):
    """The camera's placeholder for an observation it had no fresh frame for (see no_frame_msg)."""


def no_frame_msg(stamp, frame_id: str) -> Image:
    """An empty rgb8 image (0 x 0, no data) on IMAGE in place of a frame the camera did not have: every
    observation still gets exactly one IMAGE message, so consumers that pair streams by counting stay
    paired, and the episode holding it is known to miss a frame (stored or trained on by none)."""
    msg = Image()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.encoding, msg.is_bigendian = "rgb8", 0
    return msg


# Where a placeholder is legitimate: behind a camera that samples on the robot's state (hardware graphs). In
# sim the camera relays the bridge's frames one for one and never sends one, so there it is refused like any
# malformed image: a forged placeholder would otherwise count as a frame and stall or shift the lock-step.
NO_FRAME_PARAM = topics.NO_FRAME_PARAM
NO_FRAME_DOC = ("Accept the camera's no-frame placeholder (an empty image for an observation it had no fresh frame "
                "for: hardware graphs); false (sim): refuse one as a malformed image.")


def image_array(msg: Image, size: int | None = None) -> np.ndarray:
    """rgb8 Image -> uint8 [H, W, 3] (zero-copy); NoFrame for the camera's no-frame placeholder,
    ValueError naming what is wrong otherwise."""
    if is_no_frame(msg):
        raise NoFrame("no fresh camera frame for this observation (the camera's empty placeholder)")
    if msg.encoding != "rgb8":
        raise ValueError(f"image encoding is '{msg.encoding}', expected 'rgb8'")
    if len(msg.data) != msg.height * msg.width * 3 or msg.step != msg.width * 3:
        raise ValueError(f"image {msg.width}x{msg.height} has {len(msg.data)} bytes and step {msg.step}")
    if size is not None and (msg.height, msg.width) != (size, size):
        raise ValueError(f"image is {msg.width}x{msg.height}, expected {size}x{size}")
    return np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)


def array_msg(values: np.ndarray) -> Float32MultiArray:
    return Float32MultiArray(data=np.asarray(values, np.float32).tolist())


def state_msg(values: np.ndarray, step: int) -> Float32MultiArray:
    """A STATE observation labelled with its step in the episode (topics.STEP_LABEL); the layout stays a
    valid 1-D one (size = stride = length), so generic tools still read the values."""
    msg = array_msg(values)
    msg.layout.dim = [MultiArrayDimension(label=f"{topics.STEP_LABEL}={int(step)}", size=len(msg.data),
                                          stride=len(msg.data))]
    return msg


def episode_step(msg: Float32MultiArray) -> int | None:
    """A STATE message's step in its episode (see state_msg); None when it carries no valid label (a bag
    recorded before the label, another publisher, a malformed one): the consumer then counts."""
    prefix = f"{topics.STEP_LABEL}="
    if not msg.layout.dim or not msg.layout.dim[0].label.startswith(prefix):
        return None
    text = msg.layout.dim[0].label[len(prefix):]
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


def operator_action_msg(values: np.ndarray) -> Float32MultiArray:
    """An ACTION a teleop device drove, labelled as such in its layout (topics.OPERATOR_ACTION_LABEL): the
    engaged state reaches the bridge in the same message as the action, never a step early or late."""
    msg = array_msg(values)
    msg.layout.dim = [MultiArrayDimension(label=topics.OPERATOR_ACTION_LABEL, size=len(msg.data),
                                          stride=len(msg.data))]
    return msg


def operator_driven(msg: Float32MultiArray) -> bool:
    """Whether an ACTION message is an operator's (see operator_action_msg); unlabelled = the planner's."""
    return bool(msg.layout.dim) and msg.layout.dim[0].label == topics.OPERATOR_ACTION_LABEL


def json_msg(payload: dict[str, Any]) -> String:
    return String(data=json.dumps(payload))


def round_trip_summary(seconds: list[float]) -> dict[str, float]:
    """Observation -> action round trips as the bridges' results files report them (milliseconds)."""
    ms = 1000 * np.asarray(seconds)
    if not ms.size:
        return {"n": 0}
    return {"median": float(np.median(ms)), "p95": float(np.percentile(ms, 95)), "n": int(ms.size)}


def write_results(path: str, payload: dict[str, Any]) -> None:
    """A bridge's results JSON, written atomically: a kill mid-write leaves the previous file whole."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(target)


def _already_running(base_name: str) -> str:
    """Started by hand (`ros2 run`, `python -m`), not by a launcher that checked its whole graph: refuse
    when a node of this name already runs on the domain — a second planner would load the other run's
    weights and drive its bridge. Returns the reason, or "" when the name is free (or checked)."""
    if os.environ.get(DOMAIN_CHECKED) or not base_name:
        return ""
    # the name after this process's remaps (-r __ns:=/actor_1, -r __node:=...): a throwaway node resolves
    # it; without parameter services it answers no probe, so it cannot be mistaken for the other one
    resolver = rclpy.create_node(base_name, start_parameter_services=False, enable_rosout=False)
    fqn = resolver.get_fully_qualified_name()
    resolver.destroy_node()
    if not nodes_already_running([fqn], dict(os.environ)):
        return ""
    domain = os.environ.get("ROS_DOMAIN_ID", "0")
    return (f"{fqn} already runs on ROS_DOMAIN_ID={domain}; two would mix their streams and weights. Stop it, "
            f"start this one in another namespace (--ros-args -r __ns:=/name) or on another ROS_DOMAIN_ID")


_stop = threading.Event()  # a stop signal arrived while the node was spinning
_in_spin = False


def spin_once(node: Node, timeout_sec: float) -> None:
    """rclpy.spin_once that a stop signal never cuts in half: a signal inside it only asks the node's loop
    to end (keep_spinning() turns False). A KeyboardInterrupt raised there could land inside rclpy's
    Task constructor and leave a half-built Task whose __del__ prints a traceback at exit."""
    global _in_spin
    _in_spin = True
    try:
        rclpy.spin_once(node, timeout_sec=timeout_sec)
    finally:
        _in_spin = False


def keep_spinning() -> bool:
    """Whether a node's loop goes on: the context is up and no stop signal has arrived."""
    return rclpy.ok() and not _stop.is_set()


def stop_requested() -> bool:
    return _stop.is_set()


def _on_stop_signal(signum, frame) -> None:
    if _in_spin and not _stop.is_set():
        _stop.set()  # the loop ends after this spin (<= 0.1 s): a clean stop between callbacks
        return
    raise KeyboardInterrupt  # outside rclpy (a trainer's update burst), or a second signal: stop now


def install_stop_signals() -> None:
    """Ctrl-C and SIGTERM stop a node the same way: between callbacks while it spins, at once elsewhere.
    Set explicitly: a process started in the background by a non-interactive shell inherits SIGINT ignored."""
    signal.signal(signal.SIGINT, _on_stop_signal)
    signal.signal(signal.SIGTERM, _on_stop_signal)


def run_node(node_class: type[Node], args: list[str] | None = None) -> int:
    """rclpy.init, build the node, spin until shutdown. A bad parameter file or value prints one line
    naming it and exits 2 before anything runs; Ctrl-C / SIGTERM shut down cleanly (exit 0)."""
    name = node_class.__name__
    # Our own handler instead of rclpy's: the latter only stops spinning, and a trainer in a minutes-long
    # update burst would not notice (it gets KeyboardInterrupt; checkpoints are atomic, so that is safe).
    install_stop_signals()
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except Exception as err:  # noqa: BLE001 - rcl reports a malformed --params-file as a generic error
        print(f"[{name}] cannot start: {err}", file=sys.stderr, flush=True)
        return 2
    node = None
    code = 0
    try:
        taken = _already_running(node_class.NAME)
        if taken:
            print(f"[{name}] cannot start: {taken}", file=sys.stderr, flush=True)
            return 2
        node = node_class()
        if hasattr(node, "run"):
            node.run()
        else:  # short waits, not rclpy.spin: Python only raises KeyboardInterrupt between waits
            while keep_spinning():
                spin_once(node, timeout_sec=0.1)
    except (NodeSetupError, ConfigError, ParameterException) as err:
        print(f"[{name}] cannot start: {err}", file=sys.stderr, flush=True)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        code = 0
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code
