"""The franka_ros2 backend's side of the official driver's topics, against FAKE_FRANKA_ROS2_DRIVER.

The official franka_ros2 driver (ros2_control + franka_hardware, built in a sourced ROS 2 workspace)
cannot run here: there is no ROS distro, only the rclpy wheels. So this test drives franka_bridge
(backend:=franka_ros2, gripper:=false) against a stand-in written here that speaks only the driver's
public topic contract: it publishes the state broadcaster's `current_pose` and `measured_joint_states`
at 100 Hz and, as ideal tracking controllers would, either moves its TCP to each PoseStamped on the
Cartesian target topic, or its joints to each JointTrajectory on `fr3_arm_controller`'s topic, its TCP
then computed by MuJoCo from the cell's MJCF (a model independent of our IK). What is checked is our
side: targets in the base frame, inside the box, within the per-step limit, the arm approached to the
start pose and driven by the commanded deltas, well-formed trajectories (joint names, one point one
period ahead), the reward of reward_source:=goal (franka-reach's success measured on the TCP), and a
driver that goes silent faults the bridge, which then sends nothing.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from tests.test_graph import PRESET, Launch, graph_env, graph_home  # noqa: F401 - fixture reuse
from tests.test_recording import stop_if_running

rclpy = pytest.importorskip("rclpy", reason="the ROS graph needs the ros extra: scripts/install.sh ros")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float32, Float32MultiArray  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from modem_ros import topics  # noqa: E402
from modem_ros.nodes.common import STREAM  # noqa: E402
from modem_ros.paths import config_dir  # noqa: E402
from modem_ros.robots import franka_spec as spec  # noqa: E402
from tests.ros_node import InProcessNode  # noqa: E402

STEPS = 30
GOAL = np.asarray(spec.START_TCP) + [0.08, 0.0, 0.0]  # on the +x path the episode drives: reached, then passed
TOOL_DOWN = [1.0, 0.0, 0.0, 0.0]  # xyzw: the tool z axis pointing down


class FakeFrankaRos2Driver(InProcessNode):
    """FAKE_FRANKA_ROS2_DRIVER: the driver's topics only (see the module docstring), plus the probe that
    answers every observation of the bridge with one fixed action, as the planner would."""

    def __init__(self, env: dict[str, str], start: np.ndarray, answer: list[float], interface: str):
        super().__init__(env, "fake_franka_ros2_driver")
        self.position, self.targets, self.publishing = np.array(start, float), [], True
        self.quaternion = np.array(TOOL_DOWN)
        self.joints = np.array(spec.HOME_JOINTS, float)
        self.trajectory_faults: list[str] = []  # what a JointTrajectoryController would have refused
        self.states, self.rewards = [], []  # the bridge's observations and rewards, in order
        self.pose_pub = self.node.create_publisher(PoseStamped, "/franka_robot_state_broadcaster/current_pose", 10)
        self.joint_pub = self.node.create_publisher(JointState, "/franka_robot_state_broadcaster/measured_joint_states",
                                                    10)
        if interface == "joint_trajectory":
            mujoco = pytest.importorskip("mujoco", reason="the fake's arm model needs the sim extra")
            from modem_ros.envs.franka_cell import scene_path
            from modem_ros.robots import fr3_kinematics

            self.mujoco, self.model = mujoco, mujoco.MjModel.from_xml_path(str(scene_path()))
            self.data = mujoco.MjData(self.model)
            self._move_joints(fr3_kinematics.inverse(start, TOOL_DOWN, spec.HOME_JOINTS)[0])  # set-up only
            self.node.create_subscription(JointTrajectory, "/fr3_arm_controller/joint_trajectory",
                                          self._on_trajectory, 100)
        elif interface == "cartesian_pose":
            self.node.create_subscription(PoseStamped, "/cartesian_target_pose", self._on_target, 100)
        # any other interface: no controller loaded, the arm never moves
        self.node.create_subscription(Float32MultiArray, topics.STATE, lambda m: self.states.append(list(m.data)),
                                      STREAM)
        self.node.create_subscription(Float32, topics.REWARD, lambda m: self.rewards.append(m.data), STREAM)
        self.answer_observations(answer)
        self.node.create_timer(0.01, self._publish_state)
        self.start()

    def _on_target(self, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        self.targets.append((time.monotonic(), msg.header.frame_id, np.array([p.x, p.y, p.z]),
                             np.array([o.x, o.y, o.z, o.w])))
        self.position = np.array([p.x, p.y, p.z])  # an ideal tracking controller

    def _move_joints(self, joints) -> None:
        self.joints = np.array(joints, float)
        self.data.qpos[:7] = self.joints
        self.mujoco.mj_kinematics(self.model, self.data)
        site = self.model.site("tcp").id
        quaternion = np.zeros(4)
        self.mujoco.mju_mat2Quat(quaternion, self.data.site_xmat[site])
        self.position, self.quaternion = self.data.site_xpos[site].copy(), np.roll(quaternion, -1)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        if not self.publishing:  # a dead driver moves nothing; what still arrives is counted as sent
            self.targets.append((time.monotonic(), "fr3_link0", self.position.copy(), self.quaternion.copy()))
            return
        point = msg.points[0] if len(msg.points) == 1 else None
        duration = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9 if point else 0.0
        if msg.joint_names != [f"fr3_joint{i}" for i in range(1, 8)] or point is None or len(point.positions) != 7 \
                or abs(duration - 0.1) > 1e-6 or not np.allclose(point.velocities,  # a cubic: the step's mean speed
                                                                  (np.array(point.positions) - self.joints) / 0.1,
                                                                  atol=0.05):
            self.trajectory_faults.append(str(msg))
            return
        self._move_joints(point.positions)
        self.targets.append((time.monotonic(), "fr3_link0", self.position.copy(), self.quaternion.copy()))

    def _publish_state(self) -> None:
        if not self.publishing:
            return
        pose = PoseStamped()
        pose.header.stamp, pose.header.frame_id = self.node.get_clock().now().to_msg(), "fr3_link0"
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in self.position)
        o = pose.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in self.quaternion)
        joints = JointState(name=[f"fr3_joint{i}" for i in range(1, 8)], position=[float(q) for q in self.joints])
        joints.header.stamp = pose.header.stamp
        self.pose_pub.publish(pose)
        self.joint_pub.publish(joints)


@pytest.mark.parametrize("interface", ["joint_trajectory", "cartesian_pose"])
def test_the_bridge_drives_the_driver_topics_within_limits_and_faults_when_it_goes_silent(graph_home, interface):  # noqa: F811
    home = graph_home
    env = graph_env(home)
    (home / "ros2.yaml").write_text(yaml.safe_dump({**PRESET, "episode_length": STEPS}))
    params = yaml.safe_load((config_dir() / "deploy.yaml").read_text())
    params["franka_bridge"]["ros__parameters"].update(watch_observation=False, gripper=False,  # no camera, hand
                                                      reward_source="goal", goal=GOAL.tolist(),
                                                      command_interface=interface)
    (home / "ros2-params.yaml").write_text(yaml.safe_dump(params))
    start = np.asarray(spec.START_TCP) + [-0.06, 0.04, 0.03]  # off the start pose: the bridge approaches it
    driver = FakeFrankaRos2Driver(env, start, answer=[1.0, 0.0, 0.0, -1.0], interface=interface)
    launch = Launch(home, ["deploy", "nodes:=franka_bridge", "backend:=franka_ros2", "preset:=ros2.yaml",
                           "params_file:=ros2-params.yaml", f"results_file:=ros2-{interface}.json", "episodes:=2"], env)
    try:
        launch.wait_for("episode 0 done", timeout=90)
        driver.publishing = False  # the driver dies: its state goes stale
        launch.wait_for("arm fault, stopped", timeout=10)
        sent_at_fault = len(driver.targets)
        time.sleep(1.0)
        sent_after = len(driver.targets) - sent_at_fault
    finally:
        stop_if_running(launch)
        driver.close()
    targets = driver.targets
    assert not driver.trajectory_faults, driver.trajectory_faults[0]
    positions = np.array([t[2] for t in targets])
    assert {t[1] for t in targets} == {"fr3_link0"}
    tol = 1e-4 if interface == "joint_trajectory" else 1e-9  # the IK's residual, measured on the MJCF
    assert np.all(positions >= np.asarray(spec.WORKSPACE_LOW) - tol)
    assert np.all(positions <= np.asarray(spec.WORKSPACE_HIGH) + tol)
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    assert steps.max() <= 0.035 + 2 * tol + 1e-6  # max_step of config/deploy.yaml
    for _, _, _, quaternion in targets:
        np.testing.assert_allclose(abs(np.dot(quaternion, TOOL_DOWN)), 1.0, atol=1e-3)
    results = yaml.safe_load((home / f"ros2-{interface}.json").read_text())
    assert results["backend"] == "franka_ros2" and results["episodes"][0]["steps"] == STEPS
    assert results["episodes"][0]["acted"] >= STEPS - 3
    # the approach reached the start pose, then the episode drove +x until the wall held it
    approach_end = next(i for i, p in enumerate(positions) if np.linalg.norm(p - spec.START_TCP) < 0.01)
    assert approach_end > 0 and np.linalg.norm(positions[0] - start) < 0.04
    episode = positions[approach_end:]
    assert episode[:, 0].max() == pytest.approx(spec.WORKSPACE_HIGH[0], abs=tol + 1e-6)
    np.testing.assert_allclose(episode[:, 1:], np.tile(episode[0, 1:], (len(episode), 1)), atol=0.002)
    assert sent_after <= 1, f"{sent_after} targets were sent after the driver went silent"
    # reward_source goal: 0 exactly at the steps whose TCP is within franka-reach's 3 cm of the goal
    tcp, rewards = np.array(driver.states[:STEPS + 1])[1:, :3], np.array(driver.rewards[:STEPS])
    near = np.linalg.norm(tcp - GOAL, axis=1) < spec.SUCCESS_RADIUS["franka-reach"]
    np.testing.assert_array_equal(rewards, np.where(near, 0.0, -1.0))
    assert near.any() and not near[-1]  # reached, then driven past: success is the TCP's, not sticky
    assert results["episodes"][0]["success"] and results["episodes"][0]["return"] == -float((~near).sum())




def test_an_arm_that_never_moves_faults_the_approach_instead_of_waiting_forever(graph_home):  # noqa: F811
    """A driver whose controller is not loaded (nothing takes the targets): the approach times out."""
    home = graph_home
    env = graph_env(home)
    params = yaml.safe_load((config_dir() / "deploy.yaml").read_text())
    params["franka_bridge"]["ros__parameters"].update(watch_observation=False, gripper=False, approach_timeout=2.0,
                                                      command_interface="cartesian_pose")
    (home / "stuck-params.yaml").write_text(yaml.safe_dump(params))
    driver = FakeFrankaRos2Driver(env, np.asarray(spec.START_TCP) + [-0.1, 0.0, 0.0], answer=[0.0, 0.0, 0.0, -1.0],
                                  interface="no controller")
    launch = Launch(home, ["deploy", "nodes:=franka_bridge", "backend:=franka_ros2", "preset:=tiny.yaml",
                           "params_file:=stuck-params.yaml"], env)
    try:
        line = launch.wait_for("arm fault, stopped", timeout=60)
    finally:
        stop_if_running(launch)
        driver.close()
    assert "did not reach the start pose within 2 s (0.100 m away)" in line
    assert not driver.states  # no episode started


@pytest.mark.parametrize(("params", "message"), [
    ({"reward_source": "goal", "task": "franka-push"}, "franka-push's object is not tracked on hardware"),
    ({"reward_source": "goal", "goal": "[0.0, 0.0, 2.0]"}, "parameter goal [0.0, 0.0, 2.0] is not a point in"),
    ({"reward_source": "detector"}, "reward_source is 'detector': expected operator, goal, classifier or sim"),
    ({"reward_source": "sim"}, "reward_source sim is the Franka cell's own success: it needs simulate:=true"),
    ({"reward_source": "classifier"}, "reward_source classifier needs parameter classifier"),
    ({"reward_source": "classifier", "classifier": "{tmp}/clf32.pt"}, "trained on 32 px frames, the agent's are 224"),
    ({"reward_source": "classifier", "classifier": "{tmp}/gone.pt"}, "gone.pt: not a readable success classifier"),
])
def test_a_reward_source_that_cannot_work_stops_the_bridge_with_a_clear_message(params, message, tmp_path):
    """Checked before the arm is touched: the bridge exits 2 and says which parameter and why."""
    from modem_ros.success_classifier import ClassifierReport, SuccessNet, save_classifier

    report = ClassifierReport(0.5, 0.01, 0.0, 1.0, 3, 1, {"positive": 1, "negative": 1}, {"positive": 1, "negative": 1})
    save_classifier(SuccessNet(), report, 32, "franka-reach", tmp_path / "clf32.pt")
    params = {"task": "franka-reach", "backend": "franka_ros2", "gripper": "false",
              **{k: v.format(tmp=tmp_path) for k, v in params.items()}}
    run = subprocess.run([sys.executable, "-m", "modem_ros.nodes.franka_bridge", "--ros-args",
                          *[x for k, v in params.items() for x in ("-p", f"{k}:={v}")]],
                         cwd=tmp_path, env=graph_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and message in run.stderr, run.stderr[-2000:]
