"""teleop: a human drives the task's action from a keyboard, gamepad or SpaceMouse.

Alone (demo recording) it drives: one action per observation, paced to `rate` so a person can follow.
Beside a planner (`planner_action_topic`, the planner remapped there) it is the action topic's gate:
the planner's actions pass through until the operator takes over (engage); from then each observation
is answered with the device's action at once, without waiting for the planner (whose answers are dropped
while a human drives): the operator's control never depends on how fast, or whether, the planner plans.
The console keys and pad buttons also call the recorder's services, and the e-stop key (keyboard e, pad
SELECT) the robot bridge's latching e-stop service: a software stop beside, never instead of, the robot's
hardware stop button. The success key (keyboard y, pad X) marks the task done: on hardware that is the
bridge's reward. A device that goes away stops motion (zero actions) and is logged; the node keeps trying
to reopen it.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
from rclpy.clock import Clock, ClockType
from std_msgs.msg import Bool, Float32MultiArray, String
from std_srvs.srv import Trigger

from modem_ros import topics
from modem_ros.nodes.common import FOLLOW, LATCHED, STREAM, ModemNode, NodeSetupError, operator_action_msg, run_node
from modem_ros.teleop import ActionMapper, Command, DeviceLost, open_device
from modem_ros.teleop.keyboard import key_help

SERVICES = {"start": topics.RECORDER_START, "save": topics.RECORDER_SAVE, "discard": topics.RECORDER_DISCARD,
            "re_record": topics.RECORDER_RERECORD, "estop": topics.ESTOP}
REOPEN_PERIOD = 1.0  # seconds between attempts to reopen a lost device


class Teleop(ModemNode):
    NAME = "teleop"

    def __init__(self, **node_options):
        super().__init__(self.NAME, **node_options)
        cfg = self.task_config()
        self.kind = self.param("device", "keyboard", "Input device: keyboard (terminal, works over SSH), gamepad "
                               "(evdev), spacemouse (pyspacemouse).")
        self.options = {
            "tty": self.param("keyboard_tty", "", "Terminal to read keys from; empty = the launcher's terminal "
                              "($MODEM_ROS_TTY) or /dev/tty."),
            "key_hold": self.param("key_hold", 0.5, "Seconds a key press drives its axis (bridges the terminal's "
                                   "auto-repeat delay)."),
            "path": self.param("gamepad_path", "", "evdev device of the gamepad; empty = the first one found."),
        }
        try:
            self.mapper = ActionMapper(cfg.action_dim, self.param("axis_map", "", "Action dimension -> device "
                                       "channel, comma-separated (x y z roll pitch yaw gripper, '-' negates, 0); "
                                       "'joint' = one joint at a time; empty = the task's default."),
                                       self.param("scale", 1.0, "Multiplies every motion channel (speed)."),
                                       self.param("deadzone", 0.1, "Channel magnitudes below this are zero."))
        except ValueError as err:
            raise NodeSetupError(f"teleop mapping: {err}") from err
        self.rate = self.param("rate", 10.0, "Actions per second when a human drives (alone, or having taken "
                               "over: one per observation, never faster than this).")
        planner_topic = self.param("planner_action_topic", "", "The planner's action topic to gate; empty = no "
                                   "planner, teleop drives alone and is always engaged.")
        robot = self.param("robot", False, "A robot is driven (hardware modes): its keys (task done, e-stop) are "
                           "shown; in sim only the keys that act there.")
        self.drive_alone = not planner_topic
        # the keys that act in this session only, on the terminal and (latched) for the operator's view
        self.options["help"] = key_help(self.mapper.axis_map, recording=self.drive_alone,
                                        gating=not self.drive_alone, robot=robot)
        self.engaged = self.drive_alone
        self.command, self.device, self.lost_at = Command(), None, 0.0
        self.open()
        self.pending = 0  # observations not yet answered (gating: 0 or 1, by the planner or the human)
        self.next_time = 0.0
        self.action_pub = self.create_publisher(Float32MultiArray, topics.ACTION, STREAM)
        self.engaged_pub = self.create_publisher(Bool, topics.TELEOP_ENGAGED, LATCHED)
        self.engaged_pub.publish(Bool(data=self.engaged))
        self.success_pub = self.create_publisher(Bool, topics.OPERATOR_SUCCESS, 10)
        keys_pub = self.create_publisher(String, topics.TELEOP_KEYS, LATCHED)
        keys_pub.publish(String(data=self.options["help"] if self.kind == "keyboard" else f"{self.kind}: see README"))
        self.clients_ = {event: self.create_client(Trigger, name) for event, name in SERVICES.items()}
        self.create_subscription(Float32MultiArray, topics.STATE, self.on_observation, STREAM)
        if not self.drive_alone:
            self.create_subscription(Float32MultiArray, planner_topic, self.on_planner_action, FOLLOW)
        # wall-clock polling: a person's keys don't wait for sim time (which stands still between episodes)
        self.create_timer(0.01, self.tick, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(f"{self.kind} -> {cfg.action_dim}-D action (axis_map {self.mapper.axis_map}); "
                               + ("driving alone" if self.drive_alone else f"gating {planner_topic}")
                               + (f"; {self.options['help']}" if self.kind == "keyboard" else ""))

    # ------------------------------------------------------------------ device
    def open(self) -> None:
        try:
            self.device = open_device(self.kind, **self.options)
        except DeviceLost as err:
            if self.lost_at == 0.0:  # at start-up a missing device is a setup error, later a loss to retry
                raise NodeSetupError(str(err)) from err
            self.device = None
        except (ValueError, ImportError) as err:
            raise NodeSetupError(f"device {self.kind}: {err}") from err

    def tick(self) -> None:
        now = time.monotonic()
        if self.device is None:
            if now - self.lost_at >= REOPEN_PERIOD:
                self.lost_at = now
                self.open()
                if self.device is not None:
                    self.get_logger().info(f"{self.kind}: device back")
        else:
            try:
                self.command, events = self.device.poll(now)
            except DeviceLost as err:
                self.get_logger().error(f"{err}; motion stopped (zero action) until it returns")
                with contextlib.suppress(Exception):  # release what is left of it before reopening
                    self.device.close()
                self.device, self.command, self.lost_at, events = None, None, now, []
            for event in events:
                self.on_event(event)
        while self.drive_alone and self.pending and now >= self.next_time:
            self.pending -= 1
            self.next_time = now + 1.0 / self.rate
            self.action_pub.publish(operator_action_msg(self.device_action()))
        self.answer_engaged()

    def answer_engaged(self) -> None:
        """Gating with a human in control: the open observation gets the device's action now, paced to
        `rate` as when driving alone (a lock-step sim would otherwise race as fast as we answer)."""
        now = time.monotonic()
        if not self.drive_alone and self.engaged and self.pending and now >= self.next_time:
            self.pending = 0
            self.next_time = now + 1.0 / self.rate
            self.action_pub.publish(operator_action_msg(self.device_action()))

    def device_action(self) -> np.ndarray:
        if self.command is None:  # device lost: hold still
            return np.zeros(self.mapper.action_dim, np.float32)
        return self.mapper(self.command)

    def on_event(self, event: str) -> None:
        if event in SERVICES:
            client = self.clients_[event]
            if not client.service_is_ready():
                self.get_logger().warning(f"{event}: nothing offers {SERVICES[event]}"
                                          + (" (no robot bridge: this is not a stop)" if event == "estop" else ""))
                return
            future = client.call_async(Trigger.Request())
            future.add_done_callback(lambda f, e=event: self.get_logger().info(
                f"{e}: {f.result().message}" if f.result() else f"{e}: no answer"))
        elif event == "success":
            self.success_pub.publish(Bool(data=True))
            self.get_logger().info("task marked done (operator)")
        elif event in ("engage", "engage_on", "engage_off") and not self.drive_alone:
            engaged = not self.engaged if event == "engage" else event == "engage_on"
            if engaged != self.engaged:
                self.engaged = engaged
                self.engaged_pub.publish(Bool(data=engaged))
                self.get_logger().info("human has control" if engaged else "planner has control")
        elif event in ("joint_next", "joint_prev") and self.mapper.axis_map == "joint":
            joint = self.mapper.select_joint(1 if event == "joint_next" else -1)
            self.get_logger().info(f"driving joint {joint}")

    # ------------------------------------------------------------------ actions
    def on_observation(self, msg: Float32MultiArray) -> None:
        # gating: only the newest observation is open (a bridge applies a late answer to its current step)
        self.pending = self.pending + 1 if self.drive_alone else 1
        self.answer_engaged()

    def on_planner_action(self, msg: Float32MultiArray) -> None:
        """At most one action out per observation: a planner action for an observation the operator
        already answered is dropped, one for an open observation passes (the device's if engaged since)."""
        if not self.pending:
            return
        self.pending -= 1
        # the planner's passes unlabelled (whatever its layout said): only the gate marks an operator's action
        self.action_pub.publish(operator_action_msg(self.device_action()) if self.engaged
                                else Float32MultiArray(data=msg.data))

    def destroy_node(self) -> None:
        if self.device is not None:
            self.device.close()
        super().destroy_node()


def main(args=None) -> int:
    return run_node(Teleop, args)


if __name__ == "__main__":
    raise SystemExit(main())
