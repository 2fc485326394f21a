"""The franky backend: a Franka FR3/Panda over FCI through franky-control (libfranka inside).

Every call is a real FCI exchange; with no robot, `franky-sim -s mujoco --hostname 127.0.0.1` serves the
same protocol (tests/test_franky.py). Targets stream as asynchronous Cartesian motions: each new one
takes over the running motion seamlessly (franky plans a jerk-limited path to it with Ruckig), and
with return_when_finished=False the arm keeps holding the last target. `impedance` mode streams
Cartesian impedance targets instead (compliant contact, e.g. pushing).
"""

from __future__ import annotations

import contextlib
import gc
import time

import numpy as np

from modem_ros.robots import franka_spec as spec
from modem_ros.robots.arm import ArmError, ArmState
from modem_ros.robots.safety import ArmCommand

GRIPPER_CLOSE_WAIT = 3.0  # seconds close() lets a running gripper command end (a full stroke takes ~1 s)
MOTION_STOP_WAIT = 5.0  # seconds a stopped motion gets to end; past it, no call waits on it forever
STOP_REPEAT = 0.5  # seconds between stop() calls: a stop that reaches the server before the motion has started is lost


class FrankyArm:
    name = "franky"

    def __init__(self, robot_ip: str, dynamics_factor: float = 0.1, gripper_speed: float = 0.05,
                 mode: str = "motion", realtime: bool = True, gripper: bool = True):
        import franky  # the hw extra; imported here so the rest of modem_ros works without it

        if mode not in ("motion", "impedance"):
            raise ValueError(f"franky control mode '{mode}': expected motion or impedance")
        self.franky, self.mode, self.gripper_speed = franky, mode, gripper_speed
        config = franky.RealtimeConfig.Enforce if realtime else franky.RealtimeConfig.Ignore
        try:
            self.robot = franky.Robot(robot_ip, realtime_config=config)
            self.robot.relative_dynamics_factor = dynamics_factor
            self.gripper = franky.Gripper(robot_ip) if gripper else None
        except franky.Exception as err:
            raise ArmError(f"cannot connect to the Franka at {robot_ip}: {err}") from err
        self.width = self.gripper.width if self.gripper else 0.0
        self.gripper_closed: bool | None = None   # the state last commanded
        self.gripper_wanted: tuple[bool, float] | None = None  # (closed, force) the policy asks for now
        self.gripper_future = None

    def read(self) -> ArmState:
        self._check_open()
        try:
            pose = self.robot.current_cartesian_state.pose.end_effector_pose
            joints = np.asarray(self.robot.current_joint_state.position, dtype=np.float64)
            error = ""
            if self.robot.has_errors:
                error = str(self.robot.state.current_errors)
        except self.franky.Exception as err:
            raise ArmError(f"reading the robot state failed: {err}") from err
        if self.gripper is not None and (self.gripper_future is None or self.gripper_future.wait(0)):
            self.width = float(self.gripper.width)  # a network round trip: only while the gripper is idle
            self._drive_gripper()
        return ArmState(np.asarray(pose.translation, dtype=np.float64), np.asarray(pose.quaternion, dtype=np.float64),
                        joints, self.width, error)

    def home(self, joints: np.ndarray, tcp: np.ndarray) -> ArmState:
        self._check_open()
        f = self.franky
        self._finish_motion()  # a streamed target motion never ends by itself; a joint move needs it ended
        try:
            self.robot.move(f.JointMotion(np.asarray(joints, dtype=np.float64)))
            quaternion = self.robot.current_cartesian_state.pose.end_effector_pose.quaternion
            self.robot.move(f.CartesianMotion(f.Affine(np.asarray(tcp, dtype=np.float64), quaternion)))
        except f.Exception as err:
            raise ArmError(f"homing failed: {err}") from err
        if self.gripper is not None:
            self.gripper.move(spec.GRIPPER_MAX_WIDTH, self.gripper_speed)
            self.gripper_closed, self.gripper_wanted, self.gripper_future = False, None, None
            self.width = float(self.gripper.width)
        return self.read()

    def send(self, command: ArmCommand) -> None:
        self._check_open()
        f = self.franky
        pose = f.Affine(np.asarray(command.position, dtype=np.float64),
                        np.asarray(command.quaternion, dtype=np.float64))
        if self.mode == "impedance":
            motion = f.CartesianImpedanceTrackingMotion(pose) if hasattr(f, "CartesianImpedanceTrackingMotion") \
                else f.CartesianImpedanceMotion(pose)
        else:
            motion = f.CartesianMotion(f.CartesianState(pose), f.ReferenceType.Absolute, return_when_finished=False)
        try:
            self.robot.move(motion, asynchronous=True)
        except (f.Exception, RuntimeError) as first:  # RuntimeError: Ruckig could not plan the takeover
            try:  # once: clear the failed motion and start afresh from where the arm is
                self._finish_motion()
                self.robot.move(motion, asynchronous=True)
            except (f.Exception, RuntimeError) as err:
                raise ArmError(f"motion refused: {err} (first try: {first})") from err
        if self.gripper is not None:
            self.gripper_wanted = (command.gripper_closed, command.gripper_force)
            self._drive_gripper()

    def _drive_gripper(self) -> None:
        """Send the latest wanted gripper state once the previous gripper command has finished.

        A gripper command takes most of a second and franky runs one at a time; replacing a pending
        future blocks until its command ends (a std::future from std::async), which stalled the control
        loop and, under a toggling stream, deadlocked it. So at most one command is in flight and the
        newest wish waits for it; read() calls this every period."""
        if self.gripper_wanted is None or (self.gripper_future is not None and not self.gripper_future.wait(0)):
            return
        closed, force = self.gripper_wanted
        if closed == self.gripper_closed:
            return
        self.gripper_closed = closed
        if closed:  # grasp whatever is there: any width counts as success
            self.gripper_future = self.gripper.grasp_async(0.0, self.gripper_speed, force,
                                                           epsilon_inner=0.0, epsilon_outer=spec.GRIPPER_MAX_WIDTH)
        else:
            self.gripper_future = self.gripper.move_async(spec.GRIPPER_MAX_WIDTH, self.gripper_speed)

    def _check_open(self) -> None:
        if self.robot is None:
            raise ArmError("the connection to the Franka is closed")

    def _finish_motion(self) -> None:
        if not self._stop_until_ended():
            raise ArmError(f"the motion did not end within {MOTION_STOP_WAIT} s of repeated stop() calls")

    def _stop_until_ended(self) -> bool:
        """stop() until the running motion has ended; False if it outlives MOTION_STOP_WAIT.

        One stop is not enough: sent right after an asynchronous move, it can reach the server before
        the motion has started there, and is lost (on franky-sim, a stop straight after send() left the
        motion running every time). The motion then ran until the next stop, and close() dropped a
        Robot whose destructor waited on it (a hang seen in CI). So stop again until it has ended."""
        deadline = time.monotonic() + MOTION_STOP_WAIT
        while True:
            self.stop()
            try:
                if self.robot.join_motion(STOP_REPEAT):
                    return True
            except self.franky.Exception:  # "Move command preempted": how a stopped motion ends
                return True
            if time.monotonic() >= deadline:
                return False

    def stop(self) -> None:
        self._check_open()
        try:
            self.robot.stop()
        except self.franky.Exception as err:
            raise ArmError(f"stop failed: {err}") from err

    def recover(self) -> None:
        self._check_open()
        try:
            self.robot.recover_from_errors()
        except self.franky.Exception as err:
            raise ArmError(f"error recovery failed: {err}") from err

    def close(self) -> None:
        """Stop the motion and drop the connections. The FCI server serves one client at a time and
        franky has no disconnect call: libfranka closes the socket when the last reference goes, and a
        client kept alive after use leaves the next one (another node, a test) waiting forever.
        Never hangs: a motion that outlives every stop raises ArmError and keeps the connection."""
        if self.robot is None:
            return
        ended = False
        with contextlib.suppress(ArmError):  # a failed stop: whether the motion still runs decides below
            ended = self._stop_until_ended()
        if not ended and self.robot.is_in_control:
            # franky's destructor would wait on the running motion forever: keep the connection, say so
            raise ArmError(f"close: the motion did not end within {MOTION_STOP_WAIT} s of repeated stop() "
                           "calls; the connection stays open (the FCI server stays taken) until it ends")
        # A gripper command still running in franky's worker thread uses the Gripper: dropping it first
        # crashed the process natively (seen in CI right after a test that toggled the gripper). Let the
        # command end, stopping it if it takes longer than a command can.
        if self.gripper_future is not None and not self.gripper_future.wait(GRIPPER_CLOSE_WAIT):
            with contextlib.suppress(self.franky.Exception):
                self.gripper.stop()
            self.gripper_future.wait(GRIPPER_CLOSE_WAIT)
        self.robot = self.gripper = self.gripper_future = None
        gc.collect()  # a reference cycle through a pending motion future must not keep the socket open
