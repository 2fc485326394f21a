"""Teleoperated demo recording through the real graph: sim bridge + camera + teleop + recorder as
processes, the keyboard driven through a pseudo-terminal exactly as a person's terminal would be.

One recording session (module fixture) saves, discards, re-records, saves early, loses its terminal and
has its recorder killed with SIGKILL mid-episode; the tests then check the dataset it left.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import small_config
from tests.test_graph import Launch, graph_env, graph_home, node_processes  # noqa: F401 - fixture reuse

pytest.importorskip("rclpy", reason="the ROS graph needs the ros extra: scripts/install.sh ros")

from modem_ros.data.demos import episode_dirs, read_episode, read_meta  # noqa: E402

LENGTH = 20  # the tiny preset's episode_length


class Keys:
    """A person at the terminal: the pty's master side. hold() repeats a key as auto-repeat does."""

    def __init__(self):
        self.master, slave = os.openpty()
        self.slave_path = os.ttyname(slave)
        self.slave = slave  # kept open so the terminal exists until the person "leaves"
        self.holding: str | None = None
        self.alive = True
        threading.Thread(target=self._repeat, daemon=True).start()

    def _repeat(self) -> None:
        while self.alive:
            if self.holding:
                self.press(self.holding)
            time.sleep(0.05)

    def press(self, key: str) -> None:
        if self.alive:
            os.write(self.master, key.encode())

    def hold(self, key: str | None) -> None:
        self.holding = key

    def hang_up(self) -> None:
        self.alive = False
        os.close(self.master)
        os.close(self.slave)


def start_first_episode(launch: Launch, keys: Keys) -> int:
    """Press the start key until the recorder answers, as a person would: until discovery has found its
    services the teleop says so and the press does nothing, and a start the recorder gives up on (no start
    event from the bridge) leaves it idle again. Returns the bridge episode being recorded."""
    for attempt in range(20):
        keys.press("n")
        try:
            line = launch.wait_for("recording (bridge episode ", timeout=3 if attempt < 19 else 15)
            return int(line.rsplit("episode ", 1)[1].split(")")[0])
        except AssertionError:
            assert attempt < 19, "the start key never reached the recorder"
    raise AssertionError("unreachable")


def stop_if_running(launch: Launch) -> None:
    """After a failed step: stop the graph rather than leave it running."""
    if launch.proc.poll() is None:
        launch.proc.send_signal(signal.SIGINT)
        launch.finish(timeout=30)


@pytest.fixture(scope="module")
def session(graph_home):  # noqa: F811
    keys = Keys()
    dataset = graph_home / "dataset"
    env = dict(graph_env(graph_home), MODEM_ROS_TTY=keys.slave_path)
    env.pop("DISPLAY", None)  # the operator view logs instead of opening a window
    launch = Launch(graph_home, ["record_demos", "preset:=tiny.yaml", f"dataset_dir:={dataset}",
                                 "operator:=pytest"], env)
    try:
        yield record(launch, keys, dataset)
    finally:
        keys.alive = False
        stop_if_running(launch)


def record(launch: Launch, keys: Keys, dataset: Path):
    for text in ("driving alone", "Services modem/recorder/start"):  # both ready, in either order
        if text not in launch.text:
            launch.wait_for(text)
    steps = {}

    # 1: a full episode, moving right the whole time, saved after it ends
    first = start_first_episode(launch, keys)  # 0 unless a start was given up on (the recorder says why)
    keys.hold("d")
    launch.wait_for("episode finished: 20 steps")
    keys.hold(None)
    keys.press("\r")
    steps["first"] = launch.wait_for("saved episode_000000")
    # 2: discarded mid-episode (Backspace)
    keys.press("n")
    launch.wait_for(f"recording (bridge episode {first + 1})")
    keys.hold("w")
    time.sleep(0.5)
    keys.press("\x7f")
    launch.wait_for("episode discarded")
    # 3: re-recorded (left arrow) mid-episode, then the new one saved when it ends
    keys.press("n")
    launch.wait_for(f"recording (bridge episode {first + 2})")
    time.sleep(0.5)
    keys.press("\x1b[D")
    launch.wait_for(f"recording (bridge episode {first + 3})")
    launch.wait_for("episode finished: 20 steps")
    keys.press("\x1b[C")  # right arrow: save
    steps["third"] = launch.wait_for("saved episode_000001")
    # 4: saved early (Enter while recording)
    keys.press("n")
    launch.wait_for(f"recording (bridge episode {first + 4})")
    time.sleep(1.0)
    keys.hold(None)
    keys.press("\r")
    steps["early"] = launch.wait_for("saved episode_000002")
    # 5: the terminal goes away mid-episode, then the recorder is killed: episode 5 is lost, nothing else
    keys.hold("a")
    keys.press("n")
    launch.wait_for(f"recording (bridge episode {first + 5})")
    time.sleep(0.5)
    keys.hang_up()
    steps["lost"] = launch.wait_for("motion stopped (zero action)")
    params_file = launch.text.split("parameters ", 1)[1].split(";", 1)[0]  # this launch's own marker
    recorder = [pid for pid in node_processes(params_file)
                if "modem_ros.nodes.recorder" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(recorder) == 1
    os.kill(recorder[0], signal.SIGKILL)
    code = launch.finish(timeout=60)
    return dataset, launch, code, steps


def test_dataset_holds_exactly_the_saved_episodes(session):
    dataset, launch, code, _ = session
    names = [p.name for p in episode_dirs(dataset)]
    assert names == ["episode_000000", "episode_000001", "episode_000002"], launch.text[-3000:]
    bags = [read_episode(dataset / n, frame_stack=2) for n in names]
    assert [len(b.episode) for b in bags[:2]] == [LENGTH, LENGTH]
    assert 0 < len(bags[2].episode) < LENGTH  # saved early
    assert code != 0  # a node was killed: the launch says so
    assert "recorder exited with code -9" in launch.text


def test_saved_actions_are_what_the_keys_asked_and_replay_to_the_saved_states(session):
    dataset, *_ = session
    from modem_ros.envs import make_env

    bag = read_episode(dataset / "episode_000000", frame_stack=2)
    actions = np.stack(bag.episode.action)
    # 'd' held: -y, the toy's default axis map "-y,x" makes that +1 on action 0 (right), nothing on action 1
    assert np.all(actions[2:, 0] == 1.0) and np.all(actions[:, 1] == 0.0)
    meta = read_meta(dataset / "episode_000000")
    assert meta["source"] == "teleop" and meta["operator"] == "pytest" and meta["task"] == "toy-reach"
    cfg = small_config()
    env = make_env(cfg, seed=cfg.seed)
    obs = env.reset(seed=int(meta["seed"]))
    np.testing.assert_allclose(obs["state"], bag.episode.state[0], atol=1e-6)
    for t, action in enumerate(actions):  # the stored pairs are the executed ones: replay is exact
        obs, *_ = env.step(action)
        np.testing.assert_allclose(obs["state"], bag.episode.state[t + 1], atol=1e-5)
        np.testing.assert_array_equal(obs["rgb"][-3:], bag.episode.rgb[t + 1][-3:])


def test_cadence_is_reported_per_episode_at_the_pace_a_person_drives(session):
    dataset, _, _, steps = session
    assert "cadence" in steps["first"] and "of 5.0 Hz target" in steps["first"]  # sim: teleop_rate
    import json

    report = json.loads(read_meta(dataset / "episode_000000")["cadence"])
    assert report["target_hz"] == 5.0 and 2.5 < report["achieved_hz"] < 5.5


def test_the_operator_view_follows_the_episodes_and_a_failed_save_is_warned(session):
    _, launch, _, steps = session
    assert "no display ($DISPLAY unset)" in launch.text  # the view's fallback: progress in the log
    views = [line for line in launch.output if line.startswith("[operator_view]") and "step 20/20" in line]
    assert views and "distance to goal" in views[0]
    assert ("episode_000000 saved without success" in launch.text) == ("success False" in steps["first"])


def test_lost_terminal_is_logged_and_no_staging_directory_looks_like_an_episode(session):
    dataset, launch, *_ = session
    assert "keyboard: terminal" in launch.text
    hidden = [p.name for p in Path(dataset).iterdir() if p.name.startswith(".")]
    assert all(name.startswith(".staging-") for name in hidden)



def test_recorded_demos_train_through_the_trainers_demo_loader(session, tmp_path):
    from modem_ros.run import build_trainer

    dataset, *_ = session
    cfg = small_config(demo_dir=str(dataset), demos=3, bc_iters=10)
    trainer = build_trainer(cfg, tmp_path / "run", collect=False)
    assert trainer.demo_buffer.num_episodes == 3
    assert trainer.demo_buffer.num_steps == sum(len(read_episode(p, 2).episode) for p in episode_dirs(dataset))
    loss = trainer.pretrain_policy()  # behaviour cloning on the operator's actions
    assert np.isfinite(loss)


def test_recording_resumes_into_the_dataset_and_stops_after_episodes(session, graph_home):  # noqa: F811
    dataset, *_ = session
    keys = Keys()
    env = dict(graph_env(graph_home), MODEM_ROS_TTY=keys.slave_path)
    env.pop("DISPLAY", None)  # the operator view logs instead of opening a window
    launch = Launch(graph_home, ["record_demos", "preset:=tiny.yaml", f"dataset_dir:={dataset}", "episodes:=1"],
                    env)
    try:
        launch.wait_for("3 episodes already")
        start_first_episode(launch, keys)
        launch.wait_for("episode finished")
        keys.press("\r")
        launch.wait_for("saved episode_000003")
        assert launch.finish(timeout=60) == 0  # the recorder is the main node: done after episodes:=1
    finally:
        keys.hang_up()
        stop_if_running(launch)
    assert len(episode_dirs(dataset)) == 4
