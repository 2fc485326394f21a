"""The Franka cell as an arm backend, for `deploy mode:=sim`: the sim2real rehearsal in one command.

franka_bridge drives it exactly as it drives franky or franka_ros2 (homing, safety-checked TCP targets,
stop, recover), so a checkpoint is checked through the robot's code path (teleop gate, safety layer,
watchdog, the camera node's crop and resize, the real-time control period) before the robot. The cell
(envs/franka_cell.py, its `servo` step, the one training uses) runs in real time: every call first
advances the physics, one control period at a time, to the wall clock (at most MAX_CATCH_UP at once: a
process that stalled resumes rather than fast-forwards). It also stands in for the RealSense:
`camera_frame()` renders the agent's camera at the sensor's resolution, which the camera node then crops
and resizes as it does a real one's. Each home() lays out the next evaluation episode's scene (the
resets of the trainer's evaluations and eval_sim), as a person resetting the cell would.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from modem_ros.data.episode import eval_episode_seed
from modem_ros.envs.franka_cell import FrankaCellEnv
from modem_ros.envs.rendering import CameraRenderer
from modem_ros.robots import franka_spec as spec
from modem_ros.robots.arm import ArmState
from modem_ros.robots.safety import ArmCommand

MAX_CATCH_UP = 0.5  # seconds of physics one call may run to catch up with the clock


class CellArm:
    name = "cell"

    def __init__(self, task: str, width: int = 640, height: int = 480, camera: str = "shoulder",
                 clock: Callable[[], float] = time.monotonic):
        self.env = FrankaCellEnv(task, img_size=16, frame_stack=1)  # its own agent-size renderer is unused
        self.camera = CameraRenderer(self.env.model, height, camera, width=width)
        self.clock = clock
        self.episode = 0                       # the next home() lays out evaluation episode `episode`
        self.target = self.env.tcp_pos
        self.gripper_width = spec.GRIPPER_MAX_WIDTH
        self.synced = clock()                  # the wall-clock time the physics has reached

    def _advance(self) -> None:
        periods = int((self.clock() - self.synced) / spec.CONTROL_PERIOD)
        if periods <= 0:
            return
        self.synced += periods * spec.CONTROL_PERIOD
        for _ in range(min(periods, round(MAX_CATCH_UP / spec.CONTROL_PERIOD))):
            self.env.servo(self.target, self.gripper_width)

    def read(self) -> ArmState:
        self._advance()
        return self.env.arm_state()

    def home(self, joints: np.ndarray, tcp: np.ndarray) -> ArmState:
        """The next evaluation episode's scene, the arm at the cell's start pose (TCP at START_TCP, the tool
        pointing down; `joints` and `tcp` are the robot's homing targets, which the cell's reset embodies)."""
        self.env.reset(seed=eval_episode_seed(self.episode))
        self.episode += 1
        self.target, self.gripper_width = self.env.tcp_pos, spec.GRIPPER_MAX_WIDTH
        self.synced = self.clock()
        return self.env.arm_state()

    def send(self, command: ArmCommand) -> None:
        """Servo to the command's TCP target from now on (the cell keeps the tool pointing down, as the
        safety layer's home orientation does); the gripper closes or opens fully."""
        self._advance()
        self.target = np.asarray(command.position, np.float64).copy()
        self.gripper_width = 0.0 if command.gripper_closed else spec.GRIPPER_MAX_WIDTH

    def stop(self) -> None:
        self._advance()
        self.target = self.env.tcp_pos

    def recover(self) -> None:
        """The cell has no reflex errors to clear."""

    def close(self) -> None:
        self.camera.close()
        self.env.close()

    # --- what only a simulated arm can give ---------------------------------------------------------
    def success(self) -> bool:
        """The task's success in the cell now (the sim's reward source)."""
        self._advance()
        return self.env.success()

    def camera_frame(self) -> np.ndarray:
        """The agent's camera now at the sensor's resolution, uint8 [height, width, 3] (rgb8)."""
        self._advance()
        return np.ascontiguousarray(self.camera.render(self.env.data).transpose(1, 2, 0))
