"""planner: the MoDem agent acting in the graph — image + state in, one action out per observation.

Weights come from a checkpoint file (deploy, eval) or from the trainer's announcements on
modem/checkpoint, hot-reloaded between actions. In sim training (`sync_weights`) episode i starts only
once weights trained on episodes 0..i-1 are loaded: the reference's collect-then-update order, so the
graph trains exactly like the plain loop. As one of several actors (namespace actor_<i>) it counts its own
episodes against the trainer's per-actor counts, and takes the trainer's step (all actors' steps) for
the schedules at each episode start. Reports act() latency statistics.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import replace

import numpy as np
import torch
from rclpy.time import Time as RosTime
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray, String, UInt8MultiArray

from modem_ros import topics
from modem_ros.agent.modem import ModemAgent
from modem_ros.announce import AnnouncementError, load_announced, parse_announcement, trained_episodes
from modem_ros.envs.base import FrameStack
from modem_ros.nodes.common import (
    LATCHED,
    STREAM,
    WEIGHTS,
    ModemNode,
    NodeSetupError,
    NoFrame,
    array_msg,
    episode_step,
    image_array,
    json_msg,
    run_node,
)
from modem_ros.weights import WeightsAssembler, WeightsError, parse_header


class Planner(ModemNode):
    NAME = "planner"

    def __init__(self, **node_options):
        super().__init__(self.NAME, **node_options)
        cfg = self.task_config()
        device = self.param("device", "auto", "Torch device for acting: auto (cuda if available), cpu, cuda[:N].")
        self.checkpoint = self.param("checkpoint", "", "Checkpoint file to act with; empty = wait for the "
                                     "trainer's announcements on modem/checkpoint.")
        self.eval_mode = self.param("eval_mode", False, "Plan without exploration noise (evaluation, deployment).")
        self.sync = self.param("sync_weights", True, "Start episode i only with weights version >= i "
                               "(sim training, lock-step). Never on hardware: a robot must not wait on a trainer.")
        reliable = self.param("reliable", True, "Lock-step streams (sim): every observation is acted on. False: "
                              "best-effort, act on the newest observation only (hardware).")
        self.max_age = self.param("max_obs_age", 0.0, "Refuse observations older than this many seconds by "
                                  "their stamp (0 = off; lock-step sim time never ages).")
        self.stats_every = self.param("stats_every", 100, "Actions between latency reports.")
        self.weights_from = self.param("weights_from", "dds", f"Where the trainer's weights come from: dds (chunks "
                                       f"on {topics.WEIGHTS}, no shared disk) or path (the file modem/checkpoint "
                                       "announces; one host or a shared run directory).")
        if self.weights_from not in ("dds", "path"):
            raise NodeSetupError(f"parameter weights_from is '{self.weights_from}': expected dds or path")
        self.run_id = self.param("run_id", "", "Run identity of this graph's trainer: only its checkpoint "
                                 "announcements are loaded (the launcher sets it); empty = the first valid "
                                 "announcement's run id, then only that one.")
        threads = self.param("torch_threads", 0, "CPU threads for planning; 0 = torch's default (every core). "
                             "Several actors on one host: fewer each leaves cores to the trainer.")
        if threads < 0:
            raise NodeSetupError(f"parameter torch_threads is {threads}: expected 0 (default) or more")
        if threads:
            torch.set_num_threads(threads)
        self.cfg = replace(cfg, device=device)
        torch.manual_seed(self.cfg.seed)
        self.agent = ModemAgent(self.cfg)
        self.reliable = reliable
        depth = None if reliable else 1  # hardware: only the newest observation is worth acting on
        self.frames: deque[tuple[np.ndarray | None, float]] = deque(maxlen=depth)  # (frame|None=none, arrival)
        self.states: deque[tuple[np.ndarray, int | None]] = deque(maxlen=depth)  # (state, its step label)
        self.stack = FrameStack(self.cfg.frame_stack)
        self.t = 0             # observation index within the current episode
        self.episode = 0       # episode index (set from the first checkpoint when training)
        self.step = 0          # agent steps so far
        self.episode_step = 0  # agent step the current episode began at (seeding, horizon: reference)
        self.version = -1      # weights version loaded; -1 = none yet
        self.actor = self.get_namespace().strip("/")  # "" in the single-actor graph
        self.trained = 0       # this actor's episodes the loaded weights were trained on
        self.trainer_step = 0  # the trainer's step (every actor's steps) when it sent the loaded weights
        self.latencies: list[tuple[float, float]] = []  # (observation -> action, act() alone), seconds
        qos = self.stream_qos(reliable)
        self.action_pub = self.create_publisher(Float32MultiArray, topics.ACTION, STREAM if reliable else 10)
        self.stats_pub = self.create_publisher(String, topics.PLANNER_STATS, 10)
        self.create_subscription(Image, topics.IMAGE, self.on_image, qos)
        self.create_subscription(Float32MultiArray, topics.STATE, self.on_state, qos)
        if self.checkpoint:  # deploy / eval: nothing to act with is a setup error, not a wait
            if not self.load(self.checkpoint, version=0, step=0, episodes=0):
                raise NodeSetupError(f"parameter checkpoint: {self.checkpoint} cannot be loaded (see above)")
        elif self.weights_from == "dds":
            self.assembler = WeightsAssembler()
            self.create_subscription(UInt8MultiArray, topics.WEIGHTS, self.on_weights, WEIGHTS)
        else:
            self.create_subscription(String, topics.CHECKPOINT, self.on_checkpoint, LATCHED)
        self.get_logger().info(f"task {self.cfg.task} on {self.agent.device}; "
                               f"{'acting with ' + self.checkpoint if self.checkpoint else 'waiting for a checkpoint'}")

    # ------------------------------------------------------------------ weights
    def load(self, path: str, version: int, step: int, episodes: int, run_id: str = "",
             actors: dict[str, int] | None = None) -> bool:
        """Load weights between actions; on any failure log one line and keep acting on what we had."""
        start = time.perf_counter()
        try:
            state = load_announced(path, self.agent.device, run_id=run_id, version=version if run_id else None)
            self.load_weights(state)
        except (AnnouncementError, OSError, ValueError, RuntimeError, KeyError, TypeError) as err:
            self.get_logger().error(f"checkpoint {path} not loaded ({err}); acting on weights "
                                    f"v{self.version}" + (" (none yet)" if self.version < 0 else ""))
            return False
        self.adopt(version, step or int(state.get("step", 0)), episodes, actors)
        self.get_logger().info(f"loaded weights v{version} (step {step}) from {path} in "
                               f"{time.perf_counter() - start:.2f} s")
        return True

    def load_weights(self, state: dict) -> None:
        """Into the agent, if they are this task's (shapes are checked by the agent); ValueError otherwise."""
        task = (state.get("config") or {}).get("task")
        if task and task != self.cfg.task:
            raise ValueError(f"weights of task {task!r}; this planner acts on {self.cfg.task!r}")
        self.agent.load_state_dict(state)

    def adopt(self, version: int, step: int, episodes: int, actors: dict[str, int] | None) -> None:
        """Loaded weights of `version`: what they were trained on. The first load (a resumed run) also
        sets where this actor's episode count and the schedules' step continue from."""
        self.trained, self.trainer_step = trained_episodes(actors, self.actor, episodes), step
        if self.version < 0:
            self.step, self.episode = step, self.trained
        self.version = version

    def on_weights(self, msg: UInt8MultiArray) -> None:
        """A chunk of the trainer's weights; a complete, verified set of this run is swapped in between
        actions (callbacks never interleave with act()); anything else is refused with one line."""
        try:
            header = parse_header(msg.layout.dim[0].label if msg.layout.dim else "")
        except WeightsError as err:
            self.get_logger().error(f"{topics.WEIGHTS}: chunk ignored: {err}", throttle_duration_sec=5.0)
            return
        if self.run_id and header["run_id"] != self.run_id:
            self.get_logger().error(f"{topics.WEIGHTS}: weights of run {header['run_id']!r} ignored; this graph's "
                                    f"run is {self.run_id!r}", throttle_duration_sec=5.0)
            return
        if header["version"] <= self.version:
            return
        try:
            state = self.assembler.add(header, bytes(msg.data))
            if state is None:
                return
            self.load_weights(state)
        except (WeightsError, ValueError, RuntimeError, KeyError, TypeError) as err:
            self.get_logger().error(f"{topics.WEIGHTS}: weights v{header['version']} not loaded ({err}); acting on "
                                    f"v{self.version}")
            return
        self.adopt(header["version"], header["step"], header["episodes"], header.get("actors"))
        if not self.run_id:
            self.run_id = header["run_id"]
            self.get_logger().info(f"following the trainer of run {self.run_id!r}")
        self.get_logger().info(f"loaded weights v{self.version} (step {header['step']}) over DDS, "
                               f"{1000 * (time.time() - header['sent']):.0f} ms after the trainer sent them")
        self.try_act()

    def on_checkpoint(self, msg: String) -> None:
        try:
            info = parse_announcement(msg.data)
        except AnnouncementError as err:
            self.get_logger().error(f"{topics.CHECKPOINT}: announcement ignored: {err}")
            return
        if self.run_id and info.run_id != self.run_id:
            self.get_logger().error(f"{topics.CHECKPOINT}: announcement of run {info.run_id!r} ignored; this "
                                    f"graph's run is {self.run_id!r} (another graph on this ROS_DOMAIN_ID?)")
            return
        if info.version <= self.version:
            return
        if self.load(info.path, info.version, info.step, info.episodes, info.run_id, info.actors) and not self.run_id:
            self.run_id = info.run_id
            self.get_logger().info(f"following the trainer of run {self.run_id!r}")
        self.try_act()

    # ------------------------------------------------------------------ observations
    def on_image(self, msg: Image) -> None:
        try:
            frame = image_array(msg, self.cfg.img_size)
        except NoFrame as err:
            if self.reliable:  # sim's camera never sends one (topics.NO_FRAME_PARAM): malformed here
                self.get_logger().error(f"{topics.IMAGE}: observation refused: {err}, which only a hardware camera "
                                        "sends", throttle_duration_sec=5.0)
                return
            self.frames.append((None, time.perf_counter()))  # no image: this step passes without an action
            self.try_act()
            return
        except ValueError as err:
            self.get_logger().error(f"{topics.IMAGE}: observation refused: {err}", throttle_duration_sec=5.0)
            return
        if self.max_age > 0:
            age = (self.get_clock().now() - RosTime.from_msg(msg.header.stamp)).nanoseconds / 1e9
            if age > self.max_age:
                self.get_logger().warning(f"stale observation refused: {age:.3f} s old > {self.max_age} s",
                                          throttle_duration_sec=5.0)
                return
        self.frames.append((frame.transpose(2, 0, 1), time.perf_counter()))
        self.try_act()

    def on_state(self, msg: Float32MultiArray) -> None:
        state = np.asarray(msg.data, np.float32)
        if state.shape != (self.cfg.state_dim,) or not np.all(np.isfinite(state)):
            self.get_logger().error(f"{topics.STATE}: observation refused: {state.size} values "
                                    f"(expected {self.cfg.state_dim} finite)", throttle_duration_sec=5.0)
            return
        self.states.append((state, episode_step(msg)))
        self.try_act()

    def try_act(self) -> None:
        while self.frames and self.states and self.version >= 0:
            if self.t == 0 and self.sync and self.trained < self.episode:
                return  # the trainer has not finished with this actor's previous episode yet
            (frame, received), (state, step) = self.frames.popleft(), self.states.popleft()
            if step is not None and step != self.t:
                self.follow_bridge(step)
            if frame is not None:
                rgb = self.stack.observe(frame, first=self.t == 0)
            if self.t == self.cfg.episode_length:  # final observation: the bridge resets next
                self.t, self.episode = 0, self.episode + 1
                self.stack = FrameStack(self.cfg.frame_stack)  # the next episode's frames only, whichever comes
                continue
            if self.t == 0:  # other actors' steps count too (the trainer's step); alone, the two are equal
                self.step = self.episode_step = max(self.step, self.trainer_step)
            if frame is None:  # no image: no action, the bridge holds this step (its watchdog), time goes on
                self.t, self.step = self.t + 1, self.step + 1
                continue
            start = time.perf_counter()
            action = self.agent.act({"rgb": rgb, "state": state}, self.episode_step, eval_mode=self.eval_mode,
                                    t0=self.t == 0)
            if not np.all(np.isfinite(action)):
                self.get_logger().error(f"agent produced a non-finite action {action.tolist()} at step "
                                        f"{self.step}; sending zeros (hold) instead")
                action = np.zeros(self.cfg.action_dim, np.float32)
            self.action_pub.publish(array_msg(action))
            now = time.perf_counter()
            self.latencies.append((now - received, now - start))
            self.t, self.step = self.t + 1, self.step + 1
            if len(self.latencies) >= self.stats_every:
                self.report()

    def follow_bridge(self, step: int) -> None:
        """Take the observation's step from the bridge's label: on hardware the newest-only planner skips
        observations, and a bridge may cut an episode short (e-stop) - counting alone would misplace every
        later episode's start (its frame stack, its schedules' step)."""
        if step > self.cfg.episode_length:
            self.get_logger().error(f"{topics.STATE}: step label {step} beyond the episode's "
                                    f"{self.cfg.episode_length} steps; counting instead", throttle_duration_sec=5.0)
            return
        if step < self.t:  # a new episode before this one was full: cut short at the bridge, or its end skipped
            self.get_logger().warning(f"a new episode starts after observation {self.t} of the last (cut short at "
                                      "the bridge, or its last observations skipped)")
            self.stack = FrameStack(self.cfg.frame_stack)
        self.t = step

    def report(self) -> None:
        ms = 1000 * np.asarray(self.latencies)
        total, act = ms[:, 0], ms[:, 1]
        stats = {"actions": len(ms), "median_ms": round(float(np.median(total)), 2),
                 "p95_ms": round(float(np.percentile(total, 95)), 2), "max_ms": round(float(total.max()), 2),
                 "act_median_ms": round(float(np.median(act)), 2), "step": self.step,
                 "weights_version": self.version}
        self.stats_pub.publish(json_msg(stats))
        # observation -> action counts from the image's arrival, so a sync wait for weights shows up here
        self.get_logger().info(f"observation -> action: median {stats['median_ms']} ms, p95 {stats['p95_ms']} ms "
                               f"(act() {stats['act_median_ms']} ms) over {stats['actions']} actions "
                               f"(step {self.step}, weights v{self.version})")
        self.latencies.clear()


def main(args=None) -> int:
    return run_node(Planner, args)


if __name__ == "__main__":
    raise SystemExit(main())
