from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from modem_ros.envs.point_reach import PointReachEnv
from modem_ros.run import build_trainer
from modem_ros.trainer import expert_episode, run_episode
from tests.conftest import small_config


def test_three_phases_in_order_and_the_agent_improves(tmp_path):
    # Measured with this config: BC policy -5.0 (scripted expert -5.1, random -23); planning return
    # -16.5 at step 0 (untrained model), -4.0 with 90% success at step 1000; about 30 s on 2 cores.
    cfg = small_config(train_steps=1000, seed_steps=300, bc_iters=300, batch_size=32, demos=5,
                       eval_freq=1000, eval_episodes=10, save_freq=1000, horizon_schedule_steps=200,
                       std_schedule_steps=200, kappa_steps=1000)
    trainer = build_trainer(cfg, tmp_path / "run", log_stream=io.StringIO())
    evaluations = trainer.run()

    assert [name for name, _ in trainer.phases] == ["pretrain", "seed", "seed_pretrain", "interactive"]
    assert [step for _, step in trainer.phases] == [0, 0, 300, 320]
    assert trainer.step == 1000 and len(trainer.replay_buffer) == 1000
    first, last = evaluations[0], evaluations[-1]
    assert first["step"] == 0 and last["step"] == 1000
    assert last["episode_return"] > first["episode_return"] + 5, evaluations
    assert last["success_rate"] >= 0.6, evaluations

    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["seed_steps"] == 300
    kinds = [json.loads(line)["kind"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"demos", "bc", "phase", "train", "eval"} <= set(kinds)
    assert (run / "checkpoints" / "final.pt").exists()
    assert (run / "checkpoints" / "step_00000500.pt").exists()
    state = torch.load(run / "checkpoints" / "final.pt", weights_only=True)
    assert state["step"] == 1000


def test_toy_env_is_deterministic_under_a_seed():
    def rollout(seed):
        env = PointReachEnv(img_size=48, episode_length=10, seed=seed)
        actions = np.random.default_rng(1).uniform(-1, 1, (10, 2))
        it = iter(actions)
        return run_episode(env, lambda obs, t: next(it), seed=seed)

    a, b, c = rollout(3), rollout(3), rollout(4)
    assert np.array_equal(a.arrays()["rgb"], b.arrays()["rgb"]) and a.reward == b.reward
    assert not np.array_equal(a.arrays()["rgb"], c.arrays()["rgb"])


def test_toy_expert_succeeds_and_env_refuses_bad_actions():
    env = PointReachEnv(img_size=48, episode_length=30)
    episodes = [expert_episode(env, s) for s in range(10)]
    assert all(e.succeeded for e in episodes)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="non-finite"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(2,\)"):
        env.step(np.zeros(3))
