"""Episodes from the graph's per-topic streams, paired by order (see modem_ros/topics.py).

Each stream is reliable and in order, so the k-th image, state, action, reward and success of an
episode belong together, however the executor interleaves the callbacks. Episodes have a fixed
length (MoDem's tasks never end early), which marks where one ends and the next begins.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from modem_ros.data.episode import Episode
from modem_ros.envs.base import FrameStack


class StreamError(ValueError):
    """A stream item that cannot belong to an episode (wrong shape, non-finite)."""


class EpisodeAssembler:
    def __init__(self, frame_stack: int, episode_length: int, state_dim: int, action_dim: int,
                 interventions: bool = False):
        """interventions: pair the bridges' per-step intervention flags too (else every step is False)."""
        self.frame_stack, self.length, self.with_interventions = frame_stack, episode_length, interventions
        self.state_dim, self.action_dim = state_dim, action_dim
        self.frames: deque[np.ndarray] = deque()
        self.states: deque[np.ndarray] = deque()
        self.actions: deque[np.ndarray] = deque()
        self.interventions: deque[bool] = deque()  # per step: an operator drove it
        self.rewards: deque[float] = deque()
        self.successes: deque[bool] = deque()

    def add_frame(self, frame_chw: np.ndarray) -> None:
        self.frames.append(frame_chw)

    def add_state(self, state: np.ndarray) -> None:
        """Refused like the planner refuses it (wrong size, non-finite), so that both skip the same
        messages and the order-based pairing of every later step stays intact."""
        if state.shape != (self.state_dim,):
            raise StreamError(f"state has {state.shape}, expected ({self.state_dim},)")
        if not np.all(np.isfinite(state)):
            raise StreamError(f"state has non-finite values at indices {np.flatnonzero(~np.isfinite(state)).tolist()}")
        self.states.append(state.astype(np.float32))

    def add_action(self, action: np.ndarray) -> None:
        if action.shape != (self.action_dim,) or not np.all(np.isfinite(action)):
            raise StreamError(f"action {action.tolist()} is not {self.action_dim} finite values")
        self.actions.append(action.astype(np.float32))

    def add_intervention(self, intervened: bool) -> None:
        self.interventions.append(bool(intervened))

    def add_reward(self, reward: float) -> None:
        if not np.isfinite(reward):
            raise StreamError(f"reward {reward} is not finite")
        self.rewards.append(float(reward))

    def add_success(self, success: bool) -> None:
        self.successes.append(bool(success))

    def pop_episode(self) -> Episode | None:
        """The oldest complete episode, or None while one of its streams is still short."""
        n = self.length
        if (len(self.frames) <= n or len(self.states) <= n or len(self.actions) < n
                or len(self.rewards) < n or len(self.successes) < n
                or (self.with_interventions and len(self.interventions) < n)):
            return None
        stack = FrameStack(self.frame_stack)
        episode = Episode.start({"rgb": stack.reset(self.frames.popleft()), "state": self.states.popleft()})
        for _ in range(n):
            obs = {"rgb": stack.push(self.frames.popleft()), "state": self.states.popleft()}
            episode.add(self.actions.popleft(), obs, self.rewards.popleft(), self.successes.popleft(),
                        self.interventions.popleft() if self.with_interventions else False)
        return episode
