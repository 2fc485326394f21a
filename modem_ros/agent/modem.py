"""The MoDem agent: act(obs) / update(batch) / bc_update(batch). No ROS, no environment.

Losses, targets and optimizers follow the reference (MODEM.md, "Learning"); speed comes from batching,
not from changing the math: the 2 x horizon no-grad encoder passes of an update run as two batched
passes, augmentation stays uint8, and nothing is copied to the host inside an update.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from modem_ros.agent import schedules
from modem_ros.agent.augment import random_shift
from modem_ros.agent.conservative import ConservativeQ
from modem_ros.agent.cuda_graph import GraphedPlan
from modem_ros.agent.extensions import UpdateContext, UpdateExtension
from modem_ros.agent.moto import DetachedCritic, Moto
from modem_ros.agent.networks import PlanningHeads, WorldModel, policy_sample
from modem_ros.agent.offline import augment_next_latents
from modem_ros.agent.planner import LatentModel, MPPIPlanner
from modem_ros.config import ModemConfig


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (the message names the path and why); nothing partial is left."""


class ObservationError(ValueError):
    """An observation has the wrong keys, shape, dtype or non-finite values."""


@dataclass
class Batch:
    """Horizon-length snippets, time-major. H = horizon, B = batch size."""

    rgb: torch.Tensor      # [H+1, B, 3*stack, img, img] uint8
    state: torch.Tensor    # [H+1, B, state_dim] float32
    action: torch.Tensor   # [H, B, action_dim] float32
    reward: torch.Tensor   # [H, B, 1] float32
    weights: torch.Tensor  # [B, 1] importance-sampling weights (ones without prioritized replay)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{name}' requested but CUDA is not available")
    return device


def validate_observation(obs: dict[str, Any], cfg: ModemConfig) -> tuple[np.ndarray, np.ndarray]:
    """Return (rgb, state) arrays of one observation or raise ObservationError saying what is wrong."""
    if not isinstance(obs, dict) or "rgb" not in obs or "state" not in obs:
        got = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
        raise ObservationError(f"observation must be a dict with keys 'rgb' and 'state', got {got}")
    rgb, state = np.asarray(obs["rgb"]), np.asarray(obs["state"])
    if rgb.shape != cfg.rgb_shape:
        raise ObservationError(f"observation 'rgb' has shape {rgb.shape}, expected {cfg.rgb_shape} "
                               f"(3 x frame_stack={cfg.frame_stack} channels, img_size={cfg.img_size})")
    if rgb.dtype != np.uint8:
        raise ObservationError(f"observation 'rgb' has dtype {rgb.dtype}, expected uint8")
    if state.shape != (cfg.state_dim,):
        raise ObservationError(f"observation 'state' has shape {state.shape}, expected ({cfg.state_dim},)")
    if not np.all(np.isfinite(state)):
        bad = np.flatnonzero(~np.isfinite(state)).tolist()
        raise ObservationError(f"observation 'state' has non-finite values (NaN/inf) at indices {bad}")
    return rgb, state.astype(np.float32, copy=False)


PI_SATURATED = 0.99  # |tanh| past this: the policy's gradient through tanh is < 2% of its slope at 0


def saturated_share(mean: torch.Tensor) -> torch.Tensor:
    """The share of the policy mean's components past |PI_SATURATED| (logged as `pi_saturation`)."""
    return (mean.detach().abs() > PI_SATURATED).float().mean()


def behaviour_regularisation(cfg: ModemConfig, step: int) -> float:
    """MOTO's policy regularisation toward the data's actions: bc_reg_coef through seeding (and any offline
    phase), annealed linearly to 0 over bc_reg_steps once online learning starts; 0 when off."""
    if cfg.bc_reg_coef <= 0:
        return 0.0
    return schedules.linear(cfg.bc_reg_coef, 0.0, cfg.bc_reg_steps, step - cfg.seed_steps)


class ModemAgent:
    def __init__(self, cfg: ModemConfig, device: str | torch.device | None = None):
        self.cfg = cfg
        self.device = device if isinstance(device, torch.device) else resolve_device(device or cfg.device)
        self.model = WorldModel(cfg).to(self.device)
        self.target = copy.deepcopy(self.model).requires_grad_(False)
        # Each optimizer's parameter list is also what its step clips and logs: the policy's gradients
        # (left over from its own step) must not enter the world model's clip norm.
        pi_params = set(self.model.pi_net.parameters())
        self.model_params = [p for p in self.model.parameters() if p not in pi_params]
        self.pi_params = list(self.model.pi_net.parameters())
        bc_modules = [self.model.encoder, self.model.state_encoder, self.model.fusion, self.model.pi_net]
        self.bc_params = [p for m in bc_modules for p in m.parameters()]
        self.optim = torch.optim.Adam(self.model_params, lr=cfg.lr)
        self.pi_optim = torch.optim.Adam(self.pi_params, lr=cfg.lr)
        self.bc_optim = torch.optim.Adam(self.bc_params, lr=cfg.lr)
        self.planner = MPPIPlanner(cfg)
        self.num_updates = 0
        # The reference sets its planning std bound inside update() at the update's step, so acting
        # uses the schedule at the last update (step 0 before any); saved with the weights.
        self.last_update_step = 0
        self.bc_pi_net: nn.Module | None = None  # the frozen phase-1 policy (agency transfer only)
        # Method variants beside the reference update (extensions.py): MOTO's ensemble and MoDem-V2's Q
        # ensemble are built from the config; Vid2Act's transfer needs teacher files (run.build_trainer).
        self.moto = Moto(cfg, self.model, self.target, self.device) if cfg.moto_ensemble else None
        self.conservative = ConservativeQ(cfg, self.device) if cfg.q_ensemble else None
        detached_critic = DetachedCritic() if cfg.moto_critic_detached else None
        self.extensions: list[UpdateExtension] = [e for e in (self.moto, self.conservative, detached_critic)
                                                  if e is not None]
        self._losses = self._model_losses
        if cfg.compile:  # fuses elementwise epilogues; the first call compiles (tens of seconds)
            self._losses = torch.compile(self._model_losses)
        # Planning is ~630 launch-bound kernels: on a GPU it replays as CUDA graphs, one per
        # (horizon, eval_mode), captured on first use. On CPU the eager oneDNN planner is the fast one.
        self._plan_graphs: dict[tuple[int, bool], GraphedPlan] | None = (
            {} if cfg.cuda_graph and self.device.type == "cuda" else None)
        # amp_bf16 on CPU: planning's hidden GEMMs in bf16 (PlanningHeads), weights cast once per update
        self.plan_bf16_weights: dict[int, tuple] | None = (
            {} if cfg.amp_bf16 and self.device.type == "cpu" else None)

    # ------------------------------------------------------------------ acting
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.amp_bf16)

    def _plan_autocast(self):
        """Planning's precision: autocast on a GPU. On CPU, PlanningHeads runs the wide GEMMs in bf16
        itself and keeps its outputs in fp32, which CPU autocast would cast down."""
        return self._autocast() if self.device.type != "cpu" else contextlib.nullcontext()

    @torch.no_grad()
    def encode_obs(self, obs: dict[str, Any]) -> torch.Tensor:
        with self._autocast():
            return self.model.encode(*self._obs_tensors(obs)).float()

    def _obs_tensors(self, obs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Validated (rgb [1, C, H, W] uint8, state [1, S]) on the agent's device."""
        rgb, state = validate_observation(obs, self.cfg)
        return (torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).unsqueeze(0),
                torch.from_numpy(state).to(self.device).unsqueeze(0))

    @torch.no_grad()
    def act(self, obs: dict[str, Any], step: int = 0, eval_mode: bool = False, t0: bool = False) -> np.ndarray:
        """One action in [-1, 1]^action_dim. `step` is the agent step at which the episode began (the
        reference holds it for a whole episode): before seed_steps (training mode) the noisy BC policy
        acts; afterwards MPPI plans with the horizon of `step` and the std bound of the last update.
        `t0` marks the first step of an episode (no warm start)."""
        planning = step >= self.cfg.seed_steps or eval_mode
        if planning and not eval_mode and self._bc_acts(step):  # agency transfer (MoDem-V2 option)
            with torch.no_grad():
                return self.bc_pi(self.encode_obs(obs), self.cfg.min_std)[0].float().cpu().numpy()
        horizon = schedules.planning_horizon(self.cfg, step)
        bound = schedules.std_bound(self.cfg, self.last_update_step)
        if planning and self._plan_graphs is not None:
            rgb, state = self._obs_tensors(obs)
            mean0 = self.planner.initial_mean(horizon, t0, self.device)
            bound_t = torch.tensor(bound, device=self.device)
            if (horizon, eval_mode) not in self._plan_graphs:
                self._plan_graphs[horizon, eval_mode] = GraphedPlan(
                    lambda *x, eval_mode=eval_mode: self._encode_and_plan(*x, eval_mode=eval_mode),
                    rgb, state, mean0, bound_t)
            action, self.planner.prev_mean = self._plan_graphs[horizon, eval_mode](rgb, state, mean0, bound_t)
        elif planning:
            with self._plan_autocast():
                action = self.planner.plan(self.planning_heads(), self.encode_obs(obs).float(), horizon, bound,
                                           t0=t0, eval_mode=eval_mode)
        elif self.cfg.seeding == "uniform":  # TD-MPC's seeding (validated like any observation)
            self._obs_tensors(obs)
            action = torch.rand(self.cfg.action_dim, device=self.device) * 2 - 1
        else:  # MoDem's BC seeding
            action = self.model.pi(self.encode_obs(obs), self.cfg.seed_std or self.cfg.min_std)[0]
        return action.float().cpu().numpy()

    def _bc_acts(self, step: int) -> bool:
        """Agency transfer: whether the frozen BC policy executes this training step, with probability
        linear(1 -> 0) over agency_transfer_steps after seed_steps (never when the option is off)."""
        steps = self.cfg.agency_transfer_steps
        if steps <= 0 or self.bc_pi_net is None:
            return False
        share = schedules.linear(1.0, 0.0, steps, step - self.cfg.seed_steps)
        return bool(torch.rand(()) < share)

    def freeze_bc_policy(self) -> None:
        """Keep the phase-1 policy (after behaviour cloning) for agency transfer; saved with the weights."""
        self.bc_pi_net = copy.deepcopy(self.model.pi_net).requires_grad_(False)

    def bc_pi(self, z: torch.Tensor, std: float) -> torch.Tensor:
        """The frozen BC policy, with the same truncated noise as the learned policy."""
        saved, self.model.pi_net = self.model.pi_net, self.bc_pi_net
        try:
            return self.model.pi(z, std)
        finally:
            self.model.pi_net = saved

    def _encode_and_plan(self, rgb: torch.Tensor, state: torch.Tensor, mean0: torch.Tensor,
                         bound: torch.Tensor, eval_mode: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Tensors in, (action, final mean) out, no host sync: the function a CUDA graph captures."""
        with self._autocast():
            z = self.model.encode(rgb, state).float()
            return self.planner.plan_from(self.planning_heads(), z, mean0, bound, eval_mode)

    def planning_heads(self) -> LatentModel:
        """What the planner imagines with: the world model's heads, as each extension changes them (MOTO's
        penalty, conservative Q); the reference's heads when there is none."""
        heads: LatentModel = PlanningHeads(self.model, self.plan_bf16_weights)
        for extension in self.extensions:
            heads = extension.wrap_planning(heads)
        return heads

    @torch.no_grad()
    def policy_action(self, obs: dict[str, Any]) -> np.ndarray:
        """The policy mean pi(z), no planning and no noise (for BC evaluation)."""
        return self.model.pi(self.encode_obs(obs))[0].float().cpu().numpy()

    # ---------------------------------------------------------------- learning
    def _model_losses(self, batch: Batch, aug_ratio: float = 0.0) -> tuple[
            torch.Tensor, dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """Weighted model loss, its terms, and (detached latents [H+1, B, latent], priorities [B]).
        `aug_ratio` > 0: model-based augmentation (offline.py) replaces that share of the TD targets'
        next latents by the world model's one-step prediction from the real latent."""
        cfg, model = self.cfg, self.model
        horizon, bsz = batch.action.shape[:2]
        rgb = random_shift(batch.rgb.flatten(0, 1), cfg.pad).view(batch.rgb.shape)
        z = model.encode(rgb[0], batch.state[0])
        with torch.no_grad():  # all next observations: online (TD target) and target (consistency)
            next_rgb, next_state = rgb[1:].flatten(0, 1), batch.state[1:].flatten(0, 1)
            next_z = real_next_z = self._encode_no_grad(model, next_rgb, next_state)
            next_z_target = self._encode_no_grad(self.target, next_rgb, next_state).view(horizon, bsz, -1)
            if aug_ratio > 0:
                next_z = augment_next_latents(model, z.detach(), next_z.view(horizon, bsz, -1), batch.action,
                                              aug_ratio).flatten(0, 1)
            q_next = torch.min(*self.target.q(next_z, model.pi(next_z, cfg.min_std)))
            for extension in self.extensions:  # an option's own bootstrap (MOTO's expanded TD targets)
                if (value := extension.bootstrap(next_z)) is not None:
                    q_next = value
            td_target = batch.reward + cfg.discount * q_next.view(horizon, bsz, 1)
        z0 = z.detach()
        zs, predicted = [z0], []
        consistency = reward_loss = value_loss = priority = torch.zeros(bsz, 1, device=z.device)
        for t in range(horizon):
            z_critic = z
            for extension in self.extensions:  # an option's own critic input (MOTO's detached critic)
                z_critic = extension.critic_latent(z_critic)
            q1, q2 = model.q(z_critic, batch.action[t])
            z, reward_pred = model.next(z, batch.action[t])
            zs.append(z.detach())
            predicted.append(z)
            rho = cfg.rho ** t
            consistency = consistency + rho * (z - next_z_target[t]).pow(2).mean(1, keepdim=True)
            reward_loss = reward_loss + rho * (reward_pred - batch.reward[t]).pow(2)
            value_loss = value_loss + rho * ((q1 - td_target[t]).pow(2) + (q2 - td_target[t]).pow(2))
            priority = priority + rho * ((q1 - td_target[t]).abs() + (q2 - td_target[t]).abs())
        total = (cfg.consistency_coef * consistency.clamp(max=1e4) + cfg.reward_coef * reward_loss.clamp(max=1e4)
                 + cfg.value_coef * value_loss.clamp(max=1e4))
        loss = (total * batch.weights).mean()
        terms = {"consistency_loss": consistency.mean(), "reward_loss": reward_loss.mean(),
                 "value_loss": value_loss.mean(), "total_loss": loss}
        if self.extensions:  # method variants (extensions.py); none in the reference
            ctx = UpdateContext(rgb=rgb, state=batch.state, action=batch.action, reward=batch.reward,
                                td_target=td_target,
                                real_latents=torch.cat([z0.unsqueeze(0), real_next_z.view(horizon, bsz, -1)]),
                                target_latents=next_z_target, predicted=torch.stack(predicted))
            for extension in self.extensions:
                extra, extra_terms = extension.loss(ctx)
                loss = loss + horizon * extra  # update() divides the whole loss by the horizon
                terms.update(extra_terms)
        return loss, terms, (torch.stack(zs), priority.clamp(max=1e4).squeeze(1))

    def _encode_no_grad(self, model: WorldModel, rgb: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        chunk = self.cfg.encoder_chunk or (self.cfg.batch_size if self.device.type == "cpu" else len(rgb))
        return torch.cat([model.encode(r, s) for r, s in zip(rgb.split(chunk), state.split(chunk), strict=True)])

    def update(self, batch: Batch, step: int, aug_ratio: float = 0.0) -> dict[str, torch.Tensor]:
        """One gradient step of world model, reward, critic and policy at agent step `step` (the
        reference's step + i of an update burst: it times the target EMA and the std bound). Returns
        detached tensors (no host sync); `priorities` [B] are the snippets' new replay priorities."""
        horizon = batch.action.shape[0]
        with self._autocast():
            loss, terms, (zs, priorities) = self._losses(batch, aug_ratio)
        self.optim.zero_grad(set_to_none=True)
        (loss / horizon).backward()  # reference: gradient scaled by 1 / horizon
        terms["grad_norm"] = nn.utils.clip_grad_norm_(self.model_params, self.cfg.grad_clip_norm)
        self.optim.step()
        anchors = []  # actions the policy is pulled toward, with their weights (options; none in the reference)
        if bc_coef := behaviour_regularisation(self.cfg, step):
            anchors.append((batch.action, bc_coef))
        for extension in self.extensions:
            extension.step()
            if (anchor := extension.anchor(step)) is not None:
                anchors.append(anchor)
        terms.update(self._update_pi(zs, anchors))
        self.num_updates += 1
        self.last_update_step = step
        if step % self.cfg.update_freq == 0:
            self.sync_target(self.cfg.tau)
        out = {k: v.detach().float() for k, v in terms.items()}
        out["priorities"] = priorities.detach().float()
        return out

    def _update_pi(self, zs: torch.Tensor, anchors: list[tuple] = ()) -> dict[str, torch.Tensor]:
        """Policy loss -sum_t rho^t min(Q1, Q2)(z_t, pi(z_t)) on detached latents; Q is frozen. Each anchor
        (actions [H, B, A], coef[, cover [A]]) adds coef * sum_t rho^t |pi(z_t) - a_t|^2 (over the covered
        action dimensions only): MOTO's pull toward the data's actions, Vid2Act's toward the teachers'.
        Returns pi_loss; pi_grad_norm (the policy's gradient norm
        before clipping); pi_saturation (the share of the policy mean's components past |0.99|: tanh
        saturated, so its gradient ~0); pi_q_grad (the mean over the batch of |dQ/da| at the policy's
        action: how much the critic tells the policy about its action)."""
        cfg = self.cfg
        horizon, batch = zs.shape[:2]
        self.model.set_q_grad(False)
        with self._autocast():
            z = zs.flatten(0, 1)
            mu = torch.tanh(self.model.pi_net(z))
            action = policy_sample(mu, cfg.min_std)
            if action is mu:  # std 0: its own node, so its gradient is the critic's alone (anchors act on mu)
                action = mu.clone()
            action.retain_grad()
            q = torch.min(*self.model.q(z, action)).view(horizon, batch)
            rho = cfg.rho ** torch.arange(horizon, device=zs.device, dtype=torch.float32)
            pi_loss = -(q.float().mean(1) * rho).sum()
            if anchors:
                steps = anchors[0][0].shape[0]
                mean = mu[:steps * batch].view_as(anchors[0][0]).float()
                for actions, coef, *cover in anchors:  # cover: [A] action dimensions the anchor speaks for
                    gap = (mean - actions).pow(2) * (cover[0] if cover else 1.0)
                    pi_loss = pi_loss + coef * (gap.mean((1, 2)) * rho[:steps]).sum()
        self.pi_optim.zero_grad(set_to_none=True)
        pi_loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.pi_params, cfg.grad_clip_norm)
        self.pi_optim.step()
        self.model.set_q_grad(True)
        # d pi_loss / d a_(t,b) = -(rho^t / B) dQ/da: undo the weights to read the critic's own gradient
        dq_da = action.grad.float().view(horizon, batch, -1) * (-batch / rho.view(-1, 1, 1))
        return {"pi_loss": pi_loss.detach(), "pi_grad_norm": grad_norm.detach(),
                "pi_saturation": saturated_share(mu), "pi_q_grad": dq_da.norm(dim=-1).mean()}

    def bc_update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Behaviour cloning: MSE between pi(h(aug(obs), state)) and the demo action (phase 1).
        Returns detached {"bc_loss", "bc_grad_norm"} (the norm of what bc_optim steps, before clipping)."""
        with self._autocast():
            z = self.model.encode(random_shift(batch.rgb[0], self.cfg.pad), batch.state[0])
            loss = (self.model.pi(z).float() - batch.action[0]).pow(2).mean()
        self.bc_optim.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.bc_params, self.cfg.grad_clip_norm)
        self.bc_optim.step()
        return {"bc_loss": loss.detach(), "bc_grad_norm": grad_norm.detach()}

    @torch.no_grad()
    def sync_target(self, tau: float = 1.0) -> None:
        """EMA of the target network toward the online one (tau=1 copies)."""
        torch._foreach_lerp_(list(self.target.parameters()), list(self.model.parameters()), tau)

    # ----------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"config": self.cfg.to_dict(), "num_updates": self.num_updates,
                "last_update_step": self.last_update_step,
                **({"bc_pi": self.bc_pi_net.state_dict()} if self.bc_pi_net is not None else {}),
                **{k: v for extension in self.extensions for k, v in extension.extra_state().items()},
                "model": self.model.state_dict(), "target": self.target.state_dict(),
                "optim": self.optim.state_dict(), "pi_optim": self.pi_optim.state_dict(),
                "bc_optim": self.bc_optim.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ours, theirs = self.cfg.to_dict(), state.get("config", {})
        shape_keys = ("img_size", "frame_stack", "state_dim", "action_dim", "latent_dim", "mlp_dim",
                      "enc_dim", "num_channels")
        diff = {k: (theirs.get(k), ours[k]) for k in shape_keys if theirs.get(k) != ours[k]}
        if diff:
            raise ValueError(f"checkpoint does not fit this agent; (checkpoint, agent) differ in {diff}")
        self.model.load_state_dict(state["model"])
        if "target" in state:  # weights sent to a planner carry no target network (acting needs none)
            self.target.load_state_dict(state["target"])
        for name in ("optim", "pi_optim", "bc_optim"):
            if name in state:
                getattr(self, name).load_state_dict(state[name])
        self.num_updates = int(state.get("num_updates", 0))
        self.last_update_step = int(state.get("last_update_step", 0))
        if "bc_pi" in state:
            self.freeze_bc_policy()
            self.bc_pi_net.load_state_dict(state["bc_pi"])
        for extension in self.extensions:
            extension.load_extra_state(state)

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write atomically (temp file + rename) so a reader never sees a partial checkpoint. A failed
        write (a full disk) removes its temp file, keeps the previous checkpoint and raises
        CheckpointWriteError saying where."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            torch.save({**self.state_dict(), **(extra or {})}, tmp)
            os.replace(tmp, path)
        except (OSError, RuntimeError) as err:  # torch reports ENOSPC as RuntimeError('basic_ios::clear')
            tmp.unlink(missing_ok=True)
            free = shutil.disk_usage(path.parent).free
            full = getattr(err, "errno", None) == errno.ENOSPC or free < 256 * 2**20
            reason = f"no space left on {path.parent} ({free // 2**20} MiB free)" if full else str(err)
            raise CheckpointWriteError(f"checkpoint {path} not written: {reason}; the previous one is kept") from err
        return path

    def load(self, path: str | Path) -> dict[str, Any]:
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.load_state_dict(state)
        return state
