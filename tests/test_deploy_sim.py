"""`deploy mode:=sim`: the whole deploy graph (camera crop/resize, planner, teleop gate, franka_bridge with
its safety layer and watchdog, real time) on the Franka cell, which the bridge drives as its arm and whose
camera it publishes as the RealSense would. A checkpoint is rehearsed exactly as it will run on the robot."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from modem_ros.agent.modem import ModemAgent
from modem_ros.config import load_config
from modem_ros.paths import config_dir
from modem_ros.robots import franka_spec as spec
from tests.test_graph import PRESET, Launch, graph_env, graph_home  # noqa: F401 - fixture reuse
from tests.test_recording import Keys, stop_if_running

pytest.importorskip("rclpy", reason="the ROS graph needs the ros extra: scripts/install.sh ros")

STEPS, EPISODES = 30, 2


def test_deploy_on_the_cell_runs_the_robots_graph_and_reports_each_episode(graph_home):  # noqa: F811
    home = graph_home
    (home / "rehearse.yaml").write_text(yaml.safe_dump({**PRESET, "episode_length": STEPS}))
    # an untrained agent: what is under test is the path from its actions to the cell and back
    ModemAgent(load_config("franka-push", {**PRESET, "episode_length": STEPS, "device": "cpu"})).save(
        home / "agent.pt", extra={"step": 0})
    params = yaml.safe_load((config_dir() / "deploy.yaml").read_text())  # the shipped file, camera aside
    params["franka_bridge"]["ros__parameters"].update(sim_camera_size=[160, 120])
    (home / "deploy-sim.yaml").write_text(yaml.safe_dump(params))
    env = graph_env(home)
    keys = Keys()  # the teleop gate's keyboard: a terminal nobody types on (the planner drives throughout)
    env["MODEM_ROS_TTY"] = keys.slave_path
    launch = Launch(home, ["deploy", "mode:=sim", "task:=franka-push", "checkpoint:=agent.pt",
                           "preset:=rehearse.yaml", "device:=cpu", f"episodes:={EPISODES}",
                           "params_file:=deploy-sim.yaml", "results_file:=results.json"], env)
    try:
        code = launch.finish(timeout=240)
    finally:
        keys.hang_up()
        stop_if_running(launch)
    assert code == 0, launch.text[-3000:]
    assert not any("realsense" in line for line in launch.output if line.startswith("[")), "no RealSense in sim"
    results = json.loads((home / "results.json").read_text())
    assert results["backend"] == "cell" and results["task"] == "franka-push"
    episodes = results["episodes"]
    assert [e["episode"] for e in episodes] == list(range(EPISODES))
    for e in episodes:
        assert e["steps"] == STEPS
        # every step accounted for by one outcome, none a fault or a rejected action; as on the robot a step
        # whose action came after its control period (a loaded 2-core CPU) is a hold (a broken camera path
        # acts on none)
        outcomes = e["outcomes"]
        assert sum(outcomes.values()) == STEPS and set(outcomes) <= {"acted", "missed", "held_stale"}, e
        assert outcomes.get("acted", 0) >= 1, e
        assert e["return"] > -STEPS if e["success"] else e["return"] == -STEPS  # the cell's sparse reward
        # the commanded targets moved the simulated arm (a random walk of 2 cm steps), inside the box
        tcp = np.asarray(e["end_tcp"])
        assert np.linalg.norm(tcp - spec.START_TCP) > 0.005, e
        assert np.all(tcp >= spec.WORKSPACE_LOW - 0.01) and np.all(tcp <= spec.WORKSPACE_HIGH + 0.01), e
    # the first episode carries the graph's start (the planner's first plans are slow); once warm, the planner
    # keeps answering control periods (28-29 of 30 beside two training runs, 12 of 30 in a CI run beside a
    # training run): how many is load, not behaviour, so the test asserts that it keeps acting, not a rate
    assert episodes[-1]["outcomes"].get("acted", 0) >= STEPS // 6, episodes[-1]
    assert results["round_trip_ms"]["median"] > 0


def test_the_cells_camera_info_is_the_pinhole_of_its_sensor_sized_frame():
    from builtin_interfaces.msg import Time

    from modem_ros.nodes.common import camera_info

    info = camera_info(120, 42.0, Time(), "camera_color_optical_frame", width=160)
    f = 60 / np.tan(np.radians(21.0))
    assert (info.width, info.height) == (160, 120)
    assert np.allclose(info.k, [f, 0, 79.5, 0, f, 59.5, 0, 0, 1])
    assert np.allclose(info.p[:7], [f, 0, 79.5, 0, 0, f, 59.5])
    square = camera_info(84, 42.0, Time(), "camera_color_optical_frame")  # the sim bridge's agent-size frames
    assert (square.width, square.height) == (84, 84) and square.k[2] == square.k[5] == 41.5
