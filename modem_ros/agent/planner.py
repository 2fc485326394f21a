"""MPPI planning in latent space, guided by policy-prior trajectories (TD-MPC / MoDem reference)."""

from __future__ import annotations

from typing import Protocol

import torch

from modem_ros.config import ModemConfig


class LatentModel(Protocol):
    """What planning needs of a world model (networks.PlanningHeads in the agent)."""

    def next(self, za: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def pi(self, z: torch.Tensor, std: float) -> torch.Tensor: ...

    def q_min(self, za: torch.Tensor) -> torch.Tensor: ...


def bound_sequences(actions: torch.Tensor, max_action: float, max_delta: float) -> torch.Tensor:
    """Action sequences [H, N, A] with every |a| <= max_action and, when max_delta > 0, every change
    between consecutive actions within max_delta (applied step by step, so the bound holds exactly)."""
    out = actions.clamp(-max_action, max_action)
    if max_delta > 0:
        steps = [out[0]]
        for t in range(1, out.shape[0]):
            steps.append(steps[-1] + (out[t] - steps[-1]).clamp(-max_delta, max_delta))
        out = torch.stack(steps)
    return out


class MPPIPlanner:
    """Plans one action from a latent state; keeps the previous mean for warm starts."""

    def __init__(self, cfg: ModemConfig):
        self.cfg = cfg
        self.prev_mean: torch.Tensor | None = None

    def reset(self) -> None:
        self.prev_mean = None

    @torch.no_grad()
    def estimate_value(self, heads: LatentModel, z: torch.Tensor,
                       actions: torch.Tensor) -> torch.Tensor:
        """Sum of discounted predicted rewards + discounted min(Q1, Q2)(z_H, pi(z_H)); [N] values."""
        value = torch.zeros(z.shape[0], 1, device=z.device)
        discount = 1.0
        for t in range(actions.shape[0]):
            z, reward = heads.next(torch.cat([z, actions[t]], dim=-1))
            value.add_(reward, alpha=discount)
            discount *= self.cfg.discount
        a = heads.pi(z, self.cfg.min_std)
        value.add_(heads.q_min(torch.cat([z, a], dim=-1)), alpha=discount)
        return value.squeeze(1)

    def initial_mean(self, horizon: int, t0: bool, device: torch.device) -> torch.Tensor:
        """Zeros, or on a continuing episode the previous mean shifted by one step (warm start)."""
        mean = torch.zeros(horizon, self.cfg.action_dim, device=device)
        if not t0 and self.prev_mean is not None:
            keep = min(horizon - 1, self.prev_mean.shape[0] - 1)
            mean[:keep] = self.prev_mean[1:1 + keep]
        return mean

    @torch.no_grad()
    def plan(self, heads: LatentModel, z0: torch.Tensor, horizon: int, std_bound: float,
             t0: bool, eval_mode: bool) -> torch.Tensor:
        """Return one action [action_dim] in [-1, 1] for latent z0 [1, latent]."""
        bound = torch.tensor(std_bound, device=z0.device)
        action, self.prev_mean = self.plan_from(heads, z0, self.initial_mean(horizon, t0, z0.device), bound,
                                                eval_mode)
        return action

    @torch.no_grad()
    def plan_from(self, heads: LatentModel, z0: torch.Tensor, mean: torch.Tensor, std_bound: torch.Tensor,
                  eval_mode: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(action [action_dim], final mean [horizon, action_dim]) from latent z0 [1, latent] and the
        initial mean. A pure function of tensors with no host synchronisation, so that it can be
        captured as one CUDA graph (agent/cuda_graph.py); std_bound is a 0-d tensor for the same reason."""
        cfg, dev = self.cfg, z0.device
        n_pi, n = cfg.num_pi_trajs, cfg.num_samples
        horizon, adim = mean.shape
        pi_actions = torch.empty(horizon, n_pi, adim, device=dev)
        if n_pi > 0:  # trajectories of the policy prior through the learned dynamics
            z = z0.expand(n_pi, -1)
            for t in range(horizon):
                pi_actions[t] = heads.pi(z, cfg.min_std)
                z, _ = heads.next(torch.cat([z, pi_actions[t]], dim=-1))
        z = z0.expand(n + n_pi, -1)
        std = torch.full((horizon, adim), cfg.max_std, device=dev)
        actions = torch.empty(horizon, n + n_pi, adim, device=dev)
        actions[:, n:] = pi_actions
        if cfg.plan_max_action < 1.0 or cfg.plan_max_delta > 0:
            actions[:, n:] = bound_sequences(pi_actions, cfg.plan_max_action, cfg.plan_max_delta)
        for _ in range(cfg.iterations):
            torch.randn(horizon, n, adim, device=dev, out=actions[:, :n])
            actions[:, :n].mul_(std.unsqueeze(1)).add_(mean.unsqueeze(1)).clamp_(-1, 1)
            if cfg.plan_max_action < 1.0 or cfg.plan_max_delta > 0:  # safe exploration (MoDem-V2 option)
                actions[:, :n] = bound_sequences(actions[:, :n], cfg.plan_max_action, cfg.plan_max_delta)
            value = self.estimate_value(heads, z, actions).nan_to_num_(0.0)
            elite_value, elite_idx = torch.topk(value, cfg.num_elites)
            elite_actions = actions[:, elite_idx]                                   # [H, E, A]
            score = torch.softmax(cfg.temperature * elite_value, dim=0)              # [E]
            new_mean = torch.einsum("e,hea->ha", score, elite_actions)
            var = torch.einsum("e,hea->ha", score, (elite_actions - new_mean.unsqueeze(1)) ** 2)
            std = torch.maximum(var.sqrt(), std_bound).clamp_(max=cfg.max_std)
            mean = cfg.momentum * mean + (1 - cfg.momentum) * new_mean
        action = elite_actions[0, torch.multinomial(score, 1)].squeeze(0)  # sampled by score
        if not eval_mode:
            action = action + std[0] * torch.randn(adim, device=dev)
        return action.clamp(-cfg.plan_max_action, cfg.plan_max_action), mean
