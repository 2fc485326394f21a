"""A privileged expert for suites without scripted policies (Adroit, DMControl): MPPI on the simulator.

It plans through the true simulator (state saved and restored around every rollout) on the suite's
dense reward, so it needs no learned model and no downloaded dataset; the agent never sees this access,
only the demonstrations it produces. Slow (samples x horizon x action_repeat physics steps per action)
but honest: its measured success rate is what the README reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class Simulated(Protocol):
    action_dim: int

    def get_sim_state(self) -> Any: ...

    def set_sim_state(self, state: Any) -> None: ...

    def sim_step(self, action: np.ndarray) -> tuple[float, bool]:
        """One agent step without rendering: (dense reward, success)."""
        ...


@dataclass
class SimulatorMPPI:
    action_dim: int
    horizon: int = 10
    """Agent steps per rollout."""
    samples: int = 48
    """Rollouts per iteration (the warm-started mean is always one of them)."""
    iterations: int = 2
    """MPPI refinements per action."""
    elites: int = 8
    """Best rollouts averaged into the new mean."""
    temperature: float = 2.0
    """Weight sharpness on returns standardized across the elites."""
    std: float = 0.4
    """Sampling noise in action units; halved each iteration."""
    seed: int = 0

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)
        self.reset()

    def reset(self) -> None:
        self.mean = np.zeros((self.horizon, self.action_dim))

    def _rollout(self, env: Simulated, start: Any, actions: np.ndarray) -> float:
        env.set_sim_state(start)
        total = 0.0
        for action in actions:
            reward, _ = env.sim_step(action)
            total += reward
        return total

    def act(self, env: Simulated) -> np.ndarray:
        start = env.get_sim_state()
        std = self.std
        for _ in range(self.iterations):
            noise = self.rng.standard_normal((self.samples, self.horizon, self.action_dim)) * std
            noise[0] = 0.0  # keep the current plan as a candidate
            candidates = np.clip(self.mean[None] + noise, -1.0, 1.0)
            returns = np.array([self._rollout(env, start, c) for c in candidates])
            best = np.argsort(returns)[-self.elites:]
            scores = returns[best]
            weights = np.exp(self.temperature * (scores - scores.max()) / (scores.std() + 1e-8))
            self.mean = np.einsum("e,eha->ha", weights / weights.sum(), candidates[best])
            std *= 0.5
        env.set_sim_state(start)
        action = self.mean[0].copy()
        self.mean = np.concatenate([self.mean[1:], self.mean[-1:]])  # warm start the next step
        return action
