"""`modem-ros bench graph`: what the ROS graph costs per env step over the plain-Python loop.

The same agent (one checkpoint, schedules at their final values) acts in eval mode on the same
task and seeds twice: in-process (`run_episode`, as `modem-ros train` does) and through the eval_sim
graph (sim bridge -> camera -> planner -> sim bridge, separate processes, lock-step). The bridge times
every round trip from publishing an observation to receiving the action it caused.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from modem_ros.agent.modem import ModemAgent
from modem_ros.config import ModemConfig
from modem_ros.data.episode import eval_episode_seed
from modem_ros.envs import make_env
from modem_ros.trainer import run_episode


def plain_loop(cfg: ModemConfig, checkpoint: Path, episodes: int) -> dict[str, Any]:
    agent = ModemAgent(cfg)
    agent.load(checkpoint)
    env = make_env(cfg, seed=cfg.seed)
    act_times: list[float] = []

    def policy(obs, t):
        start = time.perf_counter()
        action = agent.act(obs, cfg.train_steps, eval_mode=True, t0=t == 0)
        act_times.append(time.perf_counter() - start)
        return action

    seconds, steps = [], 0
    for i in range(episodes + 1):  # episode 0 warms up (allocations, oneDNN kernels), as in the graph
        start = time.perf_counter()
        length = len(run_episode(env, policy, seed=eval_episode_seed(i)))
        if i == 0:
            act_times.clear()
            continue
        steps += length
        seconds.append(time.perf_counter() - start)
    if hasattr(env, "close"):
        env.close()
    return {"ms_per_step": 1000 * sum(seconds) / steps, "act_median_ms": 1000 * float(np.median(act_times)),
            "steps": steps}


def graph_loop(cfg: ModemConfig, checkpoint: Path, episodes: int, workdir: Path) -> dict[str, Any]:
    preset = workdir / "bench_preset.yaml"  # the exact config, so every node resolves what the plain loop used
    preset.write_text(yaml.safe_dump({k: v for k, v in cfg.to_dict().items() if k not in ("task", "suite")}))
    results = workdir / "graph_results.json"
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(100, 199)))  # away from a user's default domain 0
    command = [sys.executable, "-m", "modem_ros.cli", "launch", "eval_sim", f"task:={cfg.task}",
               f"seed:={cfg.seed}", f"preset:={preset}", f"device:={cfg.device}", f"checkpoint:={checkpoint}",
               f"episodes:={episodes + 1}", f"results_file:={results}"]
    run = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=3600)
    if run.returncode != 0 or not results.exists():
        raise RuntimeError(f"eval_sim graph failed ({run.returncode}):\n{run.stdout[-3000:]}")
    data = json.loads(results.read_text())
    timed = data["episodes"][1:]  # episode 0 also waits for the planner process to start
    steps = sum(e["steps"] for e in timed)
    return {"ms_per_step": 1000 * sum(e["seconds"] for e in timed) / steps, "steps": steps,
            "round_trip_median_ms": data["round_trip_ms"]["median"],
            "round_trip_p95_ms": data["round_trip_ms"]["p95"]}


def run_graph_bench(cfg: ModemConfig, episodes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="modem_bench_graph_") as tmp:
        workdir = Path(tmp)
        torch.manual_seed(cfg.seed)
        checkpoint = ModemAgent(cfg).save(workdir / "agent.pt", extra={"step": cfg.train_steps})
        plain = plain_loop(cfg, checkpoint, episodes)
        graph = graph_loop(cfg, checkpoint, episodes, workdir)
    return {"bench": "graph", "task": cfg.task, "img_size": cfg.img_size, "episodes": episodes,
            "device": cfg.device, "plain": plain, "graph": graph,
            "overhead_ms_per_step": graph["ms_per_step"] - plain["ms_per_step"],
            "graph_over_plain": graph["ms_per_step"] / plain["ms_per_step"]}


def format_graph_table(r: dict[str, Any]) -> str:
    p, g = r["plain"], r["graph"]
    return "\n".join([
        f"graph vs plain loop, {r['task']} {r['img_size']} px, {r['episodes']} episodes ({g['steps']} steps) "
        "in eval mode after one warm-up episode",
        f"{'':<30}{'ms/step':>10}",
        f"{'plain loop (in-process)':<30}{p['ms_per_step']:>10.2f}   act() median {p['act_median_ms']:.2f} ms",
        f"{'ROS graph (lock-step)':<30}{g['ms_per_step']:>10.2f}   round trip median "
        f"{g['round_trip_median_ms']:.2f} ms, p95 {g['round_trip_p95_ms']:.2f} ms",
        f"overhead {r['overhead_ms_per_step']:.2f} ms/step, graph/plain {r['graph_over_plain']:.2f}x",
    ])
