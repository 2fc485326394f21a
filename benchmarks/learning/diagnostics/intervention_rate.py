"""Issue 18's "the intervention rate falls as the agent improves", from a run's metrics.jsonl: per block of
training episodes, the share of steps the operator drove, the episodes it took over at all and the
training episodes that succeeded, beside the evaluations logged within the block; optionally a PNG.

    python benchmarks/learning/diagnostics/intervention_rate.py RUN_DIR [BLOCK [OUT.png]]

BLOCK: training episodes per row (default 10). Episodes of the seeding phase are the agent's too (BC
policy + noise), so they count.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from modem_ros.plots import metrics_records


def blocks(run_dir: Path, block: int) -> list[dict]:
    metrics = run_dir / "metrics.jsonl"
    train, evals = metrics_records(metrics, "train"), metrics_records(metrics, "eval")
    rows = []
    for i in range(0, len(train), block):
        part = train[i:i + block]
        first, last = part[0]["step"], part[-1]["step"]
        rates = np.array([rec.get("intervention_rate", 0.0) for rec in part])
        rows.append({"episodes": f"{i + 1}-{i + len(part)}", "steps": f"{first}-{last}",
                     "intervention_rate": float(rates.mean()), "taken_over": float(np.mean(rates > 0)),
                     "train_success": float(np.mean([bool(rec["success"]) for rec in part])),
                     "evals": [(e["step"], e["success_rate"]) for e in evals if first <= e["step"] <= last]})
    return rows


def plot(rows: list[dict], run_dir: Path, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(x, [r["intervention_rate"] for r in rows], "o-", label="share of steps the operator drove")
    ax.plot(x, [r["train_success"] for r in rows], "s--", label="training episodes succeeded")
    evals = [(i, v) for i, r in enumerate(rows) for _, v in r["evals"]]
    if evals:
        ax.plot(*zip(*evals, strict=True), "k^", markersize=9, label="evaluation success (at the block's end)")
    ax.set_xticks(x, [r["episodes"] for r in rows], rotation=45, fontsize=7)
    ax.set_xlabel("training episodes")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(str(run_dir.parent.parent.name + " / " + run_dir.parent.name + " / " + run_dir.name), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main(run_dir: Path, block: int = 10, out: Path | None = None) -> None:
    rows = blocks(run_dir, block)
    print(f"# {run_dir}: per {block} training episodes")
    print("episodes  agent steps   operator share of steps  episodes taken over  training success  evaluations")
    for r in rows:
        evals = ", ".join(f"{s}: {v:.2f}" for s, v in r["evals"]) or "-"
        print(f"{r['episodes']:>8}  {r['steps']:>11}   {r['intervention_rate']:23.2f}  {r['taken_over']:19.2f}  "
              f"{r['train_success']:16.2f}  {evals}")
    if out is not None:
        plot(rows, run_dir, out)
        print(f"(figure: {out})")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10,
         Path(sys.argv[3]) if len(sys.argv) > 3 else None)
