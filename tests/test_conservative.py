"""MoDem-V2's conservative planning (issue 18 item 2b): the terminal value is mean - lambda * std over
the Q ensemble, the heads learn the reference's TD targets, and checkpoints and planner weights carry
them; both ensembles (this and MOTO's) can plan together."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modem_ros.agent.conservative import ConservativeHeads
from modem_ros.agent.modem import ModemAgent
from modem_ros.agent.moto import PenalisedHeads
from modem_ros.agent.networks import PlanningHeads
from modem_ros.config import ConfigError
from modem_ros.weights import planner_state
from tests.conftest import random_episode_batch, small_config


def set_constant_outputs(agent: ModemAgent, values: list[float]) -> None:
    for head, value in zip(agent.conservative.ensemble.heads, values, strict=True):
        head[-1].weight.data.zero_()
        head[-1].bias.data.fill_(value)


def test_the_terminal_value_is_the_heads_mean_minus_lambda_std():
    cfg = small_config(q_ensemble=3, q_ensemble_lambda=0.5)
    agent = ModemAgent(cfg)
    heads = agent.planning_heads()
    assert isinstance(heads, ConservativeHeads)
    za = torch.randn(8, cfg.latent_dim + cfg.action_dim)
    set_constant_outputs(agent, [1.0, 2.0, 6.0])
    expected = np.mean([1, 2, 6]) - 0.5 * np.std([1, 2, 6], ddof=1)
    assert torch.allclose(heads.q_min(za), torch.full((8, 1), expected), atol=1e-5)
    # dynamics, reward and policy are the world model's, unchanged
    plain = PlanningHeads(agent.model)
    assert all(torch.equal(a, b) for a, b in zip(heads.next(za), plain.next(za), strict=True))
    # the same mean, more disagreement: every planned trajectory is worth less
    z0 = torch.randn(1, cfg.latent_dim).expand(16, -1)
    actions = torch.rand(cfg.horizon, 16, cfg.action_dim) * 2 - 1
    agree = agent.planner.estimate_value(heads, z0, actions)
    set_constant_outputs(agent, [3.0 - 2, 3.0, 3.0 + 2])
    disagree = agent.planner.estimate_value(heads, z0, actions)
    set_constant_outputs(agent, [3.0, 3.0, 3.0])
    assert torch.all(disagree < agent.planner.estimate_value(heads, z0, actions))
    assert not torch.allclose(agree, disagree)


def test_the_heads_learn_td_targets_and_travel_with_checkpoints_and_planner_weights(tmp_path):
    cfg = small_config(q_ensemble=2, moto_ensemble=2)
    agent = ModemAgent(cfg)
    batch = random_episode_batch(cfg)
    before = [p.clone() for p in agent.conservative.ensemble.parameters()]
    out = [agent.update(batch, step=i) for i in range(10)]
    losses = [float(o["q_ensemble_loss"]) for o in out]  # measured: 0.30 -> 0.27 over 10 updates, steadily
    assert all(b < a for a, b in zip(losses[:-1], losses[1:], strict=True))
    assert out[-1]["q_ensemble_std"] > 0  # heads of different hidden inits part ways on the same targets
    assert all(not torch.equal(a, b) for a, b in zip(before, agent.conservative.ensemble.parameters(), strict=True))
    # both ensembles plan together: MOTO's penalty on the rewards, the conservative value at the end
    heads = agent.planning_heads()
    assert isinstance(heads, ConservativeHeads) and isinstance(heads.inner, PenalisedHeads)
    planner = ModemAgent(cfg)
    planner.load_state_dict(planner_state(agent.state_dict()))
    za = torch.randn(4, cfg.latent_dim + cfg.action_dim)
    assert torch.allclose(planner.planning_heads().q_min(za), heads.q_min(za))
    other = ModemAgent(cfg)
    other.load(agent.save(tmp_path / "a.pt"))
    assert torch.allclose(other.planning_heads().q_min(za), heads.q_min(za))


def test_bad_q_ensemble_keys_are_refused():
    with pytest.raises(ConfigError, match="q_ensemble"):
        small_config(q_ensemble=1)
    with pytest.raises(ConfigError, match="q_ensemble_lambda"):
        small_config(q_ensemble=2, q_ensemble_lambda=-0.1)
