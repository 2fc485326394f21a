"""Terminal keyboard: works over SSH and without an X server (reads the terminal, not a display).

A terminal reports key presses (and auto-repeats), never releases: a motion key drives its channel for
`hold` seconds after its last press (longer than the auto-repeat delay, so a held key moves smoothly);
the opposite key stops that channel at once. The terminal is put in cbreak mode without echo (Ctrl-C
still interrupts) and restored on close.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import termios
import time

import numpy as np

from modem_ros.teleop.command import CHANNELS, Command, DeviceLost

MOTION_KEYS = {  # key: (channel, direction)
    "w": ("x", 1), "s": ("x", -1), "a": ("y", 1), "d": ("y", -1), "r": ("z", 1), "f": ("z", -1),
    "u": ("roll", 1), "o": ("roll", -1), "i": ("pitch", 1), "k": ("pitch", -1), "j": ("yaw", 1), "l": ("yaw", -1),
}
EVENT_KEYS = {
    "n": "start", "\r": "save", "\n": "save", "\x1b[C": "save",               # n, Enter, right arrow
    "\x7f": "discard", "\x08": "discard", "x": "discard",                   # Backspace, x
    "b": "re_record", "\x1b[D": "re_record",                                # b, left arrow
    "t": "engage", "]": "joint_next", "[": "joint_prev",
    "e": "estop",                                                           # software e-stop (robot bridge)
    "y": "success",                                                         # the task is done (hardware reward)
}
# what a channel's +/- keys do: x/y/z in the robot's base frame (REP-103); in the toy task's top view,
# forward is the image's up (its default axis map, teleop/mapping.py)
CHANNEL_MEANING = {"x": "forward/back", "y": "left/right", "z": "up/down", "roll": "roll +/-",
                   "pitch": "pitch +/-", "yaw": "yaw +/-"}


def key_help(axis_map: str, recording: bool, gating: bool, robot: bool) -> str:
    """The keys that act in this session only: the motion keys of the channels the task's action uses
    (saying which action dimension each drives, and that a "-" entry reverses it), then the events that do
    something here (recording, taking over from a planner, the robot's task-done and e-stop)."""
    parts = []
    if axis_map == "joint":
        parts.append("[ ] pick a joint, w/s move it")
    for i, entry in enumerate(e.strip() for e in axis_map.split(",") if axis_map != "joint"):
        name = entry.lstrip("-+")
        if name == "gripper":
            parts.append(f"space gripper open/close (action[{i}])")
        elif name in CHANNEL_MEANING:
            plus, minus = (next(k for k, (c, d) in MOTION_KEYS.items() if c == name and d == sign) for sign in (1, -1))
            sign = "-" if entry.startswith("-") else "+"
            parts.append(f"{plus}/{minus} {CHANNEL_MEANING[name]} (action[{i}] = {sign}{name})")
    if recording:
        parts.append("n start, Enter save, x discard, b re-record")
    if gating:
        parts.append("t take over/hand back")
    if robot:
        parts.append(("" if recording else "n next episode (when the bridge waits for you), ")
                     + "y task done, e E-STOP")
    return "keys: " + "; ".join([*parts, "Ctrl-C quit"])


def split_keys(data: str) -> list[str]:
    """Bytes from the terminal -> keys; arrow keys arrive as 3-character escape sequences."""
    keys, i = [], 0
    while i < len(data):
        if data[i] == "\x1b" and data[i + 1:i + 2] == "[" and i + 2 < len(data):
            keys.append(data[i:i + 3])
            i += 3
        else:
            keys.append(data[i])
            i += 1
    return keys


class KeyState:
    """Keys -> Command + events, with the hold timing; separate from the terminal for testing."""

    def __init__(self, hold: float):
        self.hold = hold
        self.until = np.zeros(len(CHANNELS))        # time each channel stops
        self.direction = np.zeros(len(CHANNELS))
        self.gripper = -1.0

    def press(self, key: str, now: float) -> list[str]:
        key = key.lower() if len(key) == 1 else key
        if key in MOTION_KEYS:
            channel, direction = MOTION_KEYS[key]
            c = CHANNELS.index(channel)
            if self.direction[c] == -direction and self.until[c] > now:
                self.until[c] = 0.0  # the opposite key: stop now
            else:
                self.direction[c], self.until[c] = direction, now + self.hold
            return []
        if key == " ":
            self.gripper = -self.gripper
            return []
        return [EVENT_KEYS[key]] if key in EVENT_KEYS else []

    def command(self, now: float) -> Command:
        return Command(np.where(self.until > now, self.direction, 0.0).astype(np.float32), self.gripper)


class Keyboard:
    name = "keyboard"

    def __init__(self, tty: str = "", hold: float = 0.5, help_text: str = ""):
        """help_text: the key line shown on the terminal (key_help(...) for this session)."""
        self.path = tty or os.environ.get("MODEM_ROS_TTY") or "/dev/tty"
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as err:
            raise DeviceLost(f"keyboard: cannot open terminal {self.path} ({err.strerror}); run in a terminal "
                             "(ssh -t over SSH) or set keyboard_tty") from err
        self.saved = termios.tcgetattr(self.fd)
        mode = termios.tcgetattr(self.fd)
        mode[3] &= ~(termios.ICANON | termios.ECHO)  # lflags: key by key, no echo; ISIG kept for Ctrl-C
        mode[6][termios.VMIN], mode[6][termios.VTIME] = 0, 0
        termios.tcsetattr(self.fd, termios.TCSANOW, mode)
        self.keys = KeyState(hold)
        self.poller = select.poll()
        self.poller.register(self.fd, select.POLLIN)
        self.say(help_text or key_help("x,y,z,gripper", recording=True, gating=True, robot=True))

    def say(self, text: str) -> None:
        """A line on the operator's terminal (the node also logs it)."""
        with contextlib.suppress(OSError):
            os.write(self.fd, f"\r\n[teleop] {text}\r\n".encode())

    def poll(self, now: float | None = None) -> tuple[Command, list[str]]:
        now = time.monotonic() if now is None else now
        events: list[str] = []
        # a hung-up terminal (SSH closed, pty master gone) reads as empty, like "no key": poll tells them apart
        flags = self.poller.poll(0)
        if flags and flags[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
            raise DeviceLost(f"keyboard: terminal {self.path} hung up")
        try:
            data = os.read(self.fd, 1024) if flags else b""
        except BlockingIOError:
            data = b""
        except OSError as err:
            raise DeviceLost(f"keyboard: terminal {self.path} is gone ({errno.errorcode.get(err.errno, err)})") from err
        for key in split_keys(data.decode(errors="replace")):
            events += self.keys.press(key, now)
        return self.keys.command(now), events

    def close(self) -> None:
        with contextlib.suppress(OSError, termios.error):  # a hung-up terminal has no modes to restore
            termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)
        with contextlib.suppress(OSError):
            os.close(self.fd)
