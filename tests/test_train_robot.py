"""Learning on the robot (issue 18): `modem-ros launch train_robot` on the hardware path's stand-ins -
realsense_camera (a looped software-device .db3) -> camera, franka_bridge -> franky-sim (the Franka FCI
protocol on loopback) - with train_sim's planner and trainer. The trainer runs all three phases on what
the bridge executed: every stored action is one the bridge reported on modem/applied_action, in order,
after its safety layer; the planner acts on the trainer's weights without waiting for them. An operator's
e-stop mid-training ends that episode: nothing is collected until the reset, the trainer drops the cut
episode and training goes on with the next full one."""

from __future__ import annotations

import queue
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from tests.test_graph import PRESET, Launch, graph_env, graph_home, records  # noqa: F401 - fixture reuse
from tests.test_recording import Keys, stop_if_running

pytest.importorskip("rclpy", reason="the ROS graph needs the ros extra: scripts/install.sh ros")
pytest.importorskip("pyrealsense2", reason="needs the hw extra: scripts/install.sh hw")

from modem_ros import topics  # noqa: E402
from modem_ros.config import load_config  # noqa: E402
from modem_ros.data.demos import episode_dirs, generate, read_episode  # noqa: E402
from modem_ros.paths import config_dir  # noqa: E402
from modem_ros.robots import franka_spec as spec  # noqa: E402
from tests.software_camera import FPS, H, W, record_db3  # noqa: E402
from tests.test_deploy import Probe  # noqa: E402

STEPS = 80  # PRESET: 20-step episodes, seed_steps 40: two BC-seeded episodes, then planning
ESTOP_AT = 45  # applied actions before the operator's e-stop: 5 steps into the third episode, which it cuts short
PAUSE = 2.0  # seconds the e-stop stays latched before the reset
TAKEOVER_AT, TAKEOVER_STEPS = 3, 9  # steps into the last episode the operator takes over, and how many it drives
KEY_W = [1.0, 0.0, 0.0, -1.0]
NO_KEY = [0.0, 0.0, 0.0, -1.0]  # the keyboard's action with no key held: no motion, gripper open


def recover_a_failed_homing(launch: Launch, probe: Probe, timeout: float = 300.0) -> None:
    """Until the first action is applied: if the bridge faults while homing, do what its log tells the operator
    (recover, then reset). franky-sim serves every test of the session; once, in a fresh-clone CI run, its
    first reply to a new client's homing Move was "Unexpected reply to a Move command" and the bridge,
    as on a robot, stopped and waited for the operator."""
    deadline = time.monotonic() + timeout
    while not probe.applied:
        assert time.monotonic() < deadline and launch.proc.poll() is None, launch.text[-3000:]
        try:
            line = launch.lines.get(timeout=0.2)
        except queue.Empty:
            continue
        launch.output.append(line)
        if line.startswith("[franka_bridge]") and "arm fault" in line:
            print(f"operator: recover ({probe.call(topics.RECOVER)}), reset ({probe.call(topics.RESET)})")


@pytest.fixture(scope="module")
def trained(graph_home, franky_sim):  # noqa: F811
    home = graph_home
    env = graph_env(home)
    (home / "robot.yaml").write_text(yaml.safe_dump(PRESET))
    record_db3(home / "cam.db3", 60)
    params = yaml.safe_load((config_dir() / "train_robot.yaml").read_text())  # shipped, camera size aside
    params["realsense_camera"]["ros__parameters"].update(width=W, height=H, fps=FPS, loop_playback=True)
    params["planner"]["ros__parameters"]["device"] = params["trainer"]["ros__parameters"]["device"] = "cpu"
    # the goal reward (the measured TCP within franka-reach's radius of `goal`): the start pose, so that
    # episodes hold both outcomes
    params["franka_bridge"]["ros__parameters"].update(reward_source="goal", goal=[float(x) for x in spec.START_TCP])
    (home / "robot-params.yaml").write_text(yaml.safe_dump(params))
    demos = home / "robot-demos"  # stand-ins for recorded robot demos: the cell's expert at this preset
    generate(load_config("franka-reach", {k: str(v) for k, v in PRESET.items()}), 3, demos, only_success=False)
    keys = Keys()  # the operator's terminal: takes over for a few steps of the last episode
    env["MODEM_ROS_TTY"] = keys.slave_path
    probe = Probe(env)
    run_dir = home / "robot-run"
    launch = Launch(home, ["train_robot", "task:=franka-reach", f"robot_ip:={franky_sim}", "realtime:=false",
                           "preset:=robot.yaml", "playback_file:=cam.db3", "params_file:=robot-params.yaml",
                           f"demo_dir:={demos}", f"run_dir:={run_dir}", "teleop_device:=keyboard"], env)
    try:
        recover_a_failed_homing(launch, probe)
        probe.wait_applied(ESTOP_AT, launch, timeout=300)
        keys.press("e")  # the teleop's e-stop key
        line = launch.wait_for("aborted by the e-stop after", timeout=10)
        cut = int(line.split("aborted by the e-stop after ")[1].split()[0])  # steps the cut episode had
        keys.press("n")  # the next-episode key does not get past a latched e-stop
        refused = launch.wait_for("refused: e-stop latched", timeout=10)
        time.sleep(PAUSE)
        paused = len(probe.applied)  # collection paused: nothing applied while the e-stop is latched
        # the operator clears it from a terminal, as the README says (the pip path has no ros2 CLI)
        cleared = subprocess.run([sys.executable, "-m", "modem_ros.cli", "call", "estop-reset"], env=env,
                                 capture_output=True, text=True, timeout=60)
        assert cleared.returncode == 0, cleared.stdout + cleared.stderr
        reset = cleared.stdout
        start = 40 + cut + 20  # applied actions before the last episode
        probe.wait_applied(start + TAKEOVER_AT, launch, timeout=300)
        keys.press("t")
        keys.hold("w")  # +x, gripper open
        launch.wait_for("human has control", timeout=10)
        probe.wait_applied(start + TAKEOVER_AT + TAKEOVER_STEPS, launch)
        keys.hold(None)
        keys.press("t")
        launch.wait_for("planner has control", timeout=10)
        code = launch.finish(timeout=400)  # the trainer, main node, ends after STEPS
        yield run_dir, probe, launch, code, {"cut": cut, "paused": paused, "reset": reset,
                                              "refused": refused}
    finally:
        keys.alive = False
        stop_if_running(launch)
        probe.close()


def test_the_robot_graph_trains_through_every_phase(trained):
    run_dir, _, launch, code, _ = trained
    assert code == 0, launch.text[-4000:]
    assert [r["phase"] for r in records(run_dir, "phase")] == ["pretrain", "seed", "seed_pretrain", "interactive"]
    assert [r["step"] for r in records(run_dir, "train")] == [20, 40, 60, 80]
    assert len(episode_dirs(run_dir / "episodes")) == 4
    assert "loaded weights v3" in launch.text  # the planner acted on the trainer's updates
    # One error is the safety layer doing its job, not the graph failing: franky-sim's MuJoCo arm, starved
    # of CPU (a fresh-clone test run beside two training jobs), once coasted 3.4 cm past the top face the
    # target had stopped at, and the layer faulted and held (tests/test_franky.py: the fault and the holds
    # after it). Anything else logged as an error fails the test.
    # The operator's e-stop is logged as an error too, on purpose.
    expected = ("outside the workspace (margin", "E-STOP latched")
    assert not [line for line in launch.output if "[ERROR]" in line and not any(e in line for e in expected)], \
        launch.text[-3000:]


def test_an_estop_pauses_collection_and_training_goes_on_after_the_reset(trained):
    run_dir, probe, launch, code, marks = trained
    cut = marks["cut"]
    assert 0 < cut < 20 and marks["paused"] == 40 + cut, marks  # every step of the cut episode went out, then none
    assert "homing for the next episode" in marks["reset"], marks
    assert "[franka_bridge]" in marks["refused"]  # key n during the e-stop: refused, nothing moved (paused above)
    # the trainer dropped exactly the cut episode and trained on four full ones around it
    assert [(r["steps"], r["actor"]) for r in records(run_dir, "cut_short")] == [(cut, "")]
    assert code == 0 and len(episode_dirs(run_dir / "episodes")) == 4
    assert [r["step"] for r in records(run_dir, "train")] == [20, 40, 60, 80]
    assert "a new episode starts after observation" in launch.text  # the planner followed the bridge's label


def test_the_trainer_stores_exactly_what_the_bridge_executed(trained):
    run_dir, probe, _, _, marks = trained
    stored = np.concatenate([read_episode(p, 2).episode.arrays()["action"]
                             for p in episode_dirs(run_dir / "episodes")])
    executed = probe.applied[:40] + probe.applied[40 + marks["cut"]:]  # the cut episode's steps are not stored
    applied = np.asarray(executed[:len(stored)], np.float32)
    assert len(executed) >= STEPS and stored.shape == (STEPS, 4)
    np.testing.assert_array_equal(stored, applied)
    assert np.all(np.abs(stored) <= 1.0)


def test_the_goal_reward_is_the_measured_tcp_at_the_goal(trained):
    run_dir, *_ = trained
    rewards, hits = [], []
    for path in episode_dirs(run_dir / "episodes"):
        episode = read_episode(path, 2).episode
        tcp = np.asarray(episode.state)[1:, :3]  # the observation after each step: where its reward was measured
        rewards += list(episode.reward)
        hits += [spec.at_goal("franka-reach", p, spec.START_TCP) for p in tcp]
    assert rewards == [float(h) - 1.0 for h in hits]
    assert 0 < sum(hits) < len(hits), sum(hits)  # both outcomes occurred


def test_the_operators_takeover_is_stored_flagged_and_oversampled(trained):
    run_dir, *_ = trained
    last = read_episode(episode_dirs(run_dir / "episodes")[-1], 2).episode
    flagged = np.flatnonzero(last.intervention)
    actions = np.asarray(last.action)
    keyed = np.all(actions == KEY_W, axis=1)
    # the flag travels in the action's own message (the gate's label): exactly the operator's steps are
    # flagged - the key action, or no motion before the key is held or once it is released - and every key
    # action is flagged
    assert len(flagged) >= TAKEOVER_STEPS - 2 and abs(int(flagged[0]) - TAKEOVER_AT) <= 2, last.intervention
    assert keyed[flagged].any() and not keyed[~np.asarray(last.intervention)].any()
    assert np.all(keyed[flagged] | np.all(actions[flagged] == NO_KEY, axis=1)), actions[flagged]
    # inside the takeover only a hold (all zeros: the gate's answer missed the control period on 2 cores) is
    # unflagged
    inside = np.arange(flagged[0], flagged[-1] + 1)
    assert np.all(np.asarray(last.intervention)[inside] | np.all(actions[inside] == 0, axis=1))
    record = records(run_dir, "train")[-1]
    assert record["intervention_rate"] == len(flagged) / 20
    runs = np.split(flagged, np.flatnonzero(np.diff(flagged) != 1) + 1)
    assert record["intervention_steps_kept"] == sum(len(r) for r in runs if len(r) >= 5)  # horizon 5
    for earlier in [read_episode(p, 2).episode for p in episode_dirs(run_dir / "episodes")[:-1]]:
        assert not any(earlier.intervention)
