"""The realsense_camera node on pyrealsense2's real stand-ins: a software device (frames injected with
no camera) and a .db3 recording of it played back through the pipeline, as a live camera would be."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ros extra: scripts/install.sh ros")
pytest.importorskip("pyrealsense2", reason="needs the hw extra: scripts/install.sh hw")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from modem_ros import topics  # noqa: E402
from modem_ros.nodes.realsense_camera import RealSenseCamera  # noqa: E402
from tests.software_camera import COEFFS, FPS, FX, FY, PPX, PPY, H, SoftwareCamera, W, record_db3  # noqa: E402


@pytest.fixture
def ros(monkeypatch, tmp_path):
    monkeypatch.setenv("ROS_DOMAIN_ID", str(170 + os.getpid() % 30))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path))
    contexts = []

    def start(*params: str):
        context = rclpy.Context()
        args = ["--ros-args"] + [x for p in params for x in ("-p", p)]
        rclpy.init(context=context, args=args, signal_handler_options=SignalHandlerOptions.NO)
        contexts.append(context)
        return context

    yield start
    for context in contexts:
        rclpy.shutdown(context=context)


def collect(context, camera):
    probe = rclpy.create_node("probe", context=context)
    images, infos = [], []
    probe.create_subscription(Image, topics.RAW_IMAGE, images.append, 10)
    probe.create_subscription(CameraInfo, topics.RAW_CAMERA_INFO, infos.append, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(camera)
    executor.add_node(probe)
    return probe, executor, images, infos


def spin_until(executor, condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        executor.spin_once(timeout_sec=0.05)


def spin_until_quiet(executor, received: list, quiet=0.5, timeout=5.0):
    """Spin until nothing new has arrived for `quiet` seconds."""
    deadline, count, last_change = time.monotonic() + timeout, len(received), time.monotonic()
    while time.monotonic() - last_change < quiet:
        assert time.monotonic() < deadline, "messages kept coming"
        executor.spin_once(timeout_sec=0.05)
        if len(received) != count:
            count, last_change = len(received), time.monotonic()


def values(images):
    return [int(np.frombuffer(m.data, np.uint8)[0]) for m in images]


def check_info(info: CameraInfo):
    assert (info.width, info.height) == (W, H) and info.header.frame_id == "camera_color_optical_frame"
    np.testing.assert_allclose(info.k, [FX, 0, PPX, 0, FY, PPY, 0, 0, 1], rtol=1e-6)
    np.testing.assert_allclose(info.p, [FX, 0, PPX, 0, 0, FY, PPY, 0, 0, 0, 1, 0], rtol=1e-6)
    assert info.distortion_model == "plumb_bob"
    np.testing.assert_allclose(info.d, COEFFS, rtol=1e-6)


def test_software_device_frames_intrinsics_and_recovery_after_the_device_goes_away(ros):
    cam = SoftwareCamera()
    cam.thread.start()
    context = ros(f"width:={W}", f"height:={H}", f"fps:={FPS}", "frame_timeout:=0.5", "reconnect_interval:=0.3")
    camera = RealSenseCamera(device=cam.device, context=context)
    probe, executor, images, infos = collect(context, camera)
    try:
        cam.live.set()
        spin_until(executor, lambda: len(images) >= 15)
        first = images[0]
        assert (first.width, first.height, first.encoding, first.step) == (W, H, "rgb8", W * 3)
        assert first.header.frame_id == "camera_color_optical_frame"
        check_info(infos[-1])
        # the device goes away: no frames for 2 s. The node must say so and publish nothing meanwhile.
        cam.live.clear()
        time.sleep(0.3)
        t_end = time.monotonic() + 2.0
        while time.monotonic() < t_end:
            executor.spin_once(timeout_sec=0.05)
        gone = len(images)
        lost_at = cam.sent
        assert camera.losses == 1 and camera.lost_since is not None  # noticed (once), re-opening
        # ... and returns: streaming resumes on its own
        cam.live.set()
        spin_until(executor, lambda: len(images) >= gone + 15)
        seen = values(images)
        assert all(b > a for a, b in zip(seen, seen[1:], strict=False)), "a frame repeated or went back (stale)"
        assert max(seen[:gone]) < lost_at <= min(seen[gone:]) + 1
        assert camera.lost_since is None  # back
    finally:
        cam.stop.set()
        camera.destroy_node()
        probe.destroy_node()


def test_db3_recording_plays_back_with_its_intrinsics(ros, tmp_path):
    path = tmp_path / "session.db3"
    recorded = record_db3(path, 30)
    assert path.stat().st_size > 0

    context = ros(f"width:={W}", f"height:={H}", f"fps:={FPS}", f"playback_file:={path}")
    camera = RealSenseCamera(context=context)
    probe, executor, images, infos = collect(context, camera)
    try:
        spin_until(executor, lambda: not camera.thread.is_alive())  # plays to the end, then stops
        spin_until_quiet(executor, images)  # what it published, delivered
        seen = values(images)
        assert seen == sorted(seen) and len(set(seen)) == len(seen)  # the recording's frames, in order, once each
        assert seen[-1] >= recorded - 3  # ... to its end
        # Most of them: playback runs in real time, and on a loaded machine the pipeline's shallow queue may skip
        # a frame (a live camera's behaviour, kept on purpose); CI once missed 'recorded - 2' by a frame or two.
        assert len(seen) >= recorded * 2 // 3
        check_info(infos[-1])
    finally:
        camera.destroy_node()
        probe.destroy_node()


def test_db3_recording_loops_seamlessly(ros, tmp_path):
    path = tmp_path / "loop.db3"
    recorded = record_db3(path, 30)
    context = ros(f"width:={W}", f"height:={H}", f"fps:={FPS}", f"playback_file:={path}", "loop_playback:=true",
                  "frame_timeout:=0.5")
    camera = RealSenseCamera(context=context)
    probe, executor, images, infos = collect(context, camera)
    try:
        spin_until(executor, lambda: len(images) >= 2 * recorded + 10)
        seen = values(images)
        restarts = [i for i, (a, b) in enumerate(zip(seen, seen[1:], strict=False)) if b < a]
        assert len(restarts) >= 2  # played again from the start, more than once
        for i in restarts:  # from the end of the recording straight to its start: nothing lost, no outage
            assert seen[i] >= recorded - 3 and seen[i + 1] <= 2
        assert camera.losses == 0 and camera.thread.is_alive()
    finally:
        camera.destroy_node()
        probe.destroy_node()
