"""What the Franka bridge needs from an arm, whichever way it is driven (franky over FCI, or the
franka_ros2 driver): read the state, go home, send a safety-checked target, stop, recover."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from modem_ros.robots.safety import ArmCommand

JOINT_NAMES = tuple(f"fr3_joint{i}" for i in range(1, 8))
FINGER_NAMES = ("fr3_finger_joint1", "fr3_finger_joint2")


class ArmError(RuntimeError):
    """The arm refused or aborted a command (reflex, lost connection); the bridge holds and reports it."""


class ArmNotReady(ArmError):
    """No state from the arm yet (a driver still starting up): wait for it, this is not a fault."""


@dataclass
class ArmState:
    position: np.ndarray      # TCP xyz in the base frame, metres
    quaternion: np.ndarray    # TCP orientation x, y, z, w
    joints: np.ndarray        # 7 joint angles, radians
    gripper_width: float      # metres between the fingers
    error: str = ""           # non-empty: the arm is in an error state (needs recover())


class ArmBackend(Protocol):
    name: str

    def read(self) -> ArmState: ...

    def home(self, joints: np.ndarray, tcp: np.ndarray) -> ArmState:
        """Blocking: move to the joint pose, then the TCP to `tcp` keeping the tool orientation; open the
        gripper. Returns the state there (its orientation becomes the safety layer's home)."""
        ...

    def send(self, command: ArmCommand) -> None: ...

    def stop(self) -> None:
        """Stop the running motion now (e-stop)."""
        ...

    def recover(self) -> None: ...

    def close(self) -> None: ...
