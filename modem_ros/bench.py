"""`modem-ros bench plan|update`: latency of one planned action and one gradient step, their counted
floating-point work, and the same-run matmul rate of the device as the ceiling to compare with."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from modem_ros.agent import fast_elu
from modem_ros.agent.modem import Batch, ModemAgent
from modem_ros.agent.networks import ONEDNN_AVAILABLE, ONEDNN_LINEAR, portable_kernels
from modem_ros.config import ModemConfig
from modem_ros.runtime import cpuinfo


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def count_flops(fn: Callable[[], Any]) -> int:
    """Matmul/conv FLOPs of one call (forward and backward), counted by torch on the portable kernels."""
    with portable_kernels(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_gflops(device: torch.device, n: int = 2048, repeats: int = 10) -> dict[str, float]:
    """fp32 rate of a plain square matrix product, per kernel library available on the device.

    On CPU both torch.mm (MKL sgemm) and oneDNN's matmul are measured: on AMD CPUs MKL runs AVX2
    code while oneDNN uses AVX-512, about 2x apart. The ratio we report uses the faster of the two,
    the machine's real fp32 ceiling; the torch.mm rate is kept for comparison. On CUDA the bf16
    rate is measured too, the ceiling of amp_bf16 runs, and on a CPU whose oneDNN has bf16 kernels
    (AVX512-BF16 / AMX), where the CPU's amp_bf16 planning runs its wide GEMMs in bf16.
    """
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    rate = lambda fn: 2 * n**3 / (statistics.median(time_calls(fn, device, repeats, 3)) / 1e3) / 1e9  # noqa: E731
    rates = {"torch_mm": rate(lambda: a @ b)}
    if device.type == "cpu" and ONEDNN_AVAILABLE:
        bt = b.t().contiguous()
        rates["onednn"] = rate(lambda: torch.ops.mkldnn._linear_pointwise(a, bt, None, "none", [], ""))
    cpu_bf16 = device.type == "cpu" and ONEDNN_AVAILABLE and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    if device.type == "cuda" or cpu_bf16:  # the ceiling of amp_bf16 runs
        a16, b16 = a.bfloat16(), b.bfloat16()
        rates["torch_mm_bf16"] = rate(lambda: a16 @ b16)
    return rates


def random_obs(cfg: ModemConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"rgb": rng.integers(0, 256, cfg.rgb_shape, dtype=np.uint8),
            "state": rng.standard_normal(cfg.state_dim).astype(np.float32)}


def random_batch(cfg: ModemConfig, device: torch.device) -> Batch:
    h, b = cfg.horizon, cfg.batch_size
    return Batch(rgb=torch.randint(0, 256, (h + 1, b, *cfg.rgb_shape), dtype=torch.uint8, device=device),
                 state=torch.randn(h + 1, b, cfg.state_dim, device=device),
                 action=torch.rand(h, b, cfg.action_dim, device=device) * 2 - 1,
                 reward=torch.randn(h, b, 1, device=device),
                 weights=torch.ones(b, 1, device=device))


def machine_info(device: torch.device) -> dict[str, Any]:
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
            "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            # The vector ISA torch dispatches to: "AMD EPYC" hosts here have come with AVX-512 (oneDNN
            # matmul ~436 GFLOP/s on 2 cores) and with AVX2 only (~114): CPU times compare within one ISA.
            "cpu_isa": torch.backends.cpu.get_cpu_capability(),
            "planning_kernels_default": {"onednn_linear": ONEDNN_LINEAR, "fast_elu": fast_elu.available()}}
    info["cpu"] = cpuinfo("model name") or info["cpu"]
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _bench_call(what: str, agent: ModemAgent, cfg: ModemConfig, device: torch.device) -> Callable[[], Any]:
    if what == "plan":
        obs = random_obs(cfg, np.random.default_rng(0))
        step = max(cfg.train_steps, cfg.horizon_schedule_steps, cfg.seed_steps)  # full horizon, final std
        agent.last_update_step = max(agent.last_update_step, step)  # the std bound follows the last update
        return lambda: agent.act(obs, step=step, eval_mode=True, t0=False)
    if what == "update":
        batch = random_batch(cfg, device)
        return lambda: agent.update(batch, step=agent.num_updates)
    raise ValueError(f"unknown benchmark '{what}' (plan or update)")


def run_bench(what: str, cfg: ModemConfig, device: torch.device, repeats: int, warmup: int) -> dict[str, Any]:
    torch.manual_seed(0)
    agent = ModemAgent(cfg, device)
    call = _bench_call(what, agent, cfg, device)
    budget = ({"num_samples": cfg.num_samples, "policy_trajectories": cfg.num_pi_trajs, "horizon": cfg.horizon,
               "iterations": cfg.iterations} if what == "plan" else
              {"batch_size": cfg.batch_size, "horizon": cfg.horizon, "img_size": cfg.img_size})
    # FLOPs of the same math, counted on an eager twin: a CUDA graph or compiled code hides the ops.
    eager = replace(cfg, compile=False, cuda_graph=False)
    flops = count_flops(_bench_call(what, ModemAgent(eager, device), eager, device))
    times = time_calls(call, device, repeats, warmup)
    rates = matmul_gflops(device)
    peak = rates["torch_mm_bf16"] if cfg.amp_bf16 and "torch_mm_bf16" in rates else \
        max(v for k, v in rates.items() if k != "torch_mm_bf16")
    median = statistics.median(times)
    achieved = flops / (median / 1e3) / 1e9
    return {"benchmark": what, "task": cfg.task, "budget": budget, "repeats": repeats,
            "amp_bf16": cfg.amp_bf16, "compile": cfg.compile, "cuda_graph": cfg.cuda_graph,
            "median_ms": median, "p95_ms": float(np.percentile(times, 95)), "times_ms": times,
            "gflop_per_call": flops / 1e9, "achieved_gflops": achieved, "matmul_gflops": peak,
            "matmul_gflops_by_kernel": rates, "fraction_of_matmul": achieved / peak,
            "fraction_of_torch_mm": achieved / rates["torch_mm"], "machine": machine_info(device)}


def format_table(result: dict[str, Any]) -> str:
    rows = [("benchmark", result["benchmark"]), ("task", result["task"]),
            ("budget", ", ".join(f"{k}={v}" for k, v in result["budget"].items())),
            ("device", result["machine"].get("gpu", result["machine"]["cpu"]) +
             f" ({result['machine']['device']}, {result['machine'].get('cpu_isa', '?')}, "
             f"{result['machine']['threads']} threads)"),
            ("options", f"amp_bf16={result['amp_bf16']}, compile={result['compile']}, "
                        f"cuda_graph={result.get('cuda_graph', False)}"),
            ("median / p95", f"{result['median_ms']:.2f} / {result['p95_ms']:.2f} ms "
                             f"({result['repeats']} calls)"),
            ("work per call", f"{result['gflop_per_call']:.2f} GFLOP"),
            ("achieved", f"{result['achieved_gflops']:.1f} GFLOP/s"),
            ("matmul (same run)", ", ".join(f"{k} {v:.1f}" for k, v in
                                                 result["matmul_gflops_by_kernel"].items()) + " GFLOP/s"),
            ("ratio", f"{100 * result['fraction_of_matmul']:.0f}% of the matmul ceiling, "
                      f"{100 * result['fraction_of_torch_mm']:.0f}% of torch.mm's")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def run_budget_sweep(checkpoint: Path, budgets: list[tuple[int, int]], episodes: int,
                     device: torch.device, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """Evaluate one trained checkpoint under cheaper planning budgets (num_samples, iterations):
    the effect of each on return and success, next to its latency, on the same eval episodes.
    `overrides` (key=value, typed and checked like any config's) change how it runs, e.g. amp_bf16."""
    from modem_ros.config import ModemConfig as Config
    from modem_ros.config import load_config
    from modem_ros.data.episode import eval_episode_seed
    from modem_ros.envs import make_env
    from modem_ros.trainer import run_episode

    state = torch.load(checkpoint, map_location=device, weights_only=True)
    base = Config(**state["config"])
    typed = {k: getattr(load_config(base.task, overrides), k) for k in overrides or {}}
    rows = []
    for num_samples, iterations in budgets:
        cfg = Config(**{**state["config"], **typed, "num_samples": num_samples, "iterations": iterations,
                        "num_elites": min(base.num_elites, num_samples)})
        agent = ModemAgent(cfg, device)
        agent.load_state_dict(state)
        env = make_env(cfg, seed=cfg.seed + 1)
        times: list[float] = []

        def policy(obs, t, agent=agent, times=times):
            start = time.perf_counter()
            action = agent.act(obs, step=10**9, eval_mode=True, t0=t == 0)
            times.append((time.perf_counter() - start) * 1e3)
            return action

        torch.manual_seed(0)
        results = [run_episode(env, policy, seed=eval_episode_seed(i)) for i in range(episodes)]
        rows.append({"num_samples": num_samples, "iterations": iterations,
                     "episode_return": float(np.mean([r.total_reward for r in results])),
                     "success_rate": float(np.mean([r.succeeded for r in results])),
                     "median_ms_per_action": statistics.median(times)})
    return {"benchmark": "budgets", "task": base.task, "checkpoint": str(checkpoint), "episodes": episodes,
            "img_size": base.img_size, "overrides": dict(overrides or {}), "rows": rows,
            "machine": machine_info(device)}


def format_budget_table(result: dict[str, Any]) -> str:
    lines = [f"{result['task']} ({result['img_size']} px), {result['episodes']} eval episodes per budget",
             f"{'samples':>8} {'iters':>6} {'return':>9} {'success':>8} {'ms/action':>10}"]
    for r in result["rows"]:
        lines.append(f"{r['num_samples']:>8} {r['iterations']:>6} {r['episode_return']:>9.2f} "
                     f"{r['success_rate']:>8.2f} {r['median_ms_per_action']:>10.2f}")
    return "\n".join(lines)


def run_env_bench(cfg: ModemConfig, steps: int) -> dict[str, Any]:
    """Agent steps per second of the task's adapter, rendering included (action_repeat physics steps
    and one camera frame each), with random actions; and the cost of one frame alone."""
    from modem_ros.envs import make_env

    env = make_env(cfg, seed=0)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    step_ms = []
    for _ in range(steps):
        start = time.perf_counter()
        _, _, done, _ = env.step(rng.uniform(-1, 1, env.action_dim))
        step_ms.append((time.perf_counter() - start) * 1e3)
        if done:
            env.reset()
    render_ms = []
    if hasattr(env, "render_frame"):  # MuJoCo adapters: the camera frame alone
        for _ in range(min(steps, 50)):
            start = time.perf_counter()
            env.render_frame()
            render_ms.append((time.perf_counter() - start) * 1e3)
    median = statistics.median(step_ms)
    return {"benchmark": "env", "task": cfg.task, "img_size": cfg.img_size, "action_repeat": cfg.action_repeat,
            "steps": steps, "median_ms_per_step": median, "steps_per_s": 1e3 / median,
            "median_ms_per_frame": statistics.median(render_ms) if render_ms else None,
            "machine": machine_info(torch.device("cpu"))}


def format_env_line(result: dict[str, Any]) -> str:
    frame = result["median_ms_per_frame"]
    return (f"{result['task']} at {result['img_size']} px: {result['steps_per_s']:.1f} agent steps/s "
            f"({result['median_ms_per_step']:.2f} ms, action_repeat {result['action_repeat']})"
            + (f", one frame {frame:.2f} ms" if frame else ""))
