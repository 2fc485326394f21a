"""Two hosts, no shared disk (issue 19): two network namespaces joined by a veth pair, the trainer in
one and the robot side (sim bridge, camera, planner) in the other, each with its own working directory
and run directory, discovery opened to the subnet (config/fastdds_multihost.xml). Episodes reach the
trainer over the link, weights reach the planner as messages, training completes."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading

import pytest
import yaml

from tests.test_graph import PRESET, Launch, graph_env, records  # noqa: F401

pytest.importorskip("rclpy", reason="the ROS graph needs the ros extra: scripts/install.sh ros")

# link-local addresses on a veth pair that exists only between the two namespaces this test makes
HOSTS = {"modem_gpu": ("mv_gpu", "169.254.77.1/24"), "modem_robot": ("mv_robot", "169.254.77.2/24")}


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def two_hosts():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2 (CI runs as root)")
    suffix = str(os.getpid() % 10000)
    names = {ns + suffix: (dev + suffix, addr) for ns, (dev, addr) in HOSTS.items()}
    (a, (dev_a, _)), (b, (dev_b, _)) = names.items()
    try:
        for ns in names:
            _ip("netns", "add", ns)
        _ip("link", "add", dev_a, "type", "veth", "peer", "name", dev_b)
        for ns, (dev, addr) in names.items():
            _ip("link", "set", dev, "netns", ns)
            _ip("-n", ns, "addr", "add", addr, "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)  # DDS discovery multicast over the link
        yield list(names)
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_trainer_and_robot_side_in_two_namespaces_train_without_a_shared_disk(two_hosts, tmp_path_factory):
    gpu, robot = two_hosts
    homes = {ns: tmp_path_factory.mktemp(ns) for ns in two_hosts}
    for home in homes.values():
        (home / "tiny.yaml").write_text(yaml.safe_dump(PRESET))
    env = dict(graph_env(homes[gpu]), ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET")
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)  # the launcher picks the multi-host profile for SUBNET
    common = ["train_sim", "preset:=tiny.yaml", "steps:=40"]

    def launch(ns: str, extra: list[str]) -> Launch:
        prefix = ["ip", "netns", "exec", ns, sys.executable, "-m", "modem_ros.cli", "launch"]
        run_env = dict(env, MODEM_ROS_DATA=str(homes[ns] / "data"))
        out = Launch.__new__(Launch)
        out.lines, out.output = queue.Queue(), []
        out.proc = subprocess.Popen([*prefix, *common, *extra], cwd=homes[ns], env=run_env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=out._pump, daemon=True).start()
        return out

    robot_side = launch(robot, ["nodes:=sim_bridge,camera,planner", "run_dir:=robot-run"])
    trainer = launch(gpu, ["nodes:=trainer", "run_dir:=gpu-run"])
    try:
        assert trainer.finish(timeout=300) == 0, trainer.text[-3000:]
        assert [r["step"] for r in records(homes[gpu] / "gpu-run", "train")] == [20, 40]
        robot_side.wait_for("loaded weights v2", timeout=60)
        assert "over DDS" in robot_side.text
        assert not (homes[robot] / "gpu-run").exists()  # nothing of the trainer's run on the robot side
    finally:
        for side in (robot_side, trainer):
            if side.proc.poll() is None:
                side.proc.send_signal(signal.SIGINT)
                try:
                    side.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    side.proc.kill()
