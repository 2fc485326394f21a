"""The learning curve of a run: evaluation success rate and return against env steps, as a PNG."""

from __future__ import annotations

import json
from pathlib import Path


def metrics_records(metrics_path: Path, kind: str) -> list[dict]:
    """The records of one kind in a metrics.jsonl (a run resumed after a crash appends to the same file);
    none while the run has not written the file yet."""
    records = []
    path = Path(metrics_path)
    for line in (path.read_text().splitlines() if path.exists() else []):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill, or being written; the rest is intact
            continue
        if isinstance(record, dict) and record.get("kind") == kind:  # a bare value is no record either
            records.append(record)
    return records


def eval_records(metrics_path: Path) -> list[dict]:
    """The `eval` records of a metrics.jsonl."""
    return metrics_records(metrics_path, "eval")


def learning_curve(metrics_path: Path, out: Path, title: str = "") -> Path | None:
    """Draw success rate and mean return per evaluation; None when there is nothing to draw."""
    records = eval_records(metrics_path)
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display on robots and CI machines
    import matplotlib.pyplot as plt

    steps = [r.get("env_step", r["step"]) for r in records]  # env steps, as the axis says (older runs: agent)
    fig, (ax_success, ax_return) = plt.subplots(1, 2, figsize=(9, 3.2))
    ax_success.plot(steps, [100 * r["success_rate"] for r in records], marker="o")
    ax_success.set(xlabel="env steps", ylabel="success rate (%)", ylim=(-5, 105))
    ax_return.plot(steps, [r["episode_return"] for r in records], marker="o", color="tab:orange")
    ax_return.set(xlabel="env steps", ylabel="mean episode return")
    for ax in (ax_success, ax_return):
        ax.grid(alpha=0.3)
        ax.set_xlim(0, max(max(steps), 1) * 1.05)  # one point (the first evaluation) still gets a real axis
    fig.suptitle(title)
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
    return out
