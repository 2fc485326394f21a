"""Linear schedules of the reference: std bound, planning horizon and demo share kappa."""

from __future__ import annotations

from modem_ros.config import ModemConfig


def linear(init: float, final: float, duration: int, step: int) -> float:
    """init -> final linearly over `duration` steps, then constant (reference `linear(a, b, n)`)."""
    if duration <= 0:
        return final
    mix = min(max(step / duration, 0.0), 1.0)
    return init + mix * (final - init)


def std_bound(cfg: ModemConfig, step: int) -> float:
    """Lower bound of the MPPI std: linear(std_schedule_init -> min_std over std_schedule_steps)."""
    return linear(cfg.std_schedule_init, cfg.min_std, cfg.std_schedule_steps, step)


def planning_horizon(cfg: ModemConfig, step: int) -> int:
    """Planning horizon: linear(1 -> horizon over horizon_schedule_steps), truncated to an int."""
    return int(min(cfg.horizon, linear(1, cfg.horizon, cfg.horizon_schedule_steps, step)))


def kappa(cfg: ModemConfig, step: int) -> float:
    """Share of demonstration snippets in each batch: linear(kappa_init -> kappa_final)."""
    return linear(cfg.kappa_init, cfg.kappa_final, cfg.kappa_steps, step)
