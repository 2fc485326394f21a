"""MoDem in plain PyTorch: no ROS, no environment imports."""

from modem_ros.agent.modem import Batch, ModemAgent, ObservationError

__all__ = ["Batch", "ModemAgent", "ObservationError"]
