"""Interventions are data (HIL-SERL): steps an operator drove while training are flagged from the teleop
gate's label on each action, kept in the episode bags, oversampled like demos and logged as a rate per episode."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from modem_ros.data.demos import DemoError, read_episode, write_episode
from modem_ros.data.episode import Episode
from modem_ros.data.stream import EpisodeAssembler
from modem_ros.envs.point_reach import PointReachEnv
from modem_ros.run import build_trainer
from modem_ros.trainer import run_episode
from tests.conftest import small_config

FLAGS = [False, True, True, True, False, False, True, True, True, True, True, True, False, True]


def toy_episode(cfg, flags: list[bool], seed: int = 0) -> Episode:
    env = PointReachEnv(cfg.img_size, cfg.frame_stack, cfg.episode_length, cfg.action_repeat, seed=seed)
    rng = np.random.default_rng(seed)
    episode = run_episode(env, lambda obs, t: rng.uniform(-1, 1, cfg.action_dim).astype(np.float32), seed=seed)
    episode.intervention = list(flags) + [False] * (len(episode) - len(flags))
    return episode


def test_segments_are_the_runs_of_operator_steps_long_enough_to_train_on():
    cfg = small_config()
    episode = toy_episode(cfg, FLAGS)
    segments = episode.intervention_segments(min_steps=3)
    assert [len(s) for s in segments] == [3, 6]  # the run of 1 at step 13 is too short for a snippet
    first, second = segments
    np.testing.assert_array_equal(np.stack(first.action), np.stack(episode.action[1:4]))
    np.testing.assert_array_equal(first.rgb[0], episode.rgb[1])  # observations 1..4 around actions 1..3
    np.testing.assert_array_equal(second.rgb[-1], episode.rgb[12])
    assert first.reward == episode.reward[1:4] and all(second.intervention)
    assert episode.intervention_rate == pytest.approx(sum(FLAGS) / len(episode))


def test_the_assembler_pairs_each_flag_with_its_action():
    cfg = small_config()
    asm = EpisodeAssembler(cfg.frame_stack, 3, 2, 2, interventions=True)
    frame = np.zeros((3, cfg.img_size, cfg.img_size), np.uint8)
    for _ in range(4):
        asm.add_frame(frame)
        asm.add_state(np.zeros(2, np.float32))
    for t, flag in enumerate([False, True, False]):
        asm.add_action(np.full(2, t, np.float32))
        asm.add_reward(-1.0)
        asm.add_success(False)
        if t < 2:
            asm.add_intervention(flag)
    assert asm.pop_episode() is None  # the third step's flag has not come yet
    asm.add_intervention(False)
    episode = asm.pop_episode()
    assert episode.intervention == [False, True, False] and float(episode.action[1][0]) == 1.0


def test_bags_keep_the_flags_and_refuse_malformed_ones(tmp_path):
    cfg = small_config()
    episode = toy_episode(cfg, FLAGS)
    path = write_episode(episode, tmp_path / "episode_000000", {"task": cfg.task})
    assert read_episode(path, cfg.frame_stack).episode.intervention == episode.intervention
    plain = toy_episode(cfg, [])
    assert read_episode(write_episode(plain, tmp_path / "episode_000001", {}), cfg.frame_stack).episode.intervention \
        == [False] * len(plain)
    bad = write_episode(plain, tmp_path / "episode_000002", {"intervention_steps": "[3, 999]"})
    with pytest.raises(DemoError, match="intervention_steps '\\[3, 999\\]' is not a list of step indices below 20"):
        read_episode(bad, cfg.frame_stack)


def test_the_trainer_oversamples_takeovers_like_demos_and_logs_their_rate(tmp_path):
    cfg = small_config(intervention_capacity=40, train_steps=200)
    trainer = build_trainer(cfg, tmp_path / "run", log_stream=io.StringIO())
    trainer.begin()
    demo_steps = len(trainer.demo_buffer)
    metrics = trainer.after_episode(toy_episode(cfg, FLAGS, seed=1))
    # horizon 5: the run of 6 operator steps is kept, the run of 3 (too short for a snippet) is not
    assert len(trainer.demo_buffer) == demo_steps + 6 and metrics["intervention_steps_kept"] == 6
    assert metrics["intervention_rate"] == pytest.approx(10 / 20)
    metrics = trainer.after_episode(toy_episode(cfg, [], seed=2))  # the operator let go: the rate shows it
    assert metrics["intervention_rate"] == 0.0 and len(trainer.demo_buffer) == demo_steps + 6
    for seed in range(3, 8):  # more takeovers than intervention_capacity leaves room for
        trainer.after_episode(toy_episode(cfg, [True] * 20, seed=seed))
    assert len(trainer.demo_buffer) <= demo_steps + 40
    notes = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("demo buffer full" in n.get("interventions", "") for n in notes if n["kind"] == "note")
    plain = build_trainer(small_config(), None, log_stream=io.StringIO())
    assert "intervention_rate" not in plain.after_episode(toy_episode(cfg, [], seed=1))  # sim runs: no column
