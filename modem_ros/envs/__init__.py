"""Environment adapters, one per suite, all returning the observation contract of envs.base."""

from __future__ import annotations

import os

# Headless rendering by default (a user's osmesa/glfw choice wins). It must be set before the suites
# import mujoco, and every adapter is imported through this package.
os.environ.setdefault("MUJOCO_GL", "egl")

from modem_ros.config import ConfigError, ModemConfig  # noqa: E402
from modem_ros.envs.base import EnvAdapter  # noqa: E402


def make_env(cfg: ModemConfig, seed: int | None = None) -> EnvAdapter:
    """Build the adapter of cfg.task (the toy task needs no simulator; the others the sim extra); a config
    whose state_dim / action_dim differ from the adapter's is refused naming both."""
    env = _make_env(cfg, seed)
    for key in ("state_dim", "action_dim"):
        have = getattr(env, key, None)
        if isinstance(have, int) and have != getattr(cfg, key):
            if hasattr(env, "close"):
                env.close()
            raise ConfigError(f"config key '{key}' is {getattr(cfg, key)} but task {cfg.task}'s environment has "
                              f"{have}")
    return env


def _make_env(cfg: ModemConfig, seed: int | None = None) -> EnvAdapter:
    seed = cfg.seed if seed is None else seed
    if cfg.suite == "toy":
        from modem_ros.envs.point_reach import PointReachEnv

        return PointReachEnv(cfg.img_size, cfg.frame_stack, cfg.episode_length, cfg.action_repeat, seed)
    args = (cfg.task, cfg.img_size, cfg.frame_stack, cfg.episode_length, cfg.action_repeat, seed)
    try:
        if cfg.suite == "metaworld":
            from modem_ros.envs.metaworld import MetaWorldEnv

            return MetaWorldEnv(*args)
        if cfg.suite == "dmcontrol":
            from modem_ros.envs.dmcontrol import DMControlEnv

            return DMControlEnv(*args)
        if cfg.suite == "adroit":
            from modem_ros.envs.adroit import AdroitEnv

            return AdroitEnv(*args)
        if cfg.suite == "franka":
            from modem_ros.envs.franka_cell import FrankaCellEnv

            return FrankaCellEnv(*args)
    except ImportError as err:
        raise ImportError(f"suite '{cfg.suite}' needs the sim extra: scripts/install.sh sim ({err})") from err
    raise NotImplementedError(f"no environment adapter for suite '{cfg.suite}' (task {cfg.task}) yet; "
                              "`modem-ros info` and `modem-ros bench` work for it without a simulator")
