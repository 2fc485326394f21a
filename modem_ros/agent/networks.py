"""The TD-MPC world model as MoDem uses it: image + state encoders, latent dynamics, reward, twin Q, policy.

Module layout and sizes follow the reference exactly (MODEM.md, "Architecture"), so parameter counts
match it; `modem-ros info` prints them per module.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from modem_ros.agent.fast_elu import elu_
from modem_ros.config import ModemConfig
from modem_ros.runtime import cpuinfo

MODULES = ("encoder", "state_encoder", "fusion", "dynamics", "reward", "pi", "q1", "q2")


def mlp(in_dim: int, hidden: int, out_dim: int, act: type[nn.Module] = nn.ELU) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), act(), nn.Linear(hidden, hidden), act(),
                         nn.Linear(hidden, out_dim))


def q_head(in_dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.Tanh(),
                         nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, 1))


def conv_specs(img_size: int) -> list[tuple[int, int]]:
    """(kernel, stride) of each conv: the six-conv reference encoder at 224 px and above, else the
    TD-MPC four-conv encoder (the six-conv stack leaves no room at 84 px)."""
    if img_size >= 224:
        return [(7, 2), (5, 2), (3, 2), (3, 2), (3, 2), (3, 2)]
    return [(7, 2), (5, 2), (3, 2), (3, 2)]


class ImageEncoder(nn.Module):
    """uint8 frames [B, 3*stack, H, W] -> feature [B, latent]; normalizes to x/255 inside (reference)."""

    def __init__(self, in_channels: int, img_size: int, channels: int, latent_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        c, size = in_channels, img_size
        for kernel, stride in conv_specs(img_size):
            layers += [nn.Conv2d(c, channels, kernel, stride), nn.ReLU(inplace=True)]
            c, size = channels, (size - kernel) // stride + 1
        if size < 1:
            raise ValueError(f"img_size {img_size} is too small for the conv encoder")
        self.convs = nn.Sequential(*layers)
        self.out = nn.Linear(channels * size * size, latent_dim)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        # channels_last: oneDNN/cuDNN convolutions run 1.5-2x faster on NHWC than on NCHW here.
        x = rgb.contiguous(memory_format=torch.channels_last).float().mul_(1 / 255)
        # flatten in NCHW order so the Linear sees the reference's feature layout
        return self.out(self.convs(x).contiguous().flatten(1))


ACTION_EPS = 1e-6  # the reference's truncated normal clamps into [-1 + eps, 1 - eps]


def policy_sample(mu: torch.Tensor, std: float) -> torch.Tensor:
    """The reference's truncated normal around the policy mean mu: noise of `std` clipped at 0.3, the sum
    clamped into the action box with a straight-through gradient; mu itself when std <= 0."""
    if std <= 0:
        return mu
    return clamp_straight_through(mu + (torch.randn_like(mu) * std).clamp_(-0.3, 0.3))


def clamp_straight_through(x: torch.Tensor) -> torch.Tensor:
    """x clamped into (-1, 1) in value, with the gradient of x itself (as if unclamped): at the bound
    a plain clamp would zero the policy's gradient, the reference's TruncatedNormal keeps it."""
    clamped = x.detach().clamp(-1.0 + ACTION_EPS, 1.0 - ACTION_EPS)
    return x + (clamped - x.detach())


def orthogonal_init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        nn.init.orthogonal_(module.weight, nn.init.calculate_gain("relu"))
        nn.init.zeros_(module.bias)


class WorldModel(nn.Module):
    """TOLD: h(obs, state) -> z; d(z, a) -> z'; R(z, a) -> r; Q1, Q2(z, a); pi(z) -> a in [-1, 1]."""

    def __init__(self, cfg: ModemConfig):
        super().__init__()
        za = cfg.latent_dim + cfg.action_dim
        self.encoder = ImageEncoder(3 * cfg.frame_stack, cfg.img_size, cfg.num_channels, cfg.latent_dim)
        self.state_encoder = nn.Sequential(nn.Linear(cfg.state_dim, cfg.enc_dim), nn.ELU(),
                                           nn.Linear(cfg.enc_dim, cfg.latent_dim))
        self.fusion = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.enc_dim), nn.ELU(),
                                    nn.Linear(cfg.enc_dim, cfg.latent_dim))
        self.dynamics = mlp(za, cfg.mlp_dim, cfg.latent_dim)
        self.reward = mlp(za, cfg.mlp_dim, 1)
        self.pi_net = mlp(cfg.latent_dim, cfg.mlp_dim, cfg.action_dim)
        self.q1 = q_head(za, cfg.mlp_dim)
        self.q2 = q_head(za, cfg.mlp_dim)
        self.apply(orthogonal_init)
        for head in (self.reward, self.q1, self.q2):  # reference: these outputs start at zero
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)
        self.encoder.convs.to(memory_format=torch.channels_last)  # after init: orthogonal_ needs NCHW

    def module_dict(self) -> dict[str, nn.Module]:
        return {name: getattr(self, "pi_net" if name == "pi" else name) for name in MODULES}

    def encode(self, rgb: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.fusion(self.encoder(rgb) + self.state_encoder(state))

    def next(self, z: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        za = torch.cat([z, a], dim=-1)
        return self.dynamics(za), self.reward(za)

    def pi(self, z: torch.Tensor, std: float = 0.0) -> torch.Tensor:
        """Policy mean tanh(pi(z)); with std > 0, the reference's truncated normal: noise clipped at
        0.3, the sum clamped into the action box with a straight-through gradient."""
        return policy_sample(torch.tanh(self.pi_net(z)), std)

    def q(self, z: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        za = torch.cat([z, a], dim=-1)
        return self.q1(za), self.q2(za)

    def set_q_grad(self, enabled: bool) -> None:
        for p in list(self.q1.parameters()) + list(self.q2.parameters()):
            p.requires_grad_(enabled)


def parameter_counts(model: WorldModel) -> dict[str, int]:
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in model.module_dict().items()}
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts


def _onednn_linear_available() -> bool:
    """Whether torch's oneDNN fp32 linear runs here and computes x @ w.T. Probed once."""
    try:
        x, w = torch.randn(3, 4), torch.randn(5, 4)
        out = torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
        return torch.backends.mkldnn.is_available() and torch.allclose(out, x @ w.t(), atol=1e-5)
    except (AttributeError, RuntimeError):
        return False


ONEDNN_AVAILABLE = _onednn_linear_available()


# Planning's GEMMs go through oneDNN only where it is the faster kernel, measured per host kind
# (BENCHMARKS.md, scripts/plan_kernels.py): an AMD CPU with AVX-512, where MKL's sgemm falls back to
# AVX2 and oneDNN runs ~2x it (436 vs 200 GFLOP/s on 2 cores). On an AVX2-only AMD host oneDNN is the
# slower one (a Meta-World 224 px plan 232 vs 188 ms), and on an Intel Xeon with AVX-512 MKL has its
# AVX-512 kernels and F.linear wins too (83 vs 92 ms).
ONEDNN_LINEAR = (ONEDNN_AVAILABLE and torch.backends.cpu.get_cpu_capability().startswith("AVX512")
                 and cpuinfo("vendor_id") == "AuthenticAMD")
_kernels = {"onednn": ONEDNN_LINEAR}


@contextlib.contextmanager
def onednn_kernels(enabled: bool):
    """Run planning GEMMs on oneDNN (when available) or through F.linear, whatever this host prefers."""
    previous, _kernels["onednn"] = _kernels["onednn"], enabled and ONEDNN_AVAILABLE
    try:
        yield
    finally:
        _kernels["onednn"] = previous


def portable_kernels():
    """Run planning GEMMs through F.linear: same math, visible to torch's FLOP counter."""
    return onednn_kernels(False)


def fast_linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """layer(x) without autograd, on oneDNN for fp32 CPU tensors (inference only: used by the planner)."""
    if (_kernels["onednn"] and x.device.type == "cpu" and x.dtype == torch.float32
            and not torch.is_grad_enabled() and not torch.compiler.is_compiling()):  # inductor picks its own
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), layer.weight, layer.bias, "none", [], "")
    return F.linear(x, layer.weight, layer.bias)


class PlanningHeads:
    """The dynamics, reward, Q and policy MLPs evaluated for planning: the same functions as
    WorldModel.next / q / pi, with in-place activations, the GEMMs on the fastest fp32 kernel and ELU
    on fast_elu's kernel (torch's expm1 was 20-30% of a CPU plan).

    With `bf16_weights` (a dict the caller keeps, agent.plan_bf16_weights), the wide hidden layers run as
    bf16 GEMMs (oneDNN accumulates in fp32; AMX / AVX512-BF16 CPUs run them 2-3x faster) on weights
    cast once per change of the parameter (its version counter: an optimizer step or a weight load; a
    write through `param.data` is not seen), while every output — latents, rewards, Q values, policy
    actions — comes from an fp32 layer, so values are ranked and summed in fp32."""

    def __init__(self, model: WorldModel, bf16_weights: dict[int, tuple] | None = None):
        self.model = model
        self._bf16 = bf16_weights  # id(param) -> (param, its version when cast, the bf16 copy)

    def _bf16_copy(self, param: torch.Tensor) -> torch.Tensor:
        hit = self._bf16.get(id(param))
        if hit is None or hit[0] is not param or hit[1] != param._version:
            hit = self._bf16[id(param)] = (param, param._version, param.detach().to(torch.bfloat16))
        return hit[2]

    def _hidden(self, x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
        if self._bf16 is None:
            return fast_linear(x, layer)
        return F.linear(x.to(torch.bfloat16), self._bf16_copy(layer.weight), self._bf16_copy(layer.bias))

    def _mlp(self, x: torch.Tensor, net: nn.Sequential) -> torch.Tensor:
        x = elu_(self._hidden(x, net[0]))
        x = elu_(self._hidden(x, net[2]))
        return fast_linear(x.float(), net[4])

    def next(self, za: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._mlp(za, self.model.dynamics), self._mlp(za, self.model.reward)

    @staticmethod
    def q_value(za: torch.Tensor, head: nn.Sequential, hidden=fast_linear) -> torch.Tensor:
        """One Q head of q_head()'s layout (also the conservative ensemble's heads); `hidden` runs its two
        wide layers (fp32 by default), the output layer is fp32 (.float() is free on fp32 tensors)."""
        norm = head[1]
        x = F.layer_norm(hidden(za, head[0]).float(), norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        x = elu_(hidden(x.tanh_(), head[3]))
        return fast_linear(x.float(), head[5])

    def q_min(self, za: torch.Tensor) -> torch.Tensor:
        return torch.min(self.q_value(za, self.model.q1, self._hidden), self.q_value(za, self.model.q2, self._hidden))

    def pi(self, z: torch.Tensor, std: float) -> torch.Tensor:
        mu = torch.tanh_(self._mlp(z, self.model.pi_net))
        if std <= 0:
            return mu
        noisy = mu + (torch.randn_like(mu) * std).clamp_(-0.3, 0.3)
        return noisy.clamp_(-1.0 + ACTION_EPS, 1.0 - ACTION_EPS)  # no gradient here: same values
