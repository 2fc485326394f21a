"""camera: turns a sensor's image stream into the agent's — rgb8 at img_size, square, with CameraInfo
scaled to match. In sim it relays the bridge's already-sized frames one for one (lock-step: reliable);
on hardware it subscribes best-effort to the RealSense stream, centre-crops to square and resizes.
Frame stacking happens in the consumers (a k-frame stack is not a standard image encoding).
On hardware (`sample_on_state`) it publishes one frame per robot observation — the newest camera frame
when the bridge's state arrives — so images and states pair one to one, as the sim bridge's do. When
the newest frame is stale it sends an empty placeholder in its place (nodes.common.no_frame_msg), not
nothing: consumers pair by counting, and one missing message would shift every pairing after it."""

from __future__ import annotations

import time

import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float32MultiArray

from modem_ros import topics
from modem_ros.images import square_resize
from modem_ros.nodes.common import STREAM, ModemNode, image_array, image_msg, no_frame_msg, run_node


def scaled_info(info: CameraInfo, scale: float, x0: int, y0: int, size: int) -> CameraInfo:
    out = CameraInfo()
    out.header, out.distortion_model, out.d = info.header, info.distortion_model, info.d
    out.height = out.width = size
    k = list(info.k)
    k[0], k[4] = k[0] * scale, k[4] * scale
    k[2], k[5] = (k[2] - x0) * scale, (k[5] - y0) * scale
    out.k, out.r = k, info.r
    p = list(info.p)
    p[0], p[5], p[2], p[6] = p[0] * scale, p[5] * scale, (p[2] - x0) * scale, (p[6] - y0) * scale
    out.p = p
    return out


class Camera(ModemNode):
    NAME = "camera"

    def __init__(self, **node_options):
        super().__init__(self.NAME, **node_options)
        self.size = self.task_config().img_size
        reliable = self.param("reliable", True, "Lock-step relay (sim): reliable, nothing dropped. False: "
                              "best-effort sensor QoS, newest frame only (hardware).")
        self.rate_warning = self.param("min_rate", 0.0, "Warn when the input rate (Hz) falls below this (0 = off).")
        self.sample_on_state = self.param("sample_on_state", False, f"Publish the newest frame once per {topics.STATE} "
                                          "message (hardware: pairs images with the bridge's observations).")
        self.max_frame_age = self.param("max_frame_age", 0.2, "sample_on_state: a frame older than this (s) is "
                                        "stale: an empty placeholder is published in its place.")
        qos = self.stream_qos(reliable)
        # Out: the lock-step stream QoS in both modes - nothing lost, and a trainer or recorder that joins
        # late (torch imports for seconds while the robot's first episode runs) still gets every frame;
        # a best-effort planner takes the newest.
        out_qos = STREAM
        self.image_pub = self.create_publisher(Image, topics.IMAGE, out_qos)
        self.info_pub = self.create_publisher(CameraInfo, topics.CAMERA_INFO, out_qos)
        self.create_subscription(Image, topics.RAW_IMAGE, self.on_image, qos)
        self.create_subscription(CameraInfo, topics.RAW_CAMERA_INFO, self.on_info, qos)
        self.info: CameraInfo | None = None
        self.newest: tuple[float, np.ndarray, object] | None = None  # (arrival, frame, header)
        if self.sample_on_state:
            self.create_subscription(Float32MultiArray, topics.STATE, self.on_state, STREAM)
        self.count, self.window_start = 0, time.monotonic()
        if self.rate_warning > 0:
            self.create_timer(5.0, self.check_rate)
        self.get_logger().info(f"relaying {topics.RAW_IMAGE} -> {topics.IMAGE} at {self.size} px"
                               + (f", one frame per {topics.STATE}" if self.sample_on_state else ""))

    def on_info(self, msg: CameraInfo) -> None:
        self.info = msg

    def on_image(self, msg: Image) -> None:
        try:
            frame = image_array(msg)
        except ValueError as err:
            self.get_logger().error(f"{topics.RAW_IMAGE}: frame dropped: {err}", throttle_duration_sec=5.0)
            return
        self.count += 1
        if self.sample_on_state:  # resized only when an observation takes it (10 of the camera's 30 Hz)
            self.newest = (time.monotonic(), frame, msg.header)
            return
        self.publish(frame, msg.header)

    def on_state(self, msg: Float32MultiArray) -> None:
        age = np.inf if self.newest is None else time.monotonic() - self.newest[0]
        if age > self.max_frame_age:  # the placeholder keeps the count; its episode is not stored or trained on
            self.get_logger().error(f"observation without an image: newest camera frame is {age:.2f} s old "
                                    f"(> {self.max_frame_age} s); sent the no-frame placeholder",
                                    throttle_duration_sec=2.0)
            frame_id = topics.CAMERA_FRAME if self.newest is None else self.newest[2].frame_id
            self.image_pub.publish(no_frame_msg(self.get_clock().now().to_msg(), frame_id))
            return
        self.publish(*self.newest[1:])

    def publish(self, frame: np.ndarray, header) -> None:
        out, scale, x0, y0 = square_resize(frame, self.size)
        if self.info is not None:
            self.info_pub.publish(scaled_info(self.info, scale, x0, y0, self.size))
        self.image_pub.publish(image_msg(out, header.stamp, header.frame_id))

    def check_rate(self) -> None:
        now = time.monotonic()
        rate = self.count / (now - self.window_start)
        if rate < self.rate_warning:
            self.get_logger().warning(f"camera rate {rate:.1f} Hz < {self.rate_warning:.1f} Hz")
        self.count, self.window_start = 0, now


def main(args=None) -> int:
    return run_node(Camera, args)


if __name__ == "__main__":
    raise SystemExit(main())
