"""`modem-ros bench actors`: train_sim with 1, 2, 4 ... sim actors feeding one trainer, to a fixed step count.

Each actor count runs the whole graph (`modem-ros launch train_sim actors:=N`) on the same task, preset,
seed, demos and step budget, in a fresh run directory. Per count: wall time, the collection phase's
env steps/s (from the first evaluation to the summary: BC and demo loading excluded), each actor's own
rate, the trainer's update rate (updates / time inside updates) and the planners' observation -> action
latency and act() time as they report them. On a machine with fewer cores than processes the answer may
be "no gain": the table says what was measured.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from modem_ros.config import ModemConfig
from modem_ros.paths import config_dir
from modem_ros.run import ensure_demos

STATS = re.compile(r"observation -> action: median ([\d.]+) ms, p95 ([\d.]+) ms \(act\(\) ([\d.]+) ms\)")


def _records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _planner_stats(launch_dir: Path) -> dict[str, float]:
    """Medians over every planner's periodic reports (each a median over stats_every actions)."""
    reports = [tuple(map(float, m.groups())) for log in launch_dir.glob("*planner.log")
               for m in STATS.finditer(log.read_text())]
    if not reports:
        return {}
    median, p95, act = (float(np.median(column)) for column in zip(*reports, strict=True))
    return {"obs_to_action_median_ms": median, "obs_to_action_p95_ms": p95, "act_median_ms": act,
            "reports": len(reports)}


def summarize(run_dir: Path, actors: int, wall_s: float) -> dict[str, Any]:
    """One run's figures from its metrics.jsonl and planner logs."""
    records = _records(run_dir)
    begun = next(r["time"] for r in records if r["kind"] == "eval")  # BC and the first evaluation done
    summary = next(r for r in records if r["kind"] == "summary")
    collect_s = summary["time"] - begun
    train = [r for r in records if r["kind"] == "train"]
    interactive = [r for r in train if r["phase"] == "interactive" and "update_seconds" in r]
    per_actor: dict[str, float] = {}
    for r in records:
        if r["kind"] == "actor":
            per_actor[r["actor"]] = r[f"{r['actor']}/env_steps_per_s"]
    update_s = sum(r["update_seconds"] for r in interactive)
    return {
        "actors": actors, "wall_s": round(wall_s, 2), "collect_s": round(collect_s, 2),
        "env_steps": summary["env_step"], "episodes": summary["episodes"],
        "env_steps_per_s": round(summary["env_step"] / collect_s, 3),
        "per_actor_env_steps_per_s": per_actor or {"": round(summary["env_step"] / collect_s, 3)},
        "interactive_updates_per_s": round(sum(r["updates"] for r in interactive) / update_s, 3) if update_s else None,
        "planner": _planner_stats(run_dir / "launch"),
        "final_success_rate": summary.get("final_success_rate"),
    }


def run_actors_bench(cfg: ModemConfig, actor_counts: list[int], steps: int, workdir: Path,
                     planner_threads: int = 0) -> dict[str, Any]:
    """Train to `steps` agent steps once per actor count, every node resolving exactly `cfg`;
    planner_threads: each planner's torch threads (0: torch's default)."""
    workdir.mkdir(parents=True, exist_ok=True)
    demo_dir = ensure_demos(cfg)  # generated once, before any timing
    preset = workdir / "bench_preset.yaml"  # the exact config (overrides included) for every node
    preset.write_text(yaml.safe_dump({k: v for k, v in cfg.to_dict().items() if k not in ("task", "suite", "seed")}))
    params = yaml.safe_load((config_dir() / "train_sim.yaml").read_text())
    params["planner"]["ros__parameters"]["stats_every"] = 50  # latency reports inside short runs
    params["planner"]["ros__parameters"]["torch_threads"] = planner_threads
    params_file = workdir / "train_sim.params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(100, 199)))  # away from a user's default domain 0
    runs = []
    for actors in actor_counts:
        run_dir = workdir / f"actors_{actors}"
        command = [sys.executable, "-m", "modem_ros.cli", "launch", "train_sim", f"task:={cfg.task}",
                   f"seed:={cfg.seed}", f"preset:={preset}", f"device:={cfg.device}", f"steps:={steps}",
                   f"run_dir:={run_dir}", f"demo_dir:={demo_dir}", f"actors:={actors}", f"params_file:={params_file}"]
        start = time.perf_counter()
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=4 * 3600)
        wall = time.perf_counter() - start
        if run.returncode != 0:
            raise RuntimeError(f"train_sim actors:={actors} failed ({run.returncode}):\n{run.stdout[-3000:]}")
        runs.append(summarize(run_dir, actors, wall))
        print(format_actors_line(runs[-1]), flush=True)
    one = runs[0]["env_steps_per_s"]
    for r in runs:
        r["env_steps_per_s_over_first"] = round(r["env_steps_per_s"] / one, 3)
    import torch

    from modem_ros.bench import machine_info
    from modem_ros.bench_learn import COMMIT

    return {"bench": "actors", "task": cfg.task, "img_size": cfg.img_size, "seed": cfg.seed, "steps": steps,
            "seed_steps": cfg.seed_steps, "device": cfg.device, "cpus": os.cpu_count(), "commit": COMMIT,
            "planner_threads": planner_threads,
            "machine": machine_info(torch.device("cpu")), "config": cfg.to_dict(), "runs": runs}


def format_actors_line(r: dict[str, Any]) -> str:
    nan = float("nan")
    p, updates = r["planner"], r["interactive_updates_per_s"] or nan
    rates = ", ".join(f"{v:.2f}" for v in r["per_actor_env_steps_per_s"].values())
    return (f"{r['actors']:>6} {r['wall_s']:>8.0f} {r['collect_s']:>10.0f} {r['env_steps_per_s']:>12.2f} "
            f"{updates:>10.2f} {p.get('obs_to_action_median_ms', nan):>10.1f} {p.get('act_median_ms', nan):>8.1f}"
            f"   [{rates}]")


def format_actors_table(result: dict[str, Any]) -> str:
    head = (f"train_sim to {result['steps']} agent steps ({result['seed_steps']} seeding), {result['task']} "
            f"{result['img_size']} px, seed {result['seed']}, {result['cpus']} CPUs\n"
            f"{'actors':>6} {'wall s':>8} {'collect s':>10} {'env steps/s':>12} {'updates/s':>10} "
            f"{'obs->act ms':>10} {'act ms':>8}   [per actor env steps/s]")
    return "\n".join([head, *map(format_actors_line, result["runs"])])
