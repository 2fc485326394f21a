"""The console line's progress (issue 23 item 13): one ETA for the whole run that an update burst does
not throw off, and each long burst's own ETA."""

from __future__ import annotations

import io

from modem_ros.logger import MetricsLogger


def eta(line: str) -> float | None:
    words = line.rstrip(")").split()
    for i, word in enumerate(words[:-1]):
        if word == "eta" and words[i + 1].endswith("s"):
            return float(words[i + 1][:-1])
    return None


def test_the_run_eta_is_smoothed_and_ignores_the_update_bursts_time():
    logger = MetricsLogger(None, total_steps=3000, stream=io.StringIO())
    line = lambda kind, step, t, **m: logger._format({"kind": kind, "step": step, "time": t, **m})  # noqa: E731
    assert eta(line("train", 100, 1.0, phase="seed")) is None    # seeding's cheap steps predict nothing
    assert eta(line("train", 200, 2.0, phase="seed")) is None
    assert eta(line("train", 100, 10.0)) is None                 # one point: no rate yet
    assert eta(line("train", 200, 20.0)) == 280.0                # 0.1 s per step x 2800 steps
    # the seed burst: 1000 updates reported every tenth, 0.3 s each
    assert eta(line("update", 1000, 30.0, updates_done=100, updates_total=1000)) is None
    assert eta(line("update", 1000, 60.0, updates_done=200, updates_total=1000)) == 240.0
    assert eta(line("update", 1000, 300.0, updates_done=1000, updates_total=1000)) is None  # done
    # the next train record, 290 s after the last one: not a step's cost, the run's ETA holds its rate
    assert eta(line("train", 1300, 310.0)) == 170.0
    # a slower step rate moves the ETA smoothly, not at once
    after = eta(line("train", 1400, 330.0))                      # 0.2 s per step this interval
    assert 1600 * 0.1 < after < 1600 * 0.2
