"""Demonstration episodes as rosbag2 directories (metadata.yaml + MCAP), written with `rosbags`.

One bag per episode, with the topics and message types of the ROS graph (modem_ros.topics), so
`ros2 bag info/play` and Foxglove open them: topic names absolute (/modem/image), each topic's offered
QoS the graph's (so `ros2 bag play` reaches our transient-local readers), bag time the wall clock at
recording, ros_distro the distro the writer ran under, and a CRC on every MCAP chunk. One clock per
episode: step t is at t * topics.AGENT_PERIOD (10 Hz) in bag time from the recording's start and in the
headers' stamps from the episode's start. Step t publishes the observation (image + state), then the
action taken; reward and success arrive with the next observation. Images hold single frames; the
loader rebuilds frame stacks exactly as the env adapters do (first frame repeated at reset).

A bag becomes visible under its final name only once complete (written to a hidden temp directory,
then renamed), so an interrupted writer never leaves a half episode that looks whole.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from modem_ros import topics
from modem_ros.data.episode import Episode
from modem_ros.envs.base import FrameStack
from modem_ros.images import is_no_frame

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
STEP_NS = round(topics.AGENT_PERIOD * 1e9)  # one agent step in bag and header time
_ZERO = QosTime(0, 0)
STREAM_QOS = Qos(history=QosHistory[topics.STREAM_QOS["history"].upper()], depth=topics.STREAM_QOS["depth"],
                 reliability=QosReliability[topics.STREAM_QOS["reliability"].upper()],
                 durability=QosDurability[topics.STREAM_QOS["durability"].upper()], deadline=_ZERO,
                 lifespan=_ZERO, liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=_ZERO,
                 avoid_ros_namespace_conventions=False)


def bag_topic(name: str) -> str:
    """The graph's (relative) topic name as a ROS 2 bag names it: absolute."""
    return "/" + name.lstrip("/")
T = TYPESTORE.types


class DemoError(ValueError):
    """A demo bag is missing, truncated, corrupt or inconsistent; the message names the path."""


@dataclass
class DemoBag:
    path: Path
    episode: Episode
    meta: dict[str, Any]


def _stamp(ns: int):
    return T["builtin_interfaces/msg/Time"](sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _array(values: np.ndarray):
    layout = T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    return T["std_msgs/msg/Float32MultiArray"](layout=layout, data=np.asarray(values, np.float32))


def _image(frame: np.ndarray, ns: int):
    """frame: uint8 [3, H, W] (channels first, as the agent sees it) -> rgb8 Image."""
    hwc = np.ascontiguousarray(frame.transpose(1, 2, 0))
    header = T["std_msgs/msg/Header"](stamp=_stamp(ns), frame_id=topics.CAMERA_FRAME)
    return T["sensor_msgs/msg/Image"](header=header, height=hwc.shape[0], width=hwc.shape[1], encoding="rgb8",
                                      is_bigendian=0, step=hwc.shape[1] * 3, data=hwc.reshape(-1))


def write_episode(episode: Episode, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write one episode as a rosbag2 directory at `path` (must not exist). Returns the path."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; demo bags are never overwritten")
    arrays = episode.arrays()  # fails on malformed episodes before anything touches the disk
    staging = path.with_name(f".staging-{path.name}-{os.getpid()}")  # hidden: not an episode yet
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    tmp = staging / path.name  # the bag's files take their final names from this directory
    writer = Writer(tmp, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    try:
        conn = {name: writer.add_connection(bag_topic(name), topics.TYPES[name], typestore=TYPESTORE,
                                            offered_qos_profiles=[STREAM_QOS])
                for name in topics.BAG_TOPICS}
        start_ns = time.time_ns()  # bag time: the wall clock at recording (headers keep episode time)

        def put(topic, msg, ns):
            writer.write(conn[topic], start_ns + ns, TYPESTORE.serialize_cdr(msg, topics.TYPES[topic]))

        for t in range(len(episode) + 1):
            ns = t * STEP_NS
            put(topics.IMAGE, _image(arrays["rgb"][t][-3:], ns), ns)
            put(topics.STATE, _array(arrays["state"][t]), ns)
            if t > 0:
                put(topics.REWARD, T["std_msgs/msg/Float32"](data=float(arrays["reward"][t - 1])), ns)
                put(topics.SUCCESS, T["std_msgs/msg/Bool"](data=bool(arrays["success"][t - 1])), ns)
            if t < len(episode):
                put(topics.ACTION, _array(arrays["action"][t]), ns + 1)
        custom = {"steps": len(episode), "success": episode.succeeded, "return": round(episode.total_reward, 6),
                  **meta}
        if any(episode.intervention):  # operator-driven steps (teleop takeover), by index
            custom["intervention_steps"] = json.dumps([t for t, f in enumerate(episode.intervention) if f])
        for key, value in custom.items():
            writer.set_custom_data(f"modem_ros.{key}", str(value))
    except BaseException:
        writer.close()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    writer.close()
    for mcap in tmp.glob("*.mcap"):
        add_chunk_crcs(mcap)
    _record_checksums(tmp)
    os.replace(tmp, path)
    staging.rmdir()
    return path


MCAP_MAGIC = b"\x89MCAP0\r\n"


def add_chunk_crcs(path: Path) -> int:
    """Fill each uncompressed MCAP chunk's uncompressed_crc (rosbags writes 0, "not checked") with the
    CRC-32 of its records, so any MCAP reader detects a corrupt chunk. Returns the chunks patched."""
    data = bytearray(path.read_bytes())
    if data[:8] != MCAP_MAGIC:
        raise DemoError(f"{path}: not an MCAP file")
    pos, patched = 8, 0
    while pos + 9 <= len(data) - 8:
        opcode, length = data[pos], struct.unpack_from("<Q", data, pos + 1)[0]
        body = pos + 9
        if opcode == 0x06:  # Chunk: start u64, end u64, uncompressed size u64, crc u32, compression, records
            (comp_len,) = struct.unpack_from("<I", data, body + 28)
            compression = bytes(data[body + 32:body + 32 + comp_len])
            (records_len,) = struct.unpack_from("<Q", data, body + 32 + comp_len)
            records = data[body + 40 + comp_len:body + 40 + comp_len + records_len]
            if compression == b"":
                struct.pack_into("<I", data, body + 24, zlib.crc32(records))
                patched += 1
        elif opcode == 0x02:  # Footer
            break
        pos = body + length
    path.write_bytes(bytes(data))
    return patched


def _file_digests(path: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(path.glob("*.mcap"))}


def ros_distro() -> str:
    """The distro the graph runs on: a sourced distro's ROS_DISTRO, else Kilted when its pip wheels are
    installed, else empty (written without ROS)."""
    if os.environ.get("ROS_DISTRO"):
        return os.environ["ROS_DISTRO"]
    try:
        importlib.metadata.version("ros-kilted-rclpy")
        return "kilted"
    except importlib.metadata.PackageNotFoundError:
        return ""


def _record_checksums(path: Path) -> None:
    """MCAP readers do not check chunk CRCs, so flipped bytes would load as silently wrong demos:
    keep a SHA-256 of each data file in metadata.yaml's custom_data and verify it on every read."""
    meta_file = path / "metadata.yaml"
    meta = yaml.safe_load(meta_file.read_text())
    meta["rosbag2_bagfile_information"]["ros_distro"] = ros_distro()
    custom = meta["rosbag2_bagfile_information"].setdefault("custom_data", {}) or {}
    custom.update({f"modem_ros.sha256.{name}": digest for name, digest in _file_digests(path).items()})
    meta["rosbag2_bagfile_information"]["custom_data"] = custom
    meta_file.write_text(yaml.safe_dump(meta, sort_keys=False))


def verify_checksums(path: Path, meta: dict[str, str]) -> None:
    for name, digest in _file_digests(path).items():
        expected = meta.get(f"sha256.{name}")
        if expected is not None and expected != digest:
            raise DemoError(f"{path / name}: checksum mismatch, the file is corrupt or was modified")


def read_meta(path: Path) -> dict[str, str]:
    try:
        info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as err:
        raise DemoError(f"{path}: unreadable metadata.yaml ({err})") from err
    return {k.removeprefix("modem_ros."): v for k, v in (info.get("custom_data") or {}).items()}


def read_streams(path: Path) -> dict[str, list[Any]]:
    """Every message of the bag's BAG_TOPICS, per topic in order; DemoError naming the files if unreadable."""
    streams: dict[str, list[Any]] = {name: [] for name in topics.BAG_TOPICS}
    try:
        with Reader(path) as reader:
            for connection, _, raw in reader.messages():
                name = connection.topic.lstrip("/")  # our older bags named topics without the slash
                if name in streams:
                    streams[name].append(TYPESTORE.deserialize_cdr(raw, connection.msgtype))
    except Exception as err:  # rosbags/mcap raise many types for truncated or corrupt files
        files = ", ".join(sorted(p.name for p in path.glob("*.mcap"))) or "no .mcap file"
        raise DemoError(f"{path} ({files}): cannot read bag: {type(err).__name__}: {err}") from err
    return streams


def read_episode(path: str | Path, frame_stack: int) -> DemoBag:
    """Load one demo bag, rebuilding frame stacks; any defect raises DemoError naming the file."""
    path = Path(path)
    meta = read_meta(path)
    verify_checksums(path, meta)
    streams = read_streams(path)
    images, states = streams[topics.IMAGE], streams[topics.STATE]
    actions, rewards, successes = streams[topics.ACTION], streams[topics.REWARD], streams[topics.SUCCESS]
    steps = len(actions)
    counts = {"images": len(images), "states": len(states), "rewards": len(rewards), "successes": len(successes)}
    if steps == 0 or counts != {"images": steps + 1, "states": steps + 1, "rewards": steps, "successes": steps}:
        raise DemoError(f"{path}: inconsistent episode: {steps} actions but {counts} "
                        "(expected steps+1 images and states, steps rewards and successes)")
    frames = []
    for i, msg in enumerate(images):
        if is_no_frame(msg):
            raise DemoError(f"{path}: image {i} is the camera's no-frame placeholder: that observation has no image")
        if msg.encoding != "rgb8" or len(msg.data) != msg.height * msg.width * 3:
            raise DemoError(f"{path}: image {i} is {msg.encoding} with {len(msg.data)} bytes for "
                            f"{msg.width}x{msg.height}; expected rgb8")
        frames.append(np.asarray(msg.data, np.uint8).reshape(msg.height, msg.width, 3).transpose(2, 0, 1))
    state_arrays = [np.asarray(m.data, np.float32) for m in states]
    for t, state in enumerate(state_arrays):
        if state.shape != state_arrays[0].shape or state.ndim != 1:
            raise DemoError(f"{path}: state {t} has {state.size} values, state 0 has {state_arrays[0].size}")
        if not np.all(np.isfinite(state)):
            bad = np.flatnonzero(~np.isfinite(state)).tolist()
            raise DemoError(f"{path}: state {t} has non-finite values at {bad}")
    for t, msg in enumerate(rewards):
        if not np.isfinite(msg.data):
            raise DemoError(f"{path}: reward {t} is {msg.data}, not finite")
    if len({f.shape for f in frames}) > 1:
        raise DemoError(f"{path}: images change size within the episode ({sorted({f.shape for f in frames})})")
    stack = FrameStack(frame_stack)
    episode = Episode.start({"rgb": stack.reset(frames[0]), "state": state_arrays[0]})
    for t in range(steps):
        action = np.asarray(actions[t].data, np.float32)
        if not np.all(np.isfinite(action)):
            raise DemoError(f"{path}: action {t} has non-finite values")
        obs = {"rgb": stack.push(frames[t + 1]), "state": state_arrays[t + 1]}
        episode.add(action, obs, float(rewards[t].data), bool(successes[t].data))
    episode.intervention = _intervention_flags(path, meta, steps)
    return DemoBag(path, episode, meta)


def _intervention_flags(path: Path, meta: dict[str, str], steps: int) -> list[bool]:
    try:
        indices = json.loads(meta.get("intervention_steps", "[]"))
        flags = [False] * steps
        for t in indices:
            if int(t) < 0:
                raise IndexError(f"negative index {t}")
            flags[int(t)] = True
    except (ValueError, TypeError, IndexError) as err:
        raise DemoError(f"{path}: custom data intervention_steps {meta.get('intervention_steps')!r} is not a "
                        f"list of step indices below {steps} ({err})") from err
    return flags


def episode_dirs(directory: str | Path) -> list[Path]:
    """Complete episode bags in a dataset directory (hidden temp directories are in-progress writes)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DemoError(f"{directory}: demo directory does not exist")
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_demo_dir(directory: str | Path, frame_stack: int) -> tuple[list[DemoBag], list[DemoError]]:
    """Every readable episode of a dataset, and an error per episode that could not be read."""
    good, bad = [], []
    for path in episode_dirs(directory):
        try:
            good.append(read_episode(path, frame_stack))
        except DemoError as err:
            bad.append(err)
    return good, bad


def next_episode_path(directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name.split("_")[-1]) for p in directory.glob("episode_*") if p.name.split("_")[-1].isdigit()]
    return directory / f"episode_{max(taken, default=-1) + 1:06d}"


def _check_appendable(cfg, directory: Path) -> set[int]:
    """The reset seeds already in `directory`; DemoError if its episodes are of another task or image size
    (appending would mix them)."""
    seeds: set[int] = set()
    for path in episode_dirs(directory) if Path(directory).is_dir() else []:
        try:
            meta = read_meta(path)
        except DemoError:
            continue  # unreadable episodes are validate's business
        for key, want in (("task", cfg.task), ("img_size", str(cfg.img_size))):
            if key in meta and str(meta[key]) != want:
                raise DemoError(f"{directory} holds {key} {meta[key]} ({path.name}); generating {key} {want} into "
                                "it would mix them: use another directory")
        if str(meta.get("seed", "")).lstrip("-").isdigit():
            seeds.add(int(meta["seed"]))
    return seeds


def _policy(cfg, env, policy: str, noise: float, checkpoint: str):
    """act(obs, t) for `demos generate`: the expert, a trained agent's policy mean (bc, from
    `checkpoint`) or uniform random actions, each with Gaussian action noise of std `noise` (clipped to
    [-1, 1]): suboptimal datasets of a chosen quality, reproducible under the seed."""
    rng = np.random.default_rng(cfg.seed)
    if policy == "expert":
        base = lambda obs: env.expert_action()  # noqa: E731
    elif policy == "random":
        base = lambda obs: rng.uniform(-1, 1, cfg.action_dim)  # noqa: E731
    elif policy == "bc":
        if not checkpoint:
            raise DemoError("policy bc needs --checkpoint (a trained agent whose policy acts)")
        from modem_ros.agent.modem import ModemAgent

        agent = ModemAgent(cfg, device="cpu")
        agent.load(checkpoint)
        base = agent.policy_action
    else:
        raise DemoError(f"unknown policy {policy!r}: expert, bc or random")
    return lambda obs, t: np.clip(np.asarray(base(obs), np.float64) + noise * rng.standard_normal(cfg.action_dim),
                                  -1.0, 1.0)


def generate(cfg, n: int, directory: Path, only_success: bool = True,
             max_attempts_factor: int = 3, policy: str = "expert", noise: float = 0.0,
             checkpoint: str = "") -> tuple[list[Path], list[bool], bool]:
    """Roll out the task's expert and write `n` episodes (successful ones unless only_success is
    False). Returns the written paths, the success of every attempt, and whether the task has a
    success at all (dense-reward suites such as DMControl do not: all their episodes are kept)."""
    from modem_ros.envs import make_env
    from modem_ros.trainer import run_episode

    used_seeds = _check_appendable(cfg, directory)
    env = make_env(cfg, seed=cfg.seed)
    has_success = getattr(env, "has_success", True)
    only_success = only_success and has_success
    act = _policy(cfg, env, policy, noise, checkpoint)
    source = getattr(env, "expert_source", "scripted expert") if policy == "expert" else policy
    if noise:
        source += f" + N(0, {noise:g}) noise"
    written: list[Path] = []
    attempts: list[bool] = []
    seed = cfg.seed * 1000
    try:
        while len(written) < n and len(attempts) < max_attempts_factor * n:
            while seed in used_seeds:  # a dataset being continued: never the same reset twice
                seed += 1
            episode = run_episode(env, act, seed=seed)
            attempts.append(episode.succeeded)
            if episode.succeeded or not only_success:
                meta = {"task": cfg.task, "suite": cfg.suite, "source": source, "seed": seed, "policy": policy,
                        "noise": noise,
                        "img_size": cfg.img_size, "action_repeat": cfg.action_repeat}
                written.append(write_episode(episode, next_episode_path(directory), meta))
            seed += 1
    finally:
        if hasattr(env, "close"):
            env.close()
    return written, attempts, has_success
