"""MoDem-V2's conservative planning (Lancaster et al. 2023, safe exploration on a real Franka): an ensemble
of Q heads, and planning that scores a trajectory's terminal value by mean - lambda * std over the heads,
so the planner avoids actions whose value the heads disagree on (the unvisited ones; on a robot, the
risky ones).

The K heads (`q_ensemble`, K >= 2) have the twin Q's layout and learn the reference's TD targets on the
latents the world model rolled out (detached: they do not shape the representation), rho-weighted over
the snippet as the twin Q, with their own optimizer. The twin Q keeps its role in the TD targets and the
policy loss; only planning's terminal value changes (`q_ensemble_lambda`).
"""

from __future__ import annotations

import torch
from torch import nn

from modem_ros.agent.extensions import EnsembleExtension, UpdateContext
from modem_ros.agent.networks import PlanningHeads, orthogonal_init, q_head
from modem_ros.agent.planner import LatentModel
from modem_ros.config import ModemConfig


class QEnsemble(nn.Module):
    """K Q heads: za [N, L + A] -> [K, N, 1]."""

    def __init__(self, cfg: ModemConfig):
        super().__init__()
        self.heads = nn.ModuleList(q_head(cfg.latent_dim + cfg.action_dim, cfg.mlp_dim)
                                   for _ in range(cfg.q_ensemble))
        self.apply(orthogonal_init)  # the hidden layers differ per head; outputs start at zero, as the twin Q's
        for head in self.heads:
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)

    def forward(self, za: torch.Tensor) -> torch.Tensor:
        return torch.stack([head(za) for head in self.heads])


class ConservativeHeads:
    """Planning's heads with a terminal value of mean - lambda * std over the ensemble's heads."""

    def __init__(self, inner: LatentModel, ensemble: QEnsemble, lam: float):
        self.inner, self.ensemble, self.lam = inner, ensemble, lam

    def next(self, za: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inner.next(za)

    def pi(self, z: torch.Tensor, std: float) -> torch.Tensor:
        return self.inner.pi(z, std)

    def q_min(self, za: torch.Tensor) -> torch.Tensor:
        values = torch.stack([PlanningHeads.q_value(za, head) for head in self.ensemble.heads])
        return values.mean(0) - self.lam * values.std(0)


class ConservativeQ(EnsembleExtension):
    """The Q ensemble as an update extension (extensions.py)."""

    state_key = "q_ensemble"

    def __init__(self, cfg: ModemConfig, device: torch.device):
        super().__init__(cfg, QEnsemble(cfg), device)

    def loss(self, ctx: UpdateContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        horizon = ctx.action.shape[0]
        rolled = torch.cat([ctx.real_latents[:1], ctx.predicted[:-1].detach()])          # z_0..z_{H-1}
        values = self.ensemble(torch.cat([rolled, ctx.action], dim=-1).flatten(0, 1))      # [K, H*B, 1]
        values = values.view(len(self.ensemble.heads), horizon, -1)
        rho = self.cfg.rho ** torch.arange(horizon, device=values.device, dtype=values.dtype)
        error = (values - ctx.td_target.view(1, horizon, -1)).pow(2).mean((0, 2))          # [H]
        loss = self.cfg.value_coef * (rho * error).sum()
        return loss, {"q_ensemble_loss": loss.detach(), "q_ensemble_std": values.detach().std(0).mean()}

    def wrap_planning(self, heads: LatentModel) -> LatentModel:
        return ConservativeHeads(heads, self.ensemble, self.cfg.q_ensemble_lambda)
