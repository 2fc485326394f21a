"""The operator's view in sim demo recording (issue 23 item 16): the camera frame on screen, scaled, with
the task's progress and the session's keys; shown on a real X server (Xvfb) and checked on a screenshot.
Hostile progress messages are refused; a closed window leaves the node running."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time

from tests.conftest import SMALL

rclpy = pytest.importorskip("rclpy", reason="needs the ros extra: scripts/install.sh ros")
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from modem_ros.nodes.common import image_msg  # noqa: E402
from modem_ros.nodes.operator_view import GREEN, OperatorView, parse_progress  # noqa: E402

MAGENTA = (255, 0, 255)


def test_progress_messages_keep_only_known_keys_of_the_right_types():
    assert parse_progress('{"t": 3, "length": 50, "goal_distance": 0.5, "succeeded": true, "x": "y"}') == {
        "t": 3, "length": 50, "goal_distance": 0.5, "succeeded": True}
    for bad, reason in [("nope", "Expecting value"), ("[1]", "not a JSON object"), ('{"t": "3"}', "'t' must be int"),
                        ('{"return": NaN}', "'return' must be float"), ('{"t": 2.5}', "'t' must be int"),
                        ('{"succeeded": 1}', "'succeeded' must be bool")]:
        with pytest.raises(ValueError, match=reason):
            parse_progress(bad)


@pytest.fixture
def display():
    """A private X server (Xvfb); CI installs it with scripts/install.sh test."""
    if shutil.which("Xvfb") is None:
        pytest.skip("needs Xvfb: scripts/install.sh test installs it")
    number = 90 + os.getpid() % 100
    proc = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.05)
    yield f":{number}"
    proc.terminate()
    proc.wait(timeout=10)


def screenshot(display: str) -> np.ndarray:
    from PIL import ImageGrab

    return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))


def test_the_view_shows_the_frame_scaled_with_progress_and_keys_on_a_real_display(display, monkeypatch, tmp_path):
    monkeypatch.setenv("DISPLAY", display)
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path / "roslog"))
    overrides = " ".join(f"{k}={v}" for k, v in SMALL.items())
    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "-p", "task:=toy-reach", "-p", f"config_overrides:={overrides}",
                                      "-p", "zoom:=4"], signal_handler_options=SignalHandlerOptions.NO)
    view = OperatorView(context=context)
    size = SMALL["img_size"]
    frame = np.zeros((size, size, 3), np.uint8)
    frame[10:22, 30:42] = MAGENTA  # 12 x 12 pixels: 48 x 48 on screen at zoom 4
    try:
        view.on_image(image_msg(frame, Time(), "camera"))
        view.on_progress(String(data=json.dumps({"episode": 2, "t": 7, "length": 50, "return": -3.5,
                                                 "goal_distance": 0.25, "succeeded": False})))
        view.on_keys(String(data="keys: a/d left/right (action[0] = -y); Ctrl-C quit"))
        for _ in range(5):
            view.refresh()
            time.sleep(0.05)
        shot = screenshot(display)
        assert int(np.all(shot == MAGENTA, axis=-1).sum()) == (12 * 4) ** 2  # on screen, scaled, unsmoothed
        text = view.status.cget("text")
        assert "episode 2" in text and "step 7/50" in text and "distance to goal 0.250" in text
        assert "success: not yet" in text and "a/d left/right" in view.help.cget("text")
        view.on_progress(String(data='{"t": "seven"}'))  # hostile: refused, the view keeps what it had
        view.on_progress(String(data=json.dumps({"episode": 2, "t": 9, "length": 50, "succeeded": True})))
        view.refresh()
        assert "success: SUCCESS" in view.status.cget("text") and view.status.cget("fg") == GREEN
        view.close_window()  # the operator closes it: the node runs on without a window
        view.on_image(image_msg(frame, Time(), "camera"))
        view.refresh()
        assert view.root is None
        time.sleep(0.2)
        assert int(np.all(screenshot(display) == MAGENTA, axis=-1).sum()) == 0
    finally:
        view.destroy_node()
        rclpy.shutdown(context=context)
