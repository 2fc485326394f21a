"""Gamepad through Linux evdev (any pad the kernel knows: Xbox, PlayStation, Logitech; no display needed).

Left stick: x forward/back, y left/right. Right stick: z up/down (vertical), yaw (horizontal).
Right trigger: gripper (released = open, pulled = closed). LB held: deadman, a human drives (planner
runs otherwise). START: start episode, A: save, B: discard, Y: re-record, X: task done (the robot's
reward), SELECT/BACK: e-stop. Axes are normalized by the device's own ranges (absinfo).
"""

from __future__ import annotations

import evdev
import numpy as np
from evdev import ecodes

from modem_ros.teleop.command import CHANNELS, Command, DeviceLost

STICKS = {  # axis code: (channel, sign); evdev's stick y grows downward
    ecodes.ABS_Y: ("x", -1.0), ecodes.ABS_X: ("y", -1.0), ecodes.ABS_RY: ("z", -1.0), ecodes.ABS_RX: ("yaw", -1.0),
}
GRIPPER_AXIS = ecodes.ABS_RZ
BUTTONS = {ecodes.BTN_START: "start", ecodes.BTN_SOUTH: "save", ecodes.BTN_EAST: "discard",
           ecodes.BTN_NORTH: "re_record", ecodes.BTN_DPAD_RIGHT: "joint_next", ecodes.BTN_DPAD_LEFT: "joint_prev",
           ecodes.BTN_SELECT: "estop", ecodes.BTN_WEST: "success"}
DEADMAN = ecodes.BTN_TL


class GamepadState:
    """evdev InputEvents -> Command + events; `absinfo` maps axis code -> evdev.AbsInfo (min, max)."""

    def __init__(self, absinfo: dict[int, evdev.AbsInfo]):
        self.absinfo = absinfo
        self.motion = np.zeros(len(CHANNELS), np.float32)
        self.gripper = -1.0

    def normalized(self, code: int, value: int) -> float:
        info = self.absinfo.get(code)
        if info is None or info.max == info.min:
            return 0.0
        return float(np.clip(2.0 * (value - info.min) / (info.max - info.min) - 1.0, -1.0, 1.0))

    def apply(self, event: evdev.InputEvent) -> list[str]:
        if event.type == ecodes.EV_ABS:
            if event.code in STICKS:
                channel, sign = STICKS[event.code]
                self.motion[CHANNELS.index(channel)] = sign * self.normalized(event.code, event.value)
            elif event.code == GRIPPER_AXIS:
                self.gripper = self.normalized(event.code, event.value)  # trigger range -> [-1 open, +1 closed]
        elif event.type == ecodes.EV_KEY:
            if event.code == DEADMAN:
                return ["engage_on" if event.value else "engage_off"]
            if event.code in BUTTONS and event.value == 1:  # press, not release or auto-repeat
                return [BUTTONS[event.code]]
        return []

    def command(self) -> Command:
        return Command(self.motion.copy(), self.gripper)


def find_gamepad() -> str:
    for path in evdev.list_devices():
        device = evdev.InputDevice(path)
        keys = device.capabilities().get(ecodes.EV_KEY, [])
        if ecodes.BTN_GAMEPAD in keys or ecodes.BTN_SOUTH in keys:
            return path
    raise DeviceLost("gamepad: no evdev device with gamepad buttons under /dev/input (is it plugged in, and "
                     "is this user in the 'input' group?)")


class EvdevGamepad:
    name = "gamepad"

    def __init__(self, path: str = ""):
        self.path = path or find_gamepad()
        try:
            self.device = evdev.InputDevice(self.path)
        except OSError as err:
            raise DeviceLost(f"gamepad: cannot open {self.path} ({err.strerror})") from err
        absinfo = {code: info for code, info in self.device.capabilities(absinfo=True).get(ecodes.EV_ABS, [])}
        self.state = GamepadState(absinfo)

    def poll(self, now: float | None = None) -> tuple[Command, list[str]]:
        events: list[str] = []
        try:
            for event in self.device.read():
                events += self.state.apply(event)
        except BlockingIOError:
            pass
        except OSError as err:  # ENODEV: unplugged
            raise DeviceLost(f"gamepad: {self.path} is gone ({err.strerror})") from err
        return self.state.command(), events

    def close(self) -> None:
        self.device.close()
