"""Vid2Act (paper 003, Pan et al. 2023) on our latent model: transfer from other tasks' recorded episodes.

Teachers are world models (+ policies) pretrained one per source dataset (`pretrain_teacher`, run by
`modem-ros pretrain-sources`) and frozen. While the target agent learns, for every snippet step t:

* each teacher k encodes the target's real observation o_t and predicts the next latent
  y_k = d_k(h_k(o_t), a_t); a learned linear map P brings it into the student's latent space — one map
  shared by all teachers, as in the authors' code (`vid2act_projection=shared`, the default);
* an importance head (one hidden layer) scores each teacher's own latent against the student's predicted
  next latent z_{t+1}: w_{k,t} = softmax_k(imp([y_k, z_{t+1}])), time-varying, per sample. One shared map
  cannot fit every teacher, so the teachers whose latents the target's dynamics agree with keep a lower
  error and the weight. (`per_teacher`: a map P_k per teacher and the head on P_k(y_k) — each map learns
  to fit the student, the head's inputs become alike and the weights flatten to 1/K; measured on
  franka-pick-place, BENCHMARKS.md);
* domain-selective distillation: + coef * sum_k mean(max(floor, w_k) * |z_{t+1} - P(y_k)|^2) (P_k with
  per-teacher maps), which trains the student's dynamics toward the relevant teachers and the weights
  toward the teachers whose dynamics match the target's data (the weight floor keeps every teacher in
  play, as the authors' code does with m = 0.1);
* action replay: the teachers' policies (trained by behaviour cloning on their sources' actions) propose
  actions for o_t; their w-weighted mean guides the target policy with + replay_coef(step) * |pi(z_t) - g_t|^2,
  the coefficient fading linearly to 0 over vid2act_replay_steps agent steps as the target's own data
  grows. (The paper generates source-like actions with a weight-conditioned VAE; the teachers' BC policies
  play that role here, on the same weights.)

Source and target must share image shapes (img_size, frame_stack). State and action sizes may differ
only through an explicit map given when the teacher is made (`pretrain-sources --state-map/--action-map`,
`SpaceMap`): source dimension i is the target's dimension map[i]; the teacher reads the target's state
and actions through it, and its proposed actions guide only the target dimensions some teacher maps.
Without a map, a teacher of another shape is refused naming the key and both sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from modem_ros.agent import schedules
from modem_ros.agent.extensions import Extension, UpdateContext
from modem_ros.agent.networks import WorldModel
from modem_ros.config import ModemConfig

SHAPE_KEYS = ("img_size", "frame_stack", "state_dim", "action_dim")
MAPPABLE = {"state_dim": "state", "action_dim": "action"}  # shape key -> SpaceMap field that bridges it


@dataclass(frozen=True)
class SpaceMap:
    """How a teacher of another task reads the target's vectors: source state (action) dimension i is the
    target's dimension state[i] (action[i]). None: the same space, dimension for dimension."""

    state: tuple[int, ...] | None = None
    action: tuple[int, ...] | None = None

    @classmethod
    def parse(cls, state: str | None, action: str | None) -> SpaceMap:
        """From the CLI's comma-separated index lists ('' or None: no map)."""
        def indices(text: str | None, what: str) -> tuple[int, ...] | None:
            if not text:
                return None
            try:
                return tuple(int(x) for x in text.split(","))
            except ValueError:
                raise ValueError(f"--{what}-map {text!r}: give comma-separated target dimensions, e.g. 0,1,2") from None
        return cls(indices(state, "state"), indices(action, "action"))

    def to_dict(self) -> dict[str, list[int] | None]:
        return {"state_map": None if self.state is None else list(self.state),
                "action_map": None if self.action is None else list(self.action)}

    @classmethod
    def from_dict(cls, d: dict) -> SpaceMap:
        return cls(*(None if d.get(k) is None else tuple(int(x) for x in d[k]) for k in ("state_map", "action_map")))


def shape_mismatch(source: ModemConfig, target: ModemConfig, space_map: SpaceMap = SpaceMap()) -> dict[str, tuple]:
    """{key: (source, target)} of the observation/action sizes that differ and no map bridges (empty: a
    teacher can serve). A map is checked here too: one target dimension per source dimension, each in the
    target's range, none twice; a bad map is reported under its key with what is wrong."""
    out: dict[str, tuple] = {}
    for key in SHAPE_KEYS:
        src, tgt = getattr(source, key), getattr(target, key)
        index = getattr(space_map, MAPPABLE[key]) if key in MAPPABLE else None
        if index is None:
            if src != tgt:
                out[key] = (src, tgt)
        elif len(index) != src or len(set(index)) != len(index) or not all(0 <= i < tgt for i in index):
            out[key] = (src, tgt, f"{MAPPABLE[key]} map {list(index)}: needs {src} distinct target dimensions "
                                  f"in 0..{tgt - 1}")
    return out


class TeacherError(ValueError):
    """A teacher file that cannot serve this target (unreadable, not a teacher, another shape)."""


@dataclass
class Teacher:
    """One frozen source world model (encoder, dynamics, policy) and the source it was trained on."""

    name: str
    model: WorldModel
    space_map: SpaceMap = SpaceMap()

    @property
    def latent_dim(self) -> int:
        return self.model.fusion[-1].out_features

    def source_state(self, state: torch.Tensor) -> torch.Tensor:
        return state if self.space_map.state is None else state[..., list(self.space_map.state)]

    def source_action(self, action: torch.Tensor) -> torch.Tensor:
        return action if self.space_map.action is None else action[..., list(self.space_map.action)]

    def target_action(self, action: torch.Tensor, action_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A source action [N, a] in the target's space [N, A] (unmapped dimensions 0) and which target
        dimensions it speaks for [A] (1 mapped, 0 not)."""
        if self.space_map.action is None:
            return action, torch.ones(action_dim, device=action.device)
        out = action.new_zeros(*action.shape[:-1], action_dim)
        out[..., list(self.space_map.action)] = action
        cover = torch.zeros(action_dim, device=action.device)
        cover[list(self.space_map.action)] = 1.0
        return out, cover

    @classmethod
    def load(cls, path: str | Path, target: ModemConfig, device: torch.device) -> Teacher:
        path = Path(path)
        try:
            state = torch.load(path, map_location=device, weights_only=True)
            cfg = ModemConfig(**state["config"])
        except Exception as err:  # noqa: BLE001 - any unreadable file is the same answer
            raise TeacherError(f"vid2act teacher {path}: not a readable teacher checkpoint ({err})") from err
        if "source" not in state:
            raise TeacherError(f"vid2act teacher {path}: no 'source' entry; make teachers with "
                               "`modem-ros pretrain-sources`")
        space_map = SpaceMap.from_dict(state)
        diff = shape_mismatch(cfg, target, space_map)
        if diff:
            raise TeacherError(f"vid2act teacher {path} (source {state['source']}): (teacher, target) differ in "
                               f"{diff}; sources share the target's image shapes, and its state and action sizes "
                               "unless the teacher was made with --state-map/--action-map")
        model = WorldModel(cfg).to(device)
        model.load_state_dict(state["model"])
        return cls(name=str(state["source"]), model=model.requires_grad_(False).eval(), space_map=space_map)


class Vid2Act(Extension, nn.Module):
    """The learned part of the transfer (projections and importance head) with its own optimizer; the
    teachers stay frozen. An update extension (extensions.py): loss() is distill_loss(), step() follows
    the backward pass, anchor() is guidance() for the policy update; the TD targets, the critic's latent
    and planning stay the reference's (Extension's defaults)."""

    def __init__(self, cfg: ModemConfig, teachers: list[Teacher], device: torch.device):
        super().__init__()
        if not teachers:
            raise ValueError("Vid2Act needs at least one teacher")
        self.cfg, self.teachers = cfg, teachers
        self.shared = cfg.vid2act_projection == "shared"
        if self.shared:
            dims = {t.name: t.latent_dim for t in teachers}
            if len(set(dims.values())) > 1:
                raise TeacherError(f"vid2act_projection=shared maps every teacher with one map: their latent "
                                   f"sizes differ {dims}; make the teachers with one preset or use per_teacher")
            self.distiller = nn.Linear(teachers[0].latent_dim, cfg.latent_dim)
            head_in = teachers[0].latent_dim + cfg.latent_dim  # the teacher's own latent, the student's
        else:
            self.project = nn.ModuleList(nn.Linear(t.latent_dim, cfg.latent_dim) for t in teachers)
            head_in = 2 * cfg.latent_dim  # the mapped prediction, the student's
        # The authors' head is one linear layer on [teacher, student]; under the softmax over teachers the
        # student's half cancels, leaving a linear score of the teacher feature alone, which cannot tell
        # "close to the student" from "far": one hidden layer can (tests/test_vid2act.py measures it).
        self.importance = nn.Sequential(nn.Linear(head_in, 2 * cfg.latent_dim), nn.ELU(),
                                        nn.Linear(2 * cfg.latent_dim, 1))
        self.to(device)
        self.optim = torch.optim.Adam(self.parameters(), lr=cfg.lr)
        self._guide: torch.Tensor | None = None  # [H, B, A] of the latest distill_loss call
        self._cover: torch.Tensor | None = None  # [A]: target action dimensions some teacher maps (None: all)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.teachers]

    def distill_loss(self, rgb: torch.Tensor, state: torch.Tensor, action: torch.Tensor,
                     predicted: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """rgb/state: the (augmented) observations [H+1, B, ...]; action [H, B, A]; predicted: the student's
        rolled-out latents z_1..z_H [H, B, L] (with gradient). Returns coef * loss and logged terms,
        including each teacher's mean weight (`vid2act_w/<source>`)."""
        horizon, bsz = action.shape[:2]
        obs_rgb, obs_state = rgb[:horizon].flatten(0, 1), state[:horizon].flatten(0, 1)
        with torch.no_grad():
            preds, actions, covers = [], [], []
            for teacher in self.teachers:
                z = teacher.model.encode(obs_rgb, teacher.source_state(obs_state))
                preds.append(teacher.model.dynamics(torch.cat([z, teacher.source_action(action.flatten(0, 1))], -1)))
                proposed, cover = teacher.target_action(torch.tanh(teacher.model.pi_net(z)), action.shape[-1])
                actions.append(proposed)
                covers.append(cover)
        student = predicted.flatten(0, 1)
        if self.shared:
            raw = torch.stack(preds)                                                               # [K, N, T]
            projected = self.distiller(raw)                                                        # [K, N, L]
            scored = raw
        else:
            projected = torch.stack([p(x) for p, x in zip(self.project, preds, strict=True)])
            scored = projected
        logits = self.importance(torch.cat([scored, student.unsqueeze(0).expand(len(preds), -1, -1)], -1))
        weights = torch.softmax(logits.squeeze(-1), dim=0)                                         # [K, N]
        mse = (student.unsqueeze(0) - projected).pow(2).mean(-1)                                   # [K, N]
        loss = (weights.clamp(min=self.cfg.vid2act_weight_floor) * mse).mean(1).sum()
        # per action dimension, the weighted mean over the teachers that map it (all of them when no
        # teacher has a map: the weights sum to one); a dimension no teacher maps gets no guidance
        share = weights.detach().unsqueeze(-1) * torch.stack(covers).unsqueeze(1)                  # [K, N, A]
        guide = (share * torch.stack(actions)).sum(0) / share.sum(0).clamp(min=1e-8)
        self._guide = guide.view(horizon, bsz, -1)
        cover = (torch.stack(covers).sum(0) > 0).float()
        self._cover = None if bool(cover.all()) else cover
        w = weights.detach()
        terms = {"vid2act_distill_loss": loss.detach()}
        for name, mean in zip(self.names, w.mean(1), strict=True):
            terms[f"vid2act_w/{name}"] = mean
        return self.cfg.vid2act_distill_coef * loss, terms

    def loss(self, ctx: UpdateContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.distill_loss(ctx.rgb, ctx.state, ctx.action, ctx.predicted)

    def anchor(self, step: int) -> tuple | None:
        guide, coef = self.guidance(step)
        if guide is None:
            return None
        return (guide, coef) if self._cover is None else (guide, coef, self._cover)

    def step(self) -> None:
        """After the model loss's backward pass: clip and step the projections and importance head."""
        nn.utils.clip_grad_norm_(self.parameters(), self.cfg.grad_clip_norm)
        self.optim.step()
        self.optim.zero_grad(set_to_none=True)

    def guidance(self, step: int) -> tuple[torch.Tensor | None, float]:
        """The weighted teachers' actions for the last batch [H, B, A] and the replay coefficient at agent
        step `step` (None, 0 when action replay is off or has faded)."""
        coef = schedules.linear(self.cfg.vid2act_replay_coef, 0.0, self.cfg.vid2act_replay_steps, step)
        return (self._guide, coef) if coef > 0 and self._guide is not None else (None, 0.0)

    def extra_state(self) -> dict:
        return {"vid2act": self.state_dict(), "vid2act_optim": self.optim.state_dict(), "vid2act_sources": self.names}

    def load_extra_state(self, state: dict) -> None:
        if "vid2act" not in state:
            return
        if state.get("vid2act_sources") != self.names:
            raise ValueError(f"checkpoint's vid2act sources {state.get('vid2act_sources')} are not this run's "
                             f"{self.names}")
        self.load_state_dict(state["vid2act"])
        self.optim.load_state_dict(state["vid2act_optim"])


def load_teachers(cfg: ModemConfig, device: torch.device) -> list[Teacher]:
    """The teachers named by cfg.vid2act_teachers (comma-separated files)."""
    return [Teacher.load(p.strip(), cfg, device) for p in cfg.vid2act_teachers.split(",") if p.strip()]


def pretrain_teacher(agent, buffer, updates: int, out: Path, source: str, log=print,
                     checkpoint_every: int = 500, space_map: SpaceMap = SpaceMap()) -> Path:
    """World model, reward, critic and policy of one source, offline on its episodes (`buffer`), plus
    behaviour cloning of its actions each update (the policy action replay proposes). Resumable: `out`
    is rewritten every `checkpoint_every` updates with the count done; a rerun continues from it.
    `space_map` (the source's dimensions in the target's state/action) is saved with the teacher."""
    done = 0
    if out.exists():
        state = agent.load(out)
        if state.get("source") != source:
            raise TeacherError(f"{out} is the teacher of {state.get('source')!r}, not {source!r}")
        if SpaceMap.from_dict(state) != space_map:
            raise TeacherError(f"{out} was made with {SpaceMap.from_dict(state)}, not {space_map}")
        done = int(state.get("teacher_updates", 0))
        if done >= updates:
            log(f"teacher {source}: {out} already has {done} updates")
            return out
        log(f"teacher {source}: resuming at update {done} of {updates}")
    report = max(1, updates // 10)
    for i in range(done, updates):
        batch, _ = buffer.sample(agent.cfg.batch_size)
        metrics = agent.update(batch, i)
        bc = agent.bc_update(batch)
        if (i + 1) % report == 0 or i + 1 == updates:
            log(f"teacher {source}: update {i + 1}/{updates} total_loss {float(metrics['total_loss']):.4f} "
                f"bc_loss {float(bc['bc_loss']):.4f}")
        if (i + 1) % checkpoint_every == 0 or i + 1 == updates:
            agent.save(out, extra={"source": source, "teacher_updates": i + 1, **space_map.to_dict()})
    return out

