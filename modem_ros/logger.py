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
        self._seconds_per_step: float | None = None   # smoothed, for the run's ETA
        self._burst: tuple[str, int, float, int] | None = None  # (kind, total, time, updates done) at its start
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
        if record["kind"] == "train":
            eta = self._run_eta(step, elapsed, str(record.get("phase", "")))
        elif "updates_done" in record and "updates_total" in record:
            eta = self._burst_eta(record["kind"], int(record["updates_done"]), int(record["updates_total"]), elapsed)
        fields = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in record.items() if k not in ("kind", "step", "time"))
        return f"[{record['kind']:>5}] step {step:>7} {fields} ({elapsed:.0f}s{eta})"

    def _run_eta(self, step: int, elapsed: float, phase: str = "") -> str:
        """The whole run's remaining time: the remaining steps at a smoothed cost per step of the phase
        the rest of the run is in. Seeding's steps (the BC policy acting, no planning, no updates) cost a
        fraction of a planned, updated step: they give no ETA (a run's first ETA used to say 34 s with
        ten minutes to go). An update burst between two train records is not a step's cost either: it
        resets the interval (it reports its own ETA), so the run's ETA does not jump after it."""
        if phase and phase != "interactive":
            self._last_train, self._seconds_per_step = (step, elapsed), None
            return ""
        if self._last_train and step > self._last_train[0]:
            rate = (elapsed - self._last_train[1]) / (step - self._last_train[0])
            self._seconds_per_step = rate if self._seconds_per_step is None else (
                0.7 * self._seconds_per_step + 0.3 * rate)
        self._last_train = (step, elapsed)
        if self._seconds_per_step is None or not self.total_steps:
            return ""
        return f" eta {max(0.0, self._seconds_per_step * (self.total_steps - step)):.0f}s"

    def _burst_eta(self, kind: str, done: int, total: int, elapsed: float) -> str:
        """A long burst of updates (reported every tenth): its own remaining time, from its start."""
        self._last_train = None
        if self._burst is None or self._burst[0] != kind or self._burst[1] != total or done <= self._burst[3]:
            self._burst = (kind, total, elapsed, done)
            return ""
        _, _, started, done0 = self._burst
        left = (elapsed - started) / (done - done0) * (total - done)
        return f" {kind} eta {left:.0f}s" if done < total else ""
