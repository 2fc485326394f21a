"""A scripted stand-in for the teleop operator, sim only (issue 18: interventions are data).

On the robot a person watches training and takes over (the teleop gate) when the arm is getting nowhere;
those steps are flagged and oversampled like demos. To measure that loop without a person, this operator
applies a fixed rule with the env's scripted expert as its hands: it takes over when the episode's progress
has not beaten its best by `min_gain` for `patience` steps while the task is not succeeding, drives
`takeover_steps` steps, then hands back. Progress is what the operator's view shows: the task's goal
distance where it has one (the cube nearing the marker; a person sees that, and a sparse reward shows
nothing until success), else the reward. An agent that makes progress on its own gets fewer takeovers, so
the intervention rate per episode should fall as it learns. It needs privileged sim state (the expert), so
it is no model of any particular person; it is named a stand-in wherever it is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ScriptedOperator:
    patience: int          # steps without progress (and without success) before a takeover
    takeover_steps: int    # steps the operator drives per takeover
    min_gain: float = 1e-3  # progress (reward, or metres of goal distance) this much past the best so far counts
    best: float = field(default=float("-inf"), init=False)
    stalled: int = field(default=0, init=False)   # steps since the last progress
    driving: int = field(default=0, init=False)   # steps left in the current takeover

    def __post_init__(self) -> None:
        if self.patience < 1 or self.takeover_steps < 1:
            raise ValueError(f"patience ({self.patience}) and takeover_steps ({self.takeover_steps}) must be >= 1")

    def reset(self) -> None:
        """A new episode: no progress measured yet, nobody driving."""
        self.best, self.stalled, self.driving = float("-inf"), 0, 0

    def engaged(self) -> bool:
        """Whether the operator drives the next step (starting a takeover when the agent has stalled)."""
        if self.driving == 0 and self.stalled >= self.patience:
            self.driving, self.stalled = self.takeover_steps, 0
        return self.driving > 0

    def observe(self, reward: float, success: bool, goal_distance: float | None = None) -> None:
        """After each step, whoever drove it. The first step sets the baseline; the steps the operator
        drives do not count against the agent, so each handback starts a fresh `patience`."""
        operated = self.driving > 0
        if operated:
            self.driving -= 1
        score = reward if goal_distance is None else -goal_distance
        progress = success or score > self.best + self.min_gain
        self.stalled = 0 if progress or operated else self.stalled + 1
        self.best = max(self.best, score)
