"""Diagnostic behind BENCHMARKS.md's mw-hammer 3x comparison: what the learned policy pi(z) and critic
do over training, per method. For each saved checkpoint it encodes the observations of the run's own
last N training episodes and of the 5 demos (the same demos for every method) and reports the policy
mean's saturation (share of action components with |tanh| > 0.99), its mean |a|, its distance to the
actions that were taken, min(Q1, Q2)(z, pi(z)), and the critic's bias on the episodes of the set that
succeeded: min(Q1, Q2)(z_t, a_t) minus the discounted return-to-go (Meta-World's reward is success - 1 and
success persists, so a successful episode's 100-step return is its infinite-horizon value; > 0 = optimism).

    .venv/bin/python benchmarks/learning/diagnostics/policy_saturation.py RUNS_ROOT TASK_PRESET [EPISODES]

e.g. RUNS_ROOT=/work/runs3x TASK_PRESET=mw-hammer_cpu-small. One torch thread; prints a table per method.
"""

import sys
from pathlib import Path

import numpy as np
import torch

from modem_ros.agent.modem import ModemAgent, saturated_share
from modem_ros.agent.offline import q_vs_return
from modem_ros.config import ModemConfig
from modem_ros.data.demos import episode_dirs, read_episode


def frames(episodes: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rgb [N, C, H, W] uint8, state [N, S], taken action [N, A]) of every step of the episodes."""
    rgb = np.stack([r for e in episodes for r in e.rgb[:-1]])
    state = np.stack([s for e in episodes for s in e.state[:-1]])
    action = np.stack([a for e in episodes for a in e.action])
    return torch.from_numpy(rgb), torch.from_numpy(state), torch.from_numpy(action)


@torch.no_grad()
def row(agent: ModemAgent, episodes: list) -> dict[str, float]:
    rgb, state, taken = frames(episodes)
    succeeded = [e for e in episodes if e.succeeded]
    z = torch.cat([agent.model.encode(r, s) for r, s in zip(rgb.split(256), state.split(256), strict=True)])
    mean = agent.model.pi(z)
    q = torch.min(*agent.model.q(z, mean))
    return {"saturated": float(saturated_share(mean)), "mean_abs": float(mean.abs().mean()),
            "dist_taken": float((mean - taken).pow(2).sum(1).sqrt().mean()), "q": float(q.mean()),
            "q_bias": q_vs_return(agent, succeeded, agent.cfg.discount)["q_bias"] if succeeded else float("nan")}


def main(root: Path, last: int) -> None:
    torch.set_num_threads(1)
    runs = sorted(p / "seed1" for p in root.iterdir() if (p / "seed1" / "checkpoints").is_dir())
    configs = {run: ModemConfig(**torch.load(run / "checkpoints" / "final.pt", map_location="cpu",
                                             weights_only=True)["config"]) for run in runs}
    demo_dir = next(c.demo_dir for c in configs.values() if c.demo_dir)  # the same demos for every method
    for seed_dir, cfg in configs.items():
        run = seed_dir.parent
        train = [read_episode(p, cfg.frame_stack).episode for p in episode_dirs(seed_dir / "episodes")[-last:]]
        demos = [read_episode(p, cfg.frame_stack).episode for p in episode_dirs(demo_dir)]
        sets = {"train": train, "demos": demos}
        print(f"\n{run.name}: pi(z) on the last {last} training episodes' and the demos' observations")
        print(f"{'agent step':>10} {'set':>6} {'|a|>0.99':>9} {'mean |a|':>9} {'|pi-a|':>7} {'Q':>8} {'Q - G':>7}")
        for ckpt in sorted((seed_dir / "checkpoints").glob("step_*.pt")):
            agent = ModemAgent(cfg, torch.device("cpu"))
            agent.load(ckpt)
            for name, episodes in sets.items():
                r = row(agent, episodes)
                print(f"{int(ckpt.stem.split('_')[1]):>10} {name:>6} {r['saturated']:>9.2f} {r['mean_abs']:>9.2f} "
                      f"{r['dist_taken']:>7.2f} {r['q']:>8.2f} {r['q_bias']:>7.2f}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]) / sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 10)
