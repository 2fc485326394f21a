"""franka_bridge: a Franka arm made to look like the sim bridge's Franka cell to the graph.

Every `period` (action_repeat control periods, 10 Hz) it reads the arm and publishes one observation:
the task state (robots/franka_spec.py), joint_states and the TCP pose, after the previous step's
executed action, reward and success — the same streams, in the same order, as the sim bridge, so the
planner, teleop and recorder cannot tell them apart. Each action answers one observation and is applied
on arrival, through the safety layer (robots/safety.py): workspace box, step/speed/acceleration limits,
orientation, gripper force, NaN rejection, watchdog hold, latching e-stop. `dry_run` computes and logs
every command without sending it. Reward is the sim's sparse success - 1; success comes from
`reward_source`: the operator's mark (the teleop success key, sticky for the rest of the episode), or,
for franka-reach, the measured TCP within the task's success radius of a known `goal` (as in sim), or a learned
success classifier on the camera frames (`modem-ros classifier`, HIL-SERL's reward classifier).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import fields

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float32, Float32MultiArray, String
from std_srvs.srv import Trigger

from modem_ros import topics
from modem_ros.images import is_no_frame
from modem_ros.nodes.common import (
    LATCHED,
    SENSOR,
    STREAM,
    ModemNode,
    NodeSetupError,
    array_msg,
    camera_info,
    image_array,
    image_msg,
    joint_state_msg,
    json_msg,
    keep_spinning,
    operator_driven,
    pose_msg,
    round_trip_summary,
    run_node,
    spin_once,
    state_msg,
    write_results,
)
from modem_ros.robots import franka_spec as spec
from modem_ros.robots.arm import ArmError, ArmNotReady, ArmState
from modem_ros.robots.safety import Decision, SafetyLayer, SafetyLimits, Watchdog
from modem_ros.success_classifier import ClassifierError, SuccessDetector

APPROACH_TOLERANCE = 0.01  # metres from START_TCP at which an episode may start


class FrankaBridge(ModemNode):
    NAME = "franka_bridge"

    def __init__(self, **node_options):
        super().__init__(self.NAME, **node_options)
        self.cfg = self.task_config()
        if self.cfg.action_dim != spec.ACTION_DIM or self.cfg.state_dim != spec.STATE_DIM:
            raise NodeSetupError(f"task {self.cfg.task} has action {self.cfg.action_dim}/state {self.cfg.state_dim}; "
                                 f"the Franka bridge serves the franka-* tasks ({spec.ACTION_DIM}/{spec.STATE_DIM})")
        backend = self.param("backend", "franky", "franky (direct FCI through franky-control) or franka_ros2 "
                             "(the official driver's topics: its JointTrajectoryController or a Cartesian one).")
        self.simulate = self.param("simulate", False, "Drive the Franka cell (MuJoCo, robots/cell_arm.py) in real "
                                   "time instead of a robot, and publish its camera as the RealSense would: "
                                   "deploy mode:=sim, the rehearsal before the robot (backend is then unused).")
        self.dry_run = self.param("dry_run", False, "Compute, count and log every command without sending it.")
        self.max_episodes = self.param("max_episodes", 0, "Episodes to run before exiting (0 = until shut down).")
        self.auto_reset = self.param("auto_reset", False, "Home and start the next episode as soon as one ends. "
                                     f"False: wait for a call to {topics.RESET}.")
        if self.param("wait_for_operator", False, f"Start each episode only on a call to {topics.RESET} (the "
                      "teleop key n in train_robot), so a person can reset the scene; overrides auto_reset."):
            self.auto_reset = False
        self.estop_ends_episode = self.param("estop_ends_episode", False, "An e-stop ends the running episode "
                                             "(an abort event on modem/episode; a trainer drops it) and, once "
                                             f"{topics.ESTOP_RESET} clears it, the bridge homes and starts the next "
                                             "(auto_reset) or waits for a reset. False: the episode runs on with "
                                             "held steps (deploy's evaluation counts them).")
        self.results_file = self.param("results_file", "", "Rewrite this JSON after every episode: its steps, how "
                                       "many a policy action answered, safety counts and the observation -> action "
                                       "round-trip latencies.")
        self.watch_observation = self.param("watch_observation", True, f"The watchdog also needs {topics.IMAGE} "
                                            "frames (the policy must not act on a frozen camera).")
        self.reward_source = self.param("reward_source", "operator", "Where success (reward = success - 1) "
                                        f"comes from: operator (the teleop success key on {topics.OPERATOR_SUCCESS}, "
                                        "kept to the episode's end), goal (franka-reach: the TCP within the task's "
                                        "success radius of `goal`), classifier (a learned success detector on "
                                        f"{topics.IMAGE}: `modem-ros classifier`) or sim (simulate only: the "
                                        "cell's own success).")
        self.goal = np.asarray(self.param("goal", [0.0, 0.0, 0.0], "reward_source goal: the reach target, base "
                                          "frame, metres (measure it on your marker)."), np.float64)
        self.classifier_path = self.param("classifier", "", "reward_source classifier: the file `modem-ros classifier` "
                                          "wrote (trained on this task's frames at the agent's image size).")
        self.detector = None                 # reward_source classifier: the success detector
        self.frame = None                    # ... and the newest camera frame it judges
        self.check_reward_source()
        limits = {f.name: self.param(f.name, list(f.default) if isinstance(f.default, tuple) else f.default,
                                     f.metadata["doc"]) for f in fields(SafetyLimits)}  # one source: safety.py
        try:
            self.limits = SafetyLimits(**{k: tuple(v) if isinstance(v, list) else float(v) for k, v in limits.items()})
        except (TypeError, ValueError) as err:
            raise NodeSetupError(f"parameters: {err}") from err
        self.approach_timeout = self.param("approach_timeout", 30.0, "Seconds the arm may take to reach the start "
                                           "pose; longer is a fault (an arm that never moves: no controller "
                                           "listening, a wrong topic).")
        grasp_force = self.param("grasp_force", 20.0, "Newtons the gripper grasps with (capped at gripper_max_force).")
        self.period = self.cfg.action_repeat * spec.CONTROL_PERIOD
        self.arm = self._make_cell() if self.simulate else self._make_backend(backend)
        self.state: ArmState | None = None
        try:  # a dry run starts its episodes from this state (it does not home)
            self.state = self.arm.read()
        except ArmError as err:
            self.get_logger().warning(f"no arm state yet: {err}")
        # home orientation: a placeholder until start_episode() sets the measured one
        self.safety = SafetyLayer(self.limits, self.period, [1.0, 0.0, 0.0, 0.0], grasp_force=grasp_force)
        self.watchdog = Watchdog(self.limits.watchdog, ("action", "observation") if self.watch_observation
                                 else ("action",))
        self.pub = {name: self.create_publisher(kind, name, STREAM) for name, kind in [
            (topics.STATE, Float32MultiArray), (topics.APPLIED_ACTION, Float32MultiArray), (topics.INTERVENTION, Bool),
            (topics.REWARD, Float32), (topics.SUCCESS, Bool), (topics.EPISODE, String)]}
        self.joint_pub = self.create_publisher(JointState, topics.JOINT_STATES, 10)
        self.pose_pub = self.create_publisher(PoseStamped, topics.EE_POSE, 10)
        self.estop_pub = self.create_publisher(Bool, topics.ESTOP_ACTIVE, LATCHED)
        self.safety_pub = self.create_publisher(String, topics.SAFETY, 10)
        self.action_sub = self.create_subscription(Float32MultiArray, topics.ACTION, self.on_action, 10)
        self.image_sub = self.create_subscription(Image, topics.IMAGE, self.on_image, SENSOR)
        self.create_subscription(Bool, topics.OPERATOR_SUCCESS, self.on_operator_success, 10)
        self.step_by_operator = False  # this step's action was an operator's (its label: operator_driven)
        self.create_service(Trigger, topics.RESET, self.on_reset)
        self.create_service(Trigger, topics.ESTOP, self.on_estop)
        self.create_service(Trigger, topics.ESTOP_RESET, self.on_estop_reset)
        self.create_service(Trigger, topics.RECOVER, self.on_recover)
        self.estop_pub.publish(Bool(data=False))
        self.episode, self.t = 0, 0          # t: the episode's completed steps
        self.observed = False                # the episode's current observation is out
        self.running = self.approaching = self.finished = False
        self.approach_started = 0.0
        self.acted = False                   # an action has answered the current observation
        self.applied = np.zeros(spec.ACTION_DIM)
        self.reported: dict[str, int] = {}   # safety counts already logged
        self.results: list[dict] = []
        self.round_trips: list[float] = []   # seconds from an observation to the action answering it
        self.sent_at = self.episode_start = 0.0
        self.outcome = ""                    # what became of the current step's command (see step_outcome)
        self.outcomes: Counter[str] = Counter()  # this episode's steps by outcome: they sum to its steps
        self.marked = False                  # the operator marked this episode's task done
        self.episode_return, self.episode_success = 0.0, False
        self.counts_at_start: dict[str, int] = {}
        self.start_pending = False           # an episode waits for the arm's first state (ArmNotReady)
        self.resume_after_estop = False      # an episode waits for the e-stop to be cleared
        self.create_timer(self.period, self.tick)
        self.create_timer(1.0, self.report_safety)
        self.get_logger().info(f"{self.arm.name} backend{' (DRY RUN: nothing is sent)' if self.dry_run else ''}; "
                               f"task {self.cfg.task}, {self.cfg.episode_length} steps at {1 / self.period:.0f} Hz; "
                               + ("homing" if self.auto_reset else f"waiting for {topics.RESET} calls"))
        if self.auto_reset:
            self.start_episode()

    def check_reward_source(self) -> None:
        if self.reward_source not in ("operator", "goal", "classifier", "sim"):
            raise NodeSetupError(f"parameter reward_source is '{self.reward_source}': expected operator, goal, "
                                 "classifier or sim")
        if self.reward_source == "sim" and not self.simulate:
            raise NodeSetupError("reward_source sim is the Franka cell's own success: it needs simulate:=true "
                                 "(deploy mode:=sim); on a robot use operator, goal or classifier")
        if self.reward_source == "classifier":
            if not self.classifier_path:
                raise NodeSetupError("reward_source classifier needs parameter classifier: the file "
                                     "`modem-ros classifier` wrote")
            try:
                self.detector = SuccessDetector(self.classifier_path, self.cfg.img_size, self.cfg.task)
            except ClassifierError as err:
                raise NodeSetupError(str(err)) from err
            report = self.detector.report
            self.get_logger().info(f"success classifier {self.classifier_path}: threshold {report.threshold:.3f}, "
                                   f"held-out false positives {report.heldout_fpr:.3f}, "
                                   f"true positives {report.heldout_tpr:.3f}")
            return
        if self.reward_source != "goal":
            return
        if self.cfg.task != "franka-reach":
            raise NodeSetupError(f"reward_source goal measures the TCP, which is franka-reach's success; "
                                 f"{self.cfg.task}'s object is not tracked on hardware: use reward_source operator")
        if self.goal.shape != (3,) or not (np.all(self.goal >= spec.WORKSPACE_LOW)
                                           and np.all(self.goal <= spec.WORKSPACE_HIGH)):
            raise NodeSetupError(f"parameter goal {self.goal.tolist()} is not a point in the workspace box "
                                 f"{spec.WORKSPACE_LOW.tolist()}..{spec.WORKSPACE_HIGH.tolist()}: set the reach "
                                 "target's position (base frame, metres)")

    def _make_cell(self):
        """The Franka cell as the arm; its camera goes out as the RealSense's stream, one frame rendered just
        before each observation (the camera node pairs the newest frame with each state, as on the robot;
        rendering only what is used keeps the rehearsal's own load off the control period)."""
        from modem_ros.robots.cell_arm import CellArm

        size = self.param("sim_camera_size", [640, 480], "simulate: width and height of the published camera "
                          "stream (the RealSense profile; the camera node crops and resizes it).")
        if len(size) != 2 or min(size) < 1:
            raise NodeSetupError(f"parameter sim_camera_size {list(size)}: expected [width, height] in pixels")
        arm = CellArm(self.cfg.task, width=int(size[0]), height=int(size[1]))
        self.raw_image_pub = self.create_publisher(Image, topics.RAW_IMAGE, SENSOR)
        self.raw_info_pub = self.create_publisher(CameraInfo, topics.RAW_CAMERA_INFO, SENSOR)
        return arm

    def publish_cell_camera(self) -> None:
        frame, stamp = self.arm.camera_frame(), self.get_clock().now().to_msg()
        self.raw_image_pub.publish(image_msg(frame, stamp, topics.CAMERA_FRAME))
        self.raw_info_pub.publish(camera_info(frame.shape[0], self.arm.camera.fovy, stamp, topics.CAMERA_FRAME,
                                              width=frame.shape[1]))

    def _make_backend(self, backend: str):
        if backend == "franky":
            ip = self.param("robot_ip", "", "The robot's FCI address (franky backend).")
            if not ip:
                raise NodeSetupError("parameter robot_ip is empty: give the robot's FCI address (robot_ip:=...)")
            from modem_ros.robots.franky_arm import FrankyArm

            try:
                return FrankyArm(ip, dynamics_factor=self.param("dynamics_factor", 0.1, "franky's relative dynamics "
                                                                "factor (fraction of the robot's limits)."),
                                 mode=self.param("control_mode", "motion", "motion (Cartesian motions) or "
                                                 "impedance (Cartesian impedance targets)."),
                                 realtime=self.param("realtime", True, "Require a real-time kernel (False for "
                                                     "franky-sim or a non-RT machine)."),
                                 gripper=self.param("gripper", True, "Drive the Franka Hand."))
            except (ArmError, ValueError) as err:
                raise NodeSetupError(str(err)) from err
        if backend == "franka_ros2":
            from modem_ros.robots.franka_ros2_arm import FrankaRos2Arm

            try:
                return FrankaRos2Arm(self, self.period)
            except ArmError as err:
                raise NodeSetupError(str(err)) from err
        raise NodeSetupError(f"parameter backend is '{backend}': expected franky or franka_ros2")

    # --- inputs -------------------------------------------------------------------------------------
    def on_image(self, msg: Image) -> None:
        if is_no_frame(msg):  # the camera had no fresh frame: no observation for the watchdog either
            return
        if self.detector is not None:
            try:
                self.frame = image_array(msg, self.cfg.img_size)
            except ValueError as err:  # a frame the detector cannot judge is no observation either
                self.get_logger().error(f"{topics.IMAGE}: frame refused: {err}", throttle_duration_sec=5.0)
                return
        self.watchdog.feed("observation", time.monotonic())

    def success_now(self) -> bool:
        if self.reward_source == "sim":
            return self.arm.success()
        if self.reward_source == "goal":
            return spec.at_goal(self.cfg.task, self.state.position, self.goal)
        if self.reward_source == "classifier":
            return self.frame is not None and self.detector(self.frame)[0]
        return self.marked

    def on_operator_success(self, msg: Bool) -> None:
        if self.running and self.reward_source == "operator":
            self.marked = bool(msg.data)

    def on_action(self, msg: Float32MultiArray) -> None:
        if not self.running or self.acted:  # one action per observation; between episodes nothing moves
            return
        self.watchdog.feed("action", time.monotonic())
        self.acted = True
        self.round_trips.append(time.perf_counter() - self.sent_at)
        self.step_by_operator = operator_driven(msg)  # labelled by the teleop gate, in the same message
        decision = self.execute(np.asarray(msg.data, np.float64))
        accepted = decision.action
        self.applied = accepted if accepted is not None else np.zeros(spec.ACTION_DIM)
        self.outcome = self.step_outcome(decision, answered=True)

    def step_outcome(self, decision: Decision, answered: bool) -> str:
        """One reason per step, the first that applies: acted (the policy's or operator's action was
        executed), held_estop, held_fault, held_stale (the watchdog), held_rejected (a malformed action),
        missed (no action answered the observation within the control period: under CPU load, a hold)."""
        if decision.action is not None:
            return "acted"
        if self.safety.estopped:
            return "held_estop"
        if self.safety.faulted:
            return "held_fault"
        if any(e.startswith("hold_watchdog") for e in decision.events):
            return "held_stale"
        return "held_rejected" if answered else "missed"

    def execute(self, action) -> Decision:
        state, faulted_before = self.state, self.safety.faulted
        decision = self.safety.command(action, None if state is None else state.position,
                                       None if state is None else state.quaternion,
                                       stale=self.watchdog.verdict(time.monotonic()))
        for event in decision.events:
            if event.startswith("rejected"):
                self.get_logger().error(f"step {self.t}: {event}")
        if self.safety.faulted and not faulted_before:  # the layer found a fault in this command
            self.stop_for_fault()
        if self.dry_run:
            c = decision.command
            self.get_logger().info(f"dry run: target {np.round(c.position, 4).tolist()} quat "
                                   f"{np.round(c.quaternion, 3).tolist()} "
                                   f"gripper {'closed' if c.gripper_closed else 'open'}"
                                   + (f" [{', '.join(decision.events)}]" if decision.events else ""))
        elif not (self.safety.estopped or self.safety.faulted):  # latched: stopped, nothing sent until cleared
            try:
                self.arm.send(decision.command)
            except ArmError as err:
                self.fault(str(err))
        return decision

    # --- the control period -------------------------------------------------------------------------
    def tick(self) -> None:
        try:
            self.state = self.arm.read()
        except ArmNotReady as err:  # a driver still starting: wait, then start the episode that waited
            self.get_logger().warning(f"waiting for the arm: {err}", throttle_duration_sec=5.0)
            return
        except ArmError as err:
            self.fault(str(err))
            return
        if self.start_pending:
            self.start_episode()
            return
        if self.state.error and not self.safety.faulted:
            self.fault(f"robot error {self.state.error}")
        if self.approaching:
            self.approach()
            return
        if not self.running:
            return
        if self.observed:  # this period completes the step of the observation out since the last one
            if not self.acted:  # the planner missed this observation: brake towards a hold if it is stale
                self.step_by_operator = False  # a hold: nobody's action
                self.outcome = self.step_outcome(self.execute(None), answered=False)
                self.applied = np.zeros(spec.ACTION_DIM)
            self.outcomes[self.outcome] += 1
            self.pub[topics.APPLIED_ACTION].publish(array_msg(self.applied))
            self.pub[topics.INTERVENTION].publish(Bool(data=self.step_by_operator))
            success = self.success_now()
            self.episode_return += float(success) - 1.0
            self.episode_success |= success
            self.pub[topics.REWARD].publish(Float32(data=float(success) - 1.0))
            self.pub[topics.SUCCESS].publish(Bool(data=success))
            self.t += 1
        self.publish_observation()
        self.observed, self.acted = True, False
        if self.t == self.cfg.episode_length:
            self.end_episode()

    def publish_observation(self) -> None:
        if self.simulate:
            self.publish_cell_camera()
        s, stamp = self.state, self.get_clock().now().to_msg()
        self.pub[topics.STATE].publish(state_msg(spec.state_vector(s.position, s.gripper_width, s.joints), self.t))
        self.joint_pub.publish(joint_state_msg(s, stamp))
        self.pose_pub.publish(pose_msg(s, stamp))
        self.sent_at = time.perf_counter()

    def approach(self) -> None:
        """Step towards the episode's start pose through the safety layer; start there. A dry run, which
        moves nothing, starts where the arm stands."""
        if self.dry_run or np.linalg.norm(np.asarray(spec.START_TCP) - self.state.position) < APPROACH_TOLERANCE:
            if not self.peers_ready():
                return
            self.approaching = False
            self.running, self.observed, self.t, self.marked = True, False, 0, False
            self.outcomes = Counter()
            self.episode_return, self.episode_success = 0.0, False
            self.episode_start, self.counts_at_start = time.perf_counter(), dict(self.safety.counts)
            self.pub[topics.EPISODE].publish(json_msg({"event": "start", "episode": self.episode,
                                                       "bridge": f"robot ({self.arm.name})"}))
            self.tick()
            return
        if time.monotonic() - self.approach_started > self.approach_timeout:
            self.approaching = False
            distance = np.linalg.norm(np.asarray(spec.START_TCP) - self.state.position)
            self.fault(f"the arm did not reach the start pose within {self.approach_timeout:.0f} s ({distance:.3f} m "
                       f"away): is its controller running and listening to the {self.arm.name} backend's commands?")
            return
        move = spec.towards(self.state.position, spec.START_TCP, self.safety.step_scale)
        self.watchdog.feed("action", time.monotonic())  # the bridge is the action source of its approach
        self.execute(np.concatenate([move, [-1.0]]))

    def peers_ready(self) -> bool:
        """An episode's steps start only once something answers them: a publisher on the action topic and
        a reader of the observations (a planner loading its weights, or DDS discovery that lost its first
        announcements and waits for the next, ~3 s, would otherwise cost the episode's first steps as holds),
        and the camera when the watchdog watches it. Waits at the start pose, logging what is missing."""
        missing = [what for what, ok in (
            (f"a publisher on {topics.ACTION} (planner or teleop)", self.action_sub.get_publisher_count() > 0),
            (f"a subscriber to {topics.STATE}", self.pub[topics.STATE].get_subscription_count() > 0),
            (f"a camera on {topics.IMAGE}", not self.watch_observation or self.image_sub.get_publisher_count() > 0),
        ) if not ok]
        if missing:
            self.get_logger().info(f"episode {self.episode} waits at the start pose for {' and '.join(missing)}",
                                   throttle_duration_sec=5.0)
        return not missing

    def start_episode(self) -> None:
        """Home (franky: joint pose, then the start TCP; open gripper), then approach the start pose. Not
        while the e-stop is latched: restarting would clear it (the safety layer restarts at the measured
        pose), and only ESTOP_RESET may; the episode then starts when it is cleared."""
        self.running, self.acted, self.start_pending = False, False, False
        if self.safety.estopped:
            self.approaching, self.resume_after_estop = False, True
            self.get_logger().warning(f"e-stop latched: the next episode starts once {topics.ESTOP_RESET} clears it")
            return
        if not self.dry_run:
            try:
                self.state = self.arm.home(spec.HOME_JOINTS, spec.START_TCP)
            except ArmNotReady as err:
                self.get_logger().warning(f"waiting for the arm before homing: {err}")
                self.start_pending = True
                return
            except ArmError as err:
                self.fault(str(err))
                return
        if self.state is None:  # a dry run, which does not home, before the arm's first state
            self.get_logger().warning("waiting for the arm's first state to start the episode")
            self.start_pending = True
            return
        if not np.all(np.isfinite(self.state.quaternion)):
            self.fault(f"measured orientation {list(self.state.quaternion)} is not finite")
            return
        self.safety.home = np.asarray(self.state.quaternion, float)
        if not self.reset_safety():
            return
        now = time.monotonic()
        self.watchdog.feed("action", now)  # the first observation has not been answered yet: not stale
        self.approaching, self.approach_started = True, time.monotonic()

    def end_episode(self) -> None:
        self.running = False
        self.pub[topics.EPISODE].publish(json_msg({"event": "end", "episode": self.episode, "steps": self.t,
                                                   "return": self.episode_return, "success": self.episode_success}))
        counts = {k: v - self.counts_at_start.get(k, 0) for k, v in self.safety.counts.items()
                  if v != self.counts_at_start.get(k, 0)}
        self.results.append({"episode": self.episode, "steps": self.t, "acted": self.outcomes["acted"],
                             "outcomes": dict(self.outcomes), "return": self.episode_return,
                             "success": self.episode_success,
                             "seconds": round(time.perf_counter() - self.episode_start, 3), "safety": counts,
                             "end_tcp": np.round(self.state.position, 4).tolist()})
        self.get_logger().info(f"episode {self.episode} done ({self.t} steps, {self.outcomes['acted']} executed policy "
                               f"actions, success {self.episode_success}); steps by outcome {dict(self.outcomes)}; "
                               f"safety counts {counts}")
        self.write_results()
        self.episode += 1
        if self.max_episodes and self.episode >= self.max_episodes:
            self.finished = True
        elif self.auto_reset:
            self.start_episode()

    def write_results(self) -> None:
        if self.results_file:
            write_results(self.results_file, {"task": self.cfg.task, "backend": self.arm.name, "dry_run": self.dry_run,
                                              "episodes": self.results,
                                              "round_trip_ms": round_trip_summary(self.round_trips)})

    # --- services -----------------------------------------------------------------------------------
    def on_reset(self, request, response):
        if self.finished:
            response.success, response.message = False, "max_episodes done"
            return response
        if self.safety.estopped:  # only ESTOP_RESET clears it: a reset must not restart motion behind it
            response.success, response.message = False, f"e-stop latched: clear it with {topics.ESTOP_RESET} first"
            self.get_logger().warning(f"{topics.RESET} refused: {response.message}")
            return response
        if self.running:
            self.end_episode()
        self.start_episode()
        response.success = self.approaching or self.start_pending
        response.message = (json.dumps({"episode": self.episode}) if self.approaching else
                             "waiting for the arm's first state" if self.start_pending else "homing failed (see log)")
        return response

    def on_estop(self, request, response):
        self.safety.estop()
        if not self.dry_run:
            try:
                self.arm.stop()
            except ArmError as err:
                self.get_logger().error(f"e-stop: {err}")
        self.estop_pub.publish(Bool(data=True))
        self.get_logger().error(f"E-STOP latched at episode {self.episode} step {self.t}: the arm holds until "
                                f"{topics.ESTOP_RESET} is called")
        if self.approaching:  # held, the approach would time out into a fault: it restarts after the reset
            self.approaching, self.resume_after_estop = False, True
        if self.estop_ends_episode and self.running:
            self.abort_episode("e-stop")
            self.resume_after_estop = True
        response.success, response.message = True, "e-stop latched"
        return response

    def abort_episode(self, reason: str) -> None:
        """End the running episode where it stands: an abort event, and its record in the results file. Its
        steps went out as usual; the next episode's first observation (labelled step 0) tells a trainer it
        was cut short."""
        self.running = False
        self.pub[topics.EPISODE].publish(json_msg({"event": "abort", "episode": self.episode, "steps": self.t,
                                                   "reason": reason}))
        self.results.append({"episode": self.episode, "steps": self.t, "aborted": reason,
                             "outcomes": dict(self.outcomes), "return": self.episode_return,
                             "seconds": round(time.perf_counter() - self.episode_start, 3)})
        self.get_logger().warning(f"episode {self.episode} aborted by the {reason} after {self.t} steps: not a "
                                  "training episode; the next starts once it is cleared")
        self.write_results()
        self.episode += 1

    def on_estop_reset(self, request, response):
        try:
            self.state = self.arm.read()
        except ArmError as err:
            response.success, response.message = False, f"arm state unavailable: {err}"
            return response
        if not self.reset_safety():  # a fault still there is found again
            response.success, response.message = False, f"not cleared: {self.safety.faulted}"
            return response
        self.estop_pub.publish(Bool(data=False))
        self.get_logger().warning("e-stop cleared: commands flow again")
        response.success, response.message = True, "e-stop cleared"
        if self.resume_after_estop:
            self.resume_after_estop = False
            if self.auto_reset:
                self.start_episode()
                response.message += "; homing for the next episode"
            else:
                self.get_logger().info(f"call {topics.RESET} (teleop key n) to start the next episode")
        return response

    def on_recover(self, request, response):
        try:
            self.arm.recover()
            self.state = self.arm.read()
        except ArmError as err:
            response.success, response.message = False, str(err)
            return response
        if not self.safety.estopped and not self.reset_safety():
            response.success, response.message = False, f"not recovered: {self.safety.faulted}"
            return response
        self.get_logger().warning("robot errors recovered")
        response.success, response.message = True, "recovered"
        return response

    def reset_safety(self) -> bool:
        """The safety layer restarts at the measured pose; a non-finite measurement is a fault instead."""
        try:
            self.safety.reset(self.state.position, self.state.quaternion)
            return True
        except ValueError as err:
            self.fault(str(err))
            return False

    def fault(self, why: str) -> None:
        """A fault the bridge found (robot error, failed command): latch it in the safety layer and stop."""
        if not self.safety.faulted:
            self.safety.faulted = why
            self.stop_for_fault()

    def stop_for_fault(self) -> None:
        """Stop the arm where it is; nothing is sent until recover (clears robot errors) or reset (homes)."""
        why = self.safety.faulted
        self.get_logger().error(f"arm fault, stopped: {why}; call {topics.RECOVER} when it is safe "
                                f"(or {topics.RESET} to home)")
        if not self.dry_run:
            try:
                self.arm.stop()
            except ArmError as err:
                self.get_logger().error(f"stopping after the fault: {err}")

    def report_safety(self) -> None:
        counts = dict(self.safety.counts)
        new = {k: v - self.reported.get(k, 0) for k, v in counts.items() if v != self.reported.get(k, 0)}
        if new:
            self.get_logger().warning("safety: " + ", ".join(f"{k} x{v}" for k, v in sorted(new.items())))
            self.reported = counts
        self.safety_pub.publish(json_msg(counts))

    def run(self) -> None:
        while keep_spinning() and not self.finished:
            spin_once(self, timeout_sec=0.05)
        self.report_safety()
        time.sleep(0.5)  # let the last messages leave

    def destroy_node(self) -> None:
        if hasattr(self, "arm"):
            try:
                self.arm.close()
            except ArmError as err:  # the node still goes down; the operator must know the arm did not stop
                self.get_logger().error(str(err))
        super().destroy_node()


def main(args=None) -> int:
    return run_node(FrankaBridge, args)


if __name__ == "__main__":
    raise SystemExit(main())
