from __future__ import annotations

import pytest
import torch

from modem_ros.agent.networks import (
    ONEDNN_AVAILABLE,
    PlanningHeads,
    WorldModel,
    conv_specs,
    onednn_kernels,
    parameter_counts,
)
from modem_ros.config import load_config

REFERENCE_MW_224 = {"encoder": 78_514, "state_encoder": 15_154, "fusion": 25_906, "dynamics": 316_466,
                    "reward": 291_329, "pi": 290_820, "q1": 292_353, "q2": 292_353, "total": 1_602_895}


def test_metaworld_224_matches_reference_parameter_count():
    assert parameter_counts(WorldModel(load_config("mw-assembly"))) == REFERENCE_MW_224


def test_84px_uses_the_four_conv_encoder():
    cfg = load_config("mw-assembly", {"img_size": 84})
    assert conv_specs(84) == [(7, 2), (5, 2), (3, 2), (3, 2)]
    model = WorldModel(cfg)
    assert model.encoder.out.in_features == 32 * 3 * 3
    counts = parameter_counts(model)
    assert counts["encoder"] == 68_018 and counts["dynamics"] == REFERENCE_MW_224["dynamics"]


def test_output_shapes_and_ranges(cfg):
    model = WorldModel(cfg)
    b = 5
    rgb = torch.randint(0, 256, (b, *cfg.rgb_shape), dtype=torch.uint8)
    z = model.encode(rgb, torch.randn(b, cfg.state_dim))
    assert z.shape == (b, cfg.latent_dim)
    a = model.pi(z, std=0.5)
    assert a.shape == (b, cfg.action_dim) and a.abs().max() <= 1
    z2, r = model.next(z, a)
    q1, q2 = model.q(z, a)
    assert z2.shape == z.shape and r.shape == q1.shape == q2.shape == (b, 1)


def test_reward_and_q_heads_start_at_zero(cfg):
    model = WorldModel(cfg)
    z, a = torch.randn(4, cfg.latent_dim), torch.rand(4, cfg.action_dim)
    assert torch.all(model.next(z, a)[1] == 0) and torch.all(model.q(z, a)[0] == 0)


def test_bf16_planning_heads_keep_fp32_outputs_and_recast_changed_weights(cfg):
    """amp_bf16's CPU planning: the wide layers in bf16, every output fp32 and within bf16 rounding of the
    fp32 heads; after an optimizer step changes the weights in place, the cached bf16 copies follow."""
    model = WorldModel(cfg)
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    z, a = torch.randn(37, cfg.latent_dim), torch.rand(37, cfg.action_dim) * 2 - 1
    za = torch.cat([z, a], -1)
    cache: dict = {}
    with torch.no_grad():
        fp32, bf16 = PlanningHeads(model), PlanningHeads(model, cache)
        outputs = [(bf16.next(za)[0], fp32.next(za)[0]), (bf16.next(za)[1], fp32.next(za)[1]),
                   (bf16.q_min(za), fp32.q_min(za)), (bf16.pi(z, 0.0), fp32.pi(z, 0.0))]
    for low, ref in outputs:
        assert low.dtype == torch.float32
        torch.testing.assert_close(low, ref, rtol=0.05, atol=0.02)
        assert not torch.equal(low, ref)  # the bf16 GEMMs did run
    optim = torch.optim.Adam(model.parameters(), lr=0.05)
    model.next(z, a)[1].sum().backward()
    optim.step()
    with torch.no_grad():
        after, fresh = PlanningHeads(model, cache).next(za)[1], PlanningHeads(model, {}).next(za)[1]
    torch.testing.assert_close(after, fresh, rtol=0, atol=0)
    assert not torch.allclose(after, outputs[1][0])


@pytest.mark.parametrize("onednn", [False, pytest.param(True, marks=pytest.mark.skipif(
    not ONEDNN_AVAILABLE, reason="torch has no oneDNN linear here"))])
def test_planning_heads_compute_the_same_functions(cfg, onednn):
    """On both kernels, whichever this host picks by default (oneDNN with AVX-512, F.linear without)."""
    model = WorldModel(cfg)
    for p in model.parameters():  # make the zero-initialised heads non-trivial
        p.data.add_(0.05 * torch.randn_like(p))
    heads = PlanningHeads(model)
    z, a = torch.randn(37, cfg.latent_dim), torch.rand(37, cfg.action_dim) * 2 - 1
    za = torch.cat([z, a], -1)
    with torch.no_grad(), onednn_kernels(onednn):
        z_ref, r_ref = model.next(z, a)
        z_fast, r_fast = heads.next(za)
        q_ref = torch.min(*model.q(z, a))
        torch.testing.assert_close(z_fast, z_ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(r_fast, r_ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(heads.q_min(za), q_ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(heads.pi(z, 0.0), model.pi(z), rtol=1e-4, atol=1e-5)
