"""realsense_camera: a RealSense colour stream (+ optional aligned depth) on realsense-ros topic names.

Publishes camera/color/image_raw (rgb8) and camera/color/camera_info with the device's own intrinsics
in camera_color_optical_frame (REP-103: z forward, x right, y down), and with `depth` the depth aligned
to colour (16UC1, millimetres) on camera/aligned_depth_to_color/*. The `camera` node downstream crops,
resizes and the planner stacks frames exactly as in sim. A camera that stops delivering (unplugged,
USB reset) is closed and re-opened every `reconnect_interval` seconds; frames
older than the last one published are never sent. Warns when the achieved rate falls below `min_rate`.
`playback_file` plays a recorded .db3/.bag instead of a live camera (offline debugging): once, or
in a loop with `loop_playback`.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from modem_ros import topics
from modem_ros.nodes.common import ModemNode, image_msg, run_node
from modem_ros.robots.realsense import CameraLost, Frames, Intrinsics, RealSenseSource


def camera_info_msg(i: Intrinsics, stamp, frame_id: str) -> CameraInfo:
    msg = CameraInfo()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    msg.width, msg.height = i.width, i.height
    msg.distortion_model, msg.d = i.model, [float(c) for c in i.coeffs]
    msg.k = [i.fx, 0.0, i.ppx, 0.0, i.fy, i.ppy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [i.fx, 0.0, i.ppx, 0.0, 0.0, i.fy, i.ppy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


class RealSenseCamera(ModemNode):
    NAME = "realsense_camera"

    def __init__(self, device=None, **node_options):
        """`device`: an rs.device to open sensor by sensor (pyrealsense2's software device in tests)."""
        super().__init__(self.NAME, **node_options)
        self.source = RealSenseSource(
            width=self.param("width", 640, "Colour width in pixels (a profile the camera offers)."),
            height=self.param("height", 480, "Colour height in pixels."),
            fps=self.param("fps", 30, "Colour frame rate (Hz)."),
            depth=self.param("depth", False, "Also publish depth aligned to the colour image."),
            serial=self.param("serial", "", "Serial number of the camera to open; empty = the first one found."),
            playback_file=self.param("playback_file", "", "Play this recorded .db3/.bag instead of a live camera."),
            loop_playback=self.param("loop_playback", False, "Play the recording again from its start when it "
                                     "ends, seamlessly (librealsense's repeat_playback)."),
            device=device, timeout=self.param("frame_timeout", 1.0, "Seconds without a frame before the camera "
                                              "counts as lost."))
        self.reconnect_interval = self.param("reconnect_interval", 1.0, "Seconds between re-open attempts.")
        self.min_rate = self.param("min_rate", 0.0, "Warn when the achieved rate (Hz) falls below this; "
                                   "0 = 90% of fps.") or 0.9 * self.source.fps
        qos = 2  # reliable, shallow: local consumers get the newest frames; a slow one drops old ones
        self.image_pub = self.create_publisher(Image, topics.RAW_IMAGE, qos)
        self.info_pub = self.create_publisher(CameraInfo, topics.RAW_CAMERA_INFO, qos)
        if self.source.depth:
            self.depth_pub = self.create_publisher(Image, topics.RAW_DEPTH, qos)
            self.depth_info_pub = self.create_publisher(CameraInfo, topics.RAW_DEPTH_INFO, qos)
        self.published = 0
        self.losses = 0        # outages so far (each logged once, and its end)
        self.lost_since: float | None = None
        self.last_timestamp = -np.inf
        self.window = (time.monotonic(), 0)
        self.stopping = threading.Event()
        self.create_timer(5.0, self.check_rate)
        self.thread = threading.Thread(target=self.stream, name="realsense", daemon=True)
        self.thread.start()

    def stream(self) -> None:
        log = self.get_logger()
        while not self.stopping.is_set():
            try:
                self.source.open()
            except CameraLost as err:
                log.error(f"{err}; retrying every {self.reconnect_interval:.1f} s", throttle_duration_sec=30.0)
                self.stopping.wait(self.reconnect_interval)
                continue
            if self.lost_since is None:
                log.info(f"streaming {self.source.description}: {self.source.width}x{self.source.height} at "
                         f"{self.source.fps} Hz{' + aligned depth' if self.source.depth else ''}")
            try:
                while not self.stopping.is_set():
                    self.publish(self.source.read())
            except CameraLost as err:
                if self.source.playback_file and not self.source.loop_playback:
                    log.info(f"end of recording {self.source.playback_file} ({self.published} frames published)")
                    self.source.close()
                    return
                if self.lost_since is None:
                    self.lost_since, self.losses = time.monotonic(), self.losses + 1
                    log.error(f"camera lost: {err}; reconnecting every {self.reconnect_interval:.1f} s")
            finally:
                self.source.close()
            self.stopping.wait(self.reconnect_interval)

    def publish(self, frames: Frames) -> None:
        if self.source.loop_playback and frames.timestamp_ms < self.last_timestamp:
            self.last_timestamp = -np.inf  # the recording started again, and its timestamps with it
        if frames.timestamp_ms <= self.last_timestamp:  # queued before a reconnect, or repeated: stale
            self.get_logger().warning(f"stale frame {frames.number} dropped", throttle_duration_sec=5.0)
            return
        self.last_timestamp = frames.timestamp_ms
        if self.lost_since is not None:
            self.get_logger().info(f"camera back after {time.monotonic() - self.lost_since:.1f} s")
            self.lost_since = None
        stamp = self.get_clock().now().to_msg()
        self.info_pub.publish(camera_info_msg(self.source.intrinsics, stamp, topics.CAMERA_FRAME))
        self.image_pub.publish(image_msg(frames.color, stamp, topics.CAMERA_FRAME))
        if frames.depth is not None:
            mm = frames.depth.astype(np.float64) * (self.source.depth_units * 1000.0)
            msg = Image(height=mm.shape[0], width=mm.shape[1], encoding="16UC1", step=mm.shape[1] * 2,
                        data=np.clip(np.rint(mm), 0, 65535).astype(np.uint16).tobytes())
            msg.header.stamp, msg.header.frame_id = stamp, topics.CAMERA_FRAME
            self.depth_info_pub.publish(camera_info_msg(self.source.intrinsics, stamp, topics.CAMERA_FRAME))
            self.depth_pub.publish(msg)
        self.published += 1

    def check_rate(self) -> None:
        start, count = self.window
        now = time.monotonic()
        rate = (self.published - count) / (now - start)
        if rate < self.min_rate:
            self.get_logger().warning(f"camera rate {rate:.1f} Hz < {self.min_rate:.1f} Hz "
                                      f"({self.source.width}x{self.source.height} at {self.source.fps} Hz configured)")
        self.window = (now, self.published)

    def destroy_node(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=3.0)
        super().destroy_node()


def main(args=None) -> int:
    return run_node(RealSenseCamera, args)


if __name__ == "__main__":
    raise SystemExit(main())
