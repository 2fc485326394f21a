"""sim_bridge: owns a suite env and makes it look like a robot + camera to the graph, in lock-step.

Publishes every observation (camera frame + CameraInfo, task state; in the Franka cell also joint_states
and modem/ee_pose, as franka_bridge does on the robot), each executed action, each step's reward and
success, episode start/end events and /clock; steps the env once per action received.
Training resets as soon as an episode ends; demo recording (`auto_reset:=false`) waits for the
recorder's call to the reset service, which also cuts a running episode short. Nothing else in the
graph knows it is a simulation.
"""

from __future__ import annotations

import json
import time

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float32, Float32MultiArray, String
from std_srvs.srv import Trigger

from modem_ros import topics
from modem_ros.data.episode import eval_episode_seed, train_episode_seed
from modem_ros.envs import make_env
from modem_ros.envs.base import check_action
from modem_ros.nodes.common import (
    STREAM,
    ModemNode,
    array_msg,
    camera_info,
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


class SimBridge(ModemNode):
    NAME = "sim_bridge"

    def __init__(self, **node_options):
        super().__init__(self.NAME, **node_options)
        self.cfg = self.task_config()
        self.max_episodes = self.param("max_episodes", 0, "Episodes to run before exiting (0 = until shut down).")
        self.first_episode = self.param("first_episode", 0, "Index of the first episode; episode i resets "
                                        "with the plain trainer's seed of its episode i.")
        self.eval_seeds = self.param("eval_seeds", False, "Reset episode i with the seed of the trainer's "
                                     "evaluation episode i.")
        self.period = self.param("control_period", topics.AGENT_PERIOD, "Sim seconds per agent step (the /clock "
                                 "increment); topics.AGENT_PERIOD keeps one clock from /clock to bags and exports.")
        self.stall_warning = self.param("stall_warning", 30.0, "Seconds without an action before warning.")
        self.results_file = self.param("results_file", "", "Write episode results and the observation -> action "
                                       "round-trip latencies here as JSON when max_episodes are done.")
        self.auto_reset = self.param("auto_reset", True, "Start the next episode as soon as one ends (training). "
                                     f"False: wait for a call to {topics.RESET} (demo recording).")
        self.env = make_env(self.cfg, seed=self.cfg.seed)
        self.fovy = getattr(getattr(self.env, "renderer", None), "fovy", 45.0)
        # transient-local STREAM: a node that subscribes late still gets the episode from its start
        self.pub = {name: self.create_publisher(kind, name, STREAM) for name, kind in [
            (topics.RAW_IMAGE, Image), (topics.RAW_CAMERA_INFO, CameraInfo), (topics.STATE, Float32MultiArray),
            (topics.APPLIED_ACTION, Float32MultiArray), (topics.INTERVENTION, Bool),
            (topics.REWARD, Float32), (topics.SUCCESS, Bool), (topics.EPISODE, String)]}
        self.clock_pub = self.create_publisher(Clock, topics.CLOCK, 10)
        self.progress_pub = self.create_publisher(String, topics.PROGRESS, 10)  # for eyes only: newest matters
        self.arm = getattr(self.env, "arm_state", None)  # the Franka cell: the hardware bridge's arm topics too
        if self.arm is not None:
            self.joint_pub = self.create_publisher(JointState, topics.JOINT_STATES, 10)
            self.pose_pub = self.create_publisher(PoseStamped, topics.EE_POSE, 10)
        self.create_subscription(Float32MultiArray, topics.ACTION, self.on_action, STREAM)
        self.create_service(Trigger, topics.RESET, self.on_reset)
        self.create_timer(self.stall_warning, self.check_stall)
        self.ticks, self.episode, self.t = 0, self.first_episode, 0
        self.episode_return, self.episode_success = 0.0, False
        self.results: list[dict] = []
        self.last_activity, self.warned = time.monotonic(), False
        self.actions_seen = 0
        self.sent_at = self.episode_start = time.perf_counter()
        self.round_trips: list[float] = []  # seconds from publishing an observation to its action arriving
        self.finished = False
        self.running = False  # an episode is under way (False: waiting for a reset)
        self.get_logger().info(f"task {self.cfg.task}: {self.cfg.episode_length}-step episodes, "
                               f"{self.cfg.img_size} px, state {self.cfg.state_dim}, action {self.cfg.action_dim}"
                               + ("" if self.auto_reset else f"; waiting for {topics.RESET} calls"))
        if self.auto_reset:
            self.start_episode()

    def stamp(self) -> Time:
        ns = round(self.ticks * self.period * 1e9)
        return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)

    def publish_obs(self, obs: dict) -> None:
        stamp = self.stamp()
        self.clock_pub.publish(Clock(clock=stamp))
        frame = obs["rgb"][-3:].transpose(1, 2, 0)  # newest frame; consumers stack frames themselves
        self.pub[topics.RAW_CAMERA_INFO].publish(camera_info(frame.shape[0], self.fovy, stamp, topics.CAMERA_FRAME))
        self.pub[topics.STATE].publish(state_msg(obs["state"], self.t))
        if self.arm is not None:
            arm = self.arm()
            self.joint_pub.publish(joint_state_msg(arm, stamp))
            self.pose_pub.publish(pose_msg(arm, stamp))
        self.pub[topics.RAW_IMAGE].publish(image_msg(frame, stamp, topics.CAMERA_FRAME))
        self.sent_at = time.perf_counter()

    def start_episode(self) -> None:
        seed = (eval_episode_seed(self.episode) if self.eval_seeds
                else train_episode_seed(self.cfg.seed, self.episode))
        obs = self.env.reset(seed=seed)
        self.episode_start = time.perf_counter()
        self.t, self.episode_return, self.episode_success = 0, 0.0, False
        self.running = True
        self.pub[topics.EPISODE].publish(json_msg({"event": "start", "episode": self.episode, "seed": seed,
                                                   "bridge": "sim"}))
        self.publish_obs(obs)

    def on_action(self, msg: Float32MultiArray) -> None:
        self.last_activity, self.warned = time.monotonic(), False
        if self.finished or not self.running:  # between episodes (recording): nothing to act on
            self.get_logger().debug("action between episodes ignored")
            return
        self.round_trips.append(time.perf_counter() - self.sent_at)
        try:
            action = check_action(np.asarray(msg.data, np.float32), self.cfg.action_dim)
        except ValueError as err:  # the env is not stepped: the graph stays paired, the step is not lost
            self.get_logger().error(f"episode {self.episode} step {self.t}: action refused: {err}")
            return
        obs, reward, done, info = self.env.step(action)
        self.actions_seen += 1
        self.ticks += 1
        self.t += 1
        success = bool(info.get("success", False))
        self.episode_return += float(reward)
        self.episode_success |= success
        self.pub[topics.APPLIED_ACTION].publish(array_msg(action))
        self.pub[topics.INTERVENTION].publish(Bool(data=operator_driven(msg)))  # the teleop gate's label
        self.pub[topics.REWARD].publish(Float32(data=float(reward)))
        self.pub[topics.SUCCESS].publish(Bool(data=success))
        self.publish_obs(obs)
        progress = {"episode": self.episode, "t": self.t, "length": self.cfg.episode_length,
                    "return": round(self.episode_return, 4), "success": success, "succeeded": self.episode_success}
        if "goal_distance" in info:
            progress["goal_distance"] = round(float(info["goal_distance"]), 4)
        self.progress_pub.publish(json_msg(progress))
        if done != (self.t == self.cfg.episode_length):
            raise RuntimeError(f"env episode ended at step {self.t}, config says {self.cfg.episode_length}")
        if done:
            self.end_episode()
            if self.auto_reset and not self.finished:
                self.ticks += 1  # a reset takes one control period of sim time: stamps stay strictly increasing
                self.start_episode()

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """End the running episode where it stands (if any) and start the next; says which one started."""
        if self.finished:
            response.success, response.message = False, "max_episodes done"
            return response
        if self.running:
            self.end_episode()
        if not self.finished:
            self.ticks += 1
            self.start_episode()
            self.get_logger().info(f"episode {self.episode} started on {topics.RESET}")
        response.success, response.message = not self.finished, json.dumps({"episode": self.episode})
        return response

    def end_episode(self) -> None:
        result = {"event": "end", "episode": self.episode, "steps": self.t,
                  "return": round(self.episode_return, 4), "success": self.episode_success,
                  "seconds": round(time.perf_counter() - self.episode_start, 4)}
        self.results.append(result)
        self.pub[topics.EPISODE].publish(json_msg(result))
        self.get_logger().info(f"episode {self.episode}: return {result['return']:.2f} "
                               f"success {self.episode_success}")
        self.episode += 1
        self.running = False
        if self.max_episodes and len(self.results) >= self.max_episodes:
            self.finish()

    def finish(self) -> None:
        """max_episodes done: report them, write results_file if asked, and let run() return."""
        rate = float(np.mean([r["success"] for r in self.results]))
        mean = float(np.mean([r["return"] for r in self.results]))
        self.get_logger().info(f"{len(self.results)} episodes: success rate {rate:.2f}, mean return {mean:.2f}")
        if self.results_file:
            write_results(self.results_file, {"task": self.cfg.task, "episodes": self.results, "success_rate": rate,
                                              "mean_return": mean,
                                              "round_trip_ms": round_trip_summary(self.round_trips)})
        self.finished = True

    def check_stall(self) -> None:
        idle = time.monotonic() - self.last_activity
        # Between episodes of a training run the planner waits for the trainer's updates (minutes in the
        # seed burst): expected once actions have flowed. Warn when none ever came, or mid-episode.
        waiting_for_updates = self.t == 0 and self.actions_seen > 0
        if self.running and idle >= self.stall_warning and not self.warned and not waiting_for_updates:
            self.warned = True  # once per stall
            why = ("no planner with weights has answered yet" if self.actions_seen == 0
                   else "the planner stopped answering mid-episode")
            self.get_logger().warning(f"no action for {idle:.0f} s at episode {self.episode} step {self.t}: {why}")

    def run(self) -> None:
        while keep_spinning() and not self.finished:
            spin_once(self, timeout_sec=0.1)
        time.sleep(0.5)  # let the last messages leave before the process exits

    def destroy_node(self) -> None:
        if hasattr(self.env, "close"):
            self.env.close()
        super().destroy_node()


def main(args=None) -> int:
    return run_node(SimBridge, args)


if __name__ == "__main__":
    raise SystemExit(main())
