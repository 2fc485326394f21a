"""The planning ELU kernel: torch's ELU to 1 ulp (bf16: bitwise), special values kept, F.elu where it
cannot run, and planning through it computing the reference functions."""

import shutil
import warnings

import pytest
import torch
import torch.nn.functional as F

from modem_ros.agent import fast_elu
from modem_ros.agent.networks import PlanningHeads, WorldModel

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler on this host")
SPECIALS = [0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1e-40, -1e-40, -1e-8, -87.5, -88.7, -103.0]


def _inputs() -> torch.Tensor:
    return torch.cat([torch.linspace(-100, 5, 400_001), torch.tensor(SPECIALS)])


@needs_cc
def test_the_kernel_builds_here():
    assert fast_elu.available()


@needs_cc
def test_fp32_within_one_ulp_of_float64_elu_and_special_values_kept():
    x = _inputs()
    ref = F.elu(x.double()).float()
    out = fast_elu.elu_(x.clone())
    finite = ref.isfinite()
    ulp = torch.nextafter(ref.abs(), torch.tensor(float("inf"))) - ref.abs()
    # exp(x) - 1 would be off by ~1e8 ulps at x = -1e-8: the expm1 must be computed, not exp
    assert ((out - ref).abs()[finite] / ulp[finite]).max() <= 1.0
    tail = out[-len(SPECIALS):]
    assert torch.equal(tail[:4], torch.tensor([0.0, -0.0, float("inf"), -1.0]))
    assert torch.signbit(tail[1]) and tail[4].isnan()
    assert tail[5] == 1e-40 and tail[7] == pytest.approx(-1e-8, rel=1e-6)


@needs_cc
def test_bf16_bitwise_equal_to_torch():
    x = _inputs().bfloat16()
    out = fast_elu.elu_(x.clone())
    ref = F.elu(x)
    both_nan = out.isnan() & ref.isnan()
    assert torch.equal(out[~both_nan].view(torch.int16), ref[~both_nan].view(torch.int16))


def test_falls_back_to_torch_where_the_kernel_does_not_apply():
    x = torch.randn(64, 32)
    strided = x.clone().t()  # not contiguous
    assert torch.equal(fast_elu.elu_(strided), F.elu(x.t()))
    leaf = x.clone().requires_grad_()
    fast_elu.elu_(leaf * 1.0).sum().backward()  # inside autograd: torch's ELU, so the gradient is right
    torch.testing.assert_close(leaf.grad, torch.where(x > 0, torch.ones_like(x), x.exp()))
    half = x.double()
    torch.testing.assert_close(fast_elu.elu_(half.clone()), F.elu(half))


def test_no_compiler_means_torch_elu_and_one_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setattr(fast_elu, "_state", {"lib": None, "tried": False, "enabled": True})
    monkeypatch.setattr(fast_elu, "CACHE", tmp_path / "cache")
    x = torch.randn(100)
    with pytest.warns(RuntimeWarning, match="fast ELU kernel unavailable"):
        out = fast_elu.elu_(x.clone())
    assert torch.equal(out, F.elu(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, not per call
        fast_elu.elu_(x.clone())


@needs_cc
def test_a_build_is_cached_per_cpu_and_reused(tmp_path, monkeypatch):
    monkeypatch.setattr(fast_elu, "CACHE", tmp_path)
    first = fast_elu._build(tmp_path)
    assert first.exists() and first.parent == tmp_path
    stamp = first.stat().st_mtime_ns
    assert fast_elu._build(tmp_path) == first and first.stat().st_mtime_ns == stamp
    monkeypatch.setattr(fast_elu, "_cpu_key", lambda: "flags : another isa")
    assert fast_elu._build(tmp_path) != first


@needs_cc
def test_planning_heads_on_the_kernel_match_torch_elu(cfg):
    model = WorldModel(cfg)
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    heads = PlanningHeads(model)
    za = torch.cat([torch.randn(37, cfg.latent_dim) * 3, torch.rand(37, cfg.action_dim) * 2 - 1], -1)
    with torch.no_grad():
        with fast_elu.fast_elu_kernel(False):
            ref = [*heads.next(za), heads.q_min(za), heads.pi(za[:, :cfg.latent_dim], 0.0)]
        fast = [*heads.next(za), heads.q_min(za), heads.pi(za[:, :cfg.latent_dim], 0.0)]
    for a, b in zip(fast, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
