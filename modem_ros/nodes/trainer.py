"""trainer: MoDem's three phases on what the graph collects plus the demo directory.

Behaviour cloning on the demos, then, episode by episode as they arrive on the graph's streams: store
(a rosbag2 episode under run_dir/episodes), update at the reference update-to-data ratio, evaluate,
checkpoint. After each episode the weights are written atomically to checkpoints/latest.pt and
announced on modem/checkpoint. The schedule is the library Trainer's, line for line. Restarted on the
same run_dir, it resumes from latest.pt and the episodes stored up to it.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import rclpy
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float32, Float32MultiArray, MultiArrayDimension, String, UInt8MultiArray

from modem_ros import topics
from modem_ros.announce import announcement, run_id_of
from modem_ros.data.demos import DemoError, episode_dirs, read_episode, write_episode
from modem_ros.data.episode import Episode
from modem_ros.data.stream import EpisodeAssembler, StreamError
from modem_ros.nodes.common import LATCHED, STREAM, WEIGHTS, ModemNode, NodeSetupError, image_array, run_node
from modem_ros.paths import default_run_dir
from modem_ros.run import RunDirInUse, build_trainer, ensure_demos
from modem_ros.runtime import keep_freed_memory
from modem_ros.trainer import ResumeError
from modem_ros.weights import pack, planner_state


class TrainerNode(ModemNode):
    def __init__(self):
        super().__init__("trainer")
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
        latest = self.run_dir / "checkpoints" / "latest.pt"
        if resume and latest.exists():
            self.resume(latest)
        self.assembler = EpisodeAssembler(cfg.frame_stack, cfg.episode_length, cfg.state_dim, cfg.action_dim,
                                          interventions=True)
        self.ckpt_pub = self.create_publisher(String, topics.CHECKPOINT, LATCHED)
        self.weights_pub = self.create_publisher(UInt8MultiArray, topics.WEIGHTS, WEIGHTS)
        self.create_subscription(Image, topics.IMAGE, self.on_image, STREAM)
        self.create_subscription(Float32MultiArray, topics.STATE, self.on_state, STREAM)
        # what the bridge executed (after the safety layer's clipping, an operator's takeover; zeros for a
        # hold), one per step in both graphs: not what the planner asked for
        self.create_subscription(Float32MultiArray, topics.APPLIED_ACTION, self.on_action, STREAM)
        self.create_subscription(Float32, topics.REWARD, self.on_reward, STREAM)
        self.create_subscription(Bool, topics.SUCCESS, lambda m: self.assembler.add_success(m.data), STREAM)
        # per step, whether an operator drove it (both bridges publish it, in order with the actions)
        self.create_subscription(Bool, topics.INTERVENTION, lambda m: self.assembler.add_intervention(m.data),
                                 STREAM)
        self.get_logger().info(f"run directory {self.run_dir.resolve()}")

    def stored_episodes(self, count: int) -> list[Episode]:
        """The first `count` episodes of run_dir/episodes, which a checkpoint saved after them needs."""
        paths = episode_dirs(self.episode_dir) if self.episode_dir.is_dir() else []
        for extra in paths[count:]:  # collected after the last checkpoint: kept, hidden, not trained on
            extra.rename(extra.with_name(f".after-checkpoint-{time.strftime('%Y%m%d-%H%M%S')}-{extra.name}"))
        if len(paths) < count:
            raise NodeSetupError(f"the checkpoint was saved after {count} episodes but {self.episode_dir} holds "
                                 f"{len(paths)}; cannot resume (start a new run_dir or resume:=false)")
        return [read_episode(p, self.cfg.frame_stack).episode for p in paths[:count]]

    def resume(self, latest: Path) -> None:
        try:
            self.trainer.resume(latest, self.stored_episodes)
        except ResumeError as err:
            raise NodeSetupError(f"resume from {latest}: {err} (start a new run_dir or resume:=false)") from err
        self.get_logger().info(f"resumed at step {self.trainer.step} after {self.trainer.episodes} episodes")

    # -------------------------------------------------------------- streams
    def on_image(self, msg: Image) -> None:
        try:
            self.assembler.add_frame(image_array(msg, self.cfg.img_size).transpose(2, 0, 1))
        except ValueError as err:
            self.get_logger().error(f"{topics.IMAGE}: frame not stored: {err}", throttle_duration_sec=5.0)

    def on_state(self, msg: Float32MultiArray) -> None:
        self.add(self.assembler.add_state, msg, topics.STATE)

    def on_action(self, msg: Float32MultiArray) -> None:
        self.add(self.assembler.add_action, msg, topics.APPLIED_ACTION)

    def on_reward(self, msg: Float32) -> None:
        try:
            self.assembler.add_reward(msg.data)
        except StreamError as err:
            self.get_logger().error(f"{topics.REWARD}: not stored: {err}")

    def add(self, adder, msg: Float32MultiArray, topic: str) -> None:
        try:
            adder(np.asarray(msg.data, np.float32))
        except StreamError as err:  # the bridge refuses the same messages, so the streams stay paired
            self.get_logger().error(f"{topic}: not stored: {err}")

    # -------------------------------------------------------------- training
    def announce(self) -> None:
        path = self.trainer.save("latest.pt")
        if path is None:  # not written (disk full): logged; the planner keeps the weights it has
            self.get_logger().error(f"weights v{self.trainer.episodes} not announced: the checkpoint could not "
                                    "be written (see the error above)")
            return
        self.ckpt_pub.publish(String(data=announcement(path.resolve(), self.trainer.episodes, self.trainer.step,
                                                       self.trainer.episodes, self.trainer.run_id)))
        if self.publish_weights:
            state = planner_state(self.trainer.agent.state_dict())
            for header, data in pack(state, self.trainer.run_id, self.trainer.episodes, self.trainer.step,
                                     self.trainer.episodes):
                msg = UInt8MultiArray(data=data)
                msg.layout.dim = [MultiArrayDimension(label=json.dumps(header), size=len(data), stride=len(data))]
                self.weights_pub.publish(msg)

    def run(self) -> None:
        try:
            self._train()
        except KeyboardInterrupt:  # everything up to the last checkpoint is kept: say how to go on
            print(f"[trainer] interrupted at step {self.trainer.step}; resume with: modem-ros launch train_sim "
                  f"run_dir:={self.run_dir.resolve()} (and the same task/preset arguments)", flush=True)
            raise

    def _train(self) -> None:
        self.trainer.begin()
        self.announce()
        waiting_since = time.perf_counter()
        while rclpy.ok() and not self.trainer.done:
            rclpy.spin_once(self, timeout_sec=0.05)
            episode = self.assembler.pop_episode()
            if episode is None:
                continue
            index = self.trainer.episodes
            write_episode(episode, self.episode_dir / f"episode_{index:06d}",
                          {"task": self.cfg.task, "source": "graph", "episode": index})
            self.trainer.after_episode(episode, seconds=time.perf_counter() - waiting_since)
            self.announce()
            waiting_since = time.perf_counter()
        if self.trainer.done:
            self.trainer.finish()
            self.get_logger().info(f"done: {self.trainer.step} steps; run directory {self.run_dir.resolve()}")


def main(args=None) -> int:
    keep_freed_memory()  # as in `modem-ros train`: updates stop page-faulting their activations
    return run_node(TrainerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
