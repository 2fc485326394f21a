"""The franka_ros2 backend, for labs that run the official driver (franka_bringup) next to us.

State comes from the franka_robot_state_broadcaster's convenience topics (standard messages, so no
franka_msgs is needed for it): the TCP pose and the measured joint states; the gripper width from the
gripper node's joint states. Commands (`command_interface`), each the safety layer's TCP target:
- joint_trajectory (default): solved to joint angles (fr3_kinematics: IK seeded with the measured joints,
  so consecutive targets stay on one branch) and sent as a one-point trajectory_msgs/JointTrajectory
  (positions and velocities: a cubic segment), reached one control period later, to the
  JointTrajectoryController the stock bringup loads (`fr3_arm_controller`);
- cartesian_pose: geometry_msgs/PoseStamped on the topic of a Cartesian pose/impedance controller you load.
The gripper is driven through franka_msgs' Move and Grasp actions and reflexes are cleared with its
ErrorRecovery action; those need franka_msgs, i.e. a sourced franka_ros2 workspace (`gripper:=false`
runs without).
Homing here is the bridge's approach through the safety layer: no joint-space move is sent.
"""

from __future__ import annotations

import time

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from modem_ros.nodes.common import SENSOR, pose_msg
from modem_ros.robots import fr3_kinematics as kinematics
from modem_ros.robots import franka_spec as spec
from modem_ros.robots.arm import ArmError, ArmNotReady, ArmState
from modem_ros.robots.safety import ArmCommand

IK_TOLERANCE = 0.002  # metres: a target the joints cannot reach closer than this is refused (a fault)


class FrankaRos2Arm:
    name = "franka_ros2"

    def __init__(self, node, period: float):
        p = node.param
        self.node, self.period = node, period
        self.max_age = p("state_timeout", 0.5, "Seconds after which the driver's state counts as lost (franka_ros2).")
        pose_topic = p("pose_topic", "/franka_robot_state_broadcaster/current_pose",
                       "The driver's TCP pose topic (franka_ros2).")
        joint_topic = p("joint_topic", "/franka_robot_state_broadcaster/measured_joint_states",
                        "The driver's measured joint states (franka_ros2).")
        gripper_topic = p("gripper_joint_topic", "/fr3_gripper/joint_states",
                          "The gripper's joint states (franka_ros2).")
        self.interface = p("command_interface", "joint_trajectory", "joint_trajectory (IK, to the stock "
                           "JointTrajectoryController) or cartesian_pose (PoseStamped to your Cartesian controller).")
        if self.interface not in ("joint_trajectory", "cartesian_pose"):
            raise ArmError(f"parameter command_interface is '{self.interface}': expected joint_trajectory or "
                           "cartesian_pose")
        trajectory_topic = p("trajectory_topic", "/fr3_arm_controller/joint_trajectory", "The "
                             "JointTrajectoryController's trajectory topic (command_interface joint_trajectory).")
        target_topic = p("target_topic", "/cartesian_target_pose", "PoseStamped target topic of the Cartesian "
                         "controller you loaded (command_interface cartesian_pose).")
        self.gripper_ns = p("gripper_namespace", "/fr3_gripper", "Namespace of the gripper's move/grasp actions.")
        self.frame_id = p("base_frame", "fr3_link0", "Frame the driver's poses are in (franka_ros2).")
        use_gripper = p("gripper", True, "Drive the Franka Hand (needs franka_msgs).")
        self.pose: tuple[float, PoseStamped] | None = None
        self.joints: tuple[float, JointState] | None = None
        self.width = 0.0
        node.create_subscription(PoseStamped, pose_topic, lambda m: self._stamp("pose", m), SENSOR)
        node.create_subscription(JointState, joint_topic, lambda m: self._stamp("joints", m), SENSOR)
        node.create_subscription(JointState, gripper_topic, self._on_gripper, SENSOR)
        if self.interface == "joint_trajectory":
            self.target_pub = node.create_publisher(JointTrajectory, trajectory_topic, 10)
        else:
            self.target_pub = node.create_publisher(PoseStamped, target_topic, 10)
        self.joint_names: list[str] = []  # the arm's joints as the driver names them (fr3_ or panda_)
        self.gripper_closed: bool | None = None
        self.actions = None
        if use_gripper:
            try:
                from franka_msgs.action import ErrorRecovery, Grasp, Move
            except ImportError as err:
                raise ArmError("the franka_ros2 backend drives the gripper through franka_msgs actions: source your "
                               "franka_ros2 workspace, or set gripper:=false") from err
            from rclpy.action import ActionClient

            self.actions = {"move": (Move, ActionClient(node, Move, f"{self.gripper_ns}/move")),
                            "grasp": (Grasp, ActionClient(node, Grasp, f"{self.gripper_ns}/grasp")),
                            "recover": (ErrorRecovery,
                                        ActionClient(node, ErrorRecovery, "/action_server/error_recovery"))}

    def _stamp(self, name: str, msg) -> None:
        setattr(self, name, (time.monotonic(), msg))

    def _on_gripper(self, msg: JointState) -> None:
        self.width = float(sum(msg.position[:2]))

    def read(self) -> ArmState:
        now = time.monotonic()
        for name, item in (("pose", self.pose), ("joint states", self.joints)):
            if item is None:
                raise ArmNotReady(f"no {name} from the franka_ros2 driver yet")
            if now - item[0] > self.max_age:
                raise ArmError(f"the driver's {name} are {now - item[0]:.2f} s old")
        pose, joints = self.pose[1].pose, self.joints[1]
        by_name = dict(zip(joints.name, joints.position, strict=False))
        prefix = "panda" if "panda_joint1" in by_name else "fr3"
        self.joint_names = [f"{prefix}_joint{i}" for i in range(1, 8)]
        ordered = [by_name.get(name, np.nan) for name in self.joint_names]
        return ArmState(np.array([pose.position.x, pose.position.y, pose.position.z]),
                        np.array([pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w]),
                        np.asarray(ordered, dtype=np.float64), self.width)

    def home(self, joints: np.ndarray, tcp: np.ndarray) -> ArmState:
        self._gripper(False, 0.0)
        return self.read()

    def send(self, command: ArmCommand) -> None:
        if self.interface == "joint_trajectory":
            self.target_pub.publish(self._trajectory(command))
        else:
            self.target_pub.publish(pose_msg(command, self.node.get_clock().now().to_msg(), self.frame_id))
        if command.gripper_closed != self.gripper_closed:
            self._gripper(command.gripper_closed, command.gripper_force)

    def _trajectory(self, command: ArmCommand):
        """The TCP target as a one-point joint trajectory, reached one control period from now."""
        state = self.read()
        if not np.all(np.isfinite(state.joints)):
            raise ArmError(f"the driver's joint states lack some of {self.joint_names}")
        joints, error = kinematics.inverse(command.position, command.quaternion, state.joints)
        if error > IK_TOLERANCE:
            raise ArmError(f"no joint solution within {IK_TOLERANCE * 1000:.0f} mm of the target "
                           f"{np.round(command.position, 4).tolist()} ({error * 1000:.1f} mm)")
        nanoseconds = int(self.period * 1e9)
        # with velocities the controller interpolates a cubic (velocity-continuous; positions alone give
        # linear segments with velocity jumps): arrive moving at this step's mean speed, as the next target
        # continues the motion; a hold (target = current) arrives at rest
        velocities = (joints - state.joints) / self.period
        point = JointTrajectoryPoint(positions=joints.tolist(), velocities=velocities.tolist(),
                                     time_from_start=Duration(sec=nanoseconds // 10**9, nanosec=nanoseconds % 10**9))
        return JointTrajectory(joint_names=self.joint_names, points=[point])  # stamp 0: start on arrival

    def _gripper(self, closed: bool, force: float) -> None:
        self.gripper_closed = closed
        if self.actions is None:
            return
        kind, client = self.actions["grasp" if closed else "move"]
        goal = kind.Goal()
        goal.speed = 0.05
        if closed:
            goal.width, goal.force = 0.0, force
            goal.epsilon.inner, goal.epsilon.outer = 0.0, spec.GRIPPER_MAX_WIDTH
        else:
            goal.width = spec.GRIPPER_MAX_WIDTH
        client.send_goal_async(goal)

    def stop(self) -> None:
        state = self.read()  # hold where the arm is now
        self.send(ArmCommand(state.position, state.quaternion, bool(self.gripper_closed), 0.0, hold=True))

    def recover(self) -> None:
        if self.actions is None:
            raise ArmError("error recovery needs franka_msgs (gripper:=false runs without it)")
        kind, client = self.actions["recover"]
        client.send_goal_async(kind.Goal())

    def close(self) -> None:
        pass
