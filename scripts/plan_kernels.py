"""Planning latency on this CPU with each GEMM kernel and each ELU, interleaved in one run: oneDNN's
linear against F.linear (MKL), fast_elu's kernel against torch's ELU, and (where the CPU has bf16
GEMMs) amp_bf16's planning with either ELU. networks.ONEDNN_LINEAR picks the GEMM kernel per host by
ISA; this checks that choice and measures what the ELU kernel buys.

    .venv/bin/python scripts/plan_kernels.py benchmarks/cpu-2core-epyc/plan_kernels_<isa>.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import torch

from modem_ros.agent import fast_elu
from modem_ros.agent.modem import ModemAgent
from modem_ros.agent.networks import ONEDNN_AVAILABLE, ONEDNN_LINEAR, onednn_kernels
from modem_ros.bench import machine_info, random_obs
from modem_ros.config import load_config

CASES = [("mw-assembly", None, {"img_size": "224"}), ("toy-reach", "cpu-small", {})]  # reference budget, main job's


def median_ms(agent: ModemAgent, obs: dict, step: int, repeats: int = 15) -> float:
    agent.act(obs, step=step, eval_mode=True, t0=True)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        agent.act(obs, step=step, eval_mode=True, t0=True)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def main(out: str) -> None:
    if not ONEDNN_AVAILABLE:
        sys.exit("torch has no oneDNN linear here: nothing to compare")
    torch.set_num_threads(2)
    rows = []
    for task, preset, overrides in CASES:
        cfg = load_config(task, overrides, preset=preset)
        agent = ModemAgent(cfg, "cpu")
        obs = random_obs(cfg, np.random.default_rng(0))
        agents = {False: agent}
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():  # bf16 GEMMs on this CPU (AVX512-BF16 / AMX)
            agents[True] = ModemAgent(load_config(task, {**overrides, "amp_bf16": "true"}, preset=preset), "cpu")
            agents[True].model.load_state_dict(agent.model.state_dict())
        variants = [(f"{'bf16' if bf16 else 'onednn' if gemm else 'f_linear'}+{'fast' if elu else 'torch'}_elu",
                     bf16, gemm, elu) for bf16 in agents for gemm in ((True,) if bf16 else (True, False))
                    for elu in (True, False)]
        times = {name: [] for name, *_ in variants}
        for _ in range(3):  # interleaved, so drift hits every variant alike
            for name, bf16, gemm, elu in variants:
                with onednn_kernels(gemm), fast_elu.fast_elu_kernel(elu):
                    times[name].append(median_ms(agents[bf16], obs, cfg.seed_steps + 10**6))
        medians = {name: float(np.median(t)) for name, t in times.items()}
        rows.append({"task": task, "preset": preset or "reference", "img_size": cfg.img_size,
                     "median_ms": times, "median_of_medians_ms": medians,
                     "onednn_over_f_linear": medians["onednn+torch_elu"] / medians["f_linear+torch_elu"],
                     "fast_elu_over_torch_elu": medians["onednn+fast_elu"] / medians["onednn+torch_elu"]})
        print(f"{task:12s} {cfg.img_size} px  " + "  ".join(f"{n} {m:6.1f} ms" for n, m in medians.items()))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"benchmark": "plan kernels", "commit": commit, "default_onednn": ONEDNN_LINEAR, "rows": rows,
              "machine": machine_info(torch.device("cpu"))}
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"(written to {out}; this host's default: {'oneDNN' if ONEDNN_LINEAR else 'F.linear'})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "plan_kernels.json")
