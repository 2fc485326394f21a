"""Offline pre-training (issue 20, paper 002): the phase, its model-based augmentation, the measure of
critic overfitting, and resuming inside the phase."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from modem_ros.agent.modem import ModemAgent
from modem_ros.agent.offline import augment_next_latents, q_vs_return
from modem_ros.data.demos import write_episode
from modem_ros.envs.point_reach import PointReachEnv
from modem_ros.run import build_trainer, split_heldout
from modem_ros.trainer import run_episode
from tests.conftest import small_config
from tests.test_reference_update import _Spy


def test_augmentation_replaces_whole_snippets_by_one_step_predictions():
    agent = ModemAgent(small_config())
    h, b, latent = 3, 64, agent.cfg.latent_dim
    z0, next_z = torch.randn(b, latent), torch.randn(h, b, latent)
    action = torch.rand(h, b, agent.cfg.action_dim) * 2 - 1
    assert torch.equal(augment_next_latents(agent.model, z0, next_z, action, 0.0), next_z)
    real = torch.cat([z0[None], next_z[:-1]])
    with torch.no_grad():
        predicted = agent.model.dynamics(torch.cat([real, action], -1))
    torch.testing.assert_close(augment_next_latents(agent.model, z0, next_z, action, 1.0), predicted)
    mixed = augment_next_latents(agent.model, z0, next_z, action, 0.5)
    swapped = (mixed == predicted).all(-1).all(0)
    kept = (mixed == next_z).all(-1).all(0)
    assert torch.all(swapped ^ kept) and 10 < int(swapped.sum()) < 54  # per snippet, about half


def test_q_vs_return_measures_the_critics_bias_against_the_true_return():
    cfg = small_config(episode_length=10)
    agent = ModemAgent(cfg)  # Q heads start at zero: the bias is minus the mean discounted return-to-go
    episode = run_episode(PointReachEnv(img_size=cfg.img_size, episode_length=10), lambda o, t: np.zeros(2), seed=0)
    out = q_vs_return(agent, [episode], 0.9)
    returns = [sum(0.9 ** k * r for k, r in enumerate(episode.reward[t:])) for t in range(10)]
    assert out["q_bias"] == pytest.approx(-np.mean(returns), rel=1e-5)


def test_the_held_out_episodes_are_spread_over_the_datasets_not_the_last_one():
    # offline_dirs load one directory after another: 20 expert-like, 20 noisy, 10 random episodes
    episodes = [f"expert{i}" for i in range(20)] + [f"noisy{i}" for i in range(20)] + [f"random{i}" for i in range(10)]
    kept, heldout = split_heldout(episodes)
    assert heldout == ["expert9", "expert19", "noisy9", "noisy19", "random9"]
    assert len(kept) == 45 and not set(kept) & set(heldout)
    assert split_heldout(["a", "b", "c"]) == (["a", "b"], ["c"]) and split_heldout(["a"]) == (["a"], [])


@pytest.fixture
def offline_data(tmp_path):
    env = PointReachEnv(img_size=48, episode_length=20)
    rng = np.random.default_rng(0)
    for i in range(10):  # rewarded episodes of mixed quality: random actions
        episode = run_episode(env, lambda o, t: rng.uniform(-1, 1, 2), seed=100 + i)
        write_episode(episode, tmp_path / "offline" / f"episode_{i:06d}", {"task": "toy-reach"})
    return tmp_path / "offline"


def test_the_offline_phase_runs_after_bc_and_resumes_where_it_stopped(tmp_path, offline_data):
    cfg = small_config(offline_dirs=str(offline_data), offline_steps=20, offline_aug_ratio=0.5, eval_episodes=1)
    trainer = build_trainer(cfg, tmp_path / "run", log_stream=io.StringIO())
    assert len(trainer.heldout) == 1 and len(trainer.replay_buffer) == 9 * 20
    calls = {"n": 0}
    update = trainer.agent.update

    def killed_at_13(batch, step, aug_ratio=0.0):
        calls["n"] += 1
        if calls["n"] == 13:
            raise KeyboardInterrupt
        return update(batch, step, aug_ratio=aug_ratio)

    trainer.agent.update = killed_at_13
    with pytest.raises(KeyboardInterrupt):
        trainer.begin()
    again = build_trainer(cfg, tmp_path / "run", log_stream=io.StringIO())
    spy = _Spy(again.agent)
    again.resume(tmp_path / "run" / "checkpoints" / "latest.pt", lambda n: [])
    assert spy.updates == list(range(12, 20))  # checkpointed after 12 (every 2): the rest, no BC again
    assert again.agent.last_update_step == 0 and again.evaluations  # the schedules have not started
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in records if r["kind"] == "offline" and r["updates_done"] == 20]
    assert final and np.isfinite(final[-1]["q_bias"])  # measured on the held-out episode
    tenths = sorted({r["updates_done"] for r in records if r["kind"] == "offline" and "q_bias" in r})
    assert tenths == list(range(2, 21, 2))  # the critic measured at every tenth, across the resume
    assert [r["phase"] for r in records if r["kind"] == "phase"][:2] == ["pretrain", "offline"]
    again.begin()  # the graph calls begin() after resume: nothing runs twice
    assert spy.updates == list(range(12, 20))


def test_the_evaluation_after_the_offline_phase_survives_a_stop_and_is_not_repeated(tmp_path, offline_data):
    """A run stopped during its first evaluation (the offline phase checkpointed just before) resumed
    straight into seeding: the success right after the offline phase was never measured."""
    cfg = small_config(offline_dirs=str(offline_data), offline_steps=4, eval_episodes=1)

    def evaluations(run_dir):
        records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        return [r["step"] for r in records if r["kind"] == "eval"]

    stopped = build_trainer(cfg, tmp_path / "a", log_stream=io.StringIO())

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    stopped.evaluate = killed
    with pytest.raises(KeyboardInterrupt):
        stopped.begin()
    again = build_trainer(cfg, tmp_path / "a", log_stream=io.StringIO())
    spy = _Spy(again.agent)
    again.resume(tmp_path / "a" / "checkpoints" / "latest.pt", lambda n: [])
    assert spy.updates == [] and evaluations(tmp_path / "a") == [0]  # no update again, the evaluation made
    third = build_trainer(cfg, tmp_path / "a", log_stream=io.StringIO())  # stopped before the first episode
    third.resume(tmp_path / "a" / "checkpoints" / "latest.pt", lambda n: [])
    third.begin()
    assert evaluations(tmp_path / "a") == [0]


def test_behaviour_regularisation_pulls_the_policy_to_the_data_and_anneals_online():
    from modem_ros.agent.modem import behaviour_regularisation
    from modem_ros.bench import random_batch

    cfg = small_config(bc_reg_coef=2.0, bc_reg_steps=100, seed_steps=40)
    assert [behaviour_regularisation(cfg, s) for s in (0, 40, 90, 140, 500)] == [2.0, 2.0, 1.0, 0.0, 0.0]
    assert behaviour_regularisation(small_config(), 0) == 0.0  # off by default (reference)

    def policy_error(coef: float) -> tuple[float, float]:
        torch.manual_seed(0)
        agent = ModemAgent(small_config(bc_reg_coef=coef, seed_steps=40))
        batch = random_batch(agent.cfg, agent.device)
        batch.action.uniform_(-0.5, 0.5)

        def error():
            with torch.no_grad():
                z = agent.model.encode(batch.rgb[0], batch.state[0])
                return float((agent.model.pi(z) - batch.action[0]).pow(2).mean())

        before = error()
        for _ in range(80):
            agent.update(batch, step=0)
        return before, error()

    before, after = policy_error(2.0)
    before_off, after_off = policy_error(0.0)
    # the critic alone moves the policy far from the data's actions; regularised, it stays at or near them
    assert after < before and after < 0.3 * after_off, (before, after, before_off, after_off)


def test_bench_learn_records_the_offline_phase_of_the_offline_methods_only(tmp_path, offline_data):
    from modem_ros.bench_learn import run_learning_bench, summary_table
    from tests.test_bench_learn import TINY

    out = tmp_path / "learning.json"  # the methods' 1000 offline updates, cut to a test's budget for all of them
    overrides = {**TINY, "train_steps": "0", "offline_dirs": str(offline_data), "offline_steps": "12"}
    result = run_learning_bench("toy-reach", None, [1], ["modem", "modem+offline", "modem+offline+aug"], overrides,
                                out, tmp_path / "runs", log=lambda s: None, log_stream=io.StringIO())
    runs = {r["method"]: r for r in json.loads(out.read_text())["runs"]}
    assert "offline" not in runs["modem"]  # MoDem from its demos: no offline phase, nothing to report
    for method in ("modem+offline", "modem+offline+aug"):
        offline = runs[method]["offline"]
        assert offline["updates_done"] == 12  # the method's offline_steps, all done before the step-0 eval
        assert np.isfinite(offline["q_bias"]) and offline["q_abs_error"] >= abs(offline["q_bias"]) - 1e-6
        assert offline["seconds_per_update"] > 0 and runs[method]["env_steps"] == [0]
        curve = offline["q_curve"]  # [updates_done, bias, |error|] per tenth (every 1 at 12 updates), then the end
        assert [row[0] for row in curve] == list(range(1, 13)) and curve[-1][1:] == [offline["q_bias"],
                                                                                  offline["q_abs_error"]]
    assert runs["modem+offline"]["offline"]["q_bias"] != runs["modem+offline+aug"]["offline"]["q_bias"]
    assert (tmp_path / "learning_critic.png").read_bytes()[:4] == b"\x89PNG"  # the critic's bias over the phase
    table = summary_table(result)
    assert "held-out offline episodes" in table and "modem+offline+aug" in table.split("held-out")[1]
