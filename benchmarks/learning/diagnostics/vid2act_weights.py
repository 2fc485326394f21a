"""Vid2Act's similarity weight per source over a run (issue 21: "a user sees which source helped when"), from
the runs' metrics.jsonl: the seed burst's progress records (every tenth of the burst) and each training
episode's record (the mean weight of its last update). Writes one JSON (each run's weights, its task, seed
and Vid2Act settings, and the commit this script ran at) and a PNG of every seed's weights against gradient
updates.

    python benchmarks/learning/diagnostics/vid2act_weights.py OUT.json RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from modem_ros.bench_learn import COMMIT
from modem_ros.plots import metrics_records

PREFIX = "vid2act_w/"
META = ("step", "updates", "phase")


def source_weights(rec: dict) -> dict[str, float]:
    """{source: weight} from one metrics record's vid2act_w/<source> entries."""
    return {k[len(PREFIX):]: round(float(v), 4) for k, v in rec.items() if k.startswith(PREFIX)}


def weight_series(run_dir: Path) -> list[dict]:
    """[{step, updates, phase, <source>: weight, ...}]: updates counts every gradient update so far (the
    seed burst's progress records count within it; it is the run's first updates)."""
    metrics = run_dir / "metrics.jsonl"
    rows = []
    for rec in metrics_records(metrics, "update"):
        weights = source_weights(rec)
        if weights and rec["updates_done"] < rec["updates_total"]:  # the burst's end is its train record
            rows.append({"step": rec["step"], "updates": rec["updates_done"], "phase": "seed burst"} | weights)
    updates = 0
    for rec in metrics_records(metrics, "train"):
        updates += int(rec.get("updates", 0))
        weights = source_weights(rec)
        if weights:
            rows.append({"step": rec["step"], "updates": updates, "phase": rec["phase"]} | weights)
    return sorted(rows, key=lambda r: r["updates"])


def run_settings(run_dir: Path) -> dict:
    """The run's task, seed and vid2act_* settings (its config.json), so the JSON says what it measured."""
    cfg = json.loads((run_dir / "config.json").read_text())
    return {k: v for k, v in cfg.items() if k in ("task", "seed", "train_steps") or k.startswith("vid2act_")}


def plot(series: dict[str, list[dict]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    colours = {}
    for run, rows in series.items():
        for source in [k for k in rows[0] if k not in META]:
            colour = colours.setdefault(source, f"C{len(colours)}")
            ax.plot([r["updates"] for r in rows], [r[source] for r in rows], color=colour, alpha=0.7,
                    label=source if run == next(iter(series)) else None)
    ax.set(xlabel="gradient updates (the first 1000: the seed burst)",
           ylabel="mean similarity weight", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    out = Path(argv[0])
    dirs = {f"{Path(d).parent.name}/{Path(d).name}": Path(d) for d in argv[1:]}  # method/seedN
    series = {name: weight_series(d) for name, d in dirs.items()}
    empty = [str(dirs[name]) for name, rows in series.items() if not rows]
    if empty:
        print(f"no vid2act_w/* records in {empty}: not Vid2Act runs, or not started")
        return 1
    settings = {name: run_settings(d) for name, d in dirs.items()}
    out.write_text(json.dumps({"commit": COMMIT, "settings": settings, "runs": series}, indent=1) + "\n")
    plot(series, out.with_suffix(".png"))
    for run, rows in series.items():
        print(f"# {run}")
        for r in rows:
            print(f"step {r['step']:6d}  updates {r['updates']:5d}  {r['phase']:<12} "
                  + "  ".join(f"{k} {v:.3f}" for k, v in r.items() if k not in META))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
