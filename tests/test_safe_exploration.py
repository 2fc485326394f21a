"""MoDem-V2's safe-exploration options (issue 18): bounded planning and agency transfer. Off by default."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from modem_ros.agent.modem import ModemAgent
from modem_ros.agent.planner import MPPIPlanner, bound_sequences
from tests.conftest import small_config
from tests.test_planner import PointLatentModel


def test_bounded_sequences_keep_magnitude_and_change_exactly():
    actions = torch.empty(6, 200, 2).uniform_(-1, 1)
    out = bound_sequences(actions, 0.5, 0.1)
    assert out.abs().max() <= 0.5 + 1e-6
    assert (out[1:] - out[:-1]).abs().max() <= 0.1 + 1e-6
    torch.testing.assert_close(bound_sequences(actions, 1.0, 0.0), actions)  # off: unchanged


def test_the_planner_respects_its_bounds_where_the_optimum_lies_outside():
    # the known optimum's first action is (1, -0.5): bounded at 0.3 the planner must stay inside
    planner = MPPIPlanner(small_config(latent_dim=2, num_samples=256, num_elites=32, iterations=6,
                                       plan_max_action=0.3, plan_max_delta=0.05))
    for eval_mode in (True, False):
        for _ in range(5):
            action = planner.plan(PointLatentModel(), torch.zeros(1, 2), horizon=4, std_bound=0.05, t0=True,
                                  eval_mode=eval_mode)
            assert action.abs().max() <= 0.3 + 1e-6
            assert (planner.prev_mean[1:] - planner.prev_mean[:-1]).abs().max() <= 0.05 + 1e-5
    free = MPPIPlanner(small_config(latent_dim=2, num_samples=256, num_elites=32, iterations=6))
    assert free.plan(PointLatentModel(), torch.zeros(1, 2), 4, 0.05, t0=True, eval_mode=True)[0] > 0.8


def _obs(cfg):
    return {"rgb": np.zeros(cfg.rgb_shape, np.uint8), "state": np.zeros(cfg.state_dim, np.float32)}


def test_agency_transfer_hands_over_from_the_bc_policy_to_the_planner(tmp_path):
    cfg = small_config(agency_transfer_steps=100, seed_steps=40)
    agent = ModemAgent(cfg)
    last = agent.model.pi_net[-1]
    nn.init.zeros_(last.weight)
    nn.init.constant_(last.bias, 3.0)  # the "BC policy": tanh(3) = 0.995 on every action
    agent.freeze_bc_policy()
    nn.init.constant_(last.bias, -3.0)  # the learned policy moves on; the frozen one must not
    obs = _obs(cfg)
    start = [agent.act(obs, step=40, t0=True) for _ in range(10)]  # share 1: always the BC policy
    assert all(a.min() > 0.99 - 0.3 - 1e-6 for a in start)
    agent.save(tmp_path / "w.pt")
    other = ModemAgent(cfg)
    other.load(tmp_path / "w.pt")  # the planner node gets the frozen policy with the weights
    assert all(other.act(obs, step=40, t0=True).min() > 0.69 for _ in range(5))
    late = [agent.act(obs, step=140, t0=True) for _ in range(10)]  # share 0: always MPPI
    assert not any(a.min() > 0.69 for a in late)
    evaluation = agent.act(obs, step=40, eval_mode=True, t0=True)  # never in evaluation
    assert not evaluation.min() > 0.69
    off = ModemAgent(small_config(seed_steps=40))
    off.freeze_bc_policy()
    assert not off._bc_acts(40)  # the option's default: reference MoDem
