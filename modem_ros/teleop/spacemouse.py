"""3Dconnexion SpaceMouse through pyspacemouse (HID; needs the hidapi library and udev access).

Push forward/back/left/right/up/down: x/y/z; tilt and twist: roll/pitch/yaw. Left button: gripper
toggle; right button: take over / hand back to the planner.
"""

from __future__ import annotations

import numpy as np

from modem_ros.teleop.command import Command, DeviceLost


def spacemouse_command(state, gripper: float) -> Command:
    """pyspacemouse's SpaceMouseState (y forward, x right, z up) -> Command in the REP-103 base frame."""
    motion = np.array([state.y, -state.x, state.z, state.roll, state.pitch, -state.yaw], np.float32)
    return Command(np.clip(motion, -1.0, 1.0), gripper)


class SpaceMouse:
    name = "spacemouse"

    def __init__(self):
        try:
            import pyspacemouse

            self.device = pyspacemouse.open()
        except Exception as err:  # noqa: BLE001 - hidapi missing, no device, no permission: all mean "none"
            raise DeviceLost(f"spacemouse: cannot open ({type(err).__name__}: {err})") from err
        self.gripper, self.buttons = -1.0, [0, 0]

    def poll(self, now: float | None = None) -> tuple[Command, list[str]]:
        try:
            state = self.device.read()
        except Exception as err:  # noqa: BLE001 - the HID layer raises various errors on unplug
            raise DeviceLost(f"spacemouse: read failed ({err})") from err
        if not self.device.connected:
            raise DeviceLost("spacemouse: disconnected")
        buttons = list(state.buttons[:2]) + [0] * (2 - len(state.buttons[:2]))
        events = []
        if buttons[0] and not self.buttons[0]:
            self.gripper = -self.gripper
        if buttons[1] and not self.buttons[1]:
            events.append("engage")
        self.buttons = buttons
        return spacemouse_command(state, self.gripper), events

    def close(self) -> None:
        self.device.close()
