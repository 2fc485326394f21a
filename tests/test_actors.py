"""Several actors (issue 19): a planner in actor namespace actor_<i> starts its next episode only once the
trainer has trained on its own previous episode (not on any actor's), and plans with the trainer's step.
And a planner refuses weights of another task with one line, acting on what it had."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from builtin_interfaces.msg import Time

from modem_ros.agent.modem import ModemAgent
from tests.conftest import SMALL, small_config

rclpy = pytest.importorskip("rclpy", reason="needs the ros extra: scripts/install.sh ros")
from rclpy.signals import SignalHandlerOptions  # noqa: E402

from modem_ros.nodes.common import array_msg, image_msg  # noqa: E402
from modem_ros.nodes.planner import Planner  # noqa: E402


def _checkpoint(path, cfg, episodes: int, step: int):
    return ModemAgent(cfg).save(path, extra={"run_id": "run-a", "episodes": episodes, "step": step})


def test_an_actors_planner_waits_for_its_own_episodes_not_anyones(monkeypatch, tmp_path):
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path / "roslog"))
    cfg = small_config()
    overrides = " ".join(f"{k}={v}" for k, v in SMALL.items())
    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "-r", "__ns:=/actor_1", "-p", "task:=toy-reach", "-p",
                                      f"config_overrides:={overrides}", "-p", "device:=cpu", "-p", "run_id:=run-a",
                                      "-p", "weights_from:=path", "-p", "torch_threads:=1"],
               signal_handler_options=SignalHandlerOptions.NO)
    threads = torch.get_num_threads()
    planner = Planner(context=context)
    assert torch.get_num_threads() == 1  # an actor's planner leaves the other cores to the trainer
    torch.set_num_threads(threads)
    sent = []
    monkeypatch.setattr(planner.action_pub, "publish", sent.append)
    rng = np.random.default_rng(0)

    def observe(n: int) -> None:
        for _ in range(n):
            frame = rng.integers(0, 256, (cfg.img_size, cfg.img_size, 3), dtype=np.uint8)
            planner.on_image(image_msg(frame, Time(), "camera"))
            planner.on_state(array_msg(rng.standard_normal(cfg.state_dim)))

    def load(episodes: int, step: int, actors: dict[str, int]) -> None:
        path = _checkpoint(tmp_path / f"v{episodes}.pt", cfg, episodes, step)
        assert planner.load(str(path), episodes, step, episodes, "run-a", actors)

    try:
        assert planner.actor == "actor_1"
        load(1, 20, {"actor_0": 1, "actor_1": 0})
        observe(cfg.episode_length + 1)  # the whole first episode, its final observation included
        assert len(sent) == cfg.episode_length and planner.episode == 1
        observe(1)  # the next episode's first observation: actor_1's episode 0 is not trained on yet
        assert len(sent) == cfg.episode_length
        load(2, 40, {"actor_0": 2, "actor_1": 0})  # another actor's episode: still not ours
        assert len(sent) == cfg.episode_length
        load(3, 60, {"actor_0": 2, "actor_1": 1})  # ours: the waiting observation is acted on
        planner.try_act()
        assert len(sent) == cfg.episode_length + 1
        assert planner.episode_step == 60  # the trainer's step (both actors), not this actor's 20 + 20
    finally:
        planner.destroy_node()
        rclpy.shutdown(context=context)


def test_a_planner_refuses_weights_of_another_task_and_acts_on_what_it_had(monkeypatch, tmp_path):
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path / "roslog"))
    cfg = small_config()
    overrides = " ".join(f"{k}={v}" for k, v in SMALL.items())
    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "-p", "task:=toy-reach", "-p", f"config_overrides:={overrides}",
                                      "-p", "device:=cpu", "-p", "weights_from:=path"],
               signal_handler_options=SignalHandlerOptions.NO)
    planner = Planner(context=context)
    errors = []
    monkeypatch.setattr(planner.get_logger(), "error", lambda text, **_: errors.append(text))
    try:
        ours = _checkpoint(tmp_path / "ours.pt", cfg, 1, 20)
        assert planner.load(str(ours), 1, 20, 1)
        agent = ModemAgent(cfg)  # same shapes, another task's weights
        other = agent.save(tmp_path / "other.pt", extra={"episodes": 2, "step": 40})
        state = torch.load(other, weights_only=True)
        state["config"]["task"] = "franka-reach"
        torch.save(state, other)
        assert not planner.load(str(other), 2, 40, 2)
        assert planner.version == 1 and "weights of task 'franka-reach'; this planner acts on 'toy-reach'" in errors[-1]
    finally:
        planner.destroy_node()
        rclpy.shutdown(context=context)
