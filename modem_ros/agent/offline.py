"""Offline pre-training pieces (paper 002, "Small Dataset, Big Gains"): model-based augmentation of the
critic's targets, and the measure of critic overfitting it is meant to reduce. The phase itself is
Trainer.pretrain_offline; these are the math, apart from any loop."""

from __future__ import annotations

import numpy as np
import torch

from modem_ros.agent.networks import WorldModel


@torch.no_grad()
def augment_next_latents(model: WorldModel, z0: torch.Tensor, next_z: torch.Tensor, action: torch.Tensor,
                         ratio: float) -> torch.Tensor:
    """next_z [H, B, L] with, for a random `ratio` of the B snippets, every step's next latent replaced by
    the world model's one-step prediction d(z_t, a_t) from the real (encoded) latent z_t - single-step,
    as the paper argues, so model error never compounds. z0: the encoded first latent [B, L]."""
    real = torch.cat([z0.unsqueeze(0), next_z[:-1]])            # z_t of the real observations, t = 0..H-1
    predicted = model.dynamics(torch.cat([real, action], dim=-1))
    rows = torch.rand(next_z.shape[1], device=next_z.device) < ratio
    return torch.where(rows.view(1, -1, 1), predicted, next_z)


@torch.no_grad()
def q_vs_return(agent, episodes, discount: float) -> dict[str, float]:
    """Critic overfitting: min(Q1, Q2)(h(o_t), a_t) against the true discounted return-to-go of each
    step of `episodes` (held out from training). Positive bias = overestimation."""
    errors = []
    for episode in episodes:
        arr = episode.arrays()
        returns = np.zeros(len(episode), np.float64)
        running = 0.0
        for t in reversed(range(len(episode))):
            running = arr["reward"][t] + discount * running
            returns[t] = running
        rgb = torch.from_numpy(np.ascontiguousarray(arr["rgb"][:-1])).to(agent.device)
        state = torch.from_numpy(arr["state"][:-1]).to(agent.device)
        action = torch.from_numpy(arr["action"]).to(agent.device)
        q = torch.min(*agent.model.q(agent.model.encode(rgb, state), action)).squeeze(1).cpu().numpy()
        errors.append(q - returns)
    err = np.concatenate(errors)
    return {"q_bias": float(err.mean()), "q_abs_error": float(np.abs(err).mean())}
