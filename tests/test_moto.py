"""MOTO's model-based parts (issue 20 item 4, paper 004): the ensemble's disagreement penalises an imagined
transition in planning, value-expansion targets equal a hand-computed rollout, and the agent's update
trains the members and the critic on them, with checkpoints and planner weights that carry them."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from modem_ros.agent.modem import ModemAgent
from modem_ros.agent.moto import Moto, PenalisedHeads, disagreement, value_expansion_targets
from modem_ros.agent.networks import PlanningHeads
from modem_ros.config import ConfigError
from modem_ros.run import build_trainer
from modem_ros.weights import planner_state
from tests.conftest import random_episode_batch, small_config


def members_agree(moto: Moto) -> None:
    """Every member a copy of the first: no disagreement anywhere."""
    for head in list(moto.ensemble.dynamics)[1:]:
        head.load_state_dict(moto.ensemble.dynamics[0].state_dict())


def test_the_penalty_lowers_the_value_of_a_transition_the_members_disagree_on():
    cfg = small_config(moto_ensemble=3, moto_penalty=2.0)
    agent = ModemAgent(cfg)
    za = torch.randn(16, cfg.latent_dim + cfg.action_dim)
    plain_z, plain_r = PlanningHeads(agent.model).next(za)
    heads = agent.planning_heads()
    z, r = heads.next(za)
    spread = disagreement(agent.moto.ensemble.next_latents(za))
    assert torch.all(spread > 0)  # independently initialised members disagree
    assert torch.equal(z, plain_z)  # the planner's own model still steps
    assert torch.allclose(r, plain_r - 2.0 * spread, atol=1e-6)
    members_agree(agent.moto)
    assert torch.allclose(heads.next(za)[1], plain_r, atol=1e-6)  # agreement costs nothing
    # in a plan's value: the same action sequences are worth less where the members disagree
    agent.moto.ensemble.dynamics[1][-1].bias.data += 0.5
    z0 = torch.randn(1, cfg.latent_dim).expand(32, -1)
    actions = torch.rand(cfg.horizon, 32, cfg.action_dim) * 2 - 1
    assert torch.all(agent.planner.estimate_value(heads, z0, actions)
                     < agent.planner.estimate_value(PlanningHeads(agent.model), z0, actions))


class ToyEnsemble:
    """Two members on a 2-d latent: z' = z + a (+ 0.2 for member 1), r = sum(z) (+ 1 for member 1)."""

    def __len__(self):
        return 2

    def __call__(self, za):
        z, a = za[:, :2], za[:, 2:]
        return torch.stack([z + a, z + a + 0.2]), torch.stack([z.sum(-1, keepdim=True), z.sum(-1, keepdim=True) + 1])


class ToyModel:
    def pi(self, z, std):
        return torch.tanh(z)

    def q(self, z, a):
        return z.sum(-1, keepdim=True) + a.sum(-1, keepdim=True), z.sum(-1, keepdim=True) - 1.0


def test_value_expansion_targets_equal_a_hand_computed_rollout():
    starts = torch.tensor([[0.1, -0.3], [0.5, 0.2], [-1.0, 0.4]])
    gamma, lam, horizon = 0.9, 0.5, 2
    latents, actions, targets = value_expansion_targets(ToyEnsemble(), ToyModel(), ToyModel(), starts, horizon,
                                                        gamma, lam, 0.0, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # the same draws: one member per sample and step
    picks = [torch.randint(2, (3,), generator=g).tolist() for _ in range(horizon)]
    u = 0.2 / math.sqrt(2)  # std of {x, x + 0.2} (unbiased), the same in every dimension
    for n, start in enumerate(starts.tolist()):
        z, rewards = np.array(start), []
        for k in range(horizon):
            a = np.tanh(z)
            assert np.allclose(latents[k, n].numpy(), z, atol=1e-6)
            assert np.allclose(actions[k, n].numpy(), a, atol=1e-6)
            member = picks[k][n]
            rewards.append(z.sum() + member - lam * u)
            z = z + a + 0.2 * member
        value = min(z.sum() + np.tanh(z).sum(), z.sum() - 1.0)
        for k in reversed(range(horizon)):
            value = rewards[k] + gamma * value
            assert targets[k, n, 0].item() == pytest.approx(value, abs=1e-5)
    assert len({tuple(p) for p in picks}) > 1 or len(set(picks[0])) > 1  # both members were used


def test_the_agent_update_trains_members_and_critic_and_checkpoints_them(tmp_path):
    cfg = small_config(moto_ensemble=2, moto_mve_horizon=2)
    agent = ModemAgent(cfg)
    batch = random_episode_batch(cfg)
    losses = [float(agent.update(batch, step=i)["moto_member_loss"]) for i in range(15)]
    # the members learn the model's targets (lr 3e-4: steadily, 0.92 -> 0.78 over 15 updates when measured)
    assert all(b < a for a, b in zip(losses[:-1], losses[1:], strict=True)) and losses[-1] < 0.9 * losses[0]
    out = agent.update(batch, step=15)
    assert out["moto_mve_loss"] > 0 and torch.isfinite(out["moto_mve_target"])
    # the critic's gradient includes value expansion: the same update without it moves Q differently
    plain = ModemAgent(small_config(moto_ensemble=2))
    plain.load_state_dict(agent.state_dict())
    twin = ModemAgent(cfg)
    twin.load_state_dict(agent.state_dict())
    torch.manual_seed(5)
    plain.update(batch, step=16)
    torch.manual_seed(5)
    twin.update(batch, step=16)
    assert not torch.allclose(plain.model.q1[0].weight, twin.model.q1[0].weight)
    # checkpoints and planner weights carry the members
    path = agent.save(tmp_path / "a.pt")
    other = ModemAgent(cfg)
    other.load(path)
    assert all(torch.equal(a, b) for a, b in zip(agent.moto.ensemble.parameters(), other.moto.ensemble.parameters(),
                                                 strict=True))
    planner = ModemAgent(cfg)
    planner.load_state_dict(planner_state(agent.state_dict()))
    assert torch.equal(planner.moto.ensemble.dynamics[1][0].weight, agent.moto.ensemble.dynamics[1][0].weight)
    with pytest.raises(RuntimeError):  # another ensemble size does not silently half-load
        ModemAgent(small_config(moto_ensemble=3)).load(path)


def test_the_reference_agent_has_no_extension_and_bad_moto_keys_are_refused():
    assert ModemAgent(small_config()).extensions == [] and ModemAgent(small_config()).moto is None
    with pytest.raises(ConfigError, match="moto_ensemble"):
        small_config(moto_ensemble=1)
    with pytest.raises(ConfigError, match="moto_mve_horizon"):
        small_config(moto_mve_horizon=3)
    with pytest.raises(ConfigError, match="moto_penalty"):
        small_config(moto_ensemble=2, moto_penalty=-1)
    with pytest.raises(ConfigError, match="moto_mve_starts.*real\\+imagined"):
        small_config(moto_ensemble=2, moto_mve_horizon=1, moto_mve_starts="both")


@pytest.mark.parametrize("starts", ["real+imagined", "imagined", "real"])
def test_value_expansion_starts_where_configured(monkeypatch, starts):
    """The rollouts start from the real latents, the predicted ones, or both: exactly those rows."""
    cfg = small_config(moto_ensemble=2, moto_mve_horizon=1, moto_mve_starts=starts)
    agent = ModemAgent(cfg)
    seen = []

    def recording(ensemble, model, target, starts, *args, **kwargs):
        seen.append(starts)
        return value_expansion_targets(ensemble, model, target, starts, *args, **kwargs)

    monkeypatch.setattr("modem_ros.agent.moto.value_expansion_targets", recording)
    batch = random_episode_batch(cfg)
    agent.update(batch, step=0)
    horizon, bsz = batch.action.shape[:2]
    real_rows, imagined_rows = (horizon + 1) * bsz, horizon * bsz  # z_0..z_H encoded, z'_1..z'_H predicted
    expected = {"real+imagined": real_rows + imagined_rows, "imagined": imagined_rows, "real": real_rows}[starts]
    assert len(seen) == 1 and seen[0].shape == (expected, cfg.latent_dim)


def test_a_run_with_moto_logs_its_terms_and_plans_with_the_penalty(tmp_path):
    cfg = small_config(moto_ensemble=2, moto_mve_horizon=1, eval_episodes=1)
    trainer = build_trainer(cfg, tmp_path / "run", log_stream=io.StringIO())
    trainer.begin()
    metrics = trainer.update(2, start=0)  # what the trainer logs with each episode
    assert metrics["moto_mve_loss"] > 0 and metrics["moto_disagreement"] > 0
    trainer.save("latest.pt")
    saved = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=True)
    assert "moto" in saved and "moto_optim" in saved
    assert isinstance(trainer.agent.planning_heads(), PenalisedHeads)


@pytest.mark.parametrize("td", [True, False])
def test_expanded_td_targets_bootstrap_from_value_expansion_at_the_real_next_latent(monkeypatch, td):
    """moto_mve_td: TD targets are r + gamma * (value expansion's first target from z_{t+1}); off: the
    reference's min Q_target(z', pi(z'))."""
    cfg = small_config(moto_ensemble=2, moto_mve_horizon=2, moto_mve_td=td)

    def constant_expansion(ensemble, model, target, starts, horizon, *args, **kwargs):
        n = starts.shape[0]
        return starts.expand(horizon, n, -1), torch.zeros(horizon, n, cfg.action_dim), torch.full((horizon, n, 1), -7.)

    monkeypatch.setattr("modem_ros.agent.moto.value_expansion_targets", constant_expansion)
    agent, seen = ModemAgent(cfg), []
    loss = agent.moto.loss
    monkeypatch.setattr(agent.moto, "loss", lambda ctx: seen.append(ctx) or loss(ctx))
    batch = random_episode_batch(cfg)
    agent.update(batch, step=0)
    assert torch.allclose(seen[0].td_target, batch.reward + cfg.discount * -7.0) == td
    with pytest.raises(ConfigError, match="moto_mve_td"):
        small_config(moto_ensemble=2, moto_mve_td=True)


@pytest.mark.parametrize("aug_ratio", [0.0, 0.5])
def test_expanded_td_targets_roll_each_real_next_latent_once(monkeypatch, aug_ratio):
    """With moto_mve_td, value expansion's rollouts from the real z_1..z_H are the TD bootstrap's, not rolled
    again: (2H + 1) * B starts per update, as without it. Model-based augmentation changes the TD targets'
    next latents, so then the real ones are rolled for value expansion as before."""
    cfg = small_config(moto_ensemble=2, moto_mve_horizon=2, moto_mve_td=True)
    rolled = []

    def recording(ensemble, model, target, starts, horizon, *args, **kwargs):
        rolled.append(starts.clone())
        return value_expansion_targets(ensemble, model, target, starts, horizon, *args, **kwargs)

    monkeypatch.setattr("modem_ros.agent.moto.value_expansion_targets", recording)
    agent, batch, expanded = ModemAgent(cfg), random_episode_batch(cfg), []
    expansions = agent.moto._expansions
    monkeypatch.setattr(agent.moto, "_expansions", lambda ctx: expanded.append(expansions(ctx)) or expanded[-1])
    metrics = agent.update(batch, step=0, aug_ratio=aug_ratio)
    horizon, bsz = batch.action.shape[:2]
    assert rolled[0].shape[0] == horizon * bsz  # the TD bootstrap: one start per next latent
    assert rolled[1].shape[0] == (2 * horizon + 1 if aug_ratio else horizon + 1) * bsz
    latents, actions, targets = expanded[0]  # the critic regresses on every start's rollout all the same
    every_start = (cfg.moto_mve_horizon, (2 * horizon + 1) * bsz)
    assert latents.shape[:2] == actions.shape[:2] == targets.shape[:2] == every_start
    if not aug_ratio:  # the bootstrap's own rollouts, the same values the TD targets used
        assert torch.equal(latents[0, -horizon * bsz:], rolled[0])
    assert torch.isfinite(metrics["moto_mve_loss"])


@pytest.mark.parametrize("detached", [True, False])
def test_a_detached_critic_trains_the_q_heads_and_not_the_representation(detached):
    """moto_critic_detached: the TD loss alone moves the Q heads, never the encoder or the dynamics."""
    cfg = small_config(consistency_coef=0.0, reward_coef=0.0, moto_critic_detached=detached)
    agent = ModemAgent(cfg)
    for head in (agent.model.q1, agent.model.q2):  # the reference zeroes their last layer: no gradient flows back
        torch.nn.init.normal_(head[-1].weight, std=0.1)
    loss, _, _ = agent._model_losses(random_episode_batch(cfg))  # the value loss only: other weights are 0
    loss.backward()
    grads = {name: p.grad for name, p in agent.model.named_parameters()}
    assert grads["q1.0.weight"] is not None and grads["q1.0.weight"].abs().sum() > 0
    for name in ("encoder.out.weight", "dynamics.0.weight"):
        reached = grads[name] is not None and bool(grads[name].abs().sum() > 0)
        assert reached != detached, name
