"""Command -> the task's action: axis map, deadzone, scale. One mapping for every device."""

from __future__ import annotations

import numpy as np

from modem_ros.teleop.command import CHANNELS, Command

JOINT = "joint"


def default_axis_map(action_dim: int) -> str:
    """End-effector delta + gripper (Franka cell, Meta-World: 4-D), the toy task's plane (2-D: image right
    is -y, image up is +x, so a stick or key moves the dot the way it points), else joint space."""
    return {4: "x,y,z,gripper", 3: "x,y,z", 2: "-y,x"}.get(action_dim, JOINT)


class ActionMapper:
    """axis_map: comma-separated, one entry per action dimension: a channel (x y z roll pitch yaw gripper),
    optionally negated ("-y"), or "0"; or "joint": the x channel drives one selected joint at a time."""

    def __init__(self, action_dim: int, axis_map: str = "", scale: float = 1.0, deadzone: float = 0.1):
        if not 0 <= deadzone < 1:
            raise ValueError(f"deadzone must be in [0, 1), got {deadzone}")
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.action_dim, self.scale, self.deadzone = action_dim, scale, deadzone
        self.axis_map = axis_map or default_axis_map(action_dim)
        self.joint = 0
        self.entries: list[tuple[str, float]] = []
        if self.axis_map != JOINT:
            entries = [e.strip() for e in self.axis_map.split(",")]
            if len(entries) != action_dim:
                raise ValueError(f"axis_map '{self.axis_map}' has {len(entries)} entries, the task's action has "
                                 f"{action_dim} dimensions")
            for entry in entries:
                name, sign = entry.lstrip("-+"), -1.0 if entry.startswith("-") else 1.0
                if name != "0" and name not in (*CHANNELS, "gripper"):
                    raise ValueError(f"axis_map entry '{entry}' is not one of {', '.join(CHANNELS)}, gripper, 0")
                self.entries.append((name, sign))

    def select_joint(self, step: int) -> int:
        self.joint = (self.joint + step) % self.action_dim
        return self.joint

    def shape(self, value: float) -> float:
        """Deadzone (rescaled so output is continuous from 0), then scale."""
        magnitude = abs(value)
        if magnitude <= self.deadzone:
            return 0.0
        return float(np.sign(value)) * (magnitude - self.deadzone) / (1 - self.deadzone) * self.scale

    def __call__(self, command: Command) -> np.ndarray:
        action = np.zeros(self.action_dim, np.float32)
        if self.axis_map == JOINT:
            action[self.joint] = self.shape(command.channel("x"))
        else:
            for i, (name, sign) in enumerate(self.entries):
                if name == "gripper":
                    action[i] = sign * command.gripper  # a gripper command is not a velocity: no deadzone/scale
                elif name != "0":
                    action[i] = sign * self.shape(command.channel(name))
        return np.clip(action, -1.0, 1.0)
