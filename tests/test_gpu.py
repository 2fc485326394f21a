"""GPU checks: skipped without CUDA; run on a device machine (see BENCHMARKS.md)."""

from __future__ import annotations

import numpy as np
import torch

from modem_ros.agent.modem import ModemAgent
from modem_ros.bench import random_batch
from tests.conftest import requires_cuda, small_config


@requires_cuda
def test_update_and_plan_on_cuda_match_cpu_math():
    cfg = small_config(device="cuda")
    gpu = ModemAgent(cfg)
    cpu = ModemAgent(small_config(device="cpu"))
    cpu.model.load_state_dict({k: v.cpu() for k, v in gpu.model.state_dict().items()})
    z = torch.randn(7, cfg.latent_dim)
    a = torch.rand(7, cfg.action_dim) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(gpu.model.next(z.cuda(), a.cuda())[0].cpu(), cpu.model.next(z, a)[0],
                                   rtol=1e-3, atol=1e-4)
    batch = random_batch(cfg, gpu.device)
    history = [gpu.update(batch, step=i) for i in range(40)]
    assert float(history[-1]["reward_loss"]) < float(history[0]["reward_loss"]) or \
        float(history[0]["reward_loss"]) == 0
    obs = {"rgb": np.zeros(cfg.rgb_shape, np.uint8), "state": np.zeros(cfg.state_dim, np.float32)}
    action = gpu.act(obs, step=10**6, eval_mode=True)
    assert action.shape == (cfg.action_dim,) and np.all(np.abs(action) <= 1)


@requires_cuda
def test_bf16_and_compiled_update_and_plan_on_cuda():
    cfg = small_config(device="cuda", amp_bf16=True, compile=True)
    agent = ModemAgent(cfg)
    batch = random_batch(agent.cfg, agent.device)
    history = [agent.update(batch, step=i) for i in range(20)]
    assert all(torch.isfinite(h["total_loss"]) for h in history)
    obs = {"rgb": np.zeros(cfg.rgb_shape, np.uint8), "state": np.zeros(cfg.state_dim, np.float32)}
    actions = [agent.act(obs, step=10**6, eval_mode=True, t0=t == 0) for t in range(5)]  # CUDA-graph replays
    assert all(np.all(np.abs(a) <= 1) and np.all(np.isfinite(a)) for a in actions)
