"""Metrics to metrics.jsonl (one JSON object per line), TensorBoard, and a short line on the console."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

X_KEYS = ("env_step", "updates_done")  # values that serve as a record's x-axis


def tensorboard_axis(kind: str, step: int, metrics: dict[str, Any]) -> tuple[str, int]:
    """One x-axis per kind of record, named in the tag: env steps for training and evaluation episodes
    (the reference's axis), the iteration for behaviour cloning, the update count inside update bursts."""
    if "env_step" in metrics:
        return "env steps", int(metrics["env_step"])
    if kind == "bc":
        return "BC iterations", step
    if "updates_done" in metrics:
        return "updates", int(metrics["updates_done"])
    return "agent steps", step


class MetricsLogger:
    def __init__(self, run_dir: Path | None = None, total_steps: int = 0, stream: TextIO | None = sys.stdout):
        self.path = None if run_dir is None else Path(run_dir) / "metrics.jsonl"
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.total_steps, self.stream, self.start = total_steps, stream, time.time()
        self.records: list[dict[str, Any]] = []
        self.hparams: dict[str, Any] = {}  # the config, written with the run's final metrics (TensorBoard HPARAMS)
        self._last_train: tuple[int, float] | None = None
        self.tensorboard = None
        if run_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def log(self, kind: str, step: int, metrics: dict[str, Any]) -> None:
        record = {"kind": kind, "step": step, "time": round(time.time() - self.start, 3), **metrics}
        self.records.append(record)
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            axis, x = tensorboard_axis(kind, step, metrics)
            for key, value in metrics.items():  # numbers only; phase names etc. stay in the JSONL
                if isinstance(value, (int, float)) and key not in X_KEYS:  # bools (success) as 0 / 1
                    self.tensorboard.add_scalar(f"{kind}/{key} (x: {axis})", float(value), x)
            if kind == "summary":  # the run's hyperparameters beside its final numbers
                self.tensorboard.add_hparams(
                    {k: v for k, v in self.hparams.items() if isinstance(v, (int, float, str, bool))},
                    {f"final/{k}": float(v) for k, v in metrics.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None},
                    run_name=".")
            self.tensorboard.flush()
        if self.stream is not None:
            self.stream.write(self._format(record) + "\n")
            self.stream.flush()

    def _format(self, record: dict[str, Any]) -> str:
        step, elapsed = record["step"], record["time"]
        eta = ""
        if record["kind"] == "train":  # ETA from the latest rate: phases differ wildly in cost per step
            if self._last_train and step > self._last_train[0] and self.total_steps:
                rate = (elapsed - self._last_train[1]) / (step - self._last_train[0])
                eta = f" eta {max(0.0, rate * (self.total_steps - step)):.0f}s"
            self._last_train = (step, elapsed)
        fields = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in record.items() if k not in ("kind", "step", "time"))
        return f"[{record['kind']:>5}] step {step:>7} {fields} ({elapsed:.0f}s{eta})"
