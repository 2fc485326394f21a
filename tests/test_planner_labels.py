"""The planner node follows the bridge's step labels on modem/state: an episode cut short (e-stop) does
not shift where the next one starts, and a planner that first hears a bridge mid-episode acts on a full
frame stack instead of failing."""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs the ros extra: scripts/install.sh ros")

from rclpy.signals import SignalHandlerOptions  # noqa: E402

from modem_ros import topics  # noqa: E402
from modem_ros.nodes.common import image_msg, state_msg  # noqa: E402
from modem_ros.nodes.planner import Planner  # noqa: E402


@pytest.fixture
def planner(monkeypatch, tmp_path):
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path))
    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "-p", "task:=toy-reach", "-p", "device:=cpu"],
               signal_handler_options=SignalHandlerOptions.NO)
    node = Planner(context=context)
    node.version = 0  # acts without waiting for weights: act() is recorded below, not planned
    calls: list[tuple[np.ndarray, bool]] = []

    def act(obs, step, eval_mode=False, t0=False):
        calls.append((obs["rgb"], t0))
        return np.zeros(node.cfg.action_dim, np.float32)

    monkeypatch.setattr(node.agent, "act", act)
    try:
        yield node, calls
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def observe(node: Planner, value: int, step: int) -> None:
    size = node.cfg.img_size
    node.on_image(image_msg(np.full((size, size, 3), value, np.uint8), node.get_clock().now().to_msg(),
                            topics.CAMERA_FRAME))
    node.on_state(state_msg(np.zeros(node.cfg.state_dim), step))


def test_an_episode_cut_short_restarts_the_stack_at_the_next_step_zero(planner):
    node, calls = planner
    for value, step in [(1, 0), (2, 1), (3, 2), (9, 0), (10, 1)]:  # cut after 2 steps, then a new episode
        observe(node, value, step)
    assert [t0 for _, t0 in calls] == [True, False, False, True, False]
    stack = calls[3][0]
    assert np.all(stack == 9), "the new episode's stack holds only its own first frame"
    assert node.t == 2  # and counting goes on from the label


def test_a_planner_joining_mid_episode_acts_on_a_full_stack(planner):
    node, calls = planner
    observe(node, 5, 7)  # the first observation it hears is step 7 (it missed the episode's start)
    observe(node, 6, 8)
    assert len(calls) == 2 and calls[0][0].shape[0] == 3 * node.cfg.frame_stack
    assert np.all(calls[0][0] == 5) and not calls[0][1]
    assert np.all(calls[1][0][-3:] == 6) and np.all(calls[1][0][:3] == 5)
    assert node.t == 9


def test_a_new_episode_whose_first_observations_were_skipped_starts_a_fresh_stack(planner):
    node, calls = planner
    for value, step in [(1, 0), (2, 1), (3, 2), (7, 2), (8, 3)]:  # cut after 2; the next one heard from step 2
        observe(node, value, step)
    assert np.all(calls[3][0] == 7), "no frame of the cut episode in the new one's stack"
    assert np.all(calls[4][0][:3] == 7) and np.all(calls[4][0][-3:] == 8)
