"""Episodes from the graph's per-topic streams, paired by order (see modem_ros/topics.py).

Each stream is reliable and in order, so the k-th image, state, action, reward and success of an
episode belong together, however the executor interleaves the callbacks. Episodes have a fixed
length (MoDem's tasks never end early), which marks where one ends and the next begins. A bridge may
cut one short (the robot's e-stop, a reset mid-episode): its states are labelled with their step in
the episode (topics.STEP_LABEL), so a state at step 0 before the current episode is full closes it,
and that short episode - k observations, k - 1 steps in every stream - is dropped, never trained on.
On hardware the camera sends an empty placeholder for an observation it had no fresh frame for (added
here as None): it keeps the count, and the episode holding it is dropped too.
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
        # states per episode not yet popped, in order; the last may still be growing. A segment shorter
        # than length + 1 followed by another was cut short at the bridge.
        self.segments: deque[int] = deque()
        self.cut_short: list[int] = []  # steps of each episode dropped as cut short, for the caller to report
        self.missing_frames: list[int] = []  # frames missing from each full episode dropped for it, to report

    def add_frame(self, frame_chw: np.ndarray | None) -> None:
        """None: the camera had no frame for this observation (its placeholder); the episode is dropped."""
        self.frames.append(frame_chw)

    def add_state(self, state: np.ndarray, step: int | None = None) -> None:
        """Refused like the planner refuses it (wrong size, non-finite), so that both skip the same
        messages and the order-based pairing of every later step stays intact. step: the bridge's label
        (its step in the episode); None = unlabelled, counted against the fixed length."""
        if state.shape != (self.state_dim,):
            raise StreamError(f"state has {state.shape}, expected ({self.state_dim},)")
        if not np.all(np.isfinite(state)):
            raise StreamError(f"state has non-finite values at indices {np.flatnonzero(~np.isfinite(state)).tolist()}")
        if step == 0 or not self.segments or self.segments[-1] == self.length + 1:
            self.segments.append(0)
        self.segments[-1] += 1
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

    def _available(self, observations: int) -> bool:
        n = observations - 1  # steps
        return (len(self.frames) >= observations and len(self.states) >= observations and len(self.actions) >= n
                and len(self.rewards) >= n and len(self.successes) >= n
                and (not self.with_interventions or len(self.interventions) >= n))

    def _discard(self, observations: int) -> None:
        """Remove the oldest episode's items: `observations` frames and states, one fewer of the rest."""
        for stream in (self.frames, self.states):
            for _ in range(observations):
                stream.popleft()
        for stream in (self.actions, self.rewards, self.successes) + ((self.interventions,)
                                                                      if self.with_interventions else ()):
            for _ in range(observations - 1):
                stream.popleft()

    def _drop_cut_short(self) -> None:
        """Drop every episode at the head that was cut short, once all its items have arrived."""
        while len(self.segments) > 1 and self.segments[0] < self.length + 1 and self._available(self.segments[0]):
            observations = self.segments.popleft()
            self._discard(observations)
            self.cut_short.append(observations - 1)

    def pop_episode(self) -> Episode | None:
        """The oldest complete episode, or None while one of its streams is still short. Complete episodes
        with a missing frame are dropped on the way (counted in missing_frames)."""
        n = self.length
        while True:
            self._drop_cut_short()
            if not self.segments or self.segments[0] < n + 1 or not self._available(n + 1):
                return None
            self.segments.popleft()
            missing = sum(self.frames[i] is None for i in range(n + 1))
            if not missing:
                break
            self._discard(n + 1)
            self.missing_frames.append(missing)
        stack = FrameStack(self.frame_stack)
        episode = Episode.start({"rgb": stack.reset(self.frames.popleft()), "state": self.states.popleft()})
        for _ in range(n):
            obs = {"rgb": stack.push(self.frames.popleft()), "state": self.states.popleft()}
            episode.add(self.actions.popleft(), obs, self.rewards.popleft(), self.successes.popleft(),
                        self.interventions.popleft() if self.with_interventions else False)
        return episode
