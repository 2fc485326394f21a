"""How far bf16 planning (amp_bf16 on CPU) moves the planned action, against the spread planning has anyway.

Runs a trained checkpoint's evaluation episodes with fp32 planning; at every observation it plans from
the same warm-start mean with: fp32 and torch seed s (the action executed), bf16 and the same seed s,
fp32 and seed s + 1, and fp32 and seed s once more (a control that must match exactly). It prints the
mean and 95th percentile of |a_bf16 - a_fp32| and of |a_fp32(s+1) - a_fp32(s)| (L2 over the action
dimensions): bf16 is accurate enough when its deviation is small against the seed-to-seed one, which
the planner's sampling makes at every step.

    .venv/bin/python scripts/plan_bf16_check.py CHECKPOINT [EPISODES] [--out FILE.json]
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from modem_ros.agent.modem import ModemAgent
from modem_ros.bench import machine_info
from modem_ros.config import ModemConfig
from modem_ros.data.episode import eval_episode_seed
from modem_ros.envs import make_env
from modem_ros.trainer import run_episode


def planned(agent: ModemAgent, obs: dict, t: int, prev_mean: torch.Tensor | None, seed: int) -> np.ndarray:
    agent.planner.prev_mean = None if prev_mean is None else prev_mean.clone()
    torch.manual_seed(seed)
    return agent.act(obs, step=10**9, eval_mode=True, t0=t == 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("episodes", type=int, nargs="?", default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    agents = {}
    for bf16 in (False, True):
        agents[bf16] = ModemAgent(ModemConfig(**{**state["config"], "amp_bf16": bf16}), torch.device("cpu"))
        agents[bf16].load_state_dict(state)
    cfg = agents[False].cfg
    env = make_env(cfg, seed=cfg.seed + 1)
    precision, seeds, repeat, returns = [], [], [], []
    step = 0

    def policy(obs, t):
        nonlocal step
        step += 1
        prev = agents[False].planner.prev_mean
        prev = None if prev is None else prev.clone()
        other = planned(agents[False], obs, t, prev, 2 * step + 1)
        low = planned(agents[True], obs, t, prev, 2 * step)
        again = planned(agents[False], obs, t, prev, 2 * step)
        action = planned(agents[False], obs, t, prev, 2 * step)  # executed; leaves fp32's warm start
        repeat.append(float(np.linalg.norm(again - action)))  # 0 unless planning is not seeded as we think
        precision.append(float(np.linalg.norm(low - action)))
        seeds.append(float(np.linalg.norm(other - action)))
        return action

    for i in range(args.episodes):
        returns.append(run_episode(env, policy, seed=eval_episode_seed(i)).total_reward)
    result = {"checkpoint": str(args.checkpoint), "task": cfg.task, "episodes": args.episodes, "steps": step,
              "bf16_vs_fp32": {"mean": float(np.mean(precision)), "p95": float(np.percentile(precision, 95))},
              "fp32_seed_vs_seed": {"mean": float(np.mean(seeds)), "p95": float(np.percentile(seeds, 95))},
              "fp32_same_seed_max": max(repeat), "fp32_return_mean": float(np.mean(returns)),
              "machine": machine_info(torch.device("cpu"))}
    print(f"{cfg.task}: {step} planned steps over {args.episodes} episodes (|a - a_fp32|, L2 over actions)")
    print(f"  bf16 vs fp32, same seed:   mean {result['bf16_vs_fp32']['mean']:.4f}  "
          f"p95 {result['bf16_vs_fp32']['p95']:.4f}")
    print(f"  fp32 vs fp32, next seed:   mean {result['fp32_seed_vs_seed']['mean']:.4f}  "
          f"p95 {result['fp32_seed_vs_seed']['p95']:.4f}")
    print(f"  fp32 vs fp32, same seed:   max {result['fp32_same_seed_max']:.4f} (the control: 0)")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
