"""Planning latency on this CPU with each GEMM kernel, interleaved in one run: oneDNN's linear against
F.linear (MKL). networks.ONEDNN_LINEAR picks one per host by ISA; this checks that choice.

    .venv/bin/python scripts/plan_kernels.py benchmarks/cpu-2core-epyc/plan_kernels_<isa>.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import torch

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
        times = {"onednn": [], "f_linear": []}
        for _ in range(3):  # interleaved, so drift hits both alike
            for name, enabled in (("onednn", True), ("f_linear", False)):
                with onednn_kernels(enabled):
                    times[name].append(median_ms(agent, obs, cfg.seed_steps + 10**6))
        rows.append({"task": task, "preset": preset or "reference", "img_size": cfg.img_size,
                     "median_ms": times, "onednn_over_f_linear": float(np.median(times["onednn"])
                                                                      / np.median(times["f_linear"]))})
        print(f"{task:12s} {cfg.img_size} px  oneDNN {np.median(times['onednn']):6.1f} ms  "
              f"F.linear {np.median(times['f_linear']):6.1f} ms")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"benchmark": "plan kernels", "commit": commit, "default_onednn": ONEDNN_LINEAR, "rows": rows,
              "machine": machine_info(torch.device("cpu"))}
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"(written to {out}; this host's default: {'oneDNN' if ONEDNN_LINEAR else 'F.linear'})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "plan_kernels.json")
