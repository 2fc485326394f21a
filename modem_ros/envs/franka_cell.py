"""Franka cell (sim/franka_cell.xml): the FR3 scene a user trains in before deploying on the robot.

Tasks: franka-reach (TCP to the green marker), franka-push (cube to the marker on the table),
franka-pick-place (cube to the marker in the air). Action and state are those of the hardware path,
defined once in robots/franka_spec.py: TCP translation + gripper in [-1, 1], 11-d state. Each suite
step moves the TCP target and solves damped least-squares IK for the position servos, as a Cartesian
controller on the robot would. Reward success - 1, camera `shoulder` (a RealSense-like view; `wrist`
is the other one the scene carries). Experts: scripted controllers reading the simulator state.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from modem_ros.envs.base import FrameStack, Obs, check_action
from modem_ros.envs.rendering import CameraRenderer
from modem_ros.paths import share_dir
from modem_ros.robots import franka_spec as spec
from modem_ros.robots.arm import ArmState

TASKS = ("franka-reach", "franka-push", "franka-pick-place")
CUBE_HALF = 0.02
ARM_JOINTS = 7
IK_DAMPING = 1e-2
MAX_LEAD = 0.02  # metres the TCP target may run ahead of the measured TCP


def scene_path():
    return share_dir() / "sim" / "franka_cell.xml"


class FrankaCellEnv:
    state_dim = spec.STATE_DIM
    action_dim = spec.ACTION_DIM

    def __init__(self, task: str, img_size: int = 84, frame_stack: int = 2, episode_length: int = 100,
                 action_repeat: int = 2, seed: int = 0, camera: str = "shoulder"):
        if task not in TASKS:
            raise ValueError(f"unknown Franka cell task '{task}' (known: {', '.join(TASKS)})")
        self.task = task
        self.model = mujoco.MjModel.from_xml_path(str(scene_path()))
        self.data = mujoco.MjData(self.model)
        self.substeps = round(spec.CONTROL_PERIOD / self.model.opt.timestep)  # physics steps per control period
        self.tcp = self.model.site("tcp").id
        self.goal_site = self.model.site("goal").id
        self.cube_qpos = self.model.joint("cube").qposadr[0]
        if task == "franka-reach":  # no cube in this task: hide it and take it out of contact
            cube = self.model.geom("cube").id
            self.model.geom_rgba[cube, 3] = 0.0
            self.model.geom_contype[cube] = self.model.geom_conaffinity[cube] = 0
        self.renderer = CameraRenderer(self.model, img_size, camera)
        self.episode_length, self.action_repeat = episode_length, action_repeat
        self.stack = FrameStack(frame_stack)
        self.rng = np.random.default_rng(seed)
        self.target = np.zeros(3)
        self.goal = np.zeros(3)
        self.t = 0
        mujoco.mj_resetDataKeyframe(self.model, self.data, 0)
        mujoco.mj_forward(self.model, self.data)
        self.home_rotation = self.data.site_xmat[self.tcp].reshape(3, 3).copy()
        self.start_qpos = self._settle_at(spec.START_TCP)

    def _settle_at(self, tcp: np.ndarray) -> np.ndarray:
        """Arm joint angles with the TCP at `tcp` (servoed there from home once, then reused)."""
        self.target = np.asarray(tcp, dtype=np.float64)
        for _ in range(40):
            self.data.ctrl[:ARM_JOINTS] = self._ik()
            mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        return self.data.qpos[:ARM_JOINTS].copy()

    # --- geometry -----------------------------------------------------------------------------------
    @property
    def tcp_pos(self) -> np.ndarray:
        return self.data.site_xpos[self.tcp].copy()

    @property
    def cube_pos(self) -> np.ndarray:
        return self.data.qpos[self.cube_qpos:self.cube_qpos + 3].copy()

    @property
    def width(self) -> float:
        return float(self.data.qpos[7] + self.data.qpos[8])

    def arm_state(self) -> ArmState:
        """The arm as the hardware bridge reads it (same fields, same frames): the sim bridge publishes it
        on joint_states / modem/ee_pose exactly as franka_bridge does."""
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self.tcp])  # w, x, y, z
        return ArmState(self.tcp_pos, np.roll(quat, -1), self.data.qpos[:ARM_JOINTS].copy(), self.width)

    def success(self) -> bool:
        obj = self.tcp_pos if self.task == "franka-reach" else self.cube_pos
        return spec.at_goal(self.task, obj, self.goal)

    def goal_distance(self) -> float:
        """Metres from what must reach the goal (the TCP, or the cube) to the goal: the operator's progress."""
        obj = self.tcp_pos if self.task == "franka-reach" else self.cube_pos
        return float(np.linalg.norm(obj - self.goal))

    def render_frame(self) -> np.ndarray:
        """The agent's camera now, uint8 [3, img_size, img_size]."""
        return self.renderer.render(self.data)

    def _obs(self, first: bool) -> Obs:
        state = spec.state_vector(self.tcp_pos, self.width, self.data.qpos[:ARM_JOINTS])
        return {"rgb": self.stack.observe(self.render_frame(), first), "state": state}

    # --- episode ------------------------------------------------------------------------------------
    def _sample_layout(self) -> None:
        low, high = spec.WORKSPACE_LOW, spec.WORKSPACE_HIGH
        cube = np.array([self.rng.uniform(0.42, 0.58), self.rng.uniform(-0.15, 0.15), CUBE_HALF])
        if self.task == "franka-reach":
            self.goal = self.rng.uniform([low[0] + 0.05, low[1] + 0.1, 0.05], [high[0] - 0.05, high[1] - 0.1, 0.3])
        else:  # a goal 10-20 cm from the cube, on the table (push) or 5-20 cm above it (pick-place)
            angle, dist = self.rng.uniform(0, 2 * np.pi), self.rng.uniform(0.10, 0.20)
            xy = np.clip(cube[:2] + dist * np.array([np.cos(angle), np.sin(angle)]), [0.38, -0.22], [0.65, 0.22])
            z = CUBE_HALF if self.task == "franka-push" else self.rng.uniform(0.07, 0.22)
            self.goal = np.array([*xy, z])
        mujoco.mj_resetDataKeyframe(self.model, self.data, 0)
        self.data.qpos[:ARM_JOINTS] = self.data.ctrl[:ARM_JOINTS] = self.start_qpos
        self.data.qpos[self.cube_qpos:self.cube_qpos + 3] = cube
        self.model.site_pos[self.goal_site] = self.goal
        mujoco.mj_forward(self.model, self.data)
        self.target = self.tcp_pos

    def reset(self, seed: int | None = None) -> Obs:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._sample_layout()
        self.t = 0
        return self._obs(first=True)

    def _ik(self) -> np.ndarray:
        """Joint targets that move the TCP towards self.target at the home orientation (one DLS step)."""
        jacp, jacr = np.zeros((3, self.model.nv)), np.zeros((3, self.model.nv))
        mujoco.mj_jacSite(self.model, self.data, jacp, jacr, self.tcp)
        jac = np.vstack([jacp, jacr])[:, :ARM_JOINTS]
        rot = self.data.site_xmat[self.tcp].reshape(3, 3)
        rot_err = 0.5 * sum(np.cross(rot[:, i], self.home_rotation[:, i]) for i in range(3))
        err = np.concatenate([self.target - self.tcp_pos, rot_err])
        dq = jac.T @ np.linalg.solve(jac @ jac.T + IK_DAMPING**2 * np.eye(6), err)
        # null-space pull towards home keeps the elbow where the real robot would have it
        null = np.eye(ARM_JOINTS) - np.linalg.pinv(jac) @ jac
        dq += null @ (spec.HOME_JOINTS - self.data.qpos[:ARM_JOINTS]) * 0.1
        q = self.data.qpos[:ARM_JOINTS] + dq
        return np.clip(q, self.model.jnt_range[:ARM_JOINTS, 0], self.model.jnt_range[:ARM_JOINTS, 1])

    def servo(self, target: np.ndarray, gripper_width: float) -> None:
        """One control period: the joint servos towards the TCP `target` (one DLS IK step), the gripper
        towards `gripper_width` metres. The training step and the deploy rehearsal's arm (CellArm) share it."""
        self.target = target
        self.data.ctrl[:ARM_JOINTS] = self._ik()
        self.data.ctrl[ARM_JOINTS] = 255.0 * gripper_width / spec.GRIPPER_MAX_WIDTH
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, dict[str, Any]]:
        action = check_action(action, self.action_dim)
        for _ in range(self.action_repeat):
            # the target leads the measured TCP by at most MAX_LEAD: a blocked arm does not wind up
            lead = np.clip(self.target - self.tcp_pos, -MAX_LEAD, MAX_LEAD)
            self.servo(spec.tcp_target(self.tcp_pos + lead, action), spec.gripper_width(action))
        success = self.success()
        self.t += 1
        return self._obs(first=False), float(success) - 1.0, self.t >= self.episode_length, {
            "success": success, "goal_distance": self.goal_distance()}

    # --- scripted expert ----------------------------------------------------------------------------
    def _towards(self, point: np.ndarray, gripper: float) -> np.ndarray:
        move = spec.towards(self.tcp_pos, point, spec.MAX_TRANSLATION * self.action_repeat)
        return np.concatenate([move, [gripper]])

    def expert_action(self) -> np.ndarray:
        """Stateless rules on the simulator state, Meta-World style."""
        tcp, cube, goal = self.tcp_pos, self.cube_pos, self.goal
        if self.task == "franka-reach":
            return self._towards(goal, -1.0)
        if self.task == "franka-push":
            if np.linalg.norm((goal - cube)[:2]) < 0.015:
                return np.array([0.0, 0.0, 0.0, 1.0])  # there: hold still
            direction = (goal - cube)[:2] / np.linalg.norm((goal - cube)[:2])
            rel = tcp[:2] - cube[:2]
            along = float(rel @ direction)
            lateral = float(np.linalg.norm(rel - along * direction))
            behind = cube[:2] - direction * 0.05
            if along > -0.03 or lateral > 0.015:  # not lined up: over the cube to the point behind it
                height = 0.08 if np.linalg.norm(rel) < 0.06 or tcp[2] > 0.05 else tcp[2]
                return self._towards(np.array([*behind, height]), 1.0)
            if tcp[2] > CUBE_HALF + 0.01:
                return self._towards(np.array([*behind, CUBE_HALF]), 1.0)
            action = self._towards(np.array([*(goal[:2] - direction * 0.035), CUBE_HALF]), 1.0)
            action[:2] *= 0.5  # push at half speed: a faster cube slides past the goal
            return action
        grasped = self.width < 2 * CUBE_HALF + 0.003 and np.linalg.norm(tcp - cube) < 0.02
        if grasped:
            return self._towards(goal, 1.0)
        if np.linalg.norm(tcp[:2] - cube[:2]) > 0.012:
            return self._towards(np.array([*cube[:2], max(cube[2] + 0.08, tcp[2])]), -1.0)
        if tcp[2] > cube[2] + 0.008:
            return self._towards(cube, -1.0)
        return self._towards(cube, 1.0)

    def close(self) -> None:
        self.renderer.close()
