"""Adroit hand adapter (door / hammer / pen) on gymnasium-robotics; robohive cannot be had offline.

State (MODEM.md gives only the sizes; the subsets are our reading of "proprioceptive state"):
  door 30 = arm + hand joint angles (obs[0:27]) + palm position (obs[29:32]);
  hammer 36 = obs[0:36]: joint angles, the last six (clipped) joint velocities, palm position;
  pen 27 = obs[0:27]: hand joint angles + pen position.
Reward: success - 1. Camera: view_1 where the model has one (pen); gymnasium-robotics' door and hammer
models have no view_1, so their whole-scene `vil_camera` stands in. Episodes run episode_length agent
steps of action_repeat suite steps and do not end on success. Expert: simulator MPPI on the dense reward.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import gymnasium_robotics
import numpy as np

from modem_ros.envs.base import FrameStack, Obs, check_action
from modem_ros.envs.experts import SimulatorMPPI
from modem_ros.envs.rendering import CameraRenderer

gymnasium.register_envs(gymnasium_robotics)

SUITE_IDS = {"adroit-door": "AdroitHandDoor-v1", "adroit-hammer": "AdroitHandHammer-v1",
             "adroit-pen": "AdroitHandPen-v1"}
STATE_SLICES = {"adroit-door": (slice(0, 27), slice(29, 32)), "adroit-hammer": (slice(0, 36),),
                "adroit-pen": (slice(0, 27),)}
APPROACH_WEIGHT = 1.0  # the expert's pull of the palm towards the handle (the suite's D4RL original: 0.1)
CAMERAS = {"adroit-door": "vil_camera", "adroit-hammer": "vil_camera", "adroit-pen": "view_1"}


class AdroitEnv:
    expert_source = "simulator MPPI expert (privileged, envs/experts.py)"

    def __init__(self, task: str, img_size: int = 84, frame_stack: int = 2, episode_length: int = 100,
                 action_repeat: int = 2, seed: int = 0):
        if task not in SUITE_IDS:
            raise ValueError(f"unknown Adroit task '{task}' (known: {', '.join(SUITE_IDS)})")
        # The unwrapped env: the suite's TimeLimit would end episodes at its own length, not MoDem's.
        self.env = gymnasium.make(SUITE_IDS[task]).unwrapped
        self.task, self.slices = task, STATE_SLICES[task]
        self.action_dim = int(self.env.action_space.shape[0])
        self.state_dim = sum(s.stop - s.start for s in self.slices)
        self.renderer = CameraRenderer(self.env.model, img_size, CAMERAS[task])
        self.episode_length, self.action_repeat = episode_length, action_repeat
        self.stack = FrameStack(frame_stack)
        self.seeds = np.random.default_rng(seed)
        self.expert = SimulatorMPPI(self.action_dim, seed=seed)
        self.raw = np.zeros(self.env.observation_space.shape)
        self.t = 0

    def render_frame(self) -> np.ndarray:
        """The agent's camera now, uint8 [3, img_size, img_size]."""
        return self.renderer.render(self.env.data)

    def _obs(self, first: bool) -> Obs:
        rgb = self.stack.observe(self.render_frame(), first)
        state = np.concatenate([self.raw[s] for s in self.slices]).astype(np.float32)
        return {"rgb": rgb, "state": state}

    def reset(self, seed: int | None = None) -> Obs:
        seed = int(self.seeds.integers(2**31)) if seed is None else seed
        self.raw, _ = self.env.reset(seed=seed)
        self.expert.reset()
        self.t = 0
        return self._obs(first=True)

    def _shaping(self) -> float:
        """The expert's terms on top of the suite's dense reward (see sim_step)."""
        env, data = self.env, self.env.data
        if self.task == "adroit-door":  # reach the handle, turn the latch, swing the door
            reach = np.linalg.norm(data.site_xpos[env.grasp_site_id] - data.site_xpos[env.handle_site_id])
            latch, door = data.qpos[-1], data.qpos[env.door_hinge_addrs]
            return float(-(0.1 + APPROACH_WEIGHT) * reach + 0.5 * latch + 2.0 * door)
        if self.task == "adroit-hammer":  # reach the handle, lift, bring the head to the nail
            hammer = data.xpos[env.obj_body_id]
            reach = np.linalg.norm(data.site_xpos[env.S_grasp_site_id] - hammer)
            head = np.linalg.norm(data.site_xpos[env.tool_site_id] - data.site_xpos[env.target_obj_site_id])
            lift = np.clip(hammer[2] - 0.03, 0.0, 0.15)
            return float(-(0.1 + 2 * APPROACH_WEIGHT) * reach + 10.0 * lift - 2.0 * head)
        return 0.0

    def sim_step(self, action: np.ndarray) -> tuple[float, bool]:
        """One agent step without rendering: (summed dense reward, success).

        gymnasium-robotics 1.4.2's door and hammer rewards ADD 0.1 x palm-to-handle distance (a sign slip
        since v1.2.1, their PR 220); the expert's shaping cancels it and pulls the palm in instead, and for
        the door also rewards latch and hinge angle, which the suite rewards only past 0.2 rad."""
        dense = 0.0
        for _ in range(self.action_repeat):
            self.raw, reward, _, _, info = self.env.step(action)
            dense += float(reward) + self._shaping()
        return dense, bool(info["success"])

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, dict[str, Any]]:
        action = check_action(action, self.action_dim).astype(np.float32)
        _, success = self.sim_step(action)
        self.t += 1
        return self._obs(first=False), float(success) - 1.0, self.t >= self.episode_length, {"success": success}

    # --- simulator access for the privileged expert -------------------------------------------------
    def get_sim_state(self) -> tuple[np.ndarray, ...]:
        data = self.env.data
        return data.qpos.copy(), data.qvel.copy(), data.act.copy(), self.raw.copy()

    def set_sim_state(self, state: tuple[np.ndarray, ...]) -> None:
        qpos, qvel, act, raw = state
        self.env.set_state(qpos, qvel)
        self.env.data.act[:] = act
        self.raw = raw.copy()

    def expert_action(self) -> np.ndarray:
        return self.expert.act(self)

    def close(self) -> None:
        self.renderer.close()
        self.env.close()
