"""An observation the camera had no fresh frame for (hardware, `sample_on_state`): the camera sends an empty
placeholder in its place, so every consumer that pairs the streams by counting stays paired. The episode
holding it is dropped by the trainer and refused by the recorder; the planner does not act on it; the
bridge's watchdog does not take it for an observation. Before, the camera sent nothing, and every later
frame was paired with the state before its own."""

from __future__ import annotations

import time

import numpy as np
import pytest

from modem_ros.data.stream import EpisodeAssembler
from tests.helpers import assemble_in_random_order

rclpy = pytest.importorskip("rclpy", reason="needs the ros extra: scripts/install.sh ros")

from rclpy.signals import SignalHandlerOptions  # noqa: E402

from modem_ros import topics  # noqa: E402
from modem_ros.data.demos import episode_dirs  # noqa: E402
from modem_ros.data.recording import Streams  # noqa: E402
from modem_ros.images import is_no_frame  # noqa: E402
from modem_ros.nodes.camera import Camera  # noqa: E402
from modem_ros.nodes.common import image_msg, no_frame_msg, state_msg  # noqa: E402
from modem_ros.nodes.franka_bridge import FrankaBridge  # noqa: E402
from modem_ros.nodes.planner import Planner  # noqa: E402
from modem_ros.nodes.recorder import Fate, Recorder  # noqa: E402
from tests.conftest import SMALL  # noqa: E402


def in_process(node_class, monkeypatch, tmp_path, **params):
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path / "roslog"))
    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", *[a for k, v in params.items() for a in ("-p", f"{k}:={v}")]],
               signal_handler_options=SignalHandlerOptions.NO)
    return node_class(context=context), context


@pytest.fixture
def node(monkeypatch, tmp_path):
    made = []

    def make(node_class, **params):
        made.append(in_process(node_class, monkeypatch, tmp_path, **params))
        return made[-1][0]

    yield make
    for created, context in made:
        created.destroy_node()
        rclpy.shutdown(context=context)


def test_the_assembler_drops_the_episode_with_a_missing_frame_and_keeps_the_others_paired():
    """Three labelled episodes of 3 steps, observation 5 (episode 2, step 1) without a frame; items arrive
    interleaved in random order. Episodes 1 and 3 come out with exactly their own items."""
    rng = np.random.default_rng(2)
    length, episodes = 3, 3
    streams = {k: [] for k in ("frame", "state", "action", "reward", "success")}
    for obs in range(episodes * (length + 1)):
        streams["frame"].append(None if obs == 5 else np.full((3, 4, 4), obs, np.uint8))
        streams["state"].append((np.full(2, obs, np.float32), obs % (length + 1)))
    for step in range(episodes * length):
        streams["action"].append(np.full(1, step, np.float32))
        streams["reward"].append(float(step))
        streams["success"].append(False)
    assembler = EpisodeAssembler(frame_stack=2, episode_length=length, state_dim=2, action_dim=1)
    out = assemble_in_random_order(assembler, streams, rng)
    assert assembler.missing_frames == [1] and assembler.cut_short == []
    assert [[s[0] for s in e.state] for e in out] == [[0, 1, 2, 3], [8, 9, 10, 11]]
    assert [e.reward for e in out] == [[0.0, 1.0, 2.0], [6.0, 7.0, 8.0]]
    assert [int(e.rgb[3][-1, 0, 0]) for e in out] == [3, 11]  # each observation with its own frame


def test_the_camera_sends_a_placeholder_for_a_stale_frame_so_every_state_gets_one_image(node):
    camera = node(Camera, task="toy-reach", sample_on_state="true", reliable="false", max_frame_age=0.2)
    sent = []
    camera.image_pub.publish = sent.append
    raw = image_msg(np.zeros((48, 64, 3), np.uint8), camera.get_clock().now().to_msg(), topics.CAMERA_FRAME)
    state = state_msg(np.zeros(4), 0)
    camera.on_state(state)  # no frame has arrived yet
    camera.on_image(raw)
    camera.on_state(state)
    camera.newest = (time.monotonic() - 1.0, *camera.newest[1:])  # the camera stalls for a second
    camera.on_state(state)
    camera.on_image(raw)
    camera.on_state(state)
    assert len(sent) == 4, "one image per state"
    assert [is_no_frame(m) for m in sent] == [True, False, True, False]
    assert all(m.header.frame_id == topics.CAMERA_FRAME for m in sent)
    assert (sent[1].height, sent[1].width) == (camera.size, camera.size)


def test_the_planner_does_not_act_on_an_observation_without_a_frame_and_keeps_counting(node, monkeypatch):
    planner, calls = acting_planner(node, monkeypatch, reliable="false")  # hardware: newest only
    for value, step in [(1, 0), (None, 1), (3, 2)]:
        observe(planner, value, step)
    assert len(calls) == 2 and planner.t == 3 and planner.step == 3
    assert np.all(calls[1][-3:] == 3) and np.all(calls[1][:3] == 1)  # the stack skips the missing frame


def test_a_lock_step_planner_refuses_a_placeholder_and_stays_paired(node, monkeypatch):
    """In sim the camera never sends one: one there is forged, an extra message, and is refused like a
    malformed image, so the next frame still pairs with its own state."""
    planner, calls = acting_planner(node, monkeypatch, reliable="true")
    planner.on_image(no_frame_msg(planner.get_clock().now().to_msg(), topics.CAMERA_FRAME))
    for value, step in [(1, 0), (2, 1)]:
        observe(planner, value, step)
    assert len(calls) == 2 and planner.t == 2 and np.all(calls[1][-3:] == 2)


def acting_planner(node, monkeypatch, reliable: str):
    planner = node(Planner, task="toy-reach", device="cpu", reliable=reliable)
    planner.version = 0  # acts without waiting for weights: act() is recorded, not planned
    calls = []

    def act(obs, step, eval_mode=False, t0=False):
        calls.append(obs["rgb"])
        return np.zeros(planner.cfg.action_dim, np.float32)

    monkeypatch.setattr(planner.agent, "act", act)
    return planner, calls


def observe(planner, value: int | None, step: int) -> None:
    size, now = planner.cfg.img_size, planner.get_clock().now().to_msg()
    planner.on_image(no_frame_msg(now, topics.CAMERA_FRAME) if value is None
                     else image_msg(np.full((size, size, 3), value, np.uint8), now, topics.CAMERA_FRAME))
    planner.on_state(state_msg(np.zeros(planner.cfg.state_dim), step))


def test_the_bridge_watchdog_does_not_count_a_placeholder_as_an_observation(node):
    bridge = node(FrankaBridge, task="franka-reach", simulate="true", reward_source="sim", auto_reset="false",
                  watch_observation="true", sim_camera_size="[64,48]")
    size = bridge.cfg.img_size
    bridge.on_image(image_msg(np.zeros((size, size, 3), np.uint8), bridge.get_clock().now().to_msg(),
                              topics.CAMERA_FRAME))
    fed = bridge.watchdog.last["observation"]
    assert fed is not None
    time.sleep(0.01)
    bridge.on_image(no_frame_msg(bridge.get_clock().now().to_msg(), topics.CAMERA_FRAME))
    assert bridge.watchdog.last["observation"] == fed


def test_the_recorder_does_not_save_an_episode_with_a_missing_frame(node, tmp_path):
    overrides = " ".join(f"{k}={v}" for k, v in SMALL.items())
    recorder = node(Recorder, task="toy-reach", config_overrides=overrides, dataset_dir=tmp_path / "dataset",
                    no_frame_placeholders="true")
    cfg = recorder.cfg

    def fill(streams: Streams, missing_at: int | None) -> None:
        for t in range(3):
            streams.frames.append(None if t == missing_at else np.zeros((3, cfg.img_size, cfg.img_size), np.uint8))
            streams.states.append(np.zeros(cfg.state_dim, np.float32))
            streams.arrivals.append(float(t))
        for _ in range(2):
            streams.actions.append(np.zeros(cfg.action_dim, np.float32))
            streams.rewards.append(-1.0)
            streams.successes.append(False)

    fill(recorder.streams, missing_at=1)
    recorder.write(2, Fate("save", started=time.time(), seed=0, bridge="sim"))
    dataset = tmp_path / "dataset"
    assert recorder.saved == 0 and not (dataset.is_dir() and episode_dirs(dataset))
    recorder.streams = Streams()
    fill(recorder.streams, missing_at=None)
    recorder.write(2, Fate("save", started=time.time(), seed=0, bridge="sim"))
    assert recorder.saved == 1 and len(episode_dirs(dataset)) == 1


def test_a_bag_holding_a_placeholder_is_named_by_the_loader_and_the_validator(tmp_path, monkeypatch):
    """A session recorded with `ros2 bag record` keeps the placeholders; our tools say what they are."""
    from modem_ros.data import demos
    from modem_ros.data.validate import validate_episode
    from modem_ros.envs.point_reach import PointReachEnv
    from modem_ros.trainer import scripted_demos

    real_image = demos._image

    def image(frame, ns):  # observation 4 written as the camera's placeholder
        return real_image(frame[:, :0, :0], ns) if ns == 4 * demos.STEP_NS else real_image(frame, ns)

    monkeypatch.setattr(demos, "_image", image)
    episode = scripted_demos(PointReachEnv(img_size=48, episode_length=8), 1, seed=0)[0]
    path = demos.write_episode(episode, demos.next_episode_path(tmp_path), {"task": "toy-reach"})
    with pytest.raises(demos.DemoError, match="image 4 is the camera's no-frame placeholder"):
        demos.read_episode(path, frame_stack=1)
    assert "image 4 is the camera's no-frame placeholder: that observation has no image" in validate_episode(
        path).problems


def test_a_recorder_outside_a_hardware_graph_refuses_a_placeholder(node, tmp_path):
    overrides = " ".join(f"{k}={v}" for k, v in SMALL.items())
    sim = node(Recorder, task="toy-reach", config_overrides=overrides, dataset_dir=tmp_path / "sim")
    robot = node(Recorder, task="toy-reach", config_overrides=overrides, dataset_dir=tmp_path / "robot",
                 no_frame_placeholders="true")
    for recorder in (sim, robot):
        recorder.on_image(no_frame_msg(recorder.get_clock().now().to_msg(), topics.CAMERA_FRAME))
    assert list(sim.streams.frames) == [] and list(robot.streams.frames) == [None]
