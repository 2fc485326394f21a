"""Environment adapters, one per suite, all returning the observation contract of envs.base."""

from __future__ import annotations

from modem_ros.config import ModemConfig
from modem_ros.envs.base import EnvAdapter


def make_env(cfg: ModemConfig, seed: int | None = None) -> EnvAdapter:
    """Build the adapter of cfg.task. Suites other than the built-in toy arrive with their adapters."""
    seed = cfg.seed if seed is None else seed
    if cfg.suite == "toy":
        from modem_ros.envs.point_reach import PointReachEnv

        return PointReachEnv(cfg.img_size, cfg.frame_stack, cfg.episode_length, cfg.action_repeat, seed)
    raise NotImplementedError(f"no environment adapter for suite '{cfg.suite}' (task {cfg.task}) yet; "
                              "`modem-ros info` and `modem-ros bench` work for it without a simulator")
