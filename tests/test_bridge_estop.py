"""The Franka bridge's e-stop stays latched until its own reset service: neither a reset call (the teleop's
`n`) nor the next episode of auto_reset may clear it, though restarting the safety layer at the measured
pose would. The bridge drives the Franka cell (simulate:=true, the deploy rehearsal's arm), in process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ros extra: scripts/install.sh ros")

from rclpy.signals import SignalHandlerOptions  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from modem_ros.nodes.franka_bridge import FrankaBridge  # noqa: E402


@pytest.fixture
def bridge(monkeypatch, tmp_path):
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path))
    context = rclpy.Context()
    params = {"task": "franka-reach", "simulate": "true", "reward_source": "sim", "auto_reset": "true",
              "watch_observation": "false", "sim_camera_size": "[64,48]"}
    rclpy.init(context=context, args=["--ros-args", *[a for k, v in params.items() for a in ("-p", f"{k}:={v}")]],
               signal_handler_options=SignalHandlerOptions.NO)
    node = FrankaBridge(context=context)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def call(handler) -> Trigger.Response:
    return handler(Trigger.Request(), Trigger.Response())


def test_only_the_estop_reset_clears_an_estop_and_the_waiting_episode_starts_after_it(bridge):
    assert bridge.approaching  # auto_reset: homed, approaching the start pose
    bridge.approaching = False  # as if its episode were running: the e-stop holds it
    assert call(bridge.on_estop).success and bridge.safety.estopped
    bridge.start_episode()  # what auto_reset does when an episode ends during the e-stop
    assert bridge.safety.estopped and not bridge.approaching and bridge.resume_after_estop
    refused = call(bridge.on_reset)
    assert not refused.success and "e-stop latched" in refused.message and bridge.safety.estopped
    cleared = call(bridge.on_estop_reset)
    assert cleared.success and not bridge.safety.estopped
    assert "homing for the next episode" in cleared.message and bridge.approaching


def test_an_estop_during_the_approach_restarts_it_after_the_reset(bridge):
    call(bridge.on_estop)
    assert not bridge.approaching and bridge.resume_after_estop  # no approach timeout fault while the arm holds
    assert call(bridge.on_estop_reset).success and bridge.approaching and not bridge.safety.faulted


def test_the_call_command_says_when_nothing_offers_the_service():
    env = dict(os.environ, ROS_DOMAIN_ID="231")  # a domain no test graph uses
    done = subprocess.run([sys.executable, "-m", "modem_ros.cli", "call", "estop-reset", "--timeout", "1"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "nothing offers modem/estop/reset on ROS_DOMAIN_ID=231" in done.stderr, done.stderr
