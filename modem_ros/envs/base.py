"""The adapter interface every suite implements: one observation contract for the agent and the graph.

obs = {"rgb": uint8 [3*frame_stack, img_size, img_size] (oldest frame first),
       "state": float32 [state_dim]}
step(action in [-1, 1]^action_dim) -> (obs, reward, done, info) with info["success"]: bool and, where the
task has one, info["goal_distance"]: float (what must reach the goal to the goal; the operator's view).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

Obs = dict[str, np.ndarray]


class EnvAdapter(Protocol):
    episode_length: int
    action_dim: int
    state_dim: int

    def reset(self, seed: int | None = None) -> Obs: ...

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, dict[str, Any]]: ...

    def expert_action(self) -> np.ndarray:
        """A scripted expert's action for the current state (used to generate demonstrations)."""
        ...


class FrameStack:
    """Keeps the last k frames; at reset the first frame is repeated k times (reference behaviour)."""

    def __init__(self, k: int):
        self.k = k
        self.frames: list[np.ndarray] = []

    def reset(self, frame: np.ndarray) -> np.ndarray:
        self.frames = [frame] * self.k
        return np.concatenate(self.frames, axis=0)

    def push(self, frame: np.ndarray) -> np.ndarray:
        self.frames = self.frames[1:] + [frame]
        return np.concatenate(self.frames, axis=0)

    def observe(self, frame: np.ndarray, first: bool) -> np.ndarray:
        """reset() on the first frame of an episode, push() afterwards; a stack that has seen no frame yet
        (a consumer joining mid-episode, as a planner that missed the bridge's first steps) starts here."""
        return self.reset(frame) if first or len(self.frames) < self.k else self.push(frame)


def check_action(action: np.ndarray, action_dim: int) -> np.ndarray:
    """Reject malformed actions with a clear message; clip finite ones into [-1, 1]."""
    action = np.asarray(action, dtype=np.float64)
    if action.shape != (action_dim,):
        raise ValueError(f"action has shape {action.shape}, expected ({action_dim},)")
    if not np.all(np.isfinite(action)):
        raise ValueError(f"action has non-finite values (NaN/inf): {action.tolist()}")
    return np.clip(action, -1.0, 1.0)
