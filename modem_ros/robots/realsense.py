"""RealSense frames through pyrealsense2, no ROS: a live camera (by serial), a recorded .db3/.bag file
(offline debugging), or any rs.device opened sensor by sensor — which is how pyrealsense2's software
device, the camera stand-in the tests use, is driven (pipelines only find USB and file devices).

read() returns the newest colour frame (rgb8) and, with depth, the depth frame aligned to it; it raises
CameraLost when frames stop (unplugged, end of file), after which the caller close()s and re-opens.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np


class CameraLost(RuntimeError):
    """No frame within the timeout, or the device is gone."""


@dataclass
class Frames:
    color: np.ndarray              # uint8 [H, W, 3], rgb8
    depth: np.ndarray | None       # uint16 [H, W] aligned to color, in depth_units (None without depth)
    number: int                    # the colour frame's frame number
    timestamp_ms: float            # the device's timestamp of the colour frame


@dataclass
class Intrinsics:
    width: int
    height: int
    fx: float
    fy: float
    ppx: float
    ppy: float
    model: str                     # ROS distortion model name
    coeffs: list[float]


def _intrinsics(profile) -> Intrinsics:
    import pyrealsense2 as rs

    i = profile.as_video_stream_profile().get_intrinsics()
    # RealSense colour streams report Brown-Conrady (= ROS plumb_bob's k1 k2 p1 p2 k3) or none
    model = "plumb_bob" if i.model in (rs.distortion.brown_conrady, rs.distortion.none,
                                       rs.distortion.modified_brown_conrady) else str(i.model)
    return Intrinsics(i.width, i.height, i.fx, i.fy, i.ppx, i.ppy, model, list(i.coeffs))


class RealSenseSource:
    """Open with open(); read() frames; close() (and open() again after CameraLost)."""

    def __init__(self, width: int, height: int, fps: int, depth: bool = False, serial: str = "",
                 playback_file: str = "", loop_playback: bool = False, device=None, timeout: float = 1.0):
        self.width, self.height, self.fps, self.depth = width, height, fps, depth
        self.serial, self.playback_file, self.device = serial, playback_file, device
        self.loop_playback = loop_playback
        self.timeout_ms = int(timeout * 1000)
        self.pipeline = self.syncer = self.align = None
        self.sensors: list = []
        self.intrinsics: Intrinsics | None = None
        self.depth_units = 0.001
        self.description = ""

    def open(self) -> None:
        import pyrealsense2 as rs

        self.align = rs.align(rs.stream.color) if self.depth else None
        try:
            if self.device is not None:
                self._open_sensors(rs)
            else:
                self._open_pipeline(rs)
        except RuntimeError as err:
            self.close()
            raise CameraLost(f"cannot open {self.where()}: {err}") from err

    def where(self) -> str:
        if self.device is not None:
            import pyrealsense2 as rs

            return f"device {self.device.get_info(rs.camera_info.serial_number)}"
        return f"file {self.playback_file}" if self.playback_file else \
            (f"camera {self.serial}" if self.serial else "the first RealSense camera")

    def _open_pipeline(self, rs) -> None:
        config = rs.config()
        if self.playback_file:
            config.enable_device_from_file(self.playback_file, repeat_playback=self.loop_playback)
        elif self.serial:
            config.enable_device(self.serial)
        config.enable_stream(rs.stream.color, self.width, self.height, rs.format.rgb8, self.fps)
        if self.depth:
            config.enable_stream(rs.stream.depth, rs.format.z16, self.fps)
        self.pipeline = rs.pipeline()
        profile = self.pipeline.start(config)
        device = profile.get_device()
        self.intrinsics = _intrinsics(profile.get_stream(rs.stream.color))
        if self.depth:
            self.depth_units = device.first_depth_sensor().get_depth_scale()
        self.description = f"{device.get_info(rs.camera_info.name)} {device.get_info(rs.camera_info.serial_number)}"

    def _open_sensors(self, rs) -> None:
        """A device opened sensor by sensor into a syncer (software device, or any device by hand)."""
        self.syncer = rs.syncer()
        wanted = [(rs.stream.color, rs.format.rgb8)] + ([(rs.stream.depth, rs.format.z16)] if self.depth else [])
        for stream, fmt in wanted:
            for sensor in self.device.query_sensors():
                match = [p for p in sensor.get_stream_profiles() if p.stream_type() == stream and p.format() == fmt
                         and p.fps() == self.fps and (stream != rs.stream.color or (
                             p.as_video_stream_profile().width(), p.as_video_stream_profile().height())
                             == (self.width, self.height))]
                if match:
                    sensor.open(match[0])
                    sensor.start(self.syncer)
                    self.sensors.append(sensor)
                    if stream == rs.stream.color:
                        self.intrinsics = _intrinsics(match[0])
                    break
            else:
                raise RuntimeError(f"no {stream} {fmt} profile at {self.width}x{self.height} {self.fps} Hz")
        info = self.device.get_info
        self.description = f"{info(rs.camera_info.name)} {info(rs.camera_info.serial_number)}"

    def read(self) -> Frames:
        try:
            frames = (self.pipeline.wait_for_frames(self.timeout_ms) if self.pipeline is not None
                      else self.syncer.wait_for_frames(self.timeout_ms))
            if self.align is not None:
                frames = self.align.process(frames)
        except RuntimeError as err:
            raise CameraLost(f"{self.where()}: {err}") from err
        color = frames.get_color_frame()
        if not color:
            return self.read()  # a depth-only set from the syncer: the colour frame follows
        depth = None
        if self.depth:
            d = frames.get_depth_frame()
            depth = np.asanyarray(d.get_data()).copy() if d else None
        return Frames(np.asanyarray(color.get_data()).copy(), depth, color.get_frame_number(), color.get_timestamp())

    def close(self) -> None:
        if self.pipeline is not None:
            with contextlib.suppress(RuntimeError):
                self.pipeline.stop()
        for sensor in self.sensors:
            for call in (sensor.stop, sensor.close):
                with contextlib.suppress(RuntimeError):
                    call()
        self.pipeline = self.syncer = None
        self.sensors = []
