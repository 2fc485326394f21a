"""Image geometry shared by the camera node and dataset import, and the camera's no-frame placeholder
(no ROS)."""

from __future__ import annotations

import numpy as np


def square_resize(frame: np.ndarray, size: int) -> tuple[np.ndarray, float, int, int]:
    """Centre-crop [H, W, 3] to square and resize; returns the frame, the scale and the crop offsets (x, y)."""
    h, w = frame.shape[:2]
    side = min(h, w)
    x0, y0 = (w - side) // 2, (h - side) // 2
    crop = frame[y0:y0 + side, x0:x0 + side]
    if side == size:
        return crop, 1.0, x0, y0
    import cv2

    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp), size / side, x0, y0


def is_no_frame(msg) -> bool:
    """An Image (rclpy's or a bag's) that is the camera's no-frame placeholder: 0 x 0, no data
    (topics.IMAGE; made by nodes.common.no_frame_msg)."""
    return msg.height == 0 and msg.width == 0 and len(msg.data) == 0
