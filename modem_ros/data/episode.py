"""One episode of (stacked-frame) observations, actions, rewards and success flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def train_episode_seed(seed: int, episode: int) -> int:
    """Reset seed of training episode `episode` (the plain loop and the sim bridge alike)."""
    return seed * 100_000 + episode


def eval_episode_seed(episode: int) -> int:
    """Reset seed of evaluation episode `episode`: the same for every run, checkpoint and budget."""
    return 10_000_000 + episode


@dataclass
class Episode:
    """T transitions: rgb/state hold T+1 observations (the last one is the final observation)."""

    rgb: list[np.ndarray] = field(default_factory=list)       # each [3*stack, H, W] uint8
    state: list[np.ndarray] = field(default_factory=list)     # each [state_dim] float32
    action: list[np.ndarray] = field(default_factory=list)    # each [action_dim] float32
    reward: list[float] = field(default_factory=list)
    success: list[bool] = field(default_factory=list)
    intervention: list[bool] = field(default_factory=list)  # per step: an operator drove it (teleop takeover)

    @classmethod
    def start(cls, obs: dict[str, Any]) -> Episode:
        episode = cls()
        episode.rgb.append(np.asarray(obs["rgb"]))
        episode.state.append(np.asarray(obs["state"], dtype=np.float32))
        return episode

    def add(self, action: np.ndarray, obs: dict[str, Any], reward: float, success: bool,
            intervened: bool = False) -> None:
        self.action.append(np.asarray(action, dtype=np.float32))
        self.intervention.append(bool(intervened))
        self.rgb.append(np.asarray(obs["rgb"]))
        self.state.append(np.asarray(obs["state"], dtype=np.float32))
        self.reward.append(float(reward))
        self.success.append(bool(success))

    def __len__(self) -> int:
        return len(self.action)

    @property
    def total_reward(self) -> float:
        return float(sum(self.reward))

    @property
    def succeeded(self) -> bool:
        return any(self.success)

    @property
    def intervention_rate(self) -> float:
        return float(np.mean(self.intervention)) if self.intervention else 0.0

    def intervention_segments(self, min_steps: int) -> list[Episode]:
        """The runs of consecutive operator-driven steps of at least `min_steps`, each as an episode of its
        own (observations i..j, the actions between them), to be kept beside the demos."""
        flags = self.intervention + [False]
        segments, start = [], None
        for t, flag in enumerate(flags):
            if flag and start is None:
                start = t
            elif not flag and start is not None:
                if t - start >= min_steps:
                    segments.append(Episode(self.rgb[start:t + 1], self.state[start:t + 1], self.action[start:t],
                                            self.reward[start:t], self.success[start:t], [True] * (t - start)))
                start = None
        return segments

    def arrays(self) -> dict[str, np.ndarray]:
        return {"rgb": np.stack(self.rgb), "state": np.stack(self.state),
                "action": np.stack(self.action).astype(np.float32),
                "reward": np.asarray(self.reward, np.float32), "success": np.asarray(self.success, bool)}
