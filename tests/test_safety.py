"""The safety layer: no sequence of actions, however hostile, yields a command outside the limits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modem_ros.robots import franka_spec as spec
from modem_ros.robots.safety import SafetyLayer, SafetyLimits, Watchdog, quat_angle

DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # x, y, z, w: tool pointing down (180 deg about x)
LIMITS = SafetyLimits()
DT = 0.1
TOL = 1e-9

hostile_value = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                          st.sampled_from([1.0, -1.0, 0.0, 1e9, -1e9, 5.0, -5.0]))
hostile_action = st.one_of(
    st.none(),
    st.lists(hostile_value, min_size=4, max_size=4),
    st.lists(hostile_value, min_size=0, max_size=7),  # wrong sizes too
)
start = st.tuples(*(st.floats(lo, hi) for lo, hi in zip(spec.WORKSPACE_LOW, spec.WORKSPACE_HIGH, strict=False)))


def check_limits(layer: SafetyLayer, commands, start_position, accel: bool) -> None:
    low, high = np.asarray(LIMITS.workspace_low), np.asarray(LIMITS.workspace_high)
    positions = [np.asarray(start_position)] + [c.position for c in commands]
    velocities = [np.zeros(3)] + [(b - a) / DT for a, b in zip(positions, positions[1:], strict=False)]
    for i, command in enumerate(commands):
        assert np.all(np.isfinite(command.position)) and np.all(np.isfinite(command.quaternion))
        assert np.all(command.position >= low - TOL) and np.all(command.position <= high + TOL), command.position
        assert np.linalg.norm(positions[i + 1] - positions[i]) <= LIMITS.max_step + TOL
        assert np.linalg.norm(velocities[i + 1]) <= LIMITS.max_speed + 1e-7
        if accel:
            assert np.all(np.abs(velocities[i + 1] - velocities[i]) <= LIMITS.max_accel * DT + 1e-7)
        assert command.gripper_force <= LIMITS.gripper_max_force
        assert abs(np.linalg.norm(command.quaternion) - 1) < 1e-9


@settings(max_examples=300, deadline=None)
@given(actions=st.lists(hostile_action, min_size=1, max_size=80), origin=start)
def test_hostile_actions_stay_inside_the_limits_while_the_arm_tracks(actions, origin):
    layer = SafetyLayer(LIMITS, DT, DOWN)
    layer.reset(origin, DOWN)
    commands, measured = [], np.asarray(origin)
    for action in actions:
        command = layer.command(action, measured, DOWN).command
        commands.append(command)
        measured = command.position  # a perfectly tracking arm
    check_limits(layer, commands, origin, accel=True)


@settings(max_examples=200, deadline=None)
@given(actions=st.lists(st.lists(st.floats(-1e3, 1e3), min_size=4, max_size=4), min_size=1, max_size=60),
       measured=st.lists(st.tuples(st.floats(-2, 2), st.floats(-2, 2), st.floats(-2, 2)), min_size=60, max_size=60),
       origin=start)
def test_box_step_and_speed_hold_whatever_the_arm_reports(actions, measured, origin):
    """A blocked or misreporting arm: the target still never leaves the box nor jumps."""
    layer = SafetyLayer(LIMITS, DT, DOWN)
    layer.reset(origin, DOWN)
    commands = [layer.command(a, m, DOWN).command for a, m in zip(actions, measured, strict=False)]
    check_limits(layer, commands, origin, accel=False)


def test_full_speed_into_a_wall_brakes_within_the_acceleration_limit():
    layer = SafetyLayer(LIMITS, DT, DOWN)
    layer.reset([0.5, 0.0, 0.2], DOWN)
    commands = [layer.command([0, 0, -1, 0], None, DOWN) for _ in range(60)]
    assert commands[-1].command.position[2] == pytest.approx(LIMITS.workspace_low[2], abs=1e-6)
    assert any(e == "clipped_workspace" for d in commands for e in d.events)
    check_limits(layer, [d.command for d in commands], [0.5, 0.0, 0.2], accel=True)
    assert layer.counts["clipped_workspace"] > 0


def test_actions_move_the_target_by_the_commanded_delta():
    layer = SafetyLayer(LIMITS, DT, DOWN)
    layer.reset(spec.START_TCP, DOWN)
    a = np.array([0.5, -0.25, 0.0, -1.0])
    decisions = [layer.command(a, None, DOWN) for _ in range(10)]
    step = np.diff([d.command.position for d in decisions], axis=0)[-1]
    np.testing.assert_allclose(step, a[:3] * 2 * spec.MAX_TRANSLATION, atol=1e-12)
    np.testing.assert_array_equal(decisions[-1].action, a)  # executed as given: reported as applied
    np.testing.assert_array_equal(layer.command([2, 0, 0, 0], None, DOWN).action, [1, 0, 0, 0])  # as clipped


@pytest.mark.parametrize("bad", [[np.nan, 0, 0, 0], [0, np.inf, 0, 0], [0, 0, 0], [0, 0, 0, 0, 0]])
def test_malformed_actions_are_rejected_counted_and_hold(bad):
    layer = SafetyLayer(LIMITS, DT, DOWN)
    layer.reset(spec.START_TCP, DOWN)
    for _ in range(3):
        layer.command([1, 0, 0, 1], None, DOWN)
    moving = layer.target.copy()
    decisions = [layer.command(bad, None, DOWN) for _ in range(5)]
    assert all(d.command.hold for d in decisions)
    assert sum(layer.counts[k] for k in ("rejected_nonfinite", "rejected_shape")) == 5
    assert decisions[-1].command.position[0] - moving[0] < 0.05  # braked, then stopped
    np.testing.assert_allclose(decisions[-1].command.position, decisions[-2].command.position)
    assert decisions[-1].command.gripper_closed


def test_estop_latches_until_reset():
    layer = SafetyLayer(LIMITS, DT, DOWN)
    layer.reset(spec.START_TCP, DOWN)
    layer.command([1, 0, 0, 0], None, DOWN)
    layer.estop()
    decisions = [layer.command([1, 1, 1, 1], None, DOWN) for _ in range(20)]
    held = [d.command for d in decisions]
    assert all(c.hold for c in held)
    assert all(d.action is None for d in decisions)  # not executed: never reported as the applied action
    np.testing.assert_allclose(held[-1].position, held[-2].position)  # at rest
    assert layer.estopped and layer.counts["hold_estop"] == 20
    layer.estop()
    assert layer.counts["estop"] == 1  # a second press is the same latch
    layer.reset(held[-1].position, DOWN)
    moved = layer.command([1, 0, 0, 0], None, DOWN).command
    assert not moved.hold and moved.position[0] > held[-1].position[0]


def test_tilted_tool_faults_and_the_orientation_returns_home_slowly():
    tilted = np.array([np.cos(0.2), 0.0, np.sin(0.2), 0.0])  # 0.4 rad about y: tilted off home
    layer = SafetyLayer(LIMITS, DT, DOWN)
    layer.reset(spec.START_TCP, tilted / np.linalg.norm(tilted))
    angles = []
    for _ in range(12):
        q = layer.command([0, 0, 0, 0], None, DOWN).command.quaternion
        angles.append(quat_angle(q, DOWN))
    assert all(b < a for a, b in zip(angles, angles[1:], strict=False) if a > 0)
    assert angles[-1] == pytest.approx(0, abs=1e-9)
    assert all(a - b <= LIMITS.max_rotation_step + 1e-9 for a, b in zip(angles, angles[1:], strict=False))
    fault = layer.command([1, 0, 0, 0], None, tilted / np.linalg.norm(tilted))
    assert fault.command.hold and layer.faulted and layer.counts["hold_fault"] == 1


def test_watchdog_holds_within_its_deadline():
    layer = SafetyLayer(LIMITS, DT, DOWN)
    layer.reset(spec.START_TCP, DOWN)
    dog = Watchdog(LIMITS.watchdog)
    now = 0.0
    for _ in range(5):
        dog.feed("action", now)
        dog.feed("observation", now)
        layer.command([1, 0, 0, 0], None, DOWN, stale=dog.verdict(now))
        now += DT
    last_fed = now - DT
    positions, first_hold = [], None
    for _ in range(10):  # actions stop; observations keep coming
        dog.feed("observation", now)
        decision = layer.command(None, None, DOWN, stale=dog.verdict(now))
        if decision.command.hold and "no action" in " ".join(decision.events) and first_hold is None:
            first_hold = now
        positions.append(decision.command.position)
        now += DT
    assert first_hold is not None and first_hold - last_fed <= LIMITS.watchdog + DT
    np.testing.assert_allclose(positions[-1], positions[-2])  # held still
    assert dog.verdict(now).startswith("no action for")


def test_gripper_force_is_limited_and_the_gripper_does_not_chatter():
    layer = SafetyLayer(SafetyLimits(gripper_max_force=15.0), DT, DOWN, grasp_force=60.0)
    layer.reset(spec.START_TCP, DOWN)
    decision = layer.command([0, 0, 0, 1], None, DOWN)
    assert decision.command.gripper_force == 15.0 and "clipped_gripper_force" in decision.events
    states = [layer.command([0, 0, 0, v], None, DOWN).command.gripper_closed for v in (0.1, -0.1, 0.15, -0.3, 0.3)]
    assert states == [True, True, True, False, True]


def test_malformed_limits_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="max_speed"):
        SafetyLimits(max_speed=float("nan"))
    with pytest.raises(ValueError, match="workspace_low"):
        SafetyLimits(workspace_low=(0.5, 0, 0), workspace_high=(0.4, 1, 1))


def test_an_arm_measured_outside_the_box_faults_and_holds():
    layer = SafetyLayer(LIMITS, DT, DOWN)
    layer.reset(spec.START_TCP, DOWN)
    inside = np.array([spec.WORKSPACE_HIGH[0] + 0.02, 0.0, 0.2])  # lagging/contact within the margin: fine
    assert not layer.command([1, 0, 0, 0], inside, DOWN).command.hold
    folded = np.array([-0.09, -0.1, 0.21])  # what franky-sim's arm did past its reach: behind the base
    decision = layer.command([1, 0, 0, 0], folded, DOWN)
    assert decision.command.hold and decision.action is None and "outside the workspace" in layer.faulted
    assert layer.command([1, 0, 0, 0], spec.START_TCP, DOWN).command.hold  # latched until reset
    assert layer.command([1, 0, 0, 0], [np.nan, 0, 0], DOWN).command.hold
    layer.reset(spec.START_TCP, DOWN)
    assert layer.command([1, 0, 0, 0], [np.nan, 0.0, 0.3], DOWN).command.hold and "not finite" in layer.faulted
