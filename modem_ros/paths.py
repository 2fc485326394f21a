"""Where the package's shared files (config/, sim/, launch/) live, for every way it can be installed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

PACKAGE = "modem_ros"


def share_dir() -> Path:
    """The directory holding config/, launch/ and sim/.

    Source checkout or editable install: the repository root. Wheel install: <prefix>/share/modem_ros
    (setup.py data_files). colcon/ament install: the ament index share directory.
    """
    repo_root = Path(__file__).resolve().parents[1]
    candidates = [repo_root, Path(sys.prefix) / "share" / PACKAGE]
    try:  # a sourced ROS 2 install
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # noqa: BLE001 - not installed, or package not in the index
        pass
    for candidate in candidates:
        if (candidate / "config" / "suites").is_dir():
            return candidate
    raise FileNotFoundError(f"modem_ros share files (config/suites) not found in any of {candidates}")


def default_run_dir(task: str) -> Path:
    """runs/<task>-<local time>: where a run goes when no run directory is given."""
    return Path("runs") / f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"


def config_dir() -> Path:
    return share_dir() / "config"


def default_dataset_dir(task: str, robot: bool = False) -> Path:
    """Where recorded demonstrations of a task go unless told otherwise (relative to the working directory);
    those recorded on the robot apart from the simulator's (their images differ)."""
    return Path("demos") / (f"{task}-robot" if robot else task)
