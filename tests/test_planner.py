from __future__ import annotations

import numpy as np
import torch

from modem_ros.agent.modem import ModemAgent
from modem_ros.agent.planner import MPPIPlanner
from tests.conftest import small_config


class PointLatentModel:
    """A latent model with a known optimum: z' = z + 0.5 a, reward -|z' - target|^2, no value.

    From z = 0 with target (0.5, -0.25) reachable in one step, the best sequence is a_0 = (1, -0.5)
    followed by zeros; the planner must find a first action close to it.
    """

    target = torch.tensor([0.5, -0.25])

    def next(self, za):
        z, a = za[:, :2], za[:, 2:]
        z_next = z + 0.5 * a
        return z_next, -(z_next - self.target).pow(2).sum(-1, keepdim=True)

    def pi(self, z, std):
        return torch.zeros(z.shape[0], 2)

    def q_min(self, za):
        return torch.zeros(za.shape[0], 1)


def test_planner_finds_the_known_best_action():
    planner = MPPIPlanner(small_config(latent_dim=2, num_samples=512, num_elites=32, iterations=12))
    actions = torch.stack([planner.plan(PointLatentModel(), torch.zeros(1, 2), horizon=3, std_bound=0.01,
                                        t0=True, eval_mode=True) for _ in range(10)])
    assert torch.allclose(actions, torch.tensor([1.0, -0.5]).expand(10, 2), atol=0.05), actions


def test_a_wrong_reward_sign_would_fail_the_known_best_test():
    class Inverted(PointLatentModel):
        def next(self, za):
            z_next, r = super().next(za)
            return z_next, -r
    cfg = small_config(latent_dim=2, num_samples=512, num_elites=32, iterations=12)
    action = MPPIPlanner(cfg).plan(Inverted(), torch.zeros(1, 2), 3, 0.01, t0=True, eval_mode=True)
    assert not torch.allclose(action, torch.tensor([1.0, -0.5]), atol=0.1)


def test_warm_start_reuses_the_previous_mean_shifted():
    cfg = small_config(latent_dim=2, iterations=1, momentum=1.0)  # momentum 1 keeps the initial mean
    planner = MPPIPlanner(cfg)
    planner.prev_mean = torch.tensor([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]])
    planner.plan(PointLatentModel(), torch.zeros(1, 2), 3, 0.05, t0=False, eval_mode=True)
    assert torch.allclose(planner.prev_mean, torch.tensor([[0.2, 0.2], [0.3, 0.3], [0.0, 0.0]]))
    planner.plan(PointLatentModel(), torch.zeros(1, 2), 3, 0.05, t0=True, eval_mode=True)
    assert torch.all(planner.prev_mean == 0)  # t0: no warm start


def test_agent_actions_stay_in_bounds(cfg):
    agent = ModemAgent(cfg)
    for p in agent.model.parameters():  # large random weights push raw plans far outside [-1, 1]
        p.data.normal_(0, 1.0)
    rng = np.random.default_rng(0)
    for step, eval_mode in [(0, False), (10**6, False), (10**6, True)]:
        for t in range(5):
            obs = {"rgb": rng.integers(0, 256, cfg.rgb_shape, dtype=np.uint8),
                   "state": rng.standard_normal(cfg.state_dim).astype(np.float32) * 10}
            action = agent.act(obs, step=step, eval_mode=eval_mode, t0=t == 0)
            assert action.shape == (cfg.action_dim,) and action.dtype == np.float32
            assert np.all(np.abs(action) <= 1.0)
