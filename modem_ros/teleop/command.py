"""What every input device produces: a Command, and episode-control events."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CHANNELS = ("x", "y", "z", "roll", "pitch", "yaw")  # REP-103 base frame: x forward, y left, z up
# Episode control (the recorder's services) and teleop's own: engage toggles human control over the
# planner; engage_on/off are a deadman button's press and release; joint_* pick the joint in joint mode.
EVENTS = ("start", "save", "discard", "re_record", "engage", "engage_on", "engage_off", "joint_next",
          "joint_prev")


class DeviceLost(OSError):
    """The input device went away (unplugged, terminal closed); motion must stop."""


@dataclass
class Command:
    motion: np.ndarray = field(default_factory=lambda: np.zeros(6, np.float32))  # CHANNELS, each in [-1, 1]
    gripper: float = -1.0  # -1 open .. +1 closed

    def channel(self, name: str) -> float:
        return self.gripper if name == "gripper" else float(self.motion[CHANNELS.index(name)])
