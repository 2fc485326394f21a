"""Metrics to metrics.jsonl (one JSON object per line), TensorBoard, and a short line on the console."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO


class MetricsLogger:
    def __init__(self, run_dir: Path | None = None, total_steps: int = 0, stream: TextIO | None = sys.stdout):
        self.path = None if run_dir is None else Path(run_dir) / "metrics.jsonl"
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.total_steps, self.stream, self.start = total_steps, stream, time.time()
        self.records: list[dict[str, Any]] = []
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
            for key, value in metrics.items():  # numbers only; phase names etc. stay in the JSONL
                if isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(f"{kind}/{key}", float(value), step)
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
