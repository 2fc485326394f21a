"""Hostile and malformed input on the graph's topics and files (issue 24): each is refused with one
line naming what was wrong, and the node keeps running on what it had."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
import yaml

from modem_ros import cli
from modem_ros.agent.modem import CheckpointWriteError, ModemAgent
from modem_ros.announce import AnnouncementError, announcement, load_announced, parse_announcement
from modem_ros.config import ConfigError, load_config
from modem_ros.data.demos import DemoError, load_demo_dir, write_episode
from modem_ros.data.stream import EpisodeAssembler, StreamError
from modem_ros.envs.point_reach import PointReachEnv
from modem_ros.graph import LAUNCHES
from modem_ros.launcher import given_arguments, node_parameters, parse_arguments
from modem_ros.robots import franka_spec as spec
from modem_ros.robots.safety import SafetyLayer, SafetyLimits
from modem_ros.run import RunDirInUse, build_trainer, lock_run_dir
from modem_ros.trainer import ResumeError, scripted_demos
from tests.conftest import SMALL, small_config


@pytest.mark.parametrize("text, reason", [
    ("not json {", "not JSON"),
    ("[1, 2]", "JSON object"),
    ('{"path": "a.pt", "step": 0, "episodes": 0, "run_id": "r"}', "missing version"),
    ('{"path": "a.pt", "version": "3", "step": 0, "episodes": 0, "run_id": "r"}', "'version' must be int"),
    ('{"path": "a.pt", "version": true, "step": 0, "episodes": 0, "run_id": "r"}', "'version' must be int"),
    ('{"path": "a.pt", "version": -1, "step": 0, "episodes": 0, "run_id": "r"}', "'version' must be >= 0"),
    ('{"path": 5, "version": 1, "step": 0, "episodes": 0, "run_id": "r"}', "'path' must be str"),
])
def test_malformed_announcements_are_refused_with_the_reason(text, reason):
    with pytest.raises(AnnouncementError, match=reason):
        parse_announcement(text)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/modem_ros_pwned",))


def _checkpoint(path, run_id: str, episodes: int, cfg=None):
    agent = ModemAgent(cfg or small_config())
    return agent.save(path, extra={"run_id": run_id, "episodes": episodes, "step": 20 * episodes})


def test_checkpoint_files_that_cannot_be_trusted_are_refused(tmp_path):
    good = _checkpoint(tmp_path / "good.pt", "run-a", 3)
    assert load_announced(good, "cpu", run_id="run-a", version=3)["episodes"] == 3
    (tmp_path / "garbage.pt").write_bytes(os.urandom(4096))
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[:5000])
    (tmp_path / "empty.pt").write_bytes(b"")
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"model": _Evil()}, f)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    for name, reason in [("missing.pt", "no file"), ("garbage.pt", "not a loadable checkpoint"),
                         ("truncated.pt", "not a loadable checkpoint"), ("empty.pt", "not a loadable checkpoint"),
                         ("evil.pt", "not a loadable checkpoint"), ("foreign.pt", "not a modem_ros checkpoint")]:
        with pytest.raises(AnnouncementError, match=reason):
            load_announced(tmp_path / name, "cpu")
    assert not os.path.exists("/tmp/modem_ros_pwned")  # weights_only: the pickled call never ran
    with pytest.raises(AnnouncementError, match="belongs to run 'run-a', not 'run-b'"):
        load_announced(good, "cpu", run_id="run-b")
    with pytest.raises(AnnouncementError, match="announced as version 1000000 but .* after 3 episodes"):
        load_announced(good, "cpu", run_id="run-a", version=10**6)


def test_non_finite_states_and_rewards_are_refused_and_pairing_holds():
    assembler = EpisodeAssembler(frame_stack=1, episode_length=2, state_dim=2, action_dim=1)
    for t in range(3):
        assembler.add_frame(np.full((3, 4, 4), t, np.uint8))
        with pytest.raises(StreamError, match="non-finite values at indices \\[1\\]"):
            assembler.add_state(np.array([0.0, np.nan], np.float32))  # injected: refused, not stored
        assembler.add_state(np.array([t, t], np.float32))
    for t in range(2):
        assembler.add_action(np.array([t / 10], np.float32))
        with pytest.raises(StreamError, match="reward inf is not finite"):
            assembler.add_reward(float("inf"))
        assembler.add_reward(-1.0)
        assembler.add_success(False)
    episode = assembler.pop_episode()
    assert [s[0] for s in episode.state] == [0, 1, 2] and episode.reward == [-1.0, -1.0]


@pytest.mark.parametrize("quat", [[np.nan, 0, 0, 1], [0.0, 0.0, 0.0, 0.0], [np.inf, 0, 0, 0]])
def test_a_non_finite_or_degenerate_orientation_faults_the_safety_layer(quat):
    down = np.array([1.0, 0.0, 0.0, 0.0])
    layer = SafetyLayer(SafetyLimits(), 0.1, down)
    layer.reset(spec.START_TCP, down)
    decision = layer.command([0.5, 0, 0, 0], spec.START_TCP, quat)
    assert layer.faulted.startswith("measured orientation") and decision.action is None
    before = layer.target.copy()
    for position, quaternion in [([np.nan, 0.4, 0.2], down), (spec.START_TCP, quat)]:
        with pytest.raises(ValueError, match="cannot reset the safety layer"):
            layer.reset(position, quaternion)
    assert np.array_equal(layer.target, before) and np.all(np.isfinite(layer.target))


@pytest.mark.parametrize("override, message", [
    ({"lr": 0}, "'lr' must be > 0"), ({"discount": 1.5}, r"'discount' must be in \(0, 1\]"),
    ({"eval_episodes": 0}, "'eval_episodes' must be > 0"), ({"eval_freq": 0}, "'eval_freq' must be > 0"),
    ({"seed_steps": -5}, "'seed_steps' must be >= 0"), ({"demos": -1}, "'demos' must be >= 0"),
    ({"min_std": 3.0}, "min_std .* max_std"), ({"device": "tpu"}, "'device' must be auto, cpu"),
    ({"seeding": "expert"}, "'seeding' must be bc or uniform"),
])
def test_impossible_config_values_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        small_config(**override)


def _bag_with(tmp_path, name, change):
    cfg = small_config()
    episode = scripted_demos(PointReachEnv(img_size=cfg.img_size, episode_length=10), 1, seed=0)[0]
    change(episode)
    return write_episode(episode, tmp_path / name, {"task": "toy-reach"})


def test_demos_with_non_finite_states_or_rewards_are_named_and_skipped(tmp_path):
    _bag_with(tmp_path, "good", lambda e: None)
    _bag_with(tmp_path, "nan_state", lambda e: e.state[3].__setitem__(1, np.nan))
    _bag_with(tmp_path, "inf_reward", lambda e: e.reward.__setitem__(2, float("inf")))
    good, bad = load_demo_dir(tmp_path, frame_stack=2)
    assert [b.path.name for b in good] == ["good"]
    messages = sorted(str(e) for e in bad)
    assert "inf_reward: reward 2 is inf, not finite" in messages[0]
    assert "nan_state: state 3 has non-finite values at [1]" in messages[1]


def test_a_second_trainer_on_a_live_run_dir_is_refused_and_a_dead_ones_lock_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / "lock").write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(),
                                                  "since": "earlier"}))
        with pytest.raises(RunDirInUse, match=f"in use by a trainer \\(pid {holder.pid} on"):
            lock_run_dir(run_dir)
    finally:
        holder.kill()
        holder.wait()
    lock_run_dir(run_dir)  # its holder is gone: taken over
    assert json.loads((run_dir / "lock").read_text())["pid"] == os.getpid()


def test_a_full_disk_keeps_the_previous_checkpoint_and_leaves_no_temp_file(tmp_path):
    disk = tmp_path / "small"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("needs mount (root) for a small filesystem")
    try:
        cfg = small_config()
        trainer = build_trainer(cfg, None, log_stream=io.StringIO())
        agent = trainer.agent
        first = agent.save(disk / "latest.pt", extra={"step": 1})
        before = first.read_bytes()
        (disk / "filler").write_bytes(b"\0" * (shutil.disk_usage(disk).free - len(before) // 2))
        with pytest.raises(CheckpointWriteError, match=f"no space left on {disk}"):
            agent.save(disk / "latest.pt", extra={"step": 2})
        assert first.read_bytes() == before and sorted(p.name for p in disk.iterdir()) == ["filler", "latest.pt"]
        trainer.run_dir = disk  # the trainer logs it and goes on
        assert trainer.save("latest.pt") is None
        assert any(r["kind"] == "error" and "no space left" in r["checkpoint"] for r in trainer.logger.records)
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_resume_falls_back_from_a_corrupt_latest_to_the_newest_good_step_checkpoint(tmp_path):
    cfg = small_config()
    trainer = build_trainer(cfg, tmp_path / "run", log_stream=io.StringIO())
    ckpt = tmp_path / "run" / "checkpoints"
    trainer.agent.save(ckpt / "step_00000020.pt", extra={"step": 20, "episodes": 1})
    trainer.agent.save(ckpt / "step_00000040.pt", extra={"step": 40, "episodes": 2})
    (ckpt / "latest.pt").write_bytes((ckpt / "step_00000040.pt").read_bytes()[:3000])  # cut by a crash
    (ckpt / "step_00000040.pt").write_bytes(b"garbage")
    again = build_trainer(cfg, tmp_path / "run", log_stream=io.StringIO())
    episode = scripted_demos(PointReachEnv(img_size=cfg.img_size, episode_length=20), 1, seed=0)[0]
    again.resume(ckpt / "latest.pt", lambda n: [episode] * n)
    assert again.step == 20 and again.episodes == 1
    note = next(r for r in again.logger.records if r["kind"] == "resume_fallback")
    assert note["unreadable"].endswith("latest.pt") and note["resumed_from"].endswith("step_00000020.pt")
    for path in ckpt.glob("step_*.pt"):
        path.write_bytes(b"x")
    with pytest.raises(ResumeError, match="no checkpoint in .* loads: latest.pt: .*step_00000040.pt"):
        build_trainer(cfg, tmp_path / "run", log_stream=io.StringIO()).resume(ckpt / "latest.pt", lambda n: [])


def test_cli_errors_are_one_line_without_a_traceback(tmp_path, capsys):
    assert cli.main(["demos", "info", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert "demo directory does not exist" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert cli.main(["train", "--task", "toy-reach", f"demo_dir={tmp_path / 'missing'}", "device=cpu",
                     *[f"{k}={v}" for k, v in SMALL.items() if k != "device"]]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_a_params_file_value_is_kept_unless_its_argument_is_given(tmp_path):
    spec = LAUNCHES["train_sim"]
    params_file = tmp_path / "p.yaml"
    params_file.write_text("/**:\n  ros__parameters: {task: franka-reach, seed: 9}\n"
                           "trainer:\n  ros__parameters: {steps: 123, run_dir: mine}\n")
    items = [f"params_file:={params_file}"]
    params = node_parameters(spec, parse_arguments(spec, items), given_arguments(items))
    assert params["trainer"]["steps"] == 123 and params["trainer"]["run_dir"] == "mine"
    assert {p["task"] for p in params.values()} == {"franka-reach"} and params["planner"]["seed"] == 9
    items += ["seed:=4"]
    params = node_parameters(spec, parse_arguments(spec, items), given_arguments(items))
    assert params["planner"]["seed"] == 4 and params["trainer"]["steps"] == 123


rclpy = pytest.importorskip("rclpy", reason="needs the ros extra: scripts/install.sh ros")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from modem_ros import topics  # noqa: E402
from modem_ros.launcher import refuse_shared_domain, ros_environment  # noqa: E402
from modem_ros.nodes.common import LATCHED  # noqa: E402
from modem_ros.nodes.planner import Planner  # noqa: E402


def _ros_env(monkeypatch, tmp_path, offset: int) -> None:
    monkeypatch.setenv("ROS_DOMAIN_ID", str(150 + (os.getpid() + offset) % 40))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path / "roslog"))


def test_planner_survives_hostile_announcements_and_loads_only_its_runs_weights(monkeypatch, tmp_path):
    _ros_env(monkeypatch, tmp_path, 0)
    overrides = " ".join(f"{k}={v}" for k, v in SMALL.items())
    cfg = small_config()
    seen = []
    original = Planner.on_checkpoint
    monkeypatch.setattr(Planner, "on_checkpoint", lambda self, msg: (original(self, msg), seen.append(msg.data)))
    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "-p", "task:=toy-reach", "-p", f"config_overrides:={overrides}",
                                      "-p", "run_id:=run-a", "-p", "device:=cpu", "-p", "weights_from:=path"],
               signal_handler_options=SignalHandlerOptions.NO)
    executor = SingleThreadedExecutor(context=context)
    planner = Planner(context=context)
    probe = rclpy.create_node("attacker", context=context)
    try:
        pub = probe.create_publisher(String, topics.CHECKPOINT, LATCHED)
        executor.add_node(planner)
        executor.add_node(probe)
        deadline = time.monotonic() + 15
        while not pub.get_subscription_count():
            assert time.monotonic() < deadline
            executor.spin_once(timeout_sec=0.05)

        def send(text: str) -> int:
            n = len(seen)
            pub.publish(String(data=text))
            deadline = time.monotonic() + 15
            while len(seen) == n:
                assert time.monotonic() < deadline, "announcement never arrived"
                executor.spin_once(timeout_sec=0.05)
            return planner.version

        garbage = tmp_path / "garbage.pt"
        garbage.write_bytes(os.urandom(1000))
        v1 = _checkpoint(tmp_path / "v1.pt", "run-a", 1, cfg)
        v2 = _checkpoint(tmp_path / "v2.pt", "run-a", 2, cfg)
        other = _checkpoint(tmp_path / "other.pt", "run-b", 5, cfg)
        assert send("not json") == -1
        assert send('{"path": "x"}') == -1
        assert send(announcement(garbage, 1, 20, 1, "run-a")) == -1       # unpicklable file
        assert send(announcement(tmp_path / "nope.pt", 1, 20, 1, "run-a")) == -1
        assert send(announcement(other, 5, 100, 5, "run-b")) == -1        # another run's trainer
        assert send(announcement(v1, 1, 20, 1, "run-a")) == 1             # ours: loaded
        assert send(announcement(v1, 10**6, 20, 10**6, "run-a")) == 1     # pinning: the file says 1
        assert send(announcement(other, 6, 100, 5, "run-a")) == 1         # a foreign file under our id
        assert send(announcement(v2, 2, 40, 2, "run-a")) == 2             # the trainer's next version
    finally:
        planner.destroy_node()
        probe.destroy_node()
        rclpy.shutdown(context=context)


def test_launcher_refuses_a_node_name_already_on_the_domain(monkeypatch, tmp_path):
    _ros_env(monkeypatch, tmp_path, 7)
    env = ros_environment()
    # a first graph's planner and its actor 1's planner, alive
    with live_nodes(("planner", "/"), ("planner", "/actor_1")):
        with pytest.raises(Exception, match=r"another graph already runs /planner on ROS_DOMAIN_ID=\d+"):
            refuse_shared_domain(["sim_bridge", "camera", "planner", "trainer"], env)
        refuse_shared_domain(["sim_bridge", "camera"], env)  # the robot side of a split graph: allowed
        with pytest.raises(Exception, match=r"another graph already runs /actor_1/planner on"):
            refuse_shared_domain(["/actor_0/planner", "/actor_1/planner"], env)  # actors go by their full names
        refuse_shared_domain(["/actor_2/planner"], env)


@contextlib.contextmanager
def live_nodes(*names: tuple[str, str]):
    """Nodes (name, namespace) spinning in this process, as another graph's would: they answer their
    parameter services, which is how the domain probe tells a live node from one killed moments ago."""
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    nodes = [rclpy.create_node(name, namespace=ns, context=context) for name, ns in names]
    stop = threading.Event()
    executor = SingleThreadedExecutor(context=context)
    for node in nodes:
        executor.add_node(node)

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        yield nodes
    finally:
        stop.set()
        spinner.join(timeout=2)
        for node in nodes:
            node.destroy_node()
        rclpy.shutdown(context=context)


def test_a_node_started_by_hand_refuses_a_name_already_on_the_domain(monkeypatch, tmp_path):
    """No launcher checked its graph (`ros2 run`, `python -m`): the node checks its own remapped name."""
    _ros_env(monkeypatch, tmp_path, 31)
    env = ros_environment()
    camera = [sys.executable, "-m", "modem_ros.nodes.camera"]
    other = None
    with live_nodes(("camera", "/")) as (squatter,):  # another graph's camera, alive
        try:
            refused = subprocess.run(camera, env=env, capture_output=True, text=True, timeout=120)
            assert refused.returncode == 2, refused.stderr
            assert (f"[Camera] cannot start: /camera already runs on ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}"
                    in refused.stderr)
            # in its own namespace it is another node: it starts, and is seen on the domain
            other = subprocess.Popen([*camera, "--ros-args", "-r", "__ns:=/actor_1"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            deadline = time.monotonic() + 90
            while ("camera", "/actor_1") not in squatter.get_node_names_and_namespaces():
                assert other.poll() is None and time.monotonic() < deadline, other.stdout.read()
                time.sleep(0.2)
        finally:
            if other is not None:
                other.kill()
                other.wait()


def _rtps_sockets(env: dict[str, str]) -> list[str]:
    """Local addresses of the UDP sockets a node opens in its domain's RTPS port range (7400 + 250 x domain)."""
    probe = subprocess.Popen([sys.executable, "-m", "modem_ros.domain_probe", "4", "nobody"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = 7400 + 250 * int(env["ROS_DOMAIN_ID"])
        deadline, found = time.monotonic() + 15, []
        while time.monotonic() < deadline and not found:
            time.sleep(0.5)
            lines = subprocess.run(["ss", "-uanp"], capture_output=True, text=True).stdout.splitlines()
            addresses = [line.split()[3] for line in lines if f"pid={probe.pid}," in line]
            found = [a for a in addresses if base <= int(a.rsplit(":", 1)[1]) < base + 250]
        return found
    finally:
        probe.kill()
        probe.wait()


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to list sockets")
def test_nodes_listen_on_loopback_only_unless_discovery_is_opened(monkeypatch, tmp_path):
    _ros_env(monkeypatch, tmp_path, 11)
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    local = _rtps_sockets(ros_environment())
    assert local and all(a.startswith(("127.0.0.1:", "239.")) for a in local), local
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")
    opened = _rtps_sockets(ros_environment())
    assert any(a.startswith(("0.0.0.0:", "*:")) for a in opened), opened  # reachable from the subnet


def test_generate_continues_a_dataset_with_new_resets_and_refuses_another_image_size(tmp_path):
    from modem_ros.data.demos import episode_dirs as dirs
    from modem_ros.data.demos import generate, read_meta

    cfg = small_config(episode_length=10)
    generate(cfg, 2, tmp_path / "d")
    generate(cfg, 2, tmp_path / "d")
    seeds = [read_meta(p)["seed"] for p in dirs(tmp_path / "d")]
    assert len(set(seeds)) == 4, seeds  # continued, never the same reset twice
    with pytest.raises(DemoError, match="holds img_size 48 .* generating img_size 64"):
        generate(small_config(episode_length=10, img_size=64), 1, tmp_path / "d")


def test_a_server_a_test_starts_dies_with_the_test_process_even_on_sigkill():
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "from modem_ros.launcher import die_with_parent\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], preexec_fn=die_with_parent)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no cleanup code of the parent runs
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{child}/stat") as f:
            if f.read().split()[2] == "Z":
                return  # dead, not yet reaped
        time.sleep(0.1)
    os.kill(child, 9)
    raise AssertionError("the child outlived its SIGKILLed parent")


def test_a_missing_optional_dependency_names_the_extra_that_brings_it(tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name.split(".")[0] in ("pandas", "pyarrow"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    episode = scripted_demos(PointReachEnv(img_size=48, episode_length=10), 1, seed=0)[0]
    write_episode(episode, tmp_path / "d" / "episode_000000", {"task": "toy-reach"})
    monkeypatch.setattr(builtins, "__import__", no_pandas)
    assert cli.main(["demos", "export", str(tmp_path / "d"), "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "the 'lerobot' extra installs: scripts/install.sh lerobot" in err and "Traceback" not in err


def test_validate_with_a_preset_checks_the_image_size_and_info_shows_it(tmp_path, capsys):
    episode = scripted_demos(PointReachEnv(img_size=48, episode_length=10), 1, seed=0)[0]
    write_episode(episode, tmp_path / "d" / "episode_000000", {"task": "toy-reach"})
    assert cli.main(["demos", "validate", str(tmp_path / "d"), "--preset", "cpu-small"]) == 1
    assert "1 episode(s) not at the 84 px this config trains at: episode_000000" in capsys.readouterr().out
    assert cli.main(["demos", "info", str(tmp_path / "d")]) == 0
    assert "48x48" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="did you mean 'toy-reach'"):
        load_config("toy-rech")


def test_a_config_whose_sizes_differ_from_the_tasks_env_is_refused_naming_both():
    from modem_ros.envs import make_env

    with pytest.raises(ConfigError, match="'action_dim' is 3 but task toy-reach's environment has 2"):
        make_env(small_config(action_dim=3))


def test_export_of_mixed_image_sizes_names_them(tmp_path, capsys):
    for i, size in enumerate((48, 64)):
        episode = scripted_demos(PointReachEnv(img_size=size, episode_length=10), 1, seed=i)[0]
        write_episode(episode, tmp_path / "d" / f"episode_{i:06d}", {"task": "toy-reach"})
    assert cli.main(["demos", "export", str(tmp_path / "d"), "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "several image sizes" in err and "episode_000001" in err and "Traceback" not in err


def test_eval_with_a_checkpoint_that_cannot_load_exits_with_the_reason(tmp_path, monkeypatch):
    _ros_env(monkeypatch, tmp_path, 23)
    (tmp_path / "bad.pt").write_bytes(b"truncated")
    home = tmp_path / "home"
    home.mkdir()
    (home / "tiny.yaml").write_text(yaml.safe_dump({k: v for k, v in SMALL.items() if k != "device"}))
    run = subprocess.run([sys.executable, "-m", "modem_ros.cli", "launch", "eval_sim", "preset:=tiny.yaml",
                          f"checkpoint:={tmp_path / 'bad.pt'}", "episodes:=1"], cwd=home, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "MODEM_ROS_DATA": str(home / "data")})
    assert run.returncode != 0  # not the "no action for 30 s" loop it used to hang in
    assert "bad.pt cannot be loaded" in run.stdout + run.stderr


def test_a_graph_killed_moments_ago_does_not_block_the_next_launch(monkeypatch, tmp_path):
    _ros_env(monkeypatch, tmp_path, 29)
    env = ros_environment()
    ghost = subprocess.Popen([sys.executable, "-c", (
        "import rclpy, time\n"
        "rclpy.init(); node = rclpy.create_node('planner'); print('up', flush=True)\n"
        "while True: rclpy.spin_once(node, timeout_sec=0.1)\n")], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert ghost.stdout.readline().strip() == "up"
        for _ in range(3):  # alive: refused once discovered (discovery can take seconds on a busy machine)
            try:
                refuse_shared_domain(["planner"], env)
            except ConfigError as err:
                assert "another graph already runs /planner" in str(err)
                break
        else:
            raise AssertionError("a live node of the same name was never refused")
    finally:
        ghost.kill()  # SIGKILL: its DDS participant stays discovered until the lease ends, but answers nothing
        ghost.wait()
    refuse_shared_domain(["planner"], env)
