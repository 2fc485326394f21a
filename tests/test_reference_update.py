"""The update is the MoDem reference's (issue 17, part 1): each test fails on a named departure."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from modem_ros.agent.modem import ModemAgent
from modem_ros.agent.networks import ACTION_EPS, clamp_straight_through
from modem_ros.bench import random_batch
from modem_ros.config import ConfigError
from modem_ros.run import build_trainer
from tests.conftest import small_config


def _norm(params) -> float:
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None])))


def test_world_model_clip_norm_counts_only_what_its_optimizer_steps():
    agent = ModemAgent(small_config(grad_clip_norm=1e9))  # no clipping: the grads stay as computed
    batch = random_batch(agent.cfg, agent.device)
    agent.update(batch, step=0)  # leaves the policy step's gradients on pi_net
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.pi_params)
    out = agent.update(batch, step=1)
    expected = _norm(agent.model_params)
    assert abs(float(out["grad_norm"]) - expected) < 1e-4 * expected, (float(out["grad_norm"]), expected)
    assert abs(float(out["pi_grad_norm"]) - _norm(agent.pi_params)) < 1e-4 * float(out["pi_grad_norm"])


def test_bc_clip_norm_counts_only_the_bc_parameters():
    agent = ModemAgent(small_config(grad_clip_norm=1e9))
    batch = random_batch(agent.cfg, agent.device)
    agent.update(batch, step=0)  # world-model and policy gradients left behind
    out = agent.bc_update(batch)
    expected = _norm(agent.bc_params)
    assert abs(float(out["bc_grad_norm"]) - expected) < 1e-4 * expected


def test_image_encoder_sees_x_over_255():
    agent = ModemAgent(small_config())
    rgb = torch.randint(0, 256, (2, *agent.cfg.rgb_shape), dtype=torch.uint8)
    enc = agent.model.encoder
    with torch.no_grad():
        expected = enc.out(enc.convs(rgb.float() / 255).contiguous().flatten(1))
        torch.testing.assert_close(enc(rgb), expected)


def test_policy_noise_clamp_is_straight_through():
    x = torch.tensor([-1.7, -0.2, 0.4, 1.3], requires_grad=True)
    y = clamp_straight_through(x)
    y.sum().backward()
    torch.testing.assert_close(y.detach(), torch.tensor([-1 + ACTION_EPS, -0.2, 0.4, 1 - ACTION_EPS]))
    torch.testing.assert_close(x.grad, torch.ones(4))

    agent = ModemAgent(small_config())
    last = agent.model.pi_net[-1]
    nn.init.zeros_(last.weight)
    nn.init.constant_(last.bias, 2.0)  # tanh(2) = 0.964: most noisy samples cross the bound
    z = torch.zeros(256, agent.cfg.latent_dim)
    a = agent.model.pi(z, std=1.0)
    assert (a.detach() >= 1 - ACTION_EPS).float().mean() > 0.3
    a.sum().backward()
    # d/d bias of tanh(bias) summed over samples: unchanged by the clamp (a plain clamp gives fewer)
    expected = 256 * (1 - torch.tanh(torch.tensor(2.0)) ** 2)
    torch.testing.assert_close(last.bias.grad, expected.expand_as(last.bias.grad))


def test_target_ema_runs_on_even_update_steps():
    agent = ModemAgent(small_config(update_freq=2, tau=0.5))
    batch = random_batch(agent.cfg, agent.device)
    before = [p.clone() for p in agent.target.parameters()]
    agent.update(batch, step=7)
    assert all(torch.equal(a, b) for a, b in zip(before, agent.target.parameters(), strict=True))
    agent.update(batch, step=8)
    assert not all(torch.equal(a, b) for a, b in zip(before, agent.target.parameters(), strict=True))


def test_std_bound_follows_the_last_update_and_travels_with_the_weights(tmp_path):
    agent = ModemAgent(small_config(std_schedule_steps=100))
    agent.update(random_batch(agent.cfg, agent.device), step=73)
    assert agent.last_update_step == 73
    agent.save(tmp_path / "w.pt")
    other = ModemAgent(small_config(std_schedule_steps=100))
    other.load(tmp_path / "w.pt")
    assert other.last_update_step == 73


class _Spy:
    """Records the steps the trainer passes to act() and update(), then calls through."""

    def __init__(self, agent):
        self.agent, self.acts, self.updates = agent, [], []
        act, update = agent.act, agent.update
        agent.act = lambda obs, step=0, **kw: (self.acts.append((step, kw.get("eval_mode", False))),
                                               act(obs, step, **kw))[1]
        agent.update = lambda batch, step, **kw: (self.updates.append(step), update(batch, step, **kw))[1]


def test_seeding_order_schedules_and_eval_cadence_are_the_reference(tmp_path):
    # episodes of 20 agent steps, seed_steps 40: BC episodes start at 0 and 20; the episode that starts
    # at 40 is planned, then 40 seed updates at steps 40..79; the next episode's 20 updates at 60..79.
    cfg = small_config(train_steps=80, seed_steps=40, eval_freq=80, save_freq=80, eval_episodes=1,
                       action_repeat=2)
    trainer = build_trainer(cfg, tmp_path / "run", log_stream=io.StringIO())
    initial_target = [p.clone() for p in trainer.agent.target.parameters()]
    spy = _Spy(trainer.agent)
    trainer.pretrain_policy()
    # the reference keeps the target's random init after BC (bc_sync_target=False)
    assert all(torch.equal(a, b) for a, b in zip(initial_target, trainer.agent.target.parameters(), strict=True))
    for _ in range(4):
        trainer.after_episode(trainer.collect_episode())
    train_steps = [s for s, ev in spy.acts if not ev]
    # one step per episode, the one it began at
    assert train_steps == [0] * 20 + [20] * 20 + [40] * 20 + [60] * 20
    assert spy.updates == list(range(40, 80)) + list(range(60, 80))
    assert [name for name, _ in trainer.phases] == ["pretrain", "seed", "seed_pretrain", "interactive"]
    # eval_freq counts env steps: 80 env steps = every 40 agent steps at action_repeat 2
    assert [e["step"] for e in trainer.evaluations] == [40, 80]
    assert [e["env_step"] for e in trainer.evaluations] == [80, 160]
    assert (tmp_path / "run" / "checkpoints" / "step_00000040.pt").exists()


def test_bc_sync_target_is_an_option():
    cfg = small_config(bc_sync_target=True, bc_iters=2)
    trainer = build_trainer(cfg, None, log_stream=io.StringIO())
    trainer.pretrain_policy()
    assert all(torch.equal(a, b) for a, b in zip(trainer.agent.model.parameters(),
                                                  trainer.agent.target.parameters(), strict=True))


def test_an_interrupted_seed_burst_resumes_with_the_updates_it_had_left(tmp_path):
    cfg = small_config(train_steps=200, seed_steps=100, eval_freq=10_000, save_freq=10_000)
    trainer = build_trainer(cfg, tmp_path / "run", log_stream=io.StringIO())
    episodes = []
    for _ in range(5):  # BC-seeded episodes starting at 0..80
        episodes.append(trainer.collect_episode())
        trainer.after_episode(episodes[-1])
        trainer.save("latest.pt")
    calls = {"n": 0}
    update = trainer.agent.update

    def killed_at_70(batch, step):
        calls["n"] += 1
        if calls["n"] == 70:
            raise KeyboardInterrupt
        return update(batch, step)

    trainer.agent.update = killed_at_70
    episodes.append(trainer.collect_episode())  # the first planned episode, then the 100-update burst
    with pytest.raises(KeyboardInterrupt):
        trainer.after_episode(episodes[-1])
    again = build_trainer(cfg, tmp_path / "run", log_stream=io.StringIO())
    spy = _Spy(again.agent)
    again.resume(tmp_path / "run" / "checkpoints" / "latest.pt", lambda n: episodes[:n])
    assert spy.updates == list(range(150, 200))  # checkpointed after 50; the other 50 run on resume
    assert again._model_pretrained and again.step == 120 and again.episodes == 6


def test_a_budget_that_ends_before_planning_is_refused():
    with pytest.raises(ConfigError, match=r"train_steps \(40\) <= seed_steps \(40\)"):
        small_config(train_steps=40, seed_steps=40)


def test_the_end_of_a_run_says_how_it_went_and_where_its_files_are(tmp_path):
    cfg = small_config(eval_episodes=1)
    trainer = build_trainer(cfg, tmp_path / "run", log_stream=io.StringIO())
    trainer.run()
    summary = next(r for r in trainer.logger.records if r["kind"] == "summary")
    assert summary["final_success_rate"] == trainer.evaluations[-1]["success_rate"]
    assert summary["checkpoint"].endswith("final.pt") and summary["env_step"] == 160


def test_tensorboard_plots_each_kind_on_an_axis_that_says_what_it_is(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = small_config(eval_episodes=1)
    build_trainer(cfg, tmp_path / "run", log_stream=io.StringIO()).run()
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    train = [e.step for e in events.Scalars("train/episode_return (x: env steps)")]
    assert train == [40, 80, 120, 160]  # 20-step episodes at action_repeat 2: one point per episode
    assert [e.step for e in events.Scalars("eval/success_rate (x: env steps)")] == [0, 80, 160]
    assert "bc/bc_loss (x: BC iterations)" in tags and not any("agent steps" in t for t in tags if "train/" in t)
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")  # the config ...
    assert "final/final_success_rate" in tags  # ... beside the final metrics
