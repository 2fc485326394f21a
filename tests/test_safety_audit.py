"""The safety audit replays a run's actions through the robot's safety layer and counts what it did."""

import numpy as np
import pytest

from modem_ros.bench_learn import method_config, run_record, summary_table
from modem_ros.data.demos import write_episode
from modem_ros.data.episode import Episode
from modem_ros.robots import franka_spec as spec
from modem_ros.robots.safety_audit import audit_episode, audit_run


def tracked(actions, start=spec.START_TCP, repeat=2):
    """States of an arm that follows the cell's TCP targets exactly (11-d, TCP first)."""
    states, tcp = [], np.asarray(start, float)
    for action in [np.zeros(4)] + list(actions):
        tcp = np.clip(tcp + repeat * spec.MAX_TRANSLATION * np.clip(action[:3], -1, 1), spec.WORKSPACE_LOW,
                      spec.WORKSPACE_HIGH)
        states.append(np.concatenate([tcp, np.zeros(8)]))
    return np.stack(states), np.asarray(actions, float)


def test_gentle_actions_pass_untouched():
    states, actions = tracked([[0.2, 0.1, -0.1, 0.0]] * 20)
    counts = audit_episode(states, actions, action_repeat=2)
    assert counts["steps"] == 20 and counts["clips"] == 0 and counts["holds"] == 0 and counts["faults"] == 0


def test_full_speed_reversals_are_acceleration_clips():
    # +-1 per axis is 0.2 m/s; a reversal changes velocity by 0.4 m/s in 0.1 s, above 3.5 m/s^2
    actions = [[(-1) ** t, 0.0, 0.0, 0.0] for t in range(12)]
    states, actions = tracked(actions)
    counts = audit_episode(states, actions, action_repeat=2)
    assert counts["clipped_accel"] == 11 == counts["clips"]   # every step but the first, from rest


def test_driving_at_a_wall_is_braked_before_it():
    states, actions = tracked([[0.0, 0.0, 1.0, 0.0]] * 6)     # START_TCP z 0.30, box top 0.32
    counts = audit_episode(states, actions, action_repeat=2)
    assert counts["clipped_workspace"] >= 1 and counts["faults"] == 0


def test_a_measured_tcp_outside_the_box_is_a_fault_and_the_replay_goes_on():
    states, actions = tracked([[0.1, 0.0, 0.0, 0.0]] * 10)
    states[4, 2] = spec.WORKSPACE_HIGH[2] + 0.10               # 10 cm above the box: beyond the 3 cm margin
    counts = audit_episode(states, actions, action_repeat=2)
    assert counts["faults"] == 1 and counts["steps"] == 10 and counts["holds"] == 0


def test_a_rejected_action_is_a_hold():
    states, actions = tracked([[0.1, 0.0, 0.0, 0.0]] * 5)
    actions[2, 0] = np.nan
    assert audit_episode(states, actions, action_repeat=2)["holds"] == 1


def test_a_run_is_summed_over_its_stored_episodes_per_1000_steps(tmp_path):
    gentle = tracked([[0.2, 0.0, 0.0, 0.0]] * 10)
    zigzag = tracked([[(-1) ** t, 0.0, 0.0, 0.0] for t in range(10)])
    for i, (states, actions) in enumerate([gentle, zigzag]):
        episode = Episode.start({"rgb": np.zeros((3, 8, 8), np.uint8), "state": states[0].astype(np.float32)})
        for t, action in enumerate(actions):
            episode.add(action, {"rgb": np.zeros((3, 8, 8), np.uint8), "state": states[t + 1].astype(np.float32)},
                        -1.0, False)
        write_episode(episode, tmp_path / f"episode_{i:06d}", {"task": "franka-reach"})
    result = audit_run(tmp_path, action_repeat=2)
    assert result["episodes"] == 2 and result["agent_steps"] == 20
    assert result["per_1000_steps"]["clips"] == pytest.approx(1000 * 9 / 20)
    assert result["per_1000_steps"]["holds"] == 0.0 and result["per_1000_steps"]["faults"] == 0.0


def test_bench_learn_records_the_audit_for_franka_cell_runs_only(tmp_path):
    states, actions = tracked([[(-1) ** t, 0.0, 0.0, 0.0] for t in range(10)])
    episode = Episode.start({"rgb": np.zeros((3, 8, 8), np.uint8), "state": states[0].astype(np.float32)})
    for t, action in enumerate(actions):
        episode.add(action, {"rgb": np.zeros((3, 8, 8), np.uint8), "state": states[t + 1].astype(np.float32)},
                    -1.0, False)
    write_episode(episode, tmp_path / "episodes" / "episode_000000", {"task": "franka-push"})
    evals = [{"step": 0, "success_rate": 0.0, "episode_return": -100.0}]
    franka = run_record(method_config("franka-push", "cpu-small", "modem", 1, {}), "modem", tmp_path, evals, 0.0)
    assert franka["safety"]["agent_steps"] == 10 and franka["safety"]["per_1000_steps"]["clipped_accel"] == 900.0
    toy = run_record(method_config("toy-reach", "cpu-small", "modem", 1, {}), "modem", tmp_path, evals, 0.0)
    assert "safety" not in toy
    table = summary_table({"task": "franka-push", "preset": "cpu-small", "runs": [franka, {**franka, "seed": 2}]})
    assert "safety layer" in table and "modem  900.0 / 0.0 / 0.0 (n=2)" in table
