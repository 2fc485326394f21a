"""Diagnostic (issue 20): the world model's losses through a run's interactive phase, from its metrics.jsonl
(one logged update every log interval): median and maximum of the consistency loss, the TD value loss and
the world model's gradient norm before clipping. online_losses.py METRICS.jsonl..."""

from __future__ import annotations

import json
import sys

import numpy as np


def summary(path: str) -> str:
    with open(path) as lines:
        rows = [json.loads(line) for line in lines]
    rows = [r for r in rows if r.get("phase") == "interactive" and "consistency_loss" in r]
    parts = [f"{path}: {len(rows)} logged updates"]
    for key in ("consistency_loss", "value_loss", "grad_norm"):
        values = np.array([r[key] for r in rows])
        parts.append(f"{key} median {np.median(values):.3g} max {values.max():.3g}")
    return "; ".join(parts)


if __name__ == "__main__":
    print("\n".join(summary(p) for p in sys.argv[1:]))
