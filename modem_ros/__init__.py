"""modem_ros: MoDem (visual model-based RL from a few demonstrations) with a ROS 2 node graph."""

__version__ = "0.1.0"
