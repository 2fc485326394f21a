"""Diagnostic behind BENCHMARKS.md's mw-hammer seeding comparison: what the seeding phase's data covers,
per run. For each run directory it reads the stored training episodes of a range (default 0-9: the
first 1000 agent steps, the seeding phase at 100-step episodes) and the run's demos, and reports

- actions: mean |a|, mean per-dimension std, the share of components past |0.9|, and the log-det of
  their covariance (a Gaussian entropy proxy: higher = more of the action box is visited);
- the hand (Meta-World state[0:3], metres): the number of 2 cm voxels visited, the per-axis std, and
  how far the hand went from the demos (mean distance from each seed-data hand position to its
  nearest demo hand position) and how well it covers the demos (the reverse);
- outcomes: episodes that succeeded, mean reward per step.

    .venv/bin/python benchmarks/learning/diagnostics/seed_coverage.py [--episodes 0:10] RUN_DIR [RUN_DIR ...]

No torch, no model: it reads the episodes' MCAP files only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from modem_ros.data.demos import episode_dirs, read_episode

VOXEL = 0.02  # metres


def nearest(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of a of the distance to the nearest row of b."""
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    return float(d.min(axis=1).mean())


def stats(episodes: list, demo_hand: np.ndarray) -> dict[str, float]:
    actions = np.concatenate([np.stack(e.action) for e in episodes])
    hand = np.concatenate([np.stack(e.state)[:, :3] for e in episodes])
    voxels = {tuple(v) for v in np.floor(hand / VOXEL).astype(int)}
    return {
        "episodes": len(episodes),
        "succeeded": int(sum(e.succeeded for e in episodes)),
        "reward_per_step": float(np.mean([r for e in episodes for r in e.reward])),
        "action_abs_mean": float(np.abs(actions).mean()),
        "action_std_mean": float(actions.std(axis=0).mean()),
        "action_past_0.9": float((np.abs(actions) > 0.9).mean()),
        "action_logdet_cov": float(np.linalg.slogdet(np.cov(actions.T) + 1e-9 * np.eye(actions.shape[1]))[1]),
        "hand_voxels_2cm": len(voxels),
        "hand_std_xyz": [round(float(s), 4) for s in hand.std(axis=0)],
        "hand_to_demos_m": nearest(hand, demo_hand),
        "demos_to_hand_m": nearest(demo_hand, hand),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--episodes", default="0:10", help="a Python slice of the stored episodes")
    args = parser.parse_args()
    start, stop = (int(x) for x in args.episodes.split(":"))
    rows = {}
    for run in args.runs:
        cfg = json.loads((run / "config.json").read_text())
        stack = cfg.get("frame_stack", 1)
        demos = [read_episode(p, stack).episode for p in episode_dirs(cfg["demo_dir"])][:cfg.get("demos", 5)]
        demo_hand = np.concatenate([np.stack(e.state)[:, :3] for e in demos])
        episodes = [read_episode(p, stack).episode for p in episode_dirs(run / "episodes")[start:stop]]
        rows[str(run)] = stats(episodes, demo_hand)
        rows[f"{run} (its demos)"] = stats(demos, demo_hand)
    keys = list(next(iter(rows.values())))
    width = max(map(len, rows))
    print(f"episodes {start}:{stop} of each run; hand voxels of {VOXEL * 100:.0f} cm")
    for key in keys:
        print(f"  {key}")
        for name, row in rows.items():
            print(f"    {name:{width}s}  {row[key]}")


if __name__ == "__main__":
    main()
