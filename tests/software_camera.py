"""pyrealsense2's software device as a camera that needs no hardware, and .db3 recordings made from it.

The software device is librealsense's own stand-in: frames injected here go through the same sensor,
syncer, recorder and playback code as a live D435's."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pyrealsense2 as rs

W, H, FPS = 64, 48, 30
FX, FY, PPX, PPY = 61.5, 61.75, 32.25, 23.5
COEFFS = [0.1, -0.05, 0.0, 0.0, 0.01]


class SoftwareCamera:
    """A software RealSense: colour frame i is filled with i % 256; inject() runs at FPS while `live`."""

    def __init__(self):
        self.device = rs.software_device()
        self.device.register_info(rs.camera_info.serial_number, "000000000001")
        self.device.register_info(rs.camera_info.name, "Intel RealSense D435 (software device)")
        self.sensor = self.device.add_sensor("RGB Camera")
        intr = rs.intrinsics()
        intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = W, H, FX, FY, PPX, PPY
        intr.model, intr.coeffs = rs.distortion.brown_conrady, COEFFS
        stream = rs.video_stream()
        stream.type, stream.index, stream.uid, stream.width, stream.height = rs.stream.color, 0, 0, W, H
        stream.fps, stream.bpp, stream.fmt, stream.intrinsics = FPS, 3, rs.format.rgb8, intr
        self.profile = self.sensor.add_video_stream(stream).as_video_stream_profile()
        self.live = threading.Event()
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._inject, daemon=True)

    def _inject(self) -> None:
        while not self.stop.is_set():
            if self.live.is_set():
                frame = rs.software_video_frame()
                frame.pixels = np.full((H, W, 3), self.sent % 256, np.uint8)
                frame.stride, frame.bpp, frame.frame_number = W * 3, 3, self.sent
                frame.timestamp, frame.domain = self.sent * 1000 / FPS, rs.timestamp_domain.hardware_clock
                frame.profile = self.profile
                self.sensor.on_video_frame(frame)
                self.sent += 1
            time.sleep(1 / FPS)  # real-time pacing: the recorder drops frames injected faster


def record_db3(path: Path, frames: int) -> int:
    """Record `frames` software-camera frames into a librealsense .db3; returns how many were sent."""
    cam = SoftwareCamera()
    recorder = rs.recorder(str(path), cam.device)
    sensor = recorder.query_sensors()[0]
    sensor.open(sensor.get_stream_profiles()[0])
    syncer = rs.syncer()
    sensor.start(syncer)
    cam.thread.start()
    cam.live.set()
    while cam.sent < frames:
        time.sleep(0.01)
    cam.live.clear()
    time.sleep(0.3)
    sensor.stop()
    sensor.close()
    del recorder, sensor, syncer  # the recorder writes the file out when released
    cam.stop.set()
    time.sleep(0.5)
    return cam.sent
