"""How a node stops on Ctrl-C / SIGTERM: between callbacks while it spins (a KeyboardInterrupt raised inside
rclpy's executor can land in its Task constructor, whose __del__ then prints a traceback at exit), at once
elsewhere (a trainer's update burst), and at once on a second signal."""

from __future__ import annotations

import os
import signal
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ros extra: scripts/install.sh ros")

from modem_ros.nodes import common  # noqa: E402


@pytest.fixture
def node(monkeypatch, tmp_path):
    monkeypatch.setenv("ROS_DOMAIN_ID", str(140 + os.getpid() % 30))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path))
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    common.install_stop_signals()
    node = rclpy.create_node("signals_probe")
    yield node
    node.destroy_node()
    rclpy.shutdown()
    common._stop.clear()
    signal.signal(signal.SIGINT, handlers[0])
    signal.signal(signal.SIGTERM, handlers[1])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_spinning_ends_the_loop_after_the_callback_not_inside_it(node, signum):
    steps = []

    def callback():
        steps.append("signalled")
        os.kill(os.getpid(), signum)
        time.sleep(0.05)  # the handler runs here, inside the callback
        steps.append("finished")  # not reached if the handler raised

    node.create_timer(0.01, callback)
    deadline = time.monotonic() + 10
    while common.keep_spinning():
        assert time.monotonic() < deadline, "the loop did not end"
        common.spin_once(node, timeout_sec=0.1)
    assert steps == ["signalled", "finished"] and common.stop_requested()
    assert rclpy.ok()  # the context is still up: the node can still publish its last messages


def test_a_signal_outside_the_executor_or_a_second_one_interrupts_at_once(node):
    with pytest.raises(KeyboardInterrupt):  # e.g. a trainer's update burst: it must not wait for the burst
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(2)
    assert not common.stop_requested()
    common._stop.set()  # a first signal has asked the loop to stop; a second one must not wait for it
    common._in_spin = True
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(2)
    finally:
        common._in_spin = False
