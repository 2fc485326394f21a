"""One line per training episode and evaluation of a run, in the order they happened, from its metrics.jsonl:
where in a run a good policy appears and where it is lost (issue 20: the offline phase's peaks that online
learning does not keep).

    python benchmarks/learning/diagnostics/run_timeline.py RUN_DIR [RUN_DIR ...]

Columns: agent step, phase, training episode success and return, and the update metrics logged with it
(the critic's mean Q of the policy's actions where the run logs it, the policy loss, the behaviour-
regularisation weight); evaluation rows show success rate and mean return.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def timeline(run_dir: Path) -> list[str]:
    lines = [f"# {run_dir}"]
    wins = episodes = 0
    for raw in (run_dir / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(raw)
        if rec["kind"] == "eval":
            lines.append(f"{rec['step']:6d}  EVAL  success {rec['success_rate']:.2f}  "
                         f"return {rec['episode_return']:8.2f}"
                         f"   (training successes so far {wins}/{episodes})")
        elif rec["kind"] == "train":
            episodes += 1
            wins += bool(rec["success"])
            extra = "  ".join(f"{k} {rec[k]:.3g}" for k in ("q", "pi_loss", "bc_reg", "value_loss") if k in rec)
            lines.append(f"{rec['step']:6d}  {rec['phase']:<13} {'WIN ' if rec['success'] else '    '}"
                         f"return {rec['episode_return']:8.2f}  {extra}")
    return lines


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print("\n".join(timeline(Path(arg))))
