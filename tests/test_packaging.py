"""The package must build as an ament_python package and install its shared files with pip."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_package_xml_is_format_3_ament_python_with_the_runtime_dependencies():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "modem_ros"
    assert root.find("export/build_type").text == "ament_python"
    exec_deps = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "sensor_msgs", "std_msgs", "geometry_msgs", "std_srvs", "rosgraph_msgs"} <= exec_deps
    assert (ROOT / "resource" / "modem_ros").exists()


def test_wheel_carries_marker_config_and_cli(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    str(ROOT), "-w", str(tmp_path)], check=True, capture_output=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("modem_ros-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    data = "modem_ros-0.1.0.data/data/share/"
    assert data + "ament_index/resource_index/packages/modem_ros" in names
    assert data + "modem_ros/package.xml" in names
    for suite in ("metaworld", "adroit", "dmcontrol", "toy"):
        assert f"{data}modem_ros/config/suites/{suite}.yaml" in names
    entry_points = zipfile.ZipFile(wheel).read("modem_ros-0.1.0.dist-info/entry_points.txt").decode()
    assert "modem-ros = modem_ros.cli:main" in entry_points
