"""MOTO (paper 004, Rafailov et al.) on our latent model: uncertainty-aware imagination and model-based
value expansion. Its third part, behaviour regularisation, is behaviour_regularisation() in modem.py.

* Ensemble (`moto_ensemble` = K >= 2): K extra latent dynamics + reward heads, trained single-step on the
  real encoded latents toward the target encoder's next latents and the real rewards (the reference
  model's own consistency and reward targets), on detached inputs, with their own optimizer. Members
  differ by their initialisation. Their disagreement u(z, a) is the std over members of the predicted
  next latent, averaged over latent dimensions (epistemic spread of the dynamics, as MOPO and MOTO use
  it); an imagined reward is penalised to r - lambda * u (`moto_penalty`).
* Where the penalty acts: in planning (PenalisedHeads: the planner's own model steps and rewards, minus
  lambda * u of the ensemble, so plans avoid where the models disagree) and in value expansion.
* Value expansion (`moto_mve_horizon` = M > 0): from every real latent z_0..z_H of the batch and every
  latent the world model imagined z'_1..z'_H (or one kind only: `moto_mve_starts`), roll M steps with the
  noisy policy through a random member per sample and step; the critic regresses Q1, Q2(z_k, a_k) on the
  penalised M-step return y_k = sum_{j>=k} gamma^(j-k) r~_j + gamma^(M-k) min Q_target(z_M, pi(z_M)), for every k, at
  `moto_mve_coef` times value_coef's scale, beside the reference's TD loss.
* `moto_mve_td` (an option, off in MOTO's default here): the TD loss's targets bootstrap from the same
  M-step expansion at the real next latent, r_t + gamma * y_0(z_{t+1}), so both critic losses pull Q
  toward the same horizon's values (they disagree while Q is far from the returns). Measured on
  mw-hammer it halves the online encoder's latent drift, not more; `moto_critic_detached`
  (DetachedCritic: the TD loss then trains the Q heads only) removes it (BENCHMARKS.md, `modem+moto`).
  Its rollouts from z_1..z_H are the ones value expansion's real starts would roll again: rolled once.

Cost: the ensemble multiplies planning's dynamics evaluations by 1 + K; value expansion adds
M * (2H + 1) * B policy, member and critic evaluations per update (also with moto_mve_td).
"""

from __future__ import annotations

import torch
from torch import nn

from modem_ros.agent.extensions import EnsembleExtension, Extension, UpdateContext
from modem_ros.agent.networks import WorldModel, mlp, orthogonal_init
from modem_ros.agent.planner import LatentModel
from modem_ros.config import ModemConfig


class LatentEnsemble(nn.Module):
    """K dynamics + reward heads of the world model's shape: za [N, L + A] -> ([K, N, L], [K, N, 1])."""

    def __init__(self, cfg: ModemConfig):
        super().__init__()
        za = cfg.latent_dim + cfg.action_dim
        self.dynamics = nn.ModuleList(mlp(za, cfg.mlp_dim, cfg.latent_dim) for _ in range(cfg.moto_ensemble))
        self.reward = nn.ModuleList(mlp(za, cfg.mlp_dim, 1) for _ in range(cfg.moto_ensemble))
        self.apply(orthogonal_init)
        for head in self.reward:  # as the reference's reward head: predictions start at zero
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)

    def __len__(self) -> int:
        return len(self.dynamics)

    def next_latents(self, za: torch.Tensor) -> torch.Tensor:
        return torch.stack([d(za) for d in self.dynamics])

    def forward(self, za: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.next_latents(za), torch.stack([r(za) for r in self.reward])


def disagreement(next_latents: torch.Tensor) -> torch.Tensor:
    """[K, N, L] members' predictions -> [N, 1]: std over members, mean over latent dimensions."""
    return next_latents.std(0).mean(-1, keepdim=True)


@torch.no_grad()
def value_expansion_targets(ensemble, model: WorldModel, target: WorldModel, starts: torch.Tensor, horizon: int,
                            discount: float, penalty: float, min_std: float,
                            generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
    """Roll `horizon` steps from `starts` [N, L]: a_k = pi(z_k) with min_std noise, z_{k+1} and r_k from a
    random member per sample, r~_k = r_k - penalty * disagreement. Returns (latents [M, N, L], actions
    [M, N, A], targets [M, N, 1]) with targets the penalised discounted returns bootstrapped by
    min(Q1, Q2) of the target network at the last latent."""
    z, latents, actions, rewards = starts, [], [], []
    rows = torch.arange(starts.shape[0], device=starts.device)
    for _ in range(horizon):
        a = model.pi(z, min_std)
        next_all, reward_all = ensemble(torch.cat([z, a], dim=-1))
        pick = torch.randint(len(ensemble), (starts.shape[0],), device=starts.device, generator=generator)
        latents.append(z)
        actions.append(a)
        rewards.append(reward_all[pick, rows] - penalty * disagreement(next_all))
        z = next_all[pick, rows]
    value = torch.min(*target.q(z, model.pi(z, min_std)))
    targets = []
    for reward in reversed(rewards):
        value = reward + discount * value
        targets.append(value)
    return torch.stack(latents), torch.stack(actions), torch.stack(targets[::-1])


class PenalisedHeads:
    """Planning's heads with MOTO's penalty: the inner heads step as before, their reward minus
    penalty * the ensemble's disagreement at the same (z, a)."""

    def __init__(self, inner: LatentModel, ensemble: LatentEnsemble, penalty: float):
        self.inner, self.ensemble, self.penalty = inner, ensemble, penalty

    def next(self, za: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, reward = self.inner.next(za)
        return z, reward - self.penalty * disagreement(self.ensemble.next_latents(za))

    def pi(self, z: torch.Tensor, std: float) -> torch.Tensor:
        return self.inner.pi(z, std)

    def q_min(self, za: torch.Tensor) -> torch.Tensor:
        return self.inner.q_min(za)


class Moto(EnsembleExtension):
    """The ensemble and value expansion as an update extension (extensions.py): loss() trains the
    members and adds the value-expansion critic loss; wrap_planning() adds the penalty to planning."""

    state_key = "moto"

    def __init__(self, cfg: ModemConfig, model: WorldModel, target: WorldModel, device: torch.device):
        super().__init__(cfg, LatentEnsemble(cfg), device)
        self._nets = (model, target)  # a tuple, so the agent's networks are not this module's parameters
        self._from_next: tuple[torch.Tensor, tuple[torch.Tensor, ...]] | None = None  # bootstrap()'s rollouts

    def loss(self, ctx: UpdateContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg, model = self.cfg, self._nets[0]
        za = torch.cat([ctx.real_latents[:-1], ctx.action], dim=-1).flatten(0, 1)
        next_all, reward_all = self.ensemble(za)
        member_loss = (cfg.consistency_coef * (next_all - ctx.target_latents.flatten(0, 1)).pow(2).mean(-1).mean()
                       + cfg.reward_coef * (reward_all - ctx.reward.flatten(0, 1)).pow(2).mean())
        terms = {"moto_member_loss": member_loss.detach(), "moto_disagreement": disagreement(next_all.detach()).mean()}
        loss = member_loss
        if cfg.moto_mve_horizon > 0:
            latents, actions, targets = self._expansions(ctx)
            q1, q2 = model.q(latents.flatten(0, 1), actions.flatten(0, 1))
            y = targets.flatten(0, 1)
            mve = ((q1 - y).pow(2) + (q2 - y).pow(2)).mean()
            loss = loss + cfg.moto_mve_coef * cfg.value_coef * mve
            terms["moto_mve_loss"] = mve.detach()
            terms["moto_mve_target"] = y.mean()
        self._from_next = None
        return loss, terms

    def _expansions(self, ctx: UpdateContext) -> tuple[torch.Tensor, ...]:
        """Value expansion's (latents, actions, targets) [M, N, .] from the starts moto_mve_starts names. The
        rollouts bootstrap() made this update from the real next latents z_1..z_H are reused, not rolled
        again (unless the TD targets saw other next latents: model-based augmentation's)."""
        cfg, (model, target) = self.cfg, self._nets
        kinds = cfg.moto_mve_starts.split("+")
        real = ctx.real_latents
        reused = None
        if "real" in kinds and self._from_next is not None:
            starts, reused = self._from_next
            if torch.equal(starts, real[1:].flatten(0, 1)):
                real = real[:1]
            else:
                reused = None
        starts = torch.cat([latents.flatten(0, 1) for name, latents in (("real", real), ("imagined", ctx.predicted))
                            if name in kinds]).detach()
        rolled = value_expansion_targets(self.ensemble, model, target, starts, cfg.moto_mve_horizon, cfg.discount,
                                         cfg.moto_penalty, cfg.min_std)
        if reused is None:
            return rolled
        return tuple(torch.cat([new, old], dim=1) for new, old in zip(rolled, reused, strict=True))

    def bootstrap(self, next_z: torch.Tensor) -> torch.Tensor | None:
        """With moto_mve_td: the M-step penalised imagined return from each real next latent (the first
        value-expansion target of a rollout started there), for the TD targets r + gamma * this. The
        rollouts are kept for loss(), whose real starts include the same latents."""
        cfg, (model, target) = self.cfg, self._nets
        if not cfg.moto_mve_td:
            return None
        rolled = value_expansion_targets(self.ensemble, model, target, next_z, cfg.moto_mve_horizon,
                                         cfg.discount, cfg.moto_penalty, cfg.min_std)
        self._from_next = (next_z, rolled)
        return rolled[2][0]

    def wrap_planning(self, heads: LatentModel) -> LatentModel:
        return PenalisedHeads(heads, self.ensemble, self.cfg.moto_penalty)


class DetachedCritic(Extension):
    """`moto_critic_detached`: the TD loss's Q heads see the latent detached, so the value gradient trains
    the Q heads and never the encoder or the dynamics (MOTO's critic, whose representation its model loss
    alone trains). Measured on mw-hammer: value expansion's latent drift reaches the encoder through the TD
    gradient; detached, the latents hold (BENCHMARKS.md, `modem+moto`)."""

    def critic_latent(self, z: torch.Tensor) -> torch.Tensor:
        return z.detach()
