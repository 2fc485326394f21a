"""The franky backend against franky-sim: the real Franka FCI protocol on loopback, a MuJoCo FR3 behind it."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest

from modem_ros.robots import franka_spec as spec
from modem_ros.robots.arm import ArmError
from modem_ros.robots.franky_arm import FrankyArm
from modem_ros.robots.safety import SafetyLayer, SafetyLimits

PERIOD = 0.1  # the policy rate on hardware: action_repeat 2 x 50 ms


@pytest.fixture(scope="module")
def arm(franky_sim):
    arm = FrankyArm(franky_sim, dynamics_factor=0.3, realtime=False)
    yield arm
    arm.close()


def run(arm, layer, actions, state):
    """Stream actions at the policy rate; returns the commands and the states measured after each."""
    commands, states = [], []
    for action in actions:
        decision = layer.command(action, state.position, state.quaternion)
        arm.send(decision.command)
        time.sleep(PERIOD)
        state = arm.read()
        commands.append(decision.command)
        states.append(state)
    return commands, states


def homed(arm):
    state = arm.home(spec.HOME_JOINTS, spec.START_TCP)
    layer = SafetyLayer(SafetyLimits(), PERIOD, state.quaternion)
    layer.reset(state.position, state.quaternion)
    return layer, state


def test_home_puts_the_tcp_at_the_start_pose_pointing_down(arm):
    layer, state = homed(arm)
    np.testing.assert_allclose(state.position, spec.START_TCP, atol=0.003)
    z_axis = _rotation(state.quaternion)[:, 2]
    assert z_axis[2] < -0.99  # tool z axis points down
    assert state.gripper_width == pytest.approx(spec.GRIPPER_MAX_WIDTH, abs=0.003)
    assert state.joints.shape == (7,) and not state.error


def test_end_effector_moves_by_the_commanded_deltas(arm):
    layer, start = homed(arm)
    action = np.array([0.6, -0.4, -0.5, -1.0])
    _, states = run(arm, layer, [action] * 8 + [np.zeros(4)] * 6, start)
    moved = states[-1].position - start.position
    expected = 8 * action[:3] * 2 * spec.MAX_TRANSLATION
    np.testing.assert_allclose(moved, expected, atol=0.004)  # 4 mm of tracking error at rest


def test_hostile_stream_keeps_the_tcp_inside_the_box(arm):
    layer, state = homed(arm)
    rng = np.random.default_rng(0)
    hostile = [rng.choice([-1e6, -1, 1, 1e6, np.nan, np.inf], size=4) for _ in range(25)]
    hostile += [np.array([1.0, 1.0, -1.0, 1.0])] * 25  # then flat out into a corner
    commands, states = run(arm, layer, hostile, state)
    low, high = np.asarray(spec.WORKSPACE_LOW), np.asarray(spec.WORKSPACE_HIGH)
    for c, s in zip(commands, states, strict=False):  # every target inside the box, exactly
        assert np.all(c.position >= low - 1e-9) and np.all(c.position <= high + 1e-9)
        assert not s.error
    # The arm's own jerk-limited braking can carry the TCP past a wall the target stopped at: 0-12 mm on
    # this machine, once 32 mm in CI. The layer's guarantee is not a distance but what it does then: a
    # TCP beyond workspace_margin faults it, and every later command holds.
    margin = layer.limits.workspace_margin
    positions = np.array([s.position for s in states])
    outside = np.flatnonzero(np.any((positions < low - margin) | (positions > high + margin), axis=1))
    if len(outside):
        assert layer.faulted and "outside the workspace" in layer.faulted, positions[outside].round(4).tolist()
        assert all(c.hold for c in commands[outside[0] + 1:])
    assert layer.counts["rejected_nonfinite"] > 0 and layer.counts["clipped_workspace"] > 0
    np.testing.assert_allclose(states[-1].position[:2], high[:2], atol=0.015)  # near the corner (reach), no further


def test_gripper_closes_and_opens(arm):
    layer, state = homed(arm)
    _, states = run(arm, layer, [np.array([0, 0, 0, 1.0])] * 12, state)
    assert states[-1].gripper_width < 0.005
    _, states = run(arm, layer, [np.array([0, 0, 0, -1.0])] * 12, states[-1])
    assert states[-1].gripper_width > spec.GRIPPER_MAX_WIDTH - 0.005


def test_a_toggling_gripper_stream_never_stalls_the_control_loop(arm):
    """A gripper command takes most of a second; the policy may flip its wish every step. Each period's
    send + read must stay fast (no waiting on a pending gripper command), and the last wish wins."""
    layer, state = homed(arm)
    slowest = 0.0
    for i in range(20):
        decision = layer.command(np.array([0, 0, 0, 1.0 if i % 2 else -1.0]), state.position, state.quaternion)
        started = time.perf_counter()
        arm.send(decision.command)
        state = arm.read()
        slowest = max(slowest, time.perf_counter() - started)
        time.sleep(PERIOD)
    assert slowest < 0.05, f"a period's send + read took {slowest:.3f} s: it waited on the gripper"
    _, states = run(arm, layer, [np.array([0, 0, 0, 1.0])] * 20, state)  # the wish settles on closed
    assert states[-1].gripper_width < 0.005


def test_home_right_after_a_streamed_target_ends_that_motion_first(arm):
    """The bridge homes at an episode's end, right after the last target went out. A stop sent before
    the server has started that target's motion is lost (every time, on franky-sim): one stop left the
    motion running and home() failed after waiting 5 s for it."""
    layer, state = homed(arm)
    arm.send(layer.command(np.array([0.5, 0, 0, 0]), state.position, state.quaternion).command)
    state = arm.home(spec.HOME_JOINTS, spec.START_TCP)
    np.testing.assert_allclose(state.position, spec.START_TCP, atol=0.003)
    assert not arm.robot.is_in_control


class _StopLost:
    """The real Robot with every stop() lost on the way (as a stop sent before its motion started is):
    the one way to keep a franky-sim motion running through close()'s stops."""

    def __init__(self, robot):
        self._robot = robot

    def stop(self):
        pass

    def __getattr__(self, name):
        return getattr(self._robot, name)


def test_close_refuses_to_drop_a_motion_that_outlives_every_stop(arm):
    """Dropping a Robot whose motion still runs blocks forever in franky's destructor: close() must say
    so and keep the connection instead, and a later close() (stops reaching the robot again) succeeds."""
    layer, state = homed(arm)
    arm.send(layer.command(np.array([0.5, 0, 0, 0]), state.position, state.quaternion).command)
    real = arm.robot
    arm.robot = _StopLost(real)
    with pytest.raises(ArmError, match="did not end .* connection stays open"):
        arm.close()
    assert arm.robot is not None and real.is_in_control
    arm.robot = real
    state = arm.home(spec.HOME_JOINTS, spec.START_TCP)  # still usable: the connection was kept
    np.testing.assert_allclose(state.position, spec.START_TCP, atol=0.003)


def test_close_frees_the_server_for_the_next_client(arm, franky_sim):
    """The FCI server serves one client at a time: a closed arm must really disconnect, or the next
    client (the bridge of the next launch, the next test) waits forever. Runs last: it closes `arm`.
    Closed while a gripper command still runs in franky's worker thread: dropping the gripper under it
    crashed the whole test process natively (CI, after the toggling test)."""
    layer, state = homed(arm)
    wish = -1.0 if state.gripper_width < 0.04 else 1.0  # the opposite of what the gripper is: it must move
    arm.send(layer.command(np.array([0, 0, 0, wish]), state.position, state.quaternion).command)
    assert arm.gripper_future is not None and not arm.gripper_future.wait(0)  # still running
    robot = arm.robot
    arm.close()
    # ended by close() itself: dropping a Robot whose motion still runs blocks in franky's destructor
    # (a hang seen in CI, when the one stop close() sent was lost)
    assert not robot.is_in_control
    del robot
    gc.collect()
    with pytest.raises(ArmError, match="closed"):
        arm.read()
    connected: list = []
    thread = threading.Thread(target=lambda: connected.append(FrankyArm(franky_sim, realtime=False)), daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert connected, "a new client could not connect after close(): the old connection is still held"
    state = connected[0].read()
    assert state.joints.shape == (7,) and not state.error
    # closed straight after a target went out (no gripper command to delay the stop this time)
    layer, state = homed(connected[0])
    connected[0].send(layer.command(np.array([0.5, 0, 0, 0]), state.position, state.quaternion).command)
    robot = connected[0].robot
    connected[0].close()
    assert not robot.is_in_control


def _rotation(q):
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])

