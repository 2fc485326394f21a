"""Diagnostic behind BENCHMARKS.md's learning-curve findings: do the demos replay open-loop from their own
reset seeds, and does the BC policy reproduce them there and reach new goals (the evaluation seeds)?

    MODEM_ROS_DATA=DIR .venv/bin/python benchmarks/learning/diagnostics/bc_generalisation.py TASK BC_ITERS [DEMOS]

cpu-small otherwise; demos are generated into DIR on first use. Logs of the runs quoted: bc_generalisation_*.log.
"""

import sys
import time
from dataclasses import replace

import numpy as np

from modem_ros.config import load_config
from modem_ros.data.demos import episode_dirs, read_episode
from modem_ros.data.episode import eval_episode_seed
from modem_ros.run import build_trainer, ensure_demos
from modem_ros.trainer import run_episode


def main(task: str, iters: int, demos: int) -> None:
    cfg = load_config(task, {"seed": "1", "bc_iters": str(iters), "demos": str(demos)}, preset="cpu-small")
    cfg = replace(cfg, demo_dir=str(ensure_demos(cfg)))
    bags = [read_episode(p, cfg.frame_stack) for p in episode_dirs(cfg.demo_dir)]
    seeds = [int(b.meta["seed"]) for b in bags]
    trainer = build_trainer(cfg, None)
    env = trainer.eval_env
    print("demo seeds", seeds)
    for bag, seed in list(zip(bags, seeds, strict=True))[:5]:  # open-loop replay of the recorded actions
        actions = bag.episode.action
        replay = run_episode(env, lambda obs, t, a=actions: a[min(t, len(a) - 1)], seed=seed)
        print("replay seed", seed, "succeeded", replay.succeeded, "demo return", bag.episode.total_reward,
              "replay return", replay.total_reward)
    start = time.time()
    trainer.pretrain_policy()
    print("bc", iters, "iters", round(time.time() - start, 1), "s")

    def policy(obs, t):
        return trainer.agent.policy_action(obs)

    print("BC on demo seeds", [run_episode(env, policy, seed=s).succeeded for s in seeds[:10]])
    print("BC on eval seeds", [run_episode(env, policy, seed=eval_episode_seed(i)).succeeded for i in range(20)])
    print("mean |action| of demo frames", np.abs(np.concatenate([b.episode.action for b in bags])).mean(0).round(3))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 5)
