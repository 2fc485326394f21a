"""Input devices -> actions, without ROS: the keyboard through a real pseudo-terminal, the gamepad through
evdev's own event and range types, the SpaceMouse through pyspacemouse's state type."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from modem_ros.teleop import ActionMapper, Command, DeviceLost
from modem_ros.teleop.keyboard import Keyboard, KeyState, key_help, split_keys


def test_mapper_applies_axis_map_deadzone_scale_and_refuses_bad_maps():
    mapper = ActionMapper(4, "", scale=0.5, deadzone=0.2)  # Franka / Meta-World: x, y, z, gripper
    action = mapper(Command(np.array([1.0, -0.6, 0.1, 0, 0, 0], np.float32), gripper=1.0))
    np.testing.assert_allclose(action, [0.5, -0.25, 0.0, 1.0], atol=1e-6)  # gripper is not scaled
    np.testing.assert_allclose(ActionMapper(2)(Command(np.array([1.0, -1.0, 0, 0, 0, 0], np.float32))), [1, 1])
    joint = ActionMapper(24)  # Adroit: joint space, one joint at a time
    assert joint.axis_map == "joint" and joint.select_joint(-1) == 23
    assert joint(Command(np.array([1.0, 0, 0, 0, 0, 0], np.float32)))[23] == 1.0
    for bad, match in (("x,y", "2 entries"), ("x,y,w,gripper", "'w'")):
        with pytest.raises(ValueError, match=match):
            ActionMapper(4, bad)
    with pytest.raises(ValueError, match="deadzone"):
        ActionMapper(4, deadzone=1.0)


def test_key_hold_bridges_auto_repeat_and_the_opposite_key_stops_at_once():
    keys = KeyState(hold=0.5)
    assert keys.press("w", now=0.0) == []
    assert keys.command(0.4).motion[0] == 1.0 and keys.command(0.6).motion[0] == 0.0
    keys.press("w", now=1.0)
    keys.press("s", now=1.1)  # opposite: stop, not reverse
    assert keys.command(1.2).motion[0] == 0.0
    keys.press(" ", now=1.2)
    assert keys.command(1.2).gripper == 1.0
    assert split_keys("n\x1b[Cx\x1b[D\r") == ["n", "\x1b[C", "x", "\x1b[D", "\r"]
    assert [keys.press(k, 2.0) for k in ("n", "\x1b[C", "\x7f", "b", "t", "e")] == [
        ["start"], ["save"], ["discard"], ["re_record"], ["engage"], ["estop"]]


def test_keyboard_reads_a_terminal_and_reports_its_hang_up():
    master, slave = os.openpty()
    keyboard = Keyboard(os.ttyname(slave), hold=0.5, help_text="keys: d/a right/left")
    try:
        assert b"[teleop] keys: d/a right/left" in os.read(master, 4096)  # the session's key line, on its terminal
        command, events = keyboard.poll(0.0)
        assert events == [] and not command.motion.any()  # no key yet: nothing, and not a hang-up
        os.write(master, b"dr\n")
        command, events = keyboard.poll(0.1)
        assert events == ["save"] and command.motion[1] == -1.0 and command.motion[2] == 1.0
        os.close(master)
        os.close(slave)
        with pytest.raises(DeviceLost, match="hung up"):
            keyboard.poll(0.2)
    finally:
        keyboard.close()


def test_gamepad_events_map_through_the_devices_own_ranges():
    evdev = pytest.importorskip("evdev")
    from evdev import ecodes

    from modem_ros.teleop.gamepad import GamepadState

    stick = evdev.AbsInfo(value=0, min=-32768, max=32767, fuzz=16, flat=128, resolution=0)
    trigger = evdev.AbsInfo(value=0, min=0, max=255, fuzz=0, flat=0, resolution=0)
    pad = GamepadState({ecodes.ABS_X: stick, ecodes.ABS_Y: stick, ecodes.ABS_RY: stick, ecodes.ABS_RZ: trigger})

    def event(kind, code, value):
        return evdev.InputEvent(0, 0, kind, code, value)

    pad.apply(event(ecodes.EV_ABS, ecodes.ABS_Y, -32768))  # left stick pushed forward
    pad.apply(event(ecodes.EV_ABS, ecodes.ABS_X, 32767))   # and right
    pad.apply(event(ecodes.EV_ABS, ecodes.ABS_RZ, 255))    # right trigger pulled: close
    action = ActionMapper(4)(pad.command())
    np.testing.assert_allclose(action, [1.0, -1.0, 0.0, 1.0], atol=1e-4)
    assert pad.apply(event(ecodes.EV_KEY, ecodes.BTN_SOUTH, 1)) == ["save"]
    assert pad.apply(event(ecodes.EV_KEY, ecodes.BTN_SOUTH, 0)) == []  # release is not a second press
    assert pad.apply(event(ecodes.EV_KEY, ecodes.BTN_TL, 1)) == ["engage_on"]
    assert pad.apply(event(ecodes.EV_KEY, ecodes.BTN_TL, 0)) == ["engage_off"]


def test_an_unplugged_gamepad_raises_device_lost():
    pytest.importorskip("evdev")
    from modem_ros.teleop.gamepad import EvdevGamepad, GamepadState

    class UnpluggedDevice:  # FAKE kernel device: no /dev/uinput here to make a real one go away
        def read(self):
            raise OSError(errno.ENODEV, "No such device")

    pad = object.__new__(EvdevGamepad)
    pad.path, pad.device, pad.state = "/dev/input/event7", UnpluggedDevice(), GamepadState({})
    with pytest.raises(DeviceLost, match="event7 is gone"):
        pad.poll()


def test_spacemouse_state_maps_to_the_base_frame():
    types = pytest.importorskip("pyspacemouse.types")
    from modem_ros.teleop.spacemouse import spacemouse_command

    state = types.SpaceMouseState(x=0.5, y=1.0, z=-0.25, roll=0.0, pitch=0.0, yaw=0.3, buttons=[0, 0])
    command = spacemouse_command(state, gripper=-1.0)
    np.testing.assert_allclose(command.motion, [1.0, -0.5, -0.25, 0.0, 0.0, -0.3], atol=1e-6)


def test_the_key_line_lists_only_the_keys_that_act_in_this_session():
    toy = key_help("-y,x", recording=True, gating=False, robot=False)  # the toy task's plane, in sim
    assert "a/d left/right (action[0] = -y)" in toy and "w/s forward/back (action[1] = +x)" in toy
    assert "n start, Enter save, x discard, b re-record" in toy
    for absent in ("r/f", "space", "E-STOP", "task done", "take over", "[ ]", "roll"):
        assert absent not in toy, absent
    # the keys it names drive the action dimensions it says they drive
    keys = KeyState(hold=0.5)
    keys.press("d", now=0.0)
    assert ActionMapper(2, "-y,x", deadzone=0.0)(keys.command(0.1)).tolist() == [1.0, 0.0]
    robot = key_help("x,y,z,gripper", recording=False, gating=True, robot=True)  # train_robot's gate
    assert "r/f up/down (action[2] = +z)" in robot and "space gripper open/close (action[3])" in robot
    assert "t take over/hand back" in robot and "e E-STOP" in robot and "n next episode" in robot
    assert "Enter save" not in robot
    assert "[ ] pick a joint, w/s move it" in key_help("joint", recording=True, gating=False, robot=False)
