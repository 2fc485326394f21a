"""Topic names and message types of the node graph — the one place they are defined.

realsense-ros and franka_ros2 conventions where they exist, ours under modem/. Standard messages only
(custom interfaces need a CMake build the pip path lacks).

Pairing: one observation is the k-th message of IMAGE and of STATE; its reward/success are the k-th
REWARD/SUCCESS of the episode (none for the first observation), the action the k-th ACTION. Every
stream is reliable and in order per topic (DDS guarantees order per writer), so counting pairs them;
demo bags store the same streams in the same order.
"""

from __future__ import annotations

# sensor side: what a camera driver (RealSense, or the sim bridge's renderer) publishes
RAW_IMAGE = "camera/color/image_raw"            # sensor_msgs/msg/Image, rgb8, sensor resolution
RAW_CAMERA_INFO = "camera/color/camera_info"    # sensor_msgs/msg/CameraInfo of RAW_IMAGE
# agent side: what the camera node makes of it and planner, trainer and recorder consume
IMAGE = "modem/image"                      # sensor_msgs/msg/Image, rgb8, img_size square, one (unstacked) frame
                                           # height = width = 0, no data: the camera had no fresh frame for this
                                           # observation (hardware, nodes.common.no_frame_msg); sent in its place so
                                           # counting still pairs; an episode holding one is not stored or trained on
NO_FRAME_PARAM = "no_frame_placeholders"   # the consumers' parameter that accepts them (on in hardware graphs only)
CAMERA_INFO = "modem/camera_info"          # sensor_msgs/msg/CameraInfo scaled to IMAGE
STATE = "modem/state"                      # std_msgs/msg/Float32MultiArray, the task's state vector
STEP_LABEL = "episode_step"                # STATE's layout.dim[0].label "episode_step=<t>": the observation's step in
                                           # its episode at the bridge (0 = reset), so consumers find where an episode
                                           # starts even after one cut short (an e-stop, a reset mid-episode)
ACTION = "modem/action"                    # std_msgs/msg/Float32MultiArray, normalized to [-1, 1]
OPERATOR_ACTION_LABEL = "operator"         # ACTION's layout.dim[0].label when a teleop device drove it: the flag
                                           # travels with the action, so a bridge's INTERVENTION is exact per step
APPLIED_ACTION = "modem/applied_action"    # Float32MultiArray: the action a bridge executed, one per step
PLANNER_ACTION = "modem/planner/action"    # the planner's output where teleop sits between it and ACTION
TELEOP_ENGAGED = "modem/teleop/engaged"    # std_msgs/msg/Bool, latched: a human drives ACTION
TELEOP_KEYS = "modem/teleop/keys"          # std_msgs/msg/String, latched: the keys that act in this session
REWARD = "modem/reward"                    # std_msgs/msg/Float32, one per step (not for the reset observation)
SUCCESS = "modem/success"                  # std_msgs/msg/Bool, one per step
INTERVENTION = "modem/intervention"        # std_msgs/msg/Bool, one per step: an operator drove its action
                                           # (read from the executed ACTION's label, not from TELEOP_ENGAGED)
EPISODE = "modem/episode"                  # std_msgs/msg/String, JSON event {"event": "start"|"end"|"abort", ...}
PROGRESS = "modem/progress"                # std_msgs/msg/String, JSON per sim step: episode, t, length, return,
                                           # success, goal_distance where the task has one (the operator's view)
CHECKPOINT = "modem/checkpoint"            # std_msgs/msg/String, JSON {"path", "version", "step", "episodes", "run_id"}
WEIGHTS = "modem/weights"                  # std_msgs/msg/UInt8MultiArray chunks, header JSON in layout.dim[0].label
PLANNER_STATS = "modem/planner/latency"    # std_msgs/msg/String, JSON latency statistics
CLOCK = "/clock"                           # rosgraph_msgs/msg/Clock, sim time from the sim bridge
# arm state, from the Franka bridge and from the sim bridge's Franka cell alike (franka_ros2 joint names)
JOINT_STATES = "joint_states"              # sensor_msgs/msg/JointState: fr3_joint1..7 + fr3_finger_joint1..2
EE_POSE = "modem/ee_pose"                  # geometry_msgs/msg/PoseStamped: TCP in BASE_FRAME
ESTOP_ACTIVE = "modem/estop/active"        # std_msgs/msg/Bool, latched: the safety layer's e-stop is latched
SAFETY = "modem/safety"                    # std_msgs/msg/String, JSON: the safety layer's event counts
OPERATOR_SUCCESS = "modem/operator/success"  # std_msgs/msg/Bool: the operator marks the task done (hardware reward)
# depth aligned to the colour image, as realsense-ros names it (align_depth.enable)
RAW_DEPTH = "camera/aligned_depth_to_color/image_raw"         # sensor_msgs/msg/Image, 16UC1, millimetres
RAW_DEPTH_INFO = "camera/aligned_depth_to_color/camera_info"  # sensor_msgs/msg/CameraInfo

TYPES = {
    RAW_IMAGE: "sensor_msgs/msg/Image",
    RAW_CAMERA_INFO: "sensor_msgs/msg/CameraInfo",
    IMAGE: "sensor_msgs/msg/Image",
    CAMERA_INFO: "sensor_msgs/msg/CameraInfo",
    STATE: "std_msgs/msg/Float32MultiArray",
    ACTION: "std_msgs/msg/Float32MultiArray",
    APPLIED_ACTION: "std_msgs/msg/Float32MultiArray",
    PLANNER_ACTION: "std_msgs/msg/Float32MultiArray",
    TELEOP_ENGAGED: "std_msgs/msg/Bool",
    TELEOP_KEYS: "std_msgs/msg/String",
    REWARD: "std_msgs/msg/Float32",
    SUCCESS: "std_msgs/msg/Bool",
    INTERVENTION: "std_msgs/msg/Bool",
    EPISODE: "std_msgs/msg/String",
    PROGRESS: "std_msgs/msg/String",
    CHECKPOINT: "std_msgs/msg/String",
    WEIGHTS: "std_msgs/msg/UInt8MultiArray",
    PLANNER_STATS: "std_msgs/msg/String",
    CLOCK: "rosgraph_msgs/msg/Clock",
    JOINT_STATES: "sensor_msgs/msg/JointState",
    EE_POSE: "geometry_msgs/msg/PoseStamped",
    ESTOP_ACTIVE: "std_msgs/msg/Bool",
    SAFETY: "std_msgs/msg/String",
    OPERATOR_SUCCESS: "std_msgs/msg/Bool",
    RAW_DEPTH: "sensor_msgs/msg/Image",
    RAW_DEPTH_INFO: "sensor_msgs/msg/CameraInfo",
}

# Services (std_srvs/srv/Trigger): a bridge's episode reset, and the recorder's episode control.
RESET = "modem/reset"                      # end the current episode (if any) and start a new one
RECORDER_START = "modem/recorder/start"
RECORDER_SAVE = "modem/recorder/save"
RECORDER_DISCARD = "modem/recorder/discard"
RECORDER_RERECORD = "modem/recorder/re_record"
ESTOP = "modem/estop"                      # latch the e-stop: the arm stops and holds until ESTOP_RESET
ESTOP_RESET = "modem/estop/reset"          # clear it (explicitly, never by itself)
RECOVER = "modem/robot/recover"            # clear the arm's reflex errors (franky: recover_from_errors)

# What an episode bag holds: exactly what the trainer consumes.
BAG_TOPICS = (IMAGE, STATE, ACTION, REWARD, SUCCESS)

# The QoS of the lock-step streams (nodes.common.STREAM is built from it, and episode bags record it as
# each topic's offered profile, so `ros2 bag play` publishes what our transient-local readers accept).
STREAM_QOS = {"reliability": "reliable", "durability": "transient_local", "history": "keep_last", "depth": 1024}

# One clock per episode: an agent step is 0.1 s (10 Hz) everywhere - the Franka bridge's rate (2 x 50 ms
# control periods), the sim bridge's /clock increment, episode bag time and the LeRobot export's fps.
AGENT_PERIOD = 0.1
AGENT_HZ = round(1 / AGENT_PERIOD)

CAMERA_FRAME = "camera_color_optical_frame"  # REP-103 optical frame, as realsense-ros names it
BASE_FRAME = "fr3_link0"                   # the arm's base frame (franka_ros2's name), x forward z up
