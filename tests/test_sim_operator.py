"""The scripted operator (sim only, issue 18): a stand-in for the person at the teleop gate, so that
"interventions are data" and "the rate falls as the agent improves" can be measured without one."""

from __future__ import annotations

import io

import numpy as np
import pytest

from modem_ros.config import ConfigError
from modem_ros.envs.point_reach import PointReachEnv
from modem_ros.run import build_trainer
from modem_ros.sim_operator import ScriptedOperator
from modem_ros.trainer import run_episode
from tests.conftest import small_config


def drive(operator: ScriptedOperator, rewards: list[float], success_from: int = 10**9) -> list[bool]:
    """Who drove each step (True: the operator) for a fixed reward sequence."""
    operator.reset()
    engaged = []
    for t, reward in enumerate(rewards):
        engaged.append(operator.engaged())
        operator.observe(reward, t >= success_from)
    return engaged


def test_it_takes_over_after_patience_stalled_steps_for_takeover_steps():
    operator = ScriptedOperator(patience=3, takeover_steps=2)
    # no progress after the first step (the baseline): 3 stalled steps, 2 operator steps, a fresh 3 after
    assert drive(operator, [-1.0] * 12) == [False] * 4 + [True] * 2 + [False] * 3 + [True] * 2 + [False]


def test_progress_or_success_keeps_the_agent_driving():
    operator = ScriptedOperator(patience=3, takeover_steps=2)
    assert not any(drive(operator, [-1.0 + 0.01 * t for t in range(30)]))  # improving every step
    assert not any(drive(operator, [-0.5] * 30, success_from=0))  # at the goal, holding still
    # progress below min_gain counts as none
    assert any(drive(ScriptedOperator(3, 2, min_gain=0.1), [-1.0 + 0.01 * t for t in range(30)]))
    with pytest.raises(ValueError, match="patience"):
        ScriptedOperator(patience=0, takeover_steps=2)


def test_with_a_goal_distance_progress_is_the_goal_nearing_not_the_sparse_reward():
    """A sparse reward (-1 until success) shows no progress; the operator's view (the cube nearing the
    marker) does, and that is what keeps the agent driving."""
    operator = ScriptedOperator(patience=3, takeover_steps=2)
    operator.reset()
    engaged = []
    for t in range(30):
        engaged.append(operator.engaged())
        operator.observe(-1.0, False, goal_distance=0.3 - 0.005 * t)
    assert not any(engaged)
    operator.reset()
    engaged = []
    for t in range(12):  # the goal as far as ever: a takeover, however the reward rises
        engaged.append(operator.engaged())
        operator.observe(-1.0 + 0.01 * t, False, goal_distance=0.3)
    assert engaged == [False] * 4 + [True] * 2 + [False] * 3 + [True] * 2 + [False]


def test_an_episode_flags_the_operator_steps_and_they_are_the_experts():
    cfg = small_config()
    env = PointReachEnv(cfg.img_size, cfg.frame_stack, cfg.episode_length, cfg.action_repeat, seed=0)
    idle = np.zeros(cfg.action_dim, np.float32)  # an agent that never moves: no progress, ever
    episode = run_episode(env, lambda obs, t: idle, seed=3, operator=ScriptedOperator(4, 3))
    flags = np.array(episode.intervention)
    assert flags[:5].tolist() == [False] * 5 and flags[5:8].all() and flags.sum() < len(flags)
    actions = np.stack(episode.action)
    assert np.all(actions[~flags] == 0) and np.all(np.abs(actions[flags]).max(1) > 0)  # the expert moves
    # the expert's takeovers bring the point closer than idling would: reward rises while it drives
    rewards = np.array(episode.reward)
    assert rewards[7] > rewards[4]
    # an agent that heads for the goal itself is not taken over
    expert = run_episode(env, lambda obs, t: env.expert_action(), seed=3, operator=ScriptedOperator(4, 3))
    assert not any(expert.intervention) and expert.succeeded


def test_the_trainer_uses_it_in_the_plain_loop_and_logs_the_rate(tmp_path):
    cfg = small_config(sim_operator_patience=3, sim_operator_steps=5)
    trainer = build_trainer(cfg, tmp_path / "run", log_stream=io.StringIO())
    assert trainer.operator is not None and (trainer.operator.patience, trainer.operator.takeover_steps) == (3, 5)
    trainer.begin()
    episode = trainer.collect_episode()
    metrics = trainer.after_episode(episode)
    assert any(episode.intervention) and metrics["intervention_rate"] == episode.intervention_rate
    assert metrics["intervention_steps_kept"] >= 5  # a takeover of 5 >= horizon steps joins the demos
    assert build_trainer(small_config(), tmp_path / "plain", log_stream=io.StringIO()).operator is None
    with pytest.raises(ConfigError, match="sim_operator_steps"):
        small_config(sim_operator_patience=3, sim_operator_steps=0)
