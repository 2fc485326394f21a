"""Topic names and message types of the node graph — the one place they are defined.

realsense-ros and franka_ros2 conventions where they exist, ours under modem/. Standard messages only
(custom interfaces need a CMake build the pip path lacks). Demo bags use the same names and types.
"""

from __future__ import annotations

IMAGE = "camera/color/image_raw"           # sensor_msgs/msg/Image, rgb8, one (unstacked) frame
CAMERA_INFO = "camera/color/camera_info"   # sensor_msgs/msg/CameraInfo
STATE = "modem/state"                      # std_msgs/msg/Float32MultiArray, the task's state vector
ACTION = "modem/action"                    # std_msgs/msg/Float32MultiArray, normalized to [-1, 1]
REWARD = "modem/reward"                    # std_msgs/msg/Float32
SUCCESS = "modem/success"                  # std_msgs/msg/Bool

TYPES = {
    IMAGE: "sensor_msgs/msg/Image",
    CAMERA_INFO: "sensor_msgs/msg/CameraInfo",
    STATE: "std_msgs/msg/Float32MultiArray",
    ACTION: "std_msgs/msg/Float32MultiArray",
    REWARD: "std_msgs/msg/Float32",
    SUCCESS: "std_msgs/msg/Bool",
}

CAMERA_FRAME = "camera_color_optical_frame"  # REP-103 optical frame, as realsense-ros names it
