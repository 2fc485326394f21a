"""How a method variant joins the agent's update without a branch inside ModemAgent (DESIGN.md 2b).

An extension is a module beside the agent (Vid2Act's transfer, MOTO's ensemble and value expansion). In
every update the agent hands each one an UpdateContext after computing the reference loss, adds the
extension's loss, steps the extension's own parameters after the backward pass, and lets it add an
anchor (actions the policy is pulled toward); before, it may change the TD targets' bootstrap and the
latent the TD loss's Q heads see; when acting, each may wrap the heads the planner imagines with. Its
state rides in the agent's checkpoint. `Extension` is the do-nothing base: a variant overrides its hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from modem_ros.agent.planner import LatentModel
from modem_ros.config import ModemConfig


@dataclass(frozen=True)
class UpdateContext:
    """What one update's model loss computed. H = the snippet horizon, B = the batch."""

    rgb: torch.Tensor            # augmented observations [H+1, B, C, H, W] uint8
    state: torch.Tensor          # [H+1, B, S]
    action: torch.Tensor         # [H, B, A]
    reward: torch.Tensor         # [H, B, 1]
    td_target: torch.Tensor      # the reference's TD targets of the twin Q [H, B, 1]
    real_latents: torch.Tensor   # the online encoder's z_0..z_H of the real observations [H+1, B, L], no gradient
    target_latents: torch.Tensor  # the target encoder's z_1..z_H [H, B, L] (the consistency targets)
    predicted: torch.Tensor      # the world model's rolled-out z_1..z_H [H, B, L], with gradient


class UpdateExtension(Protocol):
    def loss(self, ctx: UpdateContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss at its configured weight, logged terms); added to the model loss before backward."""

    def step(self) -> None:
        """After the backward pass: clip and step the extension's own parameters."""

    def bootstrap(self, next_z: torch.Tensor) -> torch.Tensor | None:
        """The values [N, 1] the TD targets bootstrap from at the real next latents next_z [N, L], or None
        (the reference's min Q_target(z', pi(z')))."""

    def critic_latent(self, z: torch.Tensor) -> torch.Tensor:
        """The latent [B, L] the TD loss's Q heads see at one snippet step: z as it is, or changed (a
        detached z trains the Q heads without the representation)."""

    def anchor(self, step: int) -> tuple | None:
        """Actions [H, B, A] the policy is pulled toward at agent step `step`, with their weight, and
        optionally a [A] mask of the action dimensions the pull applies to; or None."""

    def wrap_planning(self, heads: LatentModel) -> LatentModel:
        """The heads planning imagines with (planner.LatentModel), changed or as they are."""

    def extra_state(self) -> dict:
        """Entries for the agent's checkpoint (those a planner needs: also listed in weights.planner_state)."""

    def load_extra_state(self, state: dict) -> None:
        """Restore from a checkpoint's entries (a checkpoint without them leaves the extension fresh)."""


class Extension:
    """Every hook as the reference: no loss, nothing to step, the reference's bootstrap and critic latent,
    no anchor, planning's heads unchanged, nothing in the checkpoint."""

    def loss(self, ctx: UpdateContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return ctx.reward.new_zeros(()), {}

    def step(self) -> None:
        return None

    def bootstrap(self, next_z: torch.Tensor) -> torch.Tensor | None:
        return None

    def critic_latent(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def anchor(self, step: int) -> tuple | None:
        return None

    def wrap_planning(self, heads: LatentModel) -> LatentModel:
        return heads

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        return None


class EnsembleExtension(Extension, nn.Module):
    """What MOTO's and the conservative Q ensemble share: their own module (`self.ensemble`) and Adam,
    stepped after the agent's backward pass and saved under `state_key` in the agent's checkpoint.
    Subclasses write loss() and, where they change planning, wrap_planning()."""

    state_key = ""

    def __init__(self, cfg: ModemConfig, ensemble: nn.Module, device: torch.device):
        super().__init__()
        self.cfg = cfg
        self.ensemble = ensemble.to(device)
        self.optim = torch.optim.Adam(self.ensemble.parameters(), lr=cfg.lr)

    def step(self) -> None:
        nn.utils.clip_grad_norm_(self.ensemble.parameters(), self.cfg.grad_clip_norm)
        self.optim.step()
        self.optim.zero_grad(set_to_none=True)

    def extra_state(self) -> dict:
        return {self.state_key: self.ensemble.state_dict(), f"{self.state_key}_optim": self.optim.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        if self.state_key not in state:
            return
        self.ensemble.load_state_dict(state[self.state_key])
        if f"{self.state_key}_optim" in state:  # weights sent to a planner carry the ensemble, not its optimizer
            self.optim.load_state_dict(state[f"{self.state_key}_optim"])
