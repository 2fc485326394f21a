"""The recorder's start, against a stand-in bridge in one process: the reset waits until every stream
has a publisher, and a start whose episode never begins is given up with a warning, not left hanging."""

from __future__ import annotations

import json
import os
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float32, Float32MultiArray, String
from std_srvs.srv import Trigger

from modem_ros import topics
from modem_ros.nodes.common import STREAM
from modem_ros.nodes.recorder import Recorder
from tests.conftest import SMALL

OVERRIDES = " ".join(f"{k}={v}" for k, v in SMALL.items())


def spin_until(executor, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        executor.spin_once(timeout_sec=0.05)


def spin_for(executor, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)


def test_start_waits_for_every_stream_and_gives_up_when_no_episode_begins(monkeypatch, tmp_path):
    monkeypatch.setenv("ROS_DOMAIN_ID", str(150 + (os.getpid() + 7) % 40))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path / "roslog"))
    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "-p", "task:=toy-reach", "-p", f"config_overrides:={OVERRIDES}",
                                      "-p", f"dataset_dir:={tmp_path / 'dataset'}", "-p", "match_settle:=0.5",
                                      "-p", "start_timeout:=1.5",
                                      "-p", "use_sim_time:=true"],  # as in sim: no /clock until an episode runs
               signal_handler_options=SignalHandlerOptions.NO)
    executor = SingleThreadedExecutor(context=context)
    recorder = Recorder(context=context)
    bridge = rclpy.create_node("stand_in_bridge", context=context)
    resets: list[float] = []

    def on_reset(request, response):  # answers, but its start event is lost: nothing is published
        resets.append(time.monotonic())
        response.success, response.message = True, json.dumps({"episode": len(resets) - 1})
        return response

    try:
        bridge.create_service(Trigger, topics.RESET, on_reset)
        pubs = {topic: bridge.create_publisher(kind, topic, STREAM) for topic, kind in (
            (topics.STATE, Float32MultiArray), (topics.APPLIED_ACTION, Float32MultiArray),
            (topics.REWARD, Float32), (topics.SUCCESS, Bool), (topics.EPISODE, String))}
        executor.add_node(recorder)
        executor.add_node(bridge)
        spin_until(executor, recorder.reset.service_is_ready, 15, "the recorder never saw the reset service")
        assert recorder.on_start(Trigger.Request(), Trigger.Response()).success
        spin_for(executor, 2.0)
        assert resets == [], "reset before the camera's stream had a publisher"  # modem/image is missing
        pubs[topics.IMAGE] = bridge.create_publisher(Image, topics.IMAGE, STREAM)
        spin_until(executor, lambda: resets, 15, "no reset once every stream had a publisher")
        assert recorder.state == "recording" and recorder.armed
        spin_until(executor, lambda: recorder.state == "idle", 5, "a start whose episode never began hangs")
        assert not recorder.armed and len(resets) == 1
        # idle again: start works, and the start event that now arrives is the one recorded
        assert recorder.on_start(Trigger.Request(), Trigger.Response()).success
        spin_until(executor, lambda: len(resets) == 2, 15, "the second start never reset the bridge")
        pubs[topics.EPISODE].publish(String(data=json.dumps({"event": "start", "episode": 1, "seed": 3})))
        spin_until(executor, lambda: recorder.fates, 15, "the start event never arrived")
        assert [f.kind for f in recorder.fates] == ["record"] and recorder.fates[0].seed == 3
        assert not recorder.armed and recorder.state == "recording"
        spin_for(executor, 2.0)  # the start arrived: nothing is given up
        assert recorder.state == "recording"
    finally:
        recorder.destroy_node()
        bridge.destroy_node()
        rclpy.shutdown(context=context)
