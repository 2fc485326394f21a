"""One line per training episode and evaluation of a run, in the order they happened, from its metrics.jsonl:
where in a run a good policy appears and where it is lost (issue 20: the offline phase's peaks that online
learning does not keep).

    python benchmarks/learning/diagnostics/run_timeline.py RUN_DIR [RUN_DIR ...]

Columns: agent step, phase, training episode success and return, and the update metrics logged with it
(the policy loss, the critic's gradient at the policy's action, the policy's tanh saturation, the value
loss, the demos' share κ); evaluation rows show success rate and mean return.
"""

from __future__ import annotations

import sys
from pathlib import Path

from modem_ros.plots import metrics_records


def timeline(run_dir: Path) -> list[str]:
    metrics = run_dir / "metrics.jsonl"
    # an evaluation at step N follows the training episode that ended at N
    records = sorted(metrics_records(metrics, "train") + metrics_records(metrics, "eval"),
                     key=lambda rec: (rec["step"], rec["kind"] == "eval"))
    lines = [f"# {run_dir}"]
    wins = episodes = 0
    for rec in records:
        if rec["kind"] == "eval":
            lines.append(f"{rec['step']:6d}  EVAL  success {rec['success_rate']:.2f}  "
                         f"return {rec['episode_return']:8.2f}"
                         f"   (training successes so far {wins}/{episodes})")
        else:
            episodes += 1
            wins += bool(rec["success"])
            keys = ("pi_loss", "pi_q_grad", "pi_saturation", "value_loss", "kappa", "intervention_rate")
            extra = "  ".join(f"{k} {rec[k]:.3g}" for k in keys if k in rec)
            lines.append(f"{rec['step']:6d}  {rec['phase']:<13} {'WIN ' if rec['success'] else '    '}"
                         f"return {rec['episode_return']:8.2f}  {extra}")
    return lines

if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print("\n".join(timeline(Path(arg))))
