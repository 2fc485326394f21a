"""recorder: demonstration episodes from the graph into a dataset of rosbag2 (MCAP) directories.

Episode control over std_srvs/Trigger services (the teleop console's keys call the same ones):
start (resets the bridge and records the episode it starts), save (the episode so far, or the finished
one), discard, re_record (discard and start again). An episode that runs to its end waits for save or
discard (`auto_save` saves it at once). What is stored is what the bridge executed (its
applied-action stream), paired with the observations, rewards and successes by count.

Nothing saved is ever lost: each episode is written under a hidden temp name and renamed when complete
(data/demos.py), so killing the recorder loses at most the episode in progress. Recording into an
existing dataset continues its numbering.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
from rclpy.clock import Clock, ClockType
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float32, Float32MultiArray, String
from std_srvs.srv import Trigger

from modem_ros import topics
from modem_ros.data.demos import DemoError, episode_dirs, next_episode_path, read_meta, write_episode
from modem_ros.data.recording import Streams, cadence
from modem_ros.nodes.common import (
    FOLLOW,
    NO_FRAME_DOC,
    NO_FRAME_PARAM,
    ModemNode,
    NodeSetupError,
    NoFrame,
    image_array,
    keep_spinning,
    run_node,
    spin_once,
)
from modem_ros.paths import default_dataset_dir


@dataclass
class Fate:
    """What becomes of one bridge episode: record (undecided), save, cut (save the first `steps`), drop."""

    kind: str
    steps: int = 0
    started: float = 0.0   # wall clock at its start event
    seed: int = -1         # the bridge's reset seed: the episode can be replayed from it and its actions
    bridge: str = ""       # who ran it: "sim" or "robot (<backend>)"


class Recorder(ModemNode):
    NAME = "recorder"

    def __init__(self, **node_options):
        super().__init__(self.NAME, **node_options)
        self.cfg = self.task_config()
        self.dataset = Path(self.param("dataset_dir", "", "Dataset directory: one rosbag2 directory per "
                                       "episode; an existing one is continued. Empty = demos/<task>.")
                            or default_dataset_dir(self.cfg.task))
        self.operator = self.param("operator", "", "Who demonstrates (stored in each episode's metadata).")
        self.notes = self.param("notes", "", "Free text stored in each episode's metadata.")
        self.target_rate = self.param("target_rate", 10.0, "Intended observation rate, Hz, for the cadence "
                                      "report (the teleop or control rate).")
        self.auto_save = self.param("auto_save", False, "Save an episode that ran to its end without asking.")
        self.episodes = self.param("episodes", 0, "Stop after saving this many episodes (0 = until shut down).")
        self.match_settle = self.param("match_settle", 1.0, "Seconds every stream must have had a publisher "
                                       "before the bridge is reset (the publishers' side of discovery, which "
                                       "this node cannot see, completes in that time).")
        self.no_frame_ok = self.param(NO_FRAME_PARAM, False, NO_FRAME_DOC)
        self.start_timeout = self.param("start_timeout", 10.0, f"Seconds to wait for the bridge's start event on "
                                        f"{topics.EPISODE} after calling {topics.RESET}; then recording is "
                                        "given up with a warning and start can be pressed again.")
        self.check_dataset()
        self.streams = Streams()
        self.fates: list[Fate] = []   # one per bridge episode not yet consumed, in order
        self.armed = False            # start requested: the next bridge episode is recorded
        self.state = "idle"           # idle | recording | review
        self.saved = 0
        self.done = False
        self.reset = self.create_client(Trigger, topics.RESET)
        for name, handler in ((topics.RECORDER_START, self.on_start), (topics.RECORDER_SAVE, self.on_save),
                              (topics.RECORDER_DISCARD, self.on_discard),
                              (topics.RECORDER_RERECORD, self.on_re_record)):
            self.create_service(Trigger, name, handler)
        # reliable, nothing lost; volatile so it also matches the camera's hardware output (not transient)
        self.subs = {topic: self.create_subscription(kind, topic, handler, FOLLOW) for topic, kind, handler in (
            (topics.IMAGE, Image, self.on_image), (topics.STATE, Float32MultiArray, self.on_state),
            (topics.APPLIED_ACTION, Float32MultiArray, self.on_action), (topics.REWARD, Float32, self.on_reward),
            (topics.SUCCESS, Bool, self.on_success), (topics.EPISODE, String, self.on_episode))}
        self.reset_pending = False  # start asked for; the bridge's reset waits until every stream is matched
        self.matched_since: float | None = None  # monotonic time since which every stream has had a publisher
        self.reset_call: tuple[float, object] | None = None  # (monotonic time, future) of the unanswered reset
        # steady clock: in sim the node's clock is /clock, which stands still until the bridge's episode runs
        self.create_timer(0.1, self.request_reset, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(f"dataset {self.dataset}: {self.existing} episodes already; task {self.cfg.task}. "
                               f"Services {topics.RECORDER_START}, {topics.RECORDER_SAVE}, "
                               f"{topics.RECORDER_DISCARD}, {topics.RECORDER_RERECORD}")

    def check_dataset(self) -> None:
        """Continue a dataset only if it holds the same task: mixed demos would train the wrong policy."""
        self.existing = 0
        if not self.dataset.exists():
            return
        try:
            dirs = episode_dirs(self.dataset)
            tasks = {read_meta(d).get("task") for d in dirs}
        except DemoError as err:
            raise NodeSetupError(f"dataset_dir: {err}") from err
        other = tasks - {self.cfg.task, None}
        if other:
            raise NodeSetupError(f"dataset_dir {self.dataset} holds episodes of {sorted(other)}, not "
                                 f"{self.cfg.task}: record into another directory")
        self.existing = len(dirs)

    # ------------------------------------------------------------------ streams
    def on_image(self, msg: Image) -> None:
        try:
            frame = image_array(msg, self.cfg.img_size)
        except NoFrame as err:
            if not self.no_frame_ok:
                self.get_logger().error(f"{topics.IMAGE}: frame refused ({err}, which only a hardware camera sends:"
                                        f" {NO_FRAME_PARAM} is false)", throttle_duration_sec=5.0)
                return
            self.streams.frames.append(None)  # counted, so pairing holds; an episode holding it is not saved
            self.process()
            return
        except ValueError as err:  # a missing frame would shift every pairing after it: say so loudly
            self.get_logger().error(f"{topics.IMAGE}: frame refused ({err}); the episode will not complete")
            return
        self.streams.frames.append(frame.transpose(2, 0, 1).copy())
        self.process()

    def on_state(self, msg: Float32MultiArray) -> None:
        self.streams.states.append(np.asarray(msg.data, np.float32))
        self.streams.arrivals.append(time.monotonic())
        self.process()

    def on_action(self, msg: Float32MultiArray) -> None:
        self.streams.actions.append(np.asarray(msg.data, np.float32))
        self.process()

    def on_reward(self, msg: Float32) -> None:
        self.streams.rewards.append(float(msg.data))
        self.process()

    def on_success(self, msg: Bool) -> None:
        self.streams.successes.append(bool(msg.data))
        self.process()

    def on_episode(self, msg: String) -> None:
        event = json.loads(msg.data)
        if event["event"] == "start":
            self.fates.append(Fate("record" if self.armed else "drop", started=time.time(),
                                   seed=int(event.get("seed", -1)), bridge=event.get("bridge", "")))
            if self.armed:
                self.get_logger().info(f"recording (bridge episode {event['episode']})")
            self.armed, self.reset_call = False, None
        else:
            self.streams.ends.append(int(event["steps"]))
        self.process()

    # ------------------------------------------------------------------ episode control
    def on_start(self, request, response):
        if self.state != "idle":
            response.success = False
            response.message = ("already recording" if self.state == "recording"
                                else "the finished episode waits: save or discard it first")
            return response
        if not self.reset.service_is_ready():
            response.success, response.message = False, f"no bridge offers {topics.RESET} (is one running?)"
            return response
        self.armed, self.state, self.reset_pending = True, "recording", True
        self.request_reset()
        response.success, response.message = True, f"recording episode {self.existing + self.saved}"
        return response

    def request_reset(self) -> None:
        """Ask the bridge for the armed episode once a publisher has been matched on every stream for
        `match_settle` s. Volatile subscriptions get nothing published before DDS matched them (~0.1-3 s
        after a node starts), and a match is seen here before the publisher's side has it: an episode
        started earlier would miss its first observation, and its count-based cut never complete."""
        self.check_start_arrived()
        missing = [topic for topic, sub in self.subs.items() if sub.get_publisher_count() == 0]
        now = time.monotonic()
        self.matched_since = None if missing else (self.matched_since or now)
        if not self.reset_pending:
            return
        if missing:
            self.get_logger().info(f"the episode starts once these streams have a publisher: {', '.join(missing)}",
                                   throttle_duration_sec=5.0)
            return
        if now - self.matched_since < self.match_settle:
            return
        self.reset_pending = False
        self.reset_call = (now, self.reset.call_async(Trigger.Request()))

    def check_start_arrived(self) -> None:
        """A reset whose start event never came (lost between nodes, or no bridge answered) would leave
        the recorder 'recording' forever with start refused: give it up, say what is known, and let
        start be pressed again. Its episode, if it did start, is dropped when its start event arrives."""
        if self.reset_call is None or time.monotonic() - self.reset_call[0] < self.start_timeout:
            return
        future = self.reset_call[1]
        answer = (f"the bridge answered '{future.result().message}'" if future.done() and future.result()
                  else "the bridge did not answer")
        self.get_logger().warning(f"no episode start on {topics.EPISODE} {self.start_timeout:.0f} s after calling "
                                  f"{topics.RESET} ({answer}): not recording; press start again")
        self.armed, self.state, self.reset_call = False, "idle", None

    def current(self) -> Fate | None:
        return next((f for f in reversed(self.fates) if f.kind == "record"), None)

    def on_save(self, request, response):
        fate = self.current()
        if self.state == "idle" or fate is None:
            response.success, response.message = False, "nothing is being recorded"
            return response
        index = self.fates.index(fate)
        if index < len(self.streams.ends) and self.state == "review":
            fate.kind = "save"
        else:  # cut where the bridge stands now: the steps it has executed in this episode
            fate.kind, fate.steps = "cut", len(self.streams.actions) - sum(list(self.streams.ends)[:index])
        self.state = "idle"
        response.success, response.message = True, "saving"
        self.process()
        return response

    def on_discard(self, request, response):
        fate = self.current()
        if self.state == "idle" or (fate is None and not self.armed):
            response.success, response.message = False, "nothing to discard"
            return response
        if self.armed:  # its start event has not arrived: that episode will be dropped when it does
            self.armed = self.reset_pending = False
            self.reset_call = None
        else:
            fate.kind = "drop"
        self.state = "idle"
        self.get_logger().info("episode discarded")
        response.success, response.message = True, "discarded"
        self.process()
        return response

    def on_re_record(self, request, response):
        self.on_discard(request, Trigger.Response())
        return self.on_start(request, response)

    # ------------------------------------------------------------------ consuming episodes
    def process(self) -> None:
        """Settle the oldest bridge episode(s) whose fate and data allow it."""
        while self.fates:
            fate, streams = self.fates[0], self.streams
            ended = streams.oldest_ended()
            if fate.kind == "record":
                if not ended:
                    return
                if self.auto_save:
                    fate.kind = "save"
                    continue
                if self.state == "recording":
                    self.state = "review"
                    n = streams.ends[0]  # the summary only: the episode itself is built when saved
                    success, total = any(islice(streams.successes, n)), sum(islice(streams.rewards, n))
                    missing = streams.missing_frames(n)
                    self.get_logger().info(f"episode finished: {n} steps, success {success}, "
                                           f"return {total:.2f}. Save, discard or re-record?"
                                           + ("" if success else " (it did not succeed: x discards it)")
                                           + (f" ({missing} observations without a camera frame: it cannot be "
                                              "saved, re-record it)" if missing else ""))
                return
            if fate.kind == "save" and ended:
                self.write(streams.ends[0], fate)
                fate.kind = "drop"
            if fate.kind == "cut":
                if streams.complete_steps() < fate.steps:
                    return
                if fate.steps > 0:
                    self.write(fate.steps, fate)
                else:
                    self.get_logger().warning("save before the first step: nothing to save")
                fate.kind = "drop"
            if fate.kind == "drop" and ended:
                streams.drop_oldest()
                self.fates.pop(0)
                continue
            return

    def write(self, steps: int, fate: Fate) -> None:
        missing = self.streams.missing_frames(steps)
        if missing:  # a demo with a hole in what the camera saw would teach from frames that never were
            self.get_logger().error(f"episode not saved: {missing} of its {steps + 1} observations came without a "
                                    "camera frame (the camera node says why); record it again")
            return
        episode, arrivals = self.streams.take(steps, self.cfg.frame_stack)
        report = cadence(arrivals, self.target_rate)
        meta = {"task": self.cfg.task, "suite": self.cfg.suite, "source": "teleop", "operator": self.operator,
                "notes": self.notes, "seed": fate.seed, "bridge": fate.bridge, "img_size": self.cfg.img_size,
                "action_repeat": self.cfg.action_repeat,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(fate.started)),
                "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cadence": json.dumps(report)}
        path = write_episode(episode, next_episode_path(self.dataset), meta)
        self.saved += 1
        if not episode.succeeded:  # kept (a user may want failures), but a demo that fails teaches failing
            self.get_logger().warning(f"{path.name} saved without success: MoDem learns from demos that succeed; "
                                      f"remove {path} if it was not meant to be kept")
        self.get_logger().info(
            f"saved {path.name}: {len(episode)} steps, success {episode.succeeded}, return {episode.total_reward:.2f}; "
            f"cadence {report['achieved_hz']} Hz of {report['target_hz']} Hz target, {report['late']} late, "
            f"{report['dropped']} dropped, longest gap {report['max_gap_ms']} ms; "
            f"dataset now {self.existing + self.saved} episodes")
        if self.episodes and self.saved >= self.episodes:
            self.get_logger().info(f"{self.saved} episodes saved; done")
            self.done = True

    def run(self) -> None:
        while keep_spinning() and not self.done:
            spin_once(self, timeout_sec=0.1)


def main(args=None) -> int:
    return run_node(Recorder, args)


if __name__ == "__main__":
    raise SystemExit(main())
