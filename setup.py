"""ament_python package that also installs with pip (see README: two ways to run the same graph)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "modem_ros"
# The ROS 2 Kilted wheels, for machines without a sourced ROS 2 distro.
ROS_WHEELS = [
    "ros-kilted-rclpy[fastrtps]==9.1.2",
    "ros-kilted-std-msgs", "ros-kilted-sensor-msgs", "ros-kilted-geometry-msgs",
    "ros-kilted-std-srvs", "ros-kilted-rosgraph-msgs", "ros-kilted-rcl-yaml-param-parser",
    "ros-kilted-trajectory-msgs",  # franka_ros2 backend: the JointTrajectoryController's command
]
# Simulation pins that work together (DESIGN.md section 4); unpinned, pip picks mujoco 4 and breaks dm_control.
SIM = [
    "mujoco==3.3.0", "dm_control==1.0.28", "metaworld==3.1.1", "gymnasium==1.4.0",
    "gymnasium-robotics==1.4.2", "opencv-python-headless", "imageio", "imageio-ffmpeg",
]
# Hardware: RealSense + Franka over FCI. franky-sim (the FCI stand-in the tests drive) needs mujoco 4 and numpy 2.4,
# which break dm_control 1.0.28, so scripts/install.sh puts it in its own venv (.venv-franky-sim), not here.
HARDWARE = ["pyrealsense2==2.59.1.11053", "franky-control==2.0.0"]
# Teleop input devices: evdev (gamepads, Linux), pyspacemouse (3Dconnexion over HID). The keyboard needs nothing.
TELEOP = ["evdev>=1.7", "pyspacemouse>=2.1"]
# `modem-ros demos export --format lerobot`: parquet tables (videos use the sim extra's imageio-ffmpeg)
LEROBOT = ["pyarrow>=15", "pandas>=2"]
# `ros2 run modem_ros <node>` on a ROS 2 install; the launchers use `python -m modem_ros.nodes.<node>`
NODES = [f"{node} = modem_ros.nodes.{node}:main" for node in ("sim_bridge", "camera", "planner", "trainer",
                                                                  "teleop", "recorder", "realsense_camera",
                                                                  "franka_bridge")]


def data_files():
    files = [
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ]
    for folder in ("launch", "config", "config/suites", "config/presets", "sim"):
        matched = [p for p in glob(f"{folder}/*") if not p.endswith("/") and "." in p.rsplit("/", 1)[-1]]
        if matched:
            files.append((f"share/{PACKAGE}/{folder}", matched))
    return files


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["tests"]),
    data_files=data_files(),
    python_requires=">=3.10",
    # rosbags: demo episodes are rosbag2/MCAP directories, read and written without a ROS install
    # tensorboard + matplotlib: every run directory gets TensorBoard events and a learning-curve PNG
    install_requires=["numpy>=1.26,<2.4", "pyyaml", "torch>=2.4", "rosbags>=0.10", "tensorboard",
                      "matplotlib"],
    extras_require={
        "ros": ROS_WHEELS,
        "sim": SIM,
        "hw": HARDWARE,
        "teleop": TELEOP,
        "lerobot": LEROBOT,
        # mcap: Foxglove's reference MCAP reader, which the bag interop tests open our bags with
        "test": ["pytest>=8", "pytest-timeout", "hypothesis", "ruff", "mcap", *TELEOP, *LEROBOT, *HARDWARE],
    },
    zip_safe=True,
    maintainer="modem_ros maintainers",
    description="MoDem visual model-based RL with a ROS 2 node graph",
    license="MIT",
    entry_points={"console_scripts": ["modem-ros = modem_ros.cli:main", *NODES]},
)
