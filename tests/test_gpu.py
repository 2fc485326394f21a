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


def _twin_agents(**overrides) -> tuple[ModemAgent, ModemAgent]:
    """The same weights planning through CUDA graphs and eagerly."""
    graphed = ModemAgent(small_config(device="cuda", cuda_graph=True, **overrides))
    eager = ModemAgent(small_config(device="cuda", cuda_graph=False, **overrides))
    eager.load_state_dict(graphed.state_dict())
    return graphed, eager


def _same_draws(agent: ModemAgent, obs: dict, **kwargs) -> np.ndarray:
    torch.cuda.manual_seed(123)  # a graph replay draws from the generator exactly like the eager kernels
    return agent.act(obs, **kwargs)


@requires_cuda
def test_graphed_planning_is_the_eager_math_and_sees_weight_updates():
    graphed, eager = _twin_agents()
    rng = np.random.default_rng(0)
    obs = [{"rgb": rng.integers(0, 256, graphed.cfg.rgb_shape, dtype=np.uint8),
            "state": rng.standard_normal(graphed.cfg.state_dim).astype(np.float32)} for _ in range(4)]
    for eval_mode in (True, False):  # captures; the capture's warm-up draws would offset the generator
        graphed.act(obs[0], step=10**6, eval_mode=eval_mode, t0=True)
    assert graphed._plan_graphs, "planning on CUDA did not use a CUDA graph"
    for mode in ({"eval_mode": True}, {"eval_mode": False}):  # noisy acting too: the exploration draw
        for t, o in enumerate(obs):  # t0 then warm starts: the carried mean must match as well
            kw = {"step": 10**6, "t0": t == 0, **mode}
            np.testing.assert_allclose(_same_draws(graphed, o, **kw), _same_draws(eager, o, **kw), atol=1e-5)
        torch.testing.assert_close(graphed.planner.prev_mean, eager.planner.prev_mean, atol=1e-5, rtol=1e-5)
    batch = random_batch(graphed.cfg, graphed.device)
    for _ in range(3):  # in-place optimizer steps: the graph must read the new weights, not a copy
        graphed.update(batch, step=graphed.num_updates)
    eager.load_state_dict(graphed.state_dict())
    kw = {"step": 10**6, "t0": True, "eval_mode": True}
    np.testing.assert_allclose(_same_draws(graphed, obs[1], **kw), _same_draws(eager, obs[1], **kw), atol=1e-5)


@requires_cuda
def test_graphed_planning_follows_the_horizon_schedule():
    graphed, eager = _twin_agents()
    obs = {"rgb": np.full(graphed.cfg.rgb_shape, 90, np.uint8), "state": np.ones(graphed.cfg.state_dim, np.float32)}
    steps = [graphed.cfg.seed_steps, 10**6]  # short horizon early in training, full horizon later
    for step in steps:
        kw = {"step": step, "t0": True, "eval_mode": False}
        graphed.act(obs, **kw)
        np.testing.assert_allclose(_same_draws(graphed, obs, **kw), _same_draws(eager, obs, **kw), atol=1e-5)
    assert len({h for h, _ in graphed._plan_graphs}) == 2
