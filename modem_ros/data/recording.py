"""Demo recording without ROS: the bridge's streams cut into episodes, and the cadence of each.

A bridge publishes, per episode, n+1 observations (image, state) and n executed actions, rewards and
successes, then an end event saying n. Streams are reliable and ordered per topic but not across
topics, so episodes are cut by counting (as the trainer's EpisodeAssembler and the bag reader do),
with n taken from the end events; an episode may end early (a reset cuts it), so its length is not
known until its end event arrives.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from modem_ros.data.episode import Episode
from modem_ros.envs.base import FrameStack


@dataclass
class Streams:
    """Every stream of the episodes not yet taken, oldest first; `ends` holds ended episodes' step counts."""

    frames: deque = field(default_factory=deque)      # uint8 [3, H, W]; None: the camera had no frame
    states: deque = field(default_factory=deque)      # float32 [state_dim]
    actions: deque = field(default_factory=deque)     # float32 [action_dim], as executed
    rewards: deque = field(default_factory=deque)
    successes: deque = field(default_factory=deque)
    arrivals: deque = field(default_factory=deque)    # wall-clock arrival of each state (cadence)
    ends: deque = field(default_factory=deque)

    def complete_steps(self) -> int:
        """Transitions of the oldest episode whose every stream has arrived (capped at its end, if ended)."""
        n = min(len(self.frames) - 1, len(self.states) - 1, len(self.actions), len(self.rewards),
                len(self.successes))
        return max(0, min(n, self.ends[0]) if self.ends else n)

    def oldest_ended(self) -> bool:
        """The oldest episode has ended and all its messages are here."""
        return bool(self.ends) and self.complete_steps() == self.ends[0]

    def missing_frames(self, steps: int) -> int:
        """Observations of the oldest episode's first `steps` transitions the camera had no frame for."""
        return sum(frame is None for frame in islice(self.frames, steps + 1))

    def take(self, steps: int, frame_stack: int) -> tuple[Episode, list[float]]:
        """The first `steps` transitions of the oldest episode as an Episode (frame stacks rebuilt), and
        the arrival times of its observations. Does not consume: call drop_oldest() for that."""
        stack = FrameStack(frame_stack)
        episode = Episode.start({"rgb": stack.reset(self.frames[0]), "state": self.states[0]})
        for t in range(steps):
            obs = {"rgb": stack.push(self.frames[t + 1]), "state": self.states[t + 1]}
            episode.add(self.actions[t], obs, self.rewards[t], self.successes[t])
        return episode, list(self.arrivals)[:steps + 1]

    def drop_oldest(self) -> None:
        """Consume the oldest (ended, complete) episode."""
        n = self.ends.popleft()
        for stream, count in ((self.frames, n + 1), (self.states, n + 1), (self.arrivals, n + 1),
                              (self.actions, n), (self.rewards, n), (self.successes, n)):
            for _ in range(min(count, len(stream))):
                stream.popleft()


def cadence(arrivals: list[float], target_rate: float) -> dict:
    """Target vs achieved observation rate over an episode; an interval over 1.5 target periods is late,
    and each whole missing period within it counts as a dropped frame."""
    gaps = np.diff(np.asarray(arrivals, np.float64))
    if gaps.size == 0:
        return {"target_hz": target_rate, "achieved_hz": 0.0, "late": 0, "dropped": 0, "max_gap_ms": 0.0}
    period = 1.0 / target_rate if target_rate > 0 else float(np.median(gaps))
    late = gaps > 1.5 * period
    return {"target_hz": round(target_rate, 3), "achieved_hz": round(float(gaps.size / gaps.sum()), 3),
            "late": int(late.sum()), "dropped": int(np.sum(np.round(gaps[late] / period) - 1)),
            "max_gap_ms": round(float(1000 * gaps.max()), 1)}
