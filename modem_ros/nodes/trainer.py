"""trainer: MoDem's three phases on what the graph collects plus the demo directory.

Behaviour cloning on the demos, then, episode by episode as they arrive on the graph's streams: store
(a rosbag2 episode under run_dir/episodes), update at the reference update-to-data ratio, evaluate,
checkpoint. After each episode the weights are written atomically to checkpoints/latest.pt and
announced on modem/checkpoint. The schedule is the library Trainer's, line for line. Restarted on the
same run_dir, it resumes from latest.pt and the episodes stored up to it.

With `actors:=N` it reads N actor graphs (namespaces actor_0..), one assembler each, so their episodes
never mix; episodes are trained on in the order they complete, at one update per agent step collected
(the reference's update-to-data ratio), and announcements carry each actor's trained episode count.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from rclpy.duration import Duration
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float32, Float32MultiArray, MultiArrayDimension, String, UInt8MultiArray

from modem_ros import topics
from modem_ros.announce import MAX_ACTORS, announcement, run_id_of
from modem_ros.data.demos import DemoError, episode_dirs, read_episode, write_episode
from modem_ros.data.episode import Episode
from modem_ros.data.stream import EpisodeAssembler, StreamError
from modem_ros.graph import actor_name, actor_topic
from modem_ros.nodes.common import (
    LATCHED,
    NO_FRAME_DOC,
    NO_FRAME_PARAM,
    STREAM,
    WEIGHTS,
    ModemNode,
    NodeSetupError,
    NoFrame,
    episode_step,
    image_array,
    keep_spinning,
    run_node,
    spin_once,
    stop_requested,
)
from modem_ros.paths import default_run_dir
from modem_ros.run import RunDirInUse, build_trainer, ensure_demos
from modem_ros.runtime import keep_freed_memory
from modem_ros.trainer import ResumeError
from modem_ros.weights import pack, planner_state


class TrainerNode(ModemNode):
    NAME = "trainer"

    def __init__(self):
        super().__init__(self.NAME)
        cfg = self.task_config()
        device = self.param("device", "auto", "Torch device for updates: auto (cuda if available), cpu, cuda[:N].")
        run_dir = self.param("run_dir", "", "Run directory (config snapshot, checkpoints, episodes, metrics.jsonl, "
                             "TensorBoard, eval videos, learning curve); empty = runs/<task>-<time>.")
        demo_dir = self.param("demo_dir", "", "Demonstration dataset; empty = the task's demo cache, generated "
                              "by its expert on first use.")
        resume = self.param("resume", True, "Continue from run_dir/checkpoints/latest.pt when it exists.")
        steps = self.param("steps", 0, "Agent steps of interaction to train for; 0 = the config's train_steps.")
        self.publish_weights = self.param("publish_weights", True, f"Send the planner's weights as messages on "
                                          f"{topics.WEIGHTS} after each episode (no shared disk needed); the "
                                          "path announcement on modem/checkpoint is sent either way.")
        run_id = self.param("run_id", "", "Run identity put in every checkpoint and announcement (the "
                            "launcher sets it); empty = the one stored in run_dir/run_id, created on first use.")
        self.deliver_timeout = self.param("deliver_timeout", 30.0, "Seconds the finished trainer waits for every "
                                          "matched subscriber (a remote planner) to acknowledge the last weights "
                                          "and announcement before it exits; with none matched it exits at once.")
        self.no_frame_ok = self.param(NO_FRAME_PARAM, False, NO_FRAME_DOC)
        actors = self.param("actors", 1, "Actor graphs feeding this trainer: 1 = the graph's plain topics; N > 1 = "
                            "namespaces actor_0 .. actor_<N-1> (launch train_sim actors:=N).")
        if not 1 <= actors <= MAX_ACTORS:
            raise NodeSetupError(f"parameter actors is {actors}: expected 1 to {MAX_ACTORS}")
        self.actors = [actor_name(i, actors) for i in range(actors)]
        if actors > 1 and self.get_parameter("use_sim_time").value:  # each actor has its own /clock
            self.set_parameters([Parameter("use_sim_time", value=False)])
        self.run_dir = Path(run_dir) if run_dir else default_run_dir(cfg.task)
        cfg = replace(cfg, device=device, demo_dir=demo_dir or cfg.demo_dir, train_steps=steps or cfg.train_steps)
        try:
            cfg = replace(cfg, demo_dir=str(ensure_demos(cfg, log=self.get_logger().info)))
            self.trainer = build_trainer(cfg, self.run_dir, log_stream=sys.stdout, collect=False)
        except DemoError as err:
            raise NodeSetupError(f"demonstrations: {err}") from err
        except RunDirInUse as err:
            raise NodeSetupError(f"parameter run_dir: {err}") from err
        stored_id = run_id_of(self.run_dir)
        if run_id and run_id != stored_id:
            raise NodeSetupError(f"parameter run_id: {run_id!r}, but {self.run_dir}/run_id says {stored_id!r}")
        self.trainer.run_id = stored_id
        self.cfg = cfg
        self.episode_dir = self.run_dir / "episodes"
        self.trained = dict.fromkeys(self.actors, 0)  # per actor: its episodes trained on
        self.actor_steps = dict.fromkeys(self.actors, 0)  # per actor: agent steps collected since this start
        latest = self.run_dir / "checkpoints" / "latest.pt"
        if resume and latest.exists():
            self.resume(latest)
        self.ckpt_pub = self.create_publisher(String, topics.CHECKPOINT, LATCHED)
        self.weights_pub = self.create_publisher(UInt8MultiArray, topics.WEIGHTS, WEIGHTS)
        self.assemblers = {actor: self.subscribe_actor(actor) for actor in self.actors}
        self.get_logger().info(f"run directory {self.run_dir.resolve()}"
                               + (f"; {len(self.actors)} actors: {', '.join(self.actors)}" if actors > 1 else ""))

    def subscribe_actor(self, actor: str) -> EpisodeAssembler:
        """One actor's streams into an assembler of its own: its episodes never mix with another's."""
        cfg = self.cfg
        assembler = EpisodeAssembler(cfg.frame_stack, cfg.episode_length, cfg.state_dim, cfg.action_dim,
                                     interventions=True)

        def topic(name: str) -> str:
            return actor_topic(actor, name)

        def values(msg: Float32MultiArray) -> np.ndarray:
            return np.asarray(msg.data, np.float32)

        self.create_subscription(Image, topic(topics.IMAGE), lambda m: self.on_image(assembler, m), STREAM)
        # labelled with its step at the bridge: an episode cut short (e-stop) is found and dropped
        self.create_subscription(Float32MultiArray, topic(topics.STATE),
                                 lambda m: self.add(lambda v: assembler.add_state(v, episode_step(m)), values(m),
                                                    topic(topics.STATE)), STREAM)
        # what the bridge executed (after the safety layer's clipping, an operator's takeover; zeros for a
        # hold), one per step in both graphs: not what the planner asked for
        self.create_subscription(Float32MultiArray, topic(topics.APPLIED_ACTION),
                                 lambda m: self.add(assembler.add_action, values(m), topic(topics.APPLIED_ACTION)),
                                 STREAM)
        self.create_subscription(Float32, topic(topics.REWARD),
                                 lambda m: self.add(assembler.add_reward, m.data, topic(topics.REWARD)), STREAM)
        self.create_subscription(Bool, topic(topics.SUCCESS), lambda m: assembler.add_success(m.data), STREAM)
        # per step, whether an operator drove it (both bridges publish it, in order with the actions)
        self.create_subscription(Bool, topic(topics.INTERVENTION), lambda m: assembler.add_intervention(m.data),
                                 STREAM)
        return assembler

    def stored_episodes(self, count: int) -> list[Episode]:
        """The first `count` episodes of run_dir/episodes, which a checkpoint saved after them needs."""
        paths = episode_dirs(self.episode_dir) if self.episode_dir.is_dir() else []
        for extra in paths[count:]:  # collected after the last checkpoint: kept, hidden, not trained on
            extra.rename(extra.with_name(f".after-checkpoint-{time.strftime('%Y%m%d-%H%M%S')}-{extra.name}"))
        if len(paths) < count:
            raise NodeSetupError(f"the checkpoint was saved after {count} episodes but {self.episode_dir} holds "
                                 f"{len(paths)}; cannot resume (start a new run_dir or resume:=false)")
        bags = [read_episode(p, self.cfg.frame_stack) for p in paths[:count]]
        for bag in bags:  # each actor's bridge and planner count on from its own episodes
            actor = bag.meta.get("actor", "")
            if actor in self.trained:
                self.trained[actor] += 1
        return [bag.episode for bag in bags]

    def resume(self, latest: Path) -> None:
        try:
            self.trainer.resume(latest, self.stored_episodes)
        except ResumeError as err:
            raise NodeSetupError(f"resume from {latest}: {err} (start a new run_dir or resume:=false)") from err
        self.get_logger().info(f"resumed at step {self.trainer.step} after {self.trainer.episodes} episodes")

    # -------------------------------------------------------------- streams
    def on_image(self, assembler: EpisodeAssembler, msg: Image) -> None:
        try:
            assembler.add_frame(image_array(msg, self.cfg.img_size).transpose(2, 0, 1))
        except NoFrame as err:
            if self.no_frame_ok:  # kept in the count; the episode it belongs to is dropped (report_dropped)
                assembler.add_frame(None)
            else:
                self.get_logger().error(f"{topics.IMAGE}: frame not stored: {err}, which only a hardware camera "
                                        f"sends ({NO_FRAME_PARAM} is false)", throttle_duration_sec=5.0)
        except ValueError as err:
            self.get_logger().error(f"{topics.IMAGE}: frame not stored: {err}", throttle_duration_sec=5.0)

    def add(self, adder, item, topic: str) -> None:
        """One stream item (a state's or action's values, a reward) into an assembler, or one line why not."""
        try:
            adder(item)
        except StreamError as err:  # the bridge refuses the same messages, so the streams stay paired
            self.get_logger().error(f"{topic}: not stored: {err}")

    # -------------------------------------------------------------- training
    def announce(self) -> None:
        path = self.trainer.save("latest.pt")
        if path is None:  # not written (disk full): logged; the planner keeps the weights it has
            self.get_logger().error(f"weights v{self.trainer.episodes} not announced: the checkpoint could not "
                                    "be written (see the error above)")
            return
        actors = dict(self.trained) if len(self.actors) > 1 else None  # one actor: its count is `episodes`
        self.ckpt_pub.publish(String(data=announcement(path.resolve(), self.trainer.episodes, self.trainer.step,
                                                       self.trainer.episodes, self.trainer.run_id, actors)))
        if self.publish_weights:
            state = planner_state(self.trainer.agent.state_dict())
            for header, data in pack(state, self.trainer.run_id, self.trainer.episodes, self.trainer.step,
                                     self.trainer.episodes, actors=actors):
                msg = UInt8MultiArray(data=data)
                msg.layout.dim = [MultiArrayDimension(label=json.dumps(header), size=len(data), stride=len(data))]
                self.weights_pub.publish(msg)

    def deliver_last(self) -> None:
        """Hold the process until the last weights are acknowledged: its transient-local copy dies with it, so
        a planner on another host still receiving chunks when we exit would keep the previous weights."""
        deadline = time.monotonic() + max(self.deliver_timeout, 0.0)  # one bound for both topics, as documented
        for pub in (self.weights_pub, self.ckpt_pub):
            if not pub.wait_for_all_acked(Duration(seconds=max(deadline - time.monotonic(), 0.0))):
                self.get_logger().warning(f"{pub.topic_name}: not every subscriber acknowledged the last message "
                                          f"within {self.deliver_timeout:g} s (deliver_timeout); exiting anyway")

    def run(self) -> None:
        try:
            self._train()
        except KeyboardInterrupt:  # a stop signal during an update burst
            self.say_interrupted()
            raise
        if stop_requested():  # a stop signal while waiting for episodes
            self.say_interrupted()

    def say_interrupted(self) -> None:
        """Everything up to the last checkpoint is kept: say how to go on."""
        print(f"[trainer] interrupted at step {self.trainer.step}; resume with: modem-ros launch train_sim "
              f"run_dir:={self.run_dir.resolve()} (and the same task/preset arguments)", flush=True)

    def next_episode(self) -> tuple[str, Episode] | None:
        """The first complete episode of any actor (actors in order, so none starves)."""
        for actor, assembler in self.assemblers.items():
            episode = assembler.pop_episode()
            self.report_dropped(actor, assembler)
            if episode is not None:
                return actor, episode
        return None

    def report_dropped(self, actor: str, assembler: EpisodeAssembler) -> None:
        """Episodes the bridge cut short (an e-stop, a reset mid-episode) or with an observation the camera
        had no frame for are not trained on: say so, in the console and in metrics.jsonl, so a paused robot
        or a failing camera shows up in the run's record."""
        length = self.cfg.episode_length
        dropped = [("cut_short", "steps", steps, f"{actor_topic(actor, topics.EPISODE)}: an episode cut short at "
                    f"the bridge after {steps} of {length} steps") for steps in assembler.cut_short]
        dropped += [("no_frame", "missing", missing, f"{actor_topic(actor, topics.IMAGE)}: an episode with "
                     f"{missing} of its {length + 1} observations without a camera frame (the camera's log says why)")
                    for missing in assembler.missing_frames]
        for kind, key, value, what in dropped:
            self.get_logger().warning(f"{what} was dropped, not trained on; training goes on with the next full one")
            self.trainer.logger.log(kind, self.trainer.step, {"env_step": self.trainer.env_step, key: value,
                                                              "actor": actor})
        assembler.cut_short.clear()
        assembler.missing_frames.clear()

    def log_actors(self, actor: str, episode: Episode, started: float) -> None:
        """Several actors: each one's collection rate since this trainer started (env steps/s)."""
        self.actor_steps[actor] += len(episode)
        rate = self.actor_steps[actor] * self.cfg.action_repeat / max(time.perf_counter() - started, 1e-9)
        self.trainer.logger.log("actor", self.trainer.step, {
            "env_step": self.trainer.env_step, "actor": actor, "actor_episodes": self.trained[actor],
            f"{actor}/env_steps_per_s": round(rate, 3)})

    def _train(self) -> None:
        self.trainer.begin()
        self.announce()
        started = waiting_since = time.perf_counter()
        while keep_spinning() and not self.trainer.done:
            spin_once(self, timeout_sec=0.05)
            popped = self.next_episode()
            if popped is None:
                continue
            actor, episode = popped
            index = self.trainer.episodes
            meta = {"task": self.cfg.task, "source": "graph", "episode": index, **({"actor": actor} if actor else {})}
            write_episode(episode, self.episode_dir / f"episode_{index:06d}", meta)
            self.trainer.after_episode(episode, seconds=time.perf_counter() - waiting_since)
            self.trained[actor] += 1
            if len(self.actors) > 1:
                self.log_actors(actor, episode, started)
            self.announce()
            waiting_since = time.perf_counter()
        if self.trainer.done:
            self.trainer.finish()
            self.deliver_last()
            self.get_logger().info(f"done: {self.trainer.step} steps; run directory {self.run_dir.resolve()}")


def main(args=None) -> int:
    keep_freed_memory()  # as in `modem-ros train`: updates stop page-faulting their activations
    return run_node(TrainerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
