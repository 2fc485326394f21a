"""Meta-World v3 adapter: the 15 MoDem tasks, camera corner2 (moved as in MoDem), sparse reward.

State: obs[0:4] + obs[18:22] of the 39-d observation (hand xyz + gripper, now and one step ago).
Reward: success - 1 (0 on success, -1 otherwise). Episodes: episode_length agent steps; they do not
end on success (the reference keeps going). Experts: Meta-World's scripted policies.
"""

from __future__ import annotations

from typing import Any

import metaworld
import numpy as np
from metaworld.env_dict import ALL_V3_ENVIRONMENTS
from metaworld.policies import ENV_POLICY_MAP

from modem_ros.envs.base import FrameStack, Obs, check_action
from modem_ros.envs.rendering import CameraRenderer

CAMERA = "corner2"
CAMERA_POS = (0.75, 0.075, 0.7)  # MoDem's corner2 position: the whole workspace in view
STATE_SLICES = (slice(0, 4), slice(18, 22))
# Meta-World v3 tasks whose info["obj_to_target"] is a constant 0 placeholder, not a distance: they report
# no goal_distance, so the operator's view shows none rather than "at the goal"
NO_GOAL_DISTANCE = {"assembly-v3", "box-close-v3", "disassemble-v3", "door-open-v3", "hammer-v3"}


def env_name(task: str) -> str:
    """mw-pick-place -> pick-place-v3."""
    return task.removeprefix("mw-") + "-v3"


class MetaWorldEnv:
    state_dim = 8
    action_dim = 4

    def __init__(self, task: str, img_size: int = 84, frame_stack: int = 2, episode_length: int = 100,
                 action_repeat: int = 2, seed: int = 0):
        name = env_name(task)
        if name not in ALL_V3_ENVIRONMENTS:
            raise ValueError(f"unknown Meta-World task '{task}' (no {name} in Meta-World v3)")
        self.name = name
        self.env = ALL_V3_ENVIRONMENTS[name]()
        self.env.set_task(metaworld.MT1(name, seed=seed).train_tasks[0])  # v3 refuses to step without one
        if self.env._partially_observable:  # the scripted experts read the goal from the observation
            raise RuntimeError(f"Meta-World {name}: task is partially observable; experts need the goal")
        self.env._freeze_rand_vec = False  # set_task froze one placement: draw a new one per episode ...
        self.env.seeded_rand_vec = True    # ... from the env's own seeded generator
        self.env.model.cam_pos[self.env.model.camera(CAMERA).id] = CAMERA_POS
        self.expert = ENV_POLICY_MAP[name]()
        self.renderer = CameraRenderer(self.env.model, img_size, CAMERA, flip=True)  # corner2 is upside down
        self.episode_length, self.action_repeat = episode_length, action_repeat
        self.stack = FrameStack(frame_stack)
        self.seeds = np.random.default_rng(seed)
        self.raw = np.zeros(39)
        self.t = 0

    def render_frame(self) -> np.ndarray:
        """The agent's camera now, uint8 [3, img_size, img_size]."""
        return self.renderer.render(self.env.data)

    def _obs(self, first: bool) -> Obs:
        frame = self.render_frame()
        rgb = self.stack.observe(frame, first)
        state = np.concatenate([self.raw[s] for s in STATE_SLICES]).astype(np.float32)
        return {"rgb": rgb, "state": state}

    def reset(self, seed: int | None = None) -> Obs:
        self.env.seed(int(self.seeds.integers(2**31)) if seed is None else seed)
        self.raw, _ = self.env.reset()
        self.t = 0
        return self._obs(first=True)

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, dict[str, Any]]:
        action = check_action(action, self.action_dim)
        for _ in range(self.action_repeat):
            self.raw, _, _, _, info = self.env.step(action.astype(np.float32))
        success = bool(info["success"])
        self.t += 1
        out = {"success": success}
        if "obj_to_target" in info and self.name not in NO_GOAL_DISTANCE:  # Meta-World's progress measure
            out["goal_distance"] = float(info["obj_to_target"])
        return self._obs(first=False), float(success) - 1.0, self.t >= self.episode_length, out

    def expert_action(self) -> np.ndarray:
        return np.clip(self.expert.get_action(self.raw), -1.0, 1.0)

    def close(self) -> None:
        self.renderer.close()
        self.env.close()
