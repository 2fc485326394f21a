"""The ROS 2 graph with real rclpy nodes in separate processes on loopback.

Each test gets its own ROS_DOMAIN_ID, ROS_LOG_DIR and working directory; discovery is localhost
(the launcher's default). Waits are on what the nodes print, never on fixed sleeps.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import SMALL

pytest.importorskip("rclpy", reason="the ROS graph needs the ros extra: scripts/install.sh ros")

from modem_ros.data.demos import read_episode  # noqa: E402

_domains = itertools.count(70 + os.getpid() % 80)  # distinct per test, and per concurrent pytest run
PRESET = {k: v for k, v in SMALL.items() if k != "device"}


@pytest.fixture(scope="module")
def graph_home(tmp_path_factory) -> Path:
    """Working directory with the tiny preset and a demo cache shared by the module's launches."""
    home = tmp_path_factory.mktemp("graph")
    (home / "tiny.yaml").write_text(yaml.safe_dump(PRESET))
    return home


def graph_env(home: Path) -> dict[str, str]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(next(_domains)), ROS_LOG_DIR=str(home / "roslog"),
               MODEM_ROS_DATA=str(home / "data"))
    env.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)  # the launcher's default (LOCALHOST) is under test
    return env


class Launch:
    """`modem-ros launch ...` in the background, its output collected line by line."""

    def __init__(self, home: Path, args: list[str], env: dict[str, str] | None = None):
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "modem_ros.cli", "launch", *args], cwd=home,
                                     env=env or graph_env(home), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.output.append(line)
            if text in line:
                return line
        raise AssertionError(f"'{text}' not printed within {timeout} s; output:\n" + "\n".join(self.output[-40:]))

    def finish(self, timeout: float = 240.0) -> int:
        code = self.proc.wait(timeout=timeout)
        time.sleep(0.2)
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return code

    @property
    def text(self) -> str:
        return "\n".join(self.output)


def train(home: Path, run_dir: str, *extra: str) -> Launch:
    launch = Launch(home, ["train_sim", "preset:=tiny.yaml", f"run_dir:={run_dir}", *extra])
    code = launch.finish()
    assert code == 0, launch.text[-4000:]
    return launch


def records(run_dir: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]


def node_processes(marker: str) -> list[int]:
    """PIDs of live processes whose command line contains `marker` (our params file path)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
                state = (entry / "stat").read_text().split(")")[-1].split()[0]
            except OSError:
                continue
            if marker in cmdline and state != "Z":
                pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def trained(graph_home) -> tuple[Path, Launch]:
    launch = train(graph_home, "run")
    return graph_home / "run", launch


def test_train_sim_runs_all_three_phases_and_writes_the_run_directory(trained):
    run_dir, _ = trained
    phases = [r["phase"] for r in records(run_dir, "phase")]
    assert phases == ["pretrain", "seed", "seed_pretrain", "interactive"]
    train_steps = [r["step"] for r in records(run_dir, "train")]
    assert train_steps == [20, 40, 60, 80]  # every episode of the graph reached the trainer, in order
    assert [r["step"] for r in records(run_dir, "eval")] == [0, 40, 80]
    for name in ("config.json", "checkpoints/latest.pt", "checkpoints/final.pt", "learning_curve.png",
                 "launch/train_sim.params.yaml", "launch/trainer.log", "videos/eval_step_00000080.mp4"):
        assert (run_dir / name).stat().st_size > 0, name
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    episodes = sorted((run_dir / "episodes").iterdir())
    assert len(episodes) == 4
    for path in episodes:
        episode = read_episode(path, frame_stack=2).episode
        assert len(episode) == 20 and episode.rgb[0].shape == (6, 48, 48)
        assert np.all(np.abs(np.stack(episode.action)) <= 1.0)


def test_planner_hot_reloads_every_announced_checkpoint(trained):
    run_dir, launch = trained
    loaded = [line.split("loaded weights v")[1].split()[0] for line in launch.output
              if line.startswith("[planner]") and "loaded weights v" in line]
    assert loaded[:5] == ["0", "1", "2", "3", "4"]  # after BC, then after each episode's updates
    # lock-step with sync_weights: each episode was collected by the weights of the one before
    assert "seed" in launch.text and "interactive" in launch.text


def test_lock_step_gives_the_same_first_episode_twice_and_resumes(trained, graph_home):
    run_dir, _ = trained
    train(graph_home, "again", "steps:=20")
    first = read_episode(run_dir / "episodes" / "episode_000000", 2).episode.arrays()
    again = read_episode(graph_home / "again" / "episodes" / "episode_000000", 2).episode.arrays()
    for key in first:
        np.testing.assert_array_equal(first[key], again[key], err_msg=key)
    # the interrupted-then-restarted case: the same run_dir carries on from its latest checkpoint
    train(graph_home, "again", "steps:=40")
    resumed = records(graph_home / "again", "resume")
    assert len(resumed) == 1 and resumed[0]["step"] == 20 and resumed[0]["episodes"] == 1
    assert [r["step"] for r in records(graph_home / "again", "train")] == [20, 40]
    bc_steps = [r["step"] for r in records(graph_home / "again", "bc")]
    assert bc_steps == [4, 8, 12, 16, 20]  # behaviour cloning ran once, not again on resume


def test_sigint_stops_every_process_within_seconds(graph_home):
    launch = Launch(graph_home, ["train_sim", "preset:=tiny.yaml", "run_dir:=interrupted", "steps:=100000"])
    launch.wait_for("[planner]", timeout=120)
    launch.wait_for("loaded weights v1", timeout=120)  # mid-training: an update burst may be running
    marker = str(graph_home / "interrupted" / "launch")
    assert len(node_processes("interrupted/launch/train_sim.params.yaml")) == 4, marker
    start = time.monotonic()
    launch.proc.send_signal(signal.SIGINT)
    launch.wait_for("[launch] interrupted; stopping all nodes", timeout=5)
    launch.proc.send_signal(signal.SIGTERM)  # a second signal while stopping (Ctrl-C twice, `timeout`)
    code = launch.finish(timeout=30)
    assert code == 130, launch.text[-3000:]
    stopped_in = time.monotonic() - start
    assert stopped_in < 5, (stopped_in, launch.text[-3000:])  # the SIGINT grace period: no SIGTERM/SIGKILL needed
    assert "still running; sending" not in launch.text and "Traceback" not in launch.text
    assert "[launch] already stopping" in launch.text  # the second signal was taken while stopping, not fatal
    assert node_processes("interrupted/launch/train_sim.params.yaml") == []


def test_trainer_and_robot_side_on_two_launchers_share_one_domain(graph_home):
    """Multi-machine in one host: trainer alone (the GPU box) and bridge + camera + planner (beside the
    robot) as two launches on one ROS_DOMAIN_ID, as two machines would run them."""
    env = graph_env(graph_home)
    common = ["train_sim", "preset:=tiny.yaml", "run_dir:=split", "steps:=40"]
    robot = Launch(graph_home, [*common, "nodes:=sim_bridge,camera,planner"], env=env)
    trainer = Launch(graph_home, [*common, "nodes:=trainer"], env=env)
    assert trainer.finish() == 0, trainer.text[-3000:]
    assert [r["step"] for r in records(graph_home / "split", "train")] == [20, 40]
    robot.wait_for("loaded weights v2", timeout=60)
    robot.proc.send_signal(signal.SIGINT)
    assert robot.finish(timeout=30) == 130
    assert "still running; sending" not in robot.text, robot.text[-4000:]


def test_unknown_task_and_malformed_parameters_fail_fast_with_a_clear_message(graph_home, tmp_path):
    env = graph_env(graph_home)
    run = subprocess.run([sys.executable, "-m", "modem_ros.cli", "launch", "train_sim", "task:=mw-nope"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "unknown task 'mw-nope'" in run.stderr
    assert not (tmp_path / "runs").exists()  # nothing started, nothing written
    bad = tmp_path / "bad.yaml"
    bad.write_text("planner:\n  ros__parameters:\n    device: [cuda\n")
    run = subprocess.run([sys.executable, "-m", "modem_ros.cli", "launch", "train_sim", f"params_file:={bad}"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and str(bad) in run.stderr
    # a node handed a malformed params file directly (as ros2 launch would) says so and exits 2
    run = subprocess.run([sys.executable, "-m", "modem_ros.nodes.planner", "--ros-args", "--params-file", str(bad)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "Couldn't parse params file" in run.stderr and str(bad) in run.stderr
    wrong_type = tmp_path / "wrong_type.yaml"
    wrong_type.write_text("planner:\n  ros__parameters:\n    seed: one\n")
    run = subprocess.run([sys.executable, "-m", "modem_ros.nodes.planner", "--ros-args", "--params-file",
                          str(wrong_type)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "'seed'" in run.stderr and "INTEGER" in run.stderr


def test_bench_graph_times_both_loops_over_the_same_episodes(graph_home, tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "modem_ros.cli", "bench", "graph", "--preset",
                          str(graph_home / "tiny.yaml"), "--episodes", "1", "--out", str(out), "device=cpu"],
                         cwd=tmp_path, env=graph_env(graph_home), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["plain"]["steps"] == result["graph"]["steps"] == 20
    plain, graph = result["plain"]["ms_per_step"], result["graph"]["ms_per_step"]
    assert result["overhead_ms_per_step"] == pytest.approx(graph - plain)
    assert result["graph_over_plain"] == pytest.approx(graph / plain)
    # a round trip holds a planning step, so it cannot be faster than act() alone in the plain loop
    assert result["graph"]["round_trip_median_ms"] > 0.5 * result["plain"]["act_median_ms"]
    assert "graph/plain" in run.stdout


def test_camera_node_turns_full_size_best_effort_frames_into_agent_images(graph_home, monkeypatch):
    """640x480 rgb8 frames (900 KB, lost under best-effort with Fast DDS's default shared memory) pass
    with the shipped profile; the camera node centre-crops, resizes and scales the intrinsics."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, Image

    from modem_ros import topics
    from modem_ros.launcher import ros_environment
    from modem_ros.nodes.common import SENSOR, image_msg

    env = ros_environment(graph_env(graph_home))
    for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE", "ROS_LOG_DIR"):
        monkeypatch.setenv(key, env[key])
    camera = subprocess.Popen([sys.executable, "-m", "modem_ros.nodes.camera", "--ros-args", "-p", "reliable:=false",
                               "-p", "preset:=cpu-small"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = Node("camera_test_driver", context=context)
        image_pub = node.create_publisher(Image, topics.RAW_IMAGE, SENSOR)
        info_pub = node.create_publisher(CameraInfo, topics.RAW_CAMERA_INFO, SENSOR)
        got: dict[str, list] = {"image": [], "info": []}
        node.create_subscription(Image, topics.IMAGE, got["image"].append, 10)
        node.create_subscription(CameraInfo, topics.CAMERA_INFO, got["info"].append, 10)
        frame = np.zeros((480, 640, 3), np.uint8)
        frame[:, 80:560] = 200                 # the centre square the crop keeps
        frame[:, 80:320, 0] = 255              # its left half red
        info = CameraInfo(height=480, width=640, k=[600.0, 0.0, 319.5, 0.0, 600.0, 239.5, 0.0, 0.0, 1.0])
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (got["image"] and got["info"]):
            stamp = node.get_clock().now().to_msg()
            info.header.stamp = stamp
            info_pub.publish(info)
            image_pub.publish(image_msg(frame, stamp, topics.CAMERA_FRAME))
            executor.spin_once(timeout_sec=0.1)
        assert got["image"], "no agent image arrived"
        out = got["image"][-1]
        assert (out.height, out.width, out.encoding) == (84, 84, "rgb8")
        pixels = np.frombuffer(out.data, np.uint8).reshape(84, 84, 3)
        assert pixels[:, :40, 0].min() == 255 and pixels[:, 44:, 0].max() == 200  # crop kept the centre square
        k = got["info"][-1].k
        assert k[0] == pytest.approx(600 * 84 / 480) and k[2] == pytest.approx((319.5 - 80) * 84 / 480)
    finally:
        rclpy.shutdown(context=context)
        camera.send_signal(signal.SIGINT)
        assert camera.wait(timeout=15) == 0



def bridge_returns(launch: Launch, actor: str) -> list[float]:
    """The returns `actor`'s sim bridge logged, episode by episode."""
    return [float(line.split(": return ")[1].split()[0]) for line in launch.output
            if line.startswith(f"[{actor}.sim_bridge]") and ": return " in line]


def test_two_actors_feed_one_trainer_and_their_episodes_never_mix(graph_home):
    launch = train(graph_home, "two_actors", "actors:=2", "steps:=80")
    run_dir = graph_home / "two_actors"
    bags = [read_episode(p, 2) for p in sorted((run_dir / "episodes").iterdir())]
    by_actor = {actor: [b.episode for b in bags if b.meta.get("actor") == actor] for actor in ("actor_0", "actor_1")}
    assert len(bags) == 4 and all(by_actor.values()), {a: len(e) for a, e in by_actor.items()}
    for actor, episodes in by_actor.items():  # each stored episode is its own bridge's, in its order
        logged = bridge_returns(launch, actor)
        np.testing.assert_allclose([e.total_reward for e in episodes], logged[:len(episodes)], atol=0.011)
    # each actor resets with its own seed: their first episodes start apart
    assert not np.array_equal(by_actor["actor_0"][0].state[0], by_actor["actor_1"][0].state[0])
    assert [r["step"] for r in records(run_dir, "train")] == [20, 40, 60, 80]  # one update per step collected
    actor_records = records(run_dir, "actor")
    assert {r["actor"] for r in actor_records} == {"actor_0", "actor_1"}
    assert all(r[f"{r['actor']}/env_steps_per_s"] > 0 for r in actor_records)
    # both planners followed the one trainer's weights (shared topic outside their namespaces)
    for actor in by_actor:
        assert any(line.startswith(f"[{actor}.planner]") and "loaded weights v" in line for line in launch.output)
