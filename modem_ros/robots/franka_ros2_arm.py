"""The franka_ros2 backend, for labs that run the official driver (franka_bringup) next to us.

State comes from the franka_robot_state_broadcaster's convenience topics (standard messages, so no
franka_msgs is needed for it): the TCP pose and the measured joint states; the gripper width from the
gripper node's joint states. Targets go out as geometry_msgs/PoseStamped on a Cartesian target topic —
the stock driver has no topic-driven arm controller, so a Cartesian impedance / pose controller that
listens on one must be loaded (its topic is a parameter). The gripper is driven through franka_msgs'
Move and Grasp actions and reflexes are cleared with its ErrorRecovery action; those need franka_msgs,
i.e. a sourced franka_ros2 workspace (`gripper:=false` runs without).
Homing here is the bridge's approach through the safety layer: no joint-space move is sent.
"""

from __future__ import annotations

import time

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState

from modem_ros.nodes.common import SENSOR, pose_msg
from modem_ros.robots import franka_spec as spec
from modem_ros.robots.arm import ArmError, ArmNotReady, ArmState
from modem_ros.robots.safety import ArmCommand


class FrankaRos2Arm:
    name = "franka_ros2"

    def __init__(self, node):
        p = node.param
        self.node = node
        self.max_age = p("state_timeout", 0.5, "Seconds after which the driver's state counts as lost (franka_ros2).")
        pose_topic = p("pose_topic", "/franka_robot_state_broadcaster/current_pose",
                       "The driver's TCP pose topic (franka_ros2).")
        joint_topic = p("joint_topic", "/franka_robot_state_broadcaster/measured_joint_states",
                        "The driver's measured joint states (franka_ros2).")
        gripper_topic = p("gripper_joint_topic", "/fr3_gripper/joint_states",
                          "The gripper's joint states (franka_ros2).")
        target_topic = p("target_topic", "/cartesian_target_pose", "PoseStamped target topic of the Cartesian "
                         "controller you loaded (franka_ros2).")
        self.gripper_ns = p("gripper_namespace", "/fr3_gripper", "Namespace of the gripper's move/grasp actions.")
        self.frame_id = p("base_frame", "fr3_link0", "Frame the driver's poses are in (franka_ros2).")
        use_gripper = p("gripper", True, "Drive the Franka Hand (needs franka_msgs).")
        self.pose: tuple[float, PoseStamped] | None = None
        self.joints: tuple[float, JointState] | None = None
        self.width = 0.0
        node.create_subscription(PoseStamped, pose_topic, lambda m: self._stamp("pose", m), SENSOR)
        node.create_subscription(JointState, joint_topic, lambda m: self._stamp("joints", m), SENSOR)
        node.create_subscription(JointState, gripper_topic, self._on_gripper, SENSOR)
        self.target_pub = node.create_publisher(PoseStamped, target_topic, 10)
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
        ordered = [by_name.get(f"fr3_joint{i}", by_name.get(f"panda_joint{i}", np.nan)) for i in range(1, 8)]
        return ArmState(np.array([pose.position.x, pose.position.y, pose.position.z]),
                        np.array([pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w]),
                        np.asarray(ordered, dtype=np.float64), self.width)

    def home(self, joints: np.ndarray, tcp: np.ndarray) -> ArmState:
        self._gripper(False, 0.0)
        return self.read()

    def send(self, command: ArmCommand) -> None:
        self.target_pub.publish(pose_msg(command, self.node.get_clock().now().to_msg(), self.frame_id))
        if command.gripper_closed != self.gripper_closed:
            self._gripper(command.gripper_closed, command.gripper_force)

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
