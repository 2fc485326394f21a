"""The deploy graph end to end on the hardware path's stand-ins: a checkpoint trained in the Franka cell
acts through realsense_camera (a software-device .db3, looped) -> camera -> planner -> teleop gate ->
franka_bridge -> franky-sim (the Franka FCI protocol on loopback), launched as `modem-ros launch deploy`.

One 100-step episode: the planner drives, the operator takes over with the keyboard (a pseudo-terminal)
and drives along x towards the farther wall, presses the e-stop key, and the test clears the e-stop
through the bridge's service. A probe node in this process records what the graph published.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import yaml

from tests.conftest import drop_realtime
from tests.test_graph import PRESET, Launch, graph_env, graph_home  # noqa: F401 - fixture reuse
from tests.test_recording import Keys, stop_if_running

rclpy = pytest.importorskip("rclpy", reason="the ROS graph needs the ros extra: scripts/install.sh ros")
pytest.importorskip("pyrealsense2", reason="needs the hw extra: scripts/install.sh hw")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from std_msgs.msg import Float32MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from modem_ros import topics  # noqa: E402
from modem_ros.nodes.common import FOLLOW, STREAM  # noqa: E402
from modem_ros.paths import config_dir  # noqa: E402
from modem_ros.robots import franka_spec as spec  # noqa: E402
from modem_ros.robots.franky_arm import FrankyArm  # noqa: E402
from modem_ros.robots.safety import SafetyLimits  # noqa: E402
from tests.ros_node import InProcessNode  # noqa: E402
from tests.software_camera import FPS, H, W, record_db3  # noqa: E402

STEPS = 100
TAKEOVER_AT, ESTOP_AFTER, HELD_STEPS = 15, 15, 12  # applied actions before each operator move
CENTRE_X = (spec.WORKSPACE_LOW[0] + spec.WORKSPACE_HIGH[0]) / 2


def key_action(direction: int) -> list[float]:
    return [float(direction), 0.0, 0.0, -1.0]  # 'w' (+x) or 's' (-x) held, gripper open


class Probe(InProcessNode):
    """A node in the test process on the launch's domain: records the streams, calls the e-stop reset."""

    def __init__(self, env: dict[str, str], answer: list[float] | None = None):
        super().__init__(env, "deploy_probe")
        self.applied, self.planned, self.poses = [], [], []
        self.lock = threading.Lock()
        self.node.create_subscription(Float32MultiArray, topics.APPLIED_ACTION,
                                      lambda m: self._add(self.applied, list(m.data)), STREAM)
        self.node.create_subscription(Float32MultiArray, "modem/planner/action",
                                      lambda m: self._add(self.planned, list(m.data)), FOLLOW)
        self.node.create_subscription(PoseStamped, topics.EE_POSE, lambda m: self._add(self.poses, [
            m.pose.position.x, m.pose.position.y, m.pose.position.z]), 100)
        if answer is not None:
            self.answer_observations(answer)
        self.estop_reset = self.node.create_client(Trigger, topics.ESTOP_RESET)
        self.services = {name: self.node.create_client(Trigger, name) for name in (topics.RECOVER, topics.RESET)}
        self.start()

    def _add(self, into: list, item) -> None:
        with self.lock:
            into.append(item)

    def wait_applied(self, count: int, launch: Launch, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.applied) < count:
            assert time.monotonic() < deadline and launch.proc.poll() is None, \
                f"{len(self.applied)} of {count} applied actions; output:\n{launch.text[-3000:]}"
            time.sleep(0.02)

    def call_estop_reset(self) -> str:
        return self.call(self.estop_reset)

    def call(self, client) -> str:
        """A Trigger service's answer (client: one of this probe's clients, or a name in self.services)."""
        client = self.services.get(client, client)
        assert client.wait_for_service(timeout_sec=10.0)
        future = client.call_async(Trigger.Request())
        deadline = time.monotonic() + 10.0
        while not future.done():
            assert time.monotonic() < deadline, f"no answer from {client.srv_name}"
            time.sleep(0.02)
        return future.result().message


@pytest.fixture(scope="module")
def deployment(graph_home, franky_sim):  # noqa: F811
    home = graph_home
    env = graph_env(home)
    # a checkpoint trained in the Franka cell (the tiny budget: what matters here is the path, not skill)
    trained = subprocess.run([sys.executable, "-m", "modem_ros.cli", "train", "--task", "franka-reach", "--preset",
                              "tiny.yaml", "--run-dir", "cell", "--device", "cpu"], cwd=home, env=env,
                             capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    (home / "deploy-tiny.yaml").write_text(yaml.safe_dump({**PRESET, "episode_length": STEPS}))
    record_db3(home / "camera.db3", 60)
    params = yaml.safe_load((config_dir() / "deploy.yaml").read_text())  # the shipped file, camera size aside
    params["realsense_camera"]["ros__parameters"].update(width=W, height=H, fps=FPS, loop_playback=True)
    (home / "deploy.yaml").write_text(yaml.safe_dump(params))

    keys = Keys()
    env["MODEM_ROS_TTY"] = keys.slave_path
    probe = Probe(env)
    launch = Launch(home, ["deploy", "checkpoint:=cell/checkpoints/final.pt", f"robot_ip:={franky_sim}",
                           "realtime:=false", "preset:=deploy-tiny.yaml", "device:=cpu", "playback_file:=camera.db3",
                           "params_file:=deploy.yaml", "results_file:=results.json"], env)
    marks = {}
    try:
        probe.wait_applied(TAKEOVER_AT, launch, timeout=180)
        marks["direction"] = -1 if probe.poses[-1][0] > CENTRE_X else 1  # towards the far wall in x
        keys.press("t")
        keys.hold("w" if marks["direction"] > 0 else "s")
        launch.wait_for("human has control", timeout=10)
        marks["takeover"] = len(probe.applied)
        probe.wait_applied(marks["takeover"] + ESTOP_AFTER, launch)
        keys.press("e")
        launch.wait_for("E-STOP latched", timeout=10)
        marks["estop"] = len(probe.applied)
        probe.wait_applied(marks["estop"] + HELD_STEPS, launch)
        marks["reset_message"] = probe.call_estop_reset()
        launch.wait_for("e-stop cleared", timeout=10)
        marks["reset"] = len(probe.applied)
        code = launch.finish(timeout=120)
        time.sleep(0.5)  # the last poses
    finally:  # before the tests: a probe still spinning (and answering) would load the later graphs' CPU
        keys.hold(None)
        keys.alive = False
        stop_if_running(launch)
        probe.close()
    yield launch, code, probe, marks, home


def test_the_graph_runs_the_episode_and_writes_its_results(deployment):
    launch, code, probe, marks, home = deployment
    assert code == 0, launch.text[-3000:]
    assert f"episode 0 done ({STEPS} steps" in launch.text
    errors = [line for line in launch.output if "[ERROR]" in line and "E-STOP latched" not in line]
    assert not errors, "\n".join(errors)  # no fault, no refused observation, no lost camera
    results = yaml.safe_load((home / "results.json").read_text())
    episode = results["episodes"][0]
    assert results["backend"] == "franky" and not results["dry_run"] and episode["steps"] == STEPS
    held = marks["reset"] - marks["estop"]
    # Every step is accounted for by one outcome. A step whose action came after its control period
    # (a busy CPU) is a hold, counted as missed, never a late move; e-stopped steps are exactly those
    # between the e-stop key and the reset service; nothing faulted or was rejected.
    outcomes = episode["outcomes"]
    assert sum(outcomes.values()) == STEPS and outcomes["acted"] == episode["acted"], outcomes
    assert set(outcomes) <= {"acted", "held_estop", "held_stale", "missed"}, outcomes
    assert abs(outcomes["held_estop"] - held) <= 2, (outcomes, marks)
    # A real-time loop on a loaded 2-core CPU (franky-sim's 1 kHz physics takes most of a core) misses
    # some periods; a quarter of the steps is the floor a working graph keeps (a broken one acts on none)
    assert episode["acted"] >= (STEPS - held) // 4, outcomes
    assert episode["safety"]["estop"] == 1 and episode["safety"]["hold_estop"] >= held - 1
    assert results["round_trip_ms"]["n"] >= episode["acted"]
    assert len(probe.applied) == STEPS and len(probe.poses) == STEPS + 1


def test_planner_actions_reach_the_arm_through_the_gate(deployment):
    _, _, probe, marks, _ = deployment
    planned = {tuple(np.float32(a)) for a in probe.planned}
    before = [tuple(np.float32(a)) for a in probe.applied[:marks["takeover"] - 1]]
    before = before[next(i for i, a in enumerate(before) if any(a)):]  # from the planner's first action on
    acted = [a for a in before if any(a)]
    # a step whose planner action came late under CPU load is a hold (zeros), as the bridge must do it
    # (CI measured 4 of ~13 executed before the takeover: the planner's first actions come late there)
    assert len(planned) > 10 and len(acted) >= 2
    assert sum(a in planned for a in acted) >= len(acted) - 2  # executed as planned (clipped to [-1, 1])


def test_operator_takeover_drives_the_arm(deployment):
    _, _, probe, marks, _ = deployment
    driven = np.array(probe.applied[marks["takeover"] + 2:marks["estop"] - 1])
    assert len(driven) >= ESTOP_AFTER - 4
    keyed = np.all(driven == key_action(marks["direction"]), axis=1)
    # the operator's action on every step that acted; a step missed under load is a hold, nothing else.
    # The gate answers each observation itself, not waiting for the planner: most steps act (all when idle;
    # before, the operator's steps were as late as the planner's, 2 of 12 under CI's load)
    assert keyed.sum() >= len(driven) // 2 and np.all(driven[~keyed] == 0), driven
    # The arm, still carried by the planner's last moves (the target may lead it by 5 cm), turns and then
    # travels the operator's way. How far it gets in the window depends on the load: 4-9 cm idle, 7 mm
    # in one CI run whose arm turned late; the commands themselves are asserted above.
    x = np.array(probe.poses)[marks["takeover"] + 2:marks["estop"], 0] * marks["direction"]
    turn = int(np.argmin(x))
    assert x[-1] - x[turn] > 0.003, np.round(x, 3).tolist()


def test_estop_latches_until_the_reset_service(deployment):
    _, _, probe, marks, _ = deployment
    assert marks["reset_message"] == "e-stop cleared"
    held = np.array(probe.applied[marks["estop"] + 1:marks["reset"]])
    assert len(held) >= HELD_STEPS - 1 and np.all(held == 0)  # nothing executed, whatever the operator held
    poses = np.array(probe.poses)
    still = poses[marks["estop"] + 4:marks["reset"]]  # after braking: the arm stays where it stopped
    assert np.abs(still - still[0]).max() < 0.003
    after = np.array(probe.applied[marks["reset"] + 2:])
    flowing = np.all(after == key_action(marks["direction"]), axis=1)
    # commands flow again; a step the key repeat missed under load is a hold (zeros), never anything else
    assert len(after) > 5 and flowing.sum() >= 3 and np.all(after[~flowing] == 0)


def test_the_tcp_never_left_the_workspace(deployment):
    _, _, probe, marks, _ = deployment
    poses = np.array(probe.poses)
    # The layer keeps every *target* inside the box; the arm's own braking (franky's jerk-limited motion)
    # can carry the measured TCP a few mm past a wall it approaches at speed (7 mm seen with four busy
    # processes on two cores, when commands come late), and the layer faults beyond workspace_margin.
    # That margin is the guarantee asserted here; an idle machine stays within 5 mm.
    margin = SafetyLimits().workspace_margin
    outside = np.flatnonzero(np.any((poses < spec.WORKSPACE_LOW - margin) | (poses > spec.WORKSPACE_HIGH + margin), 1))
    assert not len(outside), f"poses {outside.tolist()} of {len(poses)} outside: {poses[outside].round(4).tolist()}"
    if marks["direction"] > 0:  # the operator drove it to the wall and no further
        assert poses[-1, 0] > spec.WORKSPACE_HIGH[0] - 0.02
    else:
        assert poses[-1, 0] < spec.WORKSPACE_LOW[0] + 0.02



DRY_STEPS = 30
PARKED = np.array([0.45, -0.1, 0.2])  # not the start pose: a dry run must start where the arm stands


def test_dry_run_computes_and_logs_commands_but_moves_nothing(graph_home, franky_sim):  # noqa: F811
    """franka_bridge alone with dry_run:=true; the probe answers every observation with 'move +y'."""
    home = graph_home
    parked = FrankyArm(franky_sim, dynamics_factor=0.3, realtime=False)
    start = parked.home(spec.HOME_JOINTS, PARKED)
    parked.close()  # FCI serves one client: the bridge's
    drop_realtime()  # the connection made this process FIFO 99: the launched bridge must not inherit it
    env = graph_env(home)
    (home / "dry.yaml").write_text(yaml.safe_dump({**PRESET, "episode_length": DRY_STEPS}))
    params = yaml.safe_load((config_dir() / "deploy.yaml").read_text())
    params["franka_bridge"]["ros__parameters"]["watch_observation"] = False  # no camera in this graph
    (home / "dry-params.yaml").write_text(yaml.safe_dump(params))
    probe = Probe(env, answer=[0.0, 1.0, 0.0, -1.0])
    launch = Launch(home, ["deploy", "nodes:=franka_bridge", f"robot_ip:={franky_sim}", "realtime:=false",
                           "dry_run:=true", "preset:=dry.yaml", "params_file:=dry-params.yaml",
                           "results_file:=dry.json"], env)
    try:
        code = launch.finish(timeout=120)
        time.sleep(0.5)
    finally:
        stop_if_running(launch)
        probe.close()
    assert code == 0, launch.text[-3000:]
    targets = [line for line in launch.output if "dry run: target" in line]
    assert len(targets) >= DRY_STEPS - 5, launch.text[-3000:]
    poses = np.array(probe.poses)
    np.testing.assert_allclose(poses[0], start.position, atol=0.01)
    assert np.abs(poses - poses[0]).max() < 0.001  # nothing was sent: the arm did not move
    results = yaml.safe_load((home / "dry.json").read_text())
    episode = results["episodes"][0]
    outcomes = episode["outcomes"]  # every step accounted for; a missed answer is a hold under load
    assert results["dry_run"] and sum(outcomes.values()) == DRY_STEPS, outcomes
    assert set(outcomes) <= {"acted", "held_stale", "missed"} and episode["acted"] >= DRY_STEPS // 4, outcomes
    # Each executed 'move +y' advances the computed target 2 cm (a hold leaves it where it is) until the
    # lead limit holds it 5 cm ahead of the arm, which never moved: exact, however many steps were late.
    lead = [float(line.split("target [")[1].split("]")[0].split(",")[1]) - poses[0][1] for line in targets]
    assert max(lead) == pytest.approx(min(0.02 * episode["acted"], 0.05), abs=0.003), (lead, outcomes)
    assert episode["safety"]["clipped_lead"] == sum("clipped_lead" in line for line in targets) > 0
