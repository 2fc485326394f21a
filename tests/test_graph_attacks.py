"""A running train_sim graph under attack (issue 24): while it trains, a node on its domain publishes
malformed messages on every topic the graph subscribes to - short and mis-encoded images, forged
no-frame placeholders, NaN and wrongly sized states and actions, NaN rewards, non-JSON events and
announcements, weight chunks with no header, of another run, or of this run at a pinning version with
bytes that fail their hash.
Every one is refused with a log line; training completes with every episode
paired as if nothing had happened."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest

from tests.test_graph import Launch, graph_env, graph_home, records  # noqa: F401 - fixture reuse

pytest.importorskip("rclpy", reason="the ROS graph needs the ros extra: scripts/install.sh ros")

from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import (  # noqa: E402
    Float32,
    Float32MultiArray,
    MultiArrayDimension,
    String,
    UInt8MultiArray,
)

from modem_ros import topics  # noqa: E402
from modem_ros.announce import announcement  # noqa: E402
from modem_ros.data.demos import read_episode  # noqa: E402
from modem_ros.nodes.common import LATCHED, STREAM, WEIGHTS, episode_step, state_msg  # noqa: E402
from tests.ros_node import InProcessNode  # noqa: E402

RUN_ID = "attacked-run"


def _image(encoding: str, size: int, data_len: int) -> Image:
    return Image(height=size, width=size, encoding=encoding, step=size * 3, data=bytes(data_len))


class Attacker(InProcessNode):
    def __init__(self, env, garbage_file):
        super().__init__(env, "attacker")
        pub = {name: self.node.create_publisher(kind, name, STREAM) for name, kind in [
            (topics.IMAGE, Image), (topics.RAW_IMAGE, Image), (topics.STATE, Float32MultiArray),
            (topics.ACTION, Float32MultiArray), (topics.APPLIED_ACTION, Float32MultiArray),
            (topics.REWARD, Float32), (topics.EPISODE, String)]}
        checkpoint = self.node.create_publisher(String, topics.CHECKPOINT, LATCHED)
        weights = self.node.create_publisher(UInt8MultiArray, topics.WEIGHTS, WEIGHTS)
        nan = math.nan

        def chunk(label: str, data: bytes) -> UInt8MultiArray:
            msg = UInt8MultiArray(data=data)
            msg.layout.dim = [MultiArrayDimension(label=label, size=len(data), stride=len(data))]
            return msg

        forged = {"run_id": RUN_ID, "version": 10**6, "step": 0, "episodes": 10**6, "chunk": 0, "chunks": 1,
                  "size": 5, "sha256": "0" * 64, "sent": 0.0}  # this run's id, a pinning version, bad bytes
        self.volleys = [
            (pub[topics.IMAGE], _image("rgb8", 48, 7)), (pub[topics.IMAGE], _image("bgr8", 48, 48 * 48 * 3)),
            (pub[topics.IMAGE], _image("rgb8", 0, 0)),  # a forged no-frame placeholder: sim's camera sends none
            (pub[topics.RAW_IMAGE], _image("rgb8", 64, 100)),
            (pub[topics.STATE], Float32MultiArray(data=[nan] * 4)),
            (pub[topics.STATE], Float32MultiArray(data=[1.0] * 3)),
            (pub[topics.STATE], state_msg([nan] * 4, 0)),  # refused before its label can close an episode
            (pub[topics.ACTION], Float32MultiArray(data=[nan, nan])),
            (pub[topics.ACTION], Float32MultiArray(data=[0.1] * 5)),
            (pub[topics.APPLIED_ACTION], Float32MultiArray(data=[nan, 0.0])),
            (pub[topics.APPLIED_ACTION], Float32MultiArray(data=[0.0] * 7)),
            (pub[topics.REWARD], Float32(data=nan)), (pub[topics.EPISODE], String(data="{not json")),
            (checkpoint, String(data="not json")),
            (checkpoint, String(data=announcement(garbage_file, 10**6, 0, 10**6, "someone-else"))),
            (weights, UInt8MultiArray(data=b"no header")),
            (weights, chunk(json.dumps({**forged, "run_id": "someone-else"}), b"12345")),
            (weights, chunk(json.dumps(forged), b"12345")),
        ]
        self.sent = 0
        self.start()
        self.stop = threading.Event()
        threading.Thread(target=self._attack, daemon=True).start()

    def _attack(self) -> None:
        while not self.stop.wait(0.4):
            for publisher, message in self.volleys:
                publisher.publish(message)
            self.sent += 1


def test_a_state_step_label_is_read_only_when_well_formed():
    assert episode_step(state_msg(np.zeros(4), 17)) == 17 and list(state_msg(np.ones(2), 0).data) == [1.0, 1.0]
    assert episode_step(Float32MultiArray(data=[0.0])) is None  # unlabelled: the consumer counts
    for label in ("episode_step=-1", "episode_step=", "episode_step=1e3", "episode_step=\u00b2",
                  "episode_step=" + "9" * 40, "operator", "episode_step 3"):
        msg = Float32MultiArray(data=[0.0])
        msg.layout.dim = [MultiArrayDimension(label=label, size=1, stride=1)]
        assert episode_step(msg) is None, label


@pytest.fixture(scope="module")
def attacked(graph_home):  # noqa: F811
    garbage = graph_home / "garbage.pt"
    garbage.write_bytes(b"\x80\x04 definitely not a checkpoint")
    env = graph_env(graph_home)
    (graph_home / "attacked").mkdir()
    (graph_home / "attacked" / "run_id").write_text(RUN_ID + "\n")  # the attacker knows the run's id
    attacker = Attacker(env, garbage)
    try:
        launch = Launch(graph_home, ["train_sim", "preset:=tiny.yaml", "run_dir:=attacked"], env)
        code = launch.finish(timeout=400)
        attacker.stop.set()
        yield graph_home / "attacked", launch, code, attacker.sent
    finally:
        attacker.stop.set()
        attacker.close()


def test_training_completes_with_every_episode_paired(attacked):
    run_dir, launch, code, volleys = attacked
    assert code == 0, launch.text[-4000:]
    assert volleys >= 5  # the attack ran throughout
    assert [r["step"] for r in records(run_dir, "train")] == [20, 40, 60, 80]
    for path in sorted((run_dir / "episodes").iterdir()):
        arrays = read_episode(path, frame_stack=2).episode.arrays()
        assert len(arrays["action"]) == 20
        for key in ("state", "action", "reward"):
            assert np.all(np.isfinite(arrays[key])), (path.name, key)


def test_each_kind_of_bad_message_is_named_in_the_log(attacked):
    _, launch, *_ = attacked
    for node, fragment in [("trainer", "modem/image: frame not stored"),
                           ("planner", "modem/image: observation refused"),
                           ("trainer", "which only a hardware camera sends"),  # the forged placeholder
                           ("planner", "which only a hardware camera sends"),
                           ("trainer", "modem/state: not stored"), ("planner", "modem/state: observation refused"),
                           ("sim_bridge", "action refused"), ("trainer", "modem/applied_action: not stored"),
                           ("trainer", "modem/reward: not stored"),
                           ("planner", "modem/weights: chunk ignored: chunk header is not JSON"),
                           ("planner", "weights of run 'someone-else' ignored"),
                           ("planner", "payload fails its SHA-256")]:
        assert any(line.startswith(f"[{node}]") and fragment in line for line in launch.output), (node, fragment)
    loaded = [line for line in launch.output if "loaded weights v" in line]
    assert loaded and "v1000000" not in "".join(loaded)
