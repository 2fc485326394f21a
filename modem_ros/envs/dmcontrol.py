"""DeepMind Control Suite adapter: dense task reward, camera 0 (quadruped: 2), flattened observation
as the state vector, episode_length agent steps of action_repeat physics steps each.
Expert: simulator MPPI on the task reward (envs/experts.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
from dm_control import suite

from modem_ros.envs.base import FrameStack, Obs, check_action
from modem_ros.envs.experts import SimulatorMPPI
from modem_ros.envs.rendering import CameraRenderer

CAMERAS = {"quadruped": 2}


def split_task(task: str) -> tuple[str, str]:
    """cartpole-swingup -> (cartpole, swingup); domain names use underscores, never dashes."""
    domain, _, name = task.partition("-")
    return domain, name.replace("-", "_")


class DMControlEnv:
    expert_source = "simulator MPPI expert (privileged, envs/experts.py)"
    has_success = False  # dense reward; demos are kept whatever their return
    def __init__(self, task: str, img_size: int = 84, frame_stack: int = 2, episode_length: int = 500,
                 action_repeat: int = 2, seed: int = 0):
        domain, name = split_task(task)
        if (domain, name) not in suite.ALL_TASKS:
            raise ValueError(f"unknown DMControl task '{task}'")
        self.env = suite.load(domain, name, task_kwargs={"random": seed})
        physics = self.env.physics
        self.renderer = CameraRenderer(physics.model.ptr, img_size, CAMERAS.get(domain, 0))
        self.action_dim = int(self.env.action_spec().shape[0])
        self.state_dim = int(sum(np.prod(spec.shape) for spec in self.env.observation_spec().values()))
        self.episode_length, self.action_repeat = episode_length, action_repeat
        self.stack = FrameStack(frame_stack)
        # swing-ups need a longer view and more refinement than the manipulation default
        self.expert = SimulatorMPPI(self.action_dim, samples=64, horizon=30, iterations=3, std=0.8, seed=seed)
        self.t = 0

    def render_frame(self) -> np.ndarray:
        """The agent's camera now, uint8 [3, img_size, img_size]."""
        return self.renderer.render(self.env.physics.data.ptr)

    def _obs(self, time_step, first: bool) -> Obs:
        frame = self.render_frame()
        rgb = self.stack.observe(frame, first)
        state = np.concatenate([np.asarray(v, np.float32).ravel() for v in time_step.observation.values()])
        return {"rgb": rgb, "state": state}

    def reset(self, seed: int | None = None) -> Obs:
        if seed is not None:
            self.env.task.random.seed(seed)
        self.t = 0
        self.expert.reset()
        return self._obs(self.env.reset(), first=True)

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, dict[str, Any]]:
        action = check_action(action, self.action_dim)
        reward = 0.0
        for _ in range(self.action_repeat):
            time_step = self.env.step(action)
            reward += time_step.reward or 0.0
            if time_step.last():
                break
        self.t += 1
        done = time_step.last() or self.t >= self.episode_length
        return self._obs(time_step, first=False), reward, done, {"success": False}

    # --- simulator access for the privileged expert -------------------------------------------------
    def get_sim_state(self) -> np.ndarray:
        return self.env.physics.get_state().copy()

    def set_sim_state(self, state: np.ndarray) -> None:
        with self.env.physics.reset_context():
            self.env.physics.set_state(state)

    def sim_step(self, action: np.ndarray) -> tuple[float, bool]:
        """One agent step on the physics alone: dm_control's Environment.step without its step counter,
        which would end (and reset) the real episode during the expert's rollouts."""
        physics, task = self.env.physics, self.env.task
        reward = 0.0
        for _ in range(self.action_repeat):
            task.before_step(action, physics)
            physics.step(self.env._n_sub_steps)
            task.after_step(physics)
            reward += task.get_reward(physics) or 0.0
        return reward, False

    def expert_action(self) -> np.ndarray:
        return self.expert.act(self)

    def close(self) -> None:
        self.renderer.close()
