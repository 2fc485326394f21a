"""Human input devices for teleoperation, without ROS: each turns its input into a Command (6-D motion +
gripper) and episode-control events; ActionMapper turns a Command into the task's action."""

from modem_ros.teleop.command import EVENTS, Command, DeviceLost
from modem_ros.teleop.mapping import ActionMapper, default_axis_map

__all__ = ["EVENTS", "ActionMapper", "Command", "DeviceLost", "default_axis_map", "open_device"]


def open_device(kind: str, **options):
    """keyboard | gamepad | spacemouse, with that device's options (see each class)."""
    if kind == "keyboard":
        from modem_ros.teleop.keyboard import Keyboard

        return Keyboard(options.get("tty", ""), hold=options.get("key_hold", 0.5), help_text=options.get("help", ""))
    if kind == "gamepad":
        from modem_ros.teleop.gamepad import EvdevGamepad

        return EvdevGamepad(options.get("path", ""))
    if kind == "spacemouse":
        from modem_ros.teleop.spacemouse import SpaceMouse

        return SpaceMouse()
    raise ValueError(f"unknown teleop device '{kind}'; known: keyboard, gamepad, spacemouse")
