"""toy-reach: a point mass on a plane must reach a goal; rendered with numpy, no simulator needed.

A real (if small) visual control task, not a stand-in for a suite: the tests and the default CPU run
use it because it needs no MuJoCo. Dense reward -distance, success within 0.1 of the goal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modem_ros.envs.base import FrameStack, Obs, check_action

ARENA = 1.0        # positions live in [-ARENA, ARENA]^2
SPEED = 0.05       # displacement per simulator step at |action| = 1
SUCCESS_RADIUS = 0.1


class PointReachEnv:
    state_dim = 4
    action_dim = 2

    def __init__(self, img_size: int = 84, frame_stack: int = 2, episode_length: int = 50,
                 action_repeat: int = 2, seed: int = 0):
        self.img_size, self.episode_length, self.action_repeat = img_size, episode_length, action_repeat
        self.stack = FrameStack(frame_stack)
        self.rng = np.random.default_rng(seed)
        self.pos = np.zeros(2)
        self.goal = np.zeros(2)
        self.t = 0
        grid = (np.arange(img_size) + 0.5) / img_size * 2 * ARENA - ARENA
        self._gx, self._gy = np.meshgrid(grid, -grid)  # image row 0 is +y (up)

    def _render(self) -> np.ndarray:
        img = np.full((3, self.img_size, self.img_size), 40, dtype=np.uint8)
        radius2 = (max(SUCCESS_RADIUS, 3 * 2 * ARENA / self.img_size)) ** 2
        goal = (self._gx - self.goal[0]) ** 2 + (self._gy - self.goal[1]) ** 2 < radius2
        agent = (self._gx - self.pos[0]) ** 2 + (self._gy - self.pos[1]) ** 2 < radius2
        img[1][goal] = 220
        img[0][agent] = 240
        return img

    def _obs(self, frame: np.ndarray, first: bool) -> Obs:
        rgb = self.stack.observe(frame, first)
        return {"rgb": rgb, "state": np.concatenate([self.pos, self.goal]).astype(np.float32)}

    def reset(self, seed: int | None = None) -> Obs:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.pos = self.rng.uniform(-0.8, 0.8, 2)
        self.goal = self.rng.uniform(-0.8, 0.8, 2)
        while np.linalg.norm(self.pos - self.goal) < 0.5:
            self.goal = self.rng.uniform(-0.8, 0.8, 2)
        self.t = 0
        return self._obs(self._render(), first=True)

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, dict[str, Any]]:
        action = check_action(action, self.action_dim)
        for _ in range(self.action_repeat):
            self.pos = np.clip(self.pos + SPEED * action, -ARENA, ARENA)
        self.t += 1
        dist = float(np.linalg.norm(self.pos - self.goal))
        done = self.t >= self.episode_length
        return self._obs(self._render(), first=False), -dist, done, {"success": dist < SUCCESS_RADIUS,
                                                                      "goal_distance": dist}

    def expert_action(self) -> np.ndarray:
        """Head for the goal at full speed, slowing down inside one step of it."""
        delta = self.goal - self.pos
        return np.clip(delta / (SPEED * self.action_repeat), -1.0, 1.0)
