"""Assemble a Trainer from a config: env, agent, buffers, demos, logger, run directory."""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import torch

from modem_ros.agent.modem import ModemAgent
from modem_ros.agent.vid2act import TeacherError, Vid2Act, load_teachers
from modem_ros.announce import run_id_of
from modem_ros.config import ConfigError, ModemConfig
from modem_ros.data.demos import DemoError, episode_dirs, generate, load_demo_dir
from modem_ros.data.episode import Episode
from modem_ros.data.replay import EpisodeBuffer
from modem_ros.envs import make_env
from modem_ros.logger import MetricsLogger
from modem_ros.sim_operator import ScriptedOperator
from modem_ros.trainer import Trainer, scripted_demos


class RunDirInUse(RuntimeError):
    """Another live trainer holds the run directory (the message names its pid and host)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_run_dir(run_dir: Path) -> None:
    """Take run_dir/lock for this process (released at exit). A second trainer on the same directory
    would interleave config.json, metrics and checkpoints: it is refused, naming the holder. A lock
    whose process is gone (killed) is taken over; one from another host cannot be checked and is kept."""
    lock = run_dir / "lock"
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(lock.read_text())
                pid, host = int(holder["pid"]), str(holder["host"])
            except (OSError, ValueError, KeyError, TypeError):
                holder, pid, host = {}, -1, ""
            if pid == me["pid"] and host == me["host"]:
                return  # this process already holds it
            if host == me["host"] and not _pid_alive(pid):
                lock.unlink(missing_ok=True)  # its trainer was killed: stale
                continue
            if not holder:
                lock.unlink(missing_ok=True)  # unreadable (cut by a kill while written)
                continue
            raise RunDirInUse(f"{run_dir} is in use by a trainer (pid {pid} on {host}, since "
                              f"{holder.get('since', '?')}); use another run_dir, or delete {lock} if that "
                              "process is gone") from None
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(me) + "\n")
        atexit.register(lambda: lock.unlink(missing_ok=True) if _holder_pid(lock) == me["pid"] else None)
        return
    raise RunDirInUse(f"{lock}: could not take the lock")


def _holder_pid(lock: Path) -> int | None:
    try:
        return int(json.loads(lock.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_demos(cfg: ModemConfig, logger: MetricsLogger) -> list[Episode]:
    """The first cfg.demos readable episodes of cfg.demo_dir; unreadable ones are logged and skipped."""
    good = _load_dirs(cfg.demo_dir, cfg, logger)
    if not good:
        raise DemoError(f"{cfg.demo_dir}: no readable demo episodes")
    return [bag.episode for bag in good[:cfg.demos]]


def _load_dirs(dirs: str, cfg: ModemConfig, logger: MetricsLogger) -> list:
    """Readable episodes of comma-separated dataset directories, in order; unreadable ones logged and
    skipped; images of another size refused, naming the bag."""
    good = []
    for directory in [d.strip() for d in dirs.split(",") if d.strip()]:
        ok, bad = load_demo_dir(directory, cfg.frame_stack)
        for err in bad:
            logger.log("demo_error", 0, {"error": str(err)})
        good += ok
    for bag in good:
        shape = bag.episode.rgb[0].shape
        if shape != cfg.rgb_shape:
            raise DemoError(f"{bag.path}: images are {shape}, the config expects {cfg.rgb_shape} (img_size)")
    return good


def load_offline(cfg: ModemConfig, logger: MetricsLogger) -> list[Episode]:
    """Every readable episode of cfg.offline_dirs (the `offline` role: sampled like replay)."""
    return [bag.episode for bag in _load_dirs(cfg.offline_dirs, cfg, logger)] if cfg.offline_dirs else []


def demo_cache_dir(cfg: ModemConfig) -> Path:
    """Where demos of a task are generated on first use: $MODEM_ROS_DATA or ~/.cache/modem_ros."""
    root = Path(os.environ.get("MODEM_ROS_DATA") or Path.home() / ".cache" / "modem_ros")
    return root / "demos" / f"{cfg.task}-{cfg.img_size}px-seed{cfg.seed}"


def ensure_demos(cfg: ModemConfig, log=print) -> Path:
    """cfg.demo_dir if set; otherwise the task's demo cache, filled by its expert when short."""
    if cfg.demo_dir:
        return Path(cfg.demo_dir)
    directory = demo_cache_dir(cfg)
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Several runs starting at once (bench_learn_parallel.sh) share this cache: one generates, the others
    # wait for it and find the demos there, instead of racing to write the same episode names.
    with open(directory.parent / f".{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        have = len(episode_dirs(directory)) if directory.is_dir() else 0
        if have < cfg.demos:
            log(f"demos: generating {cfg.demos - have} expert episodes of {cfg.task} into {directory} (first use)")
            written, attempts, _ = generate(cfg, cfg.demos - have, directory)
            if have + len(written) < cfg.demos:
                raise DemoError(f"{directory}: the expert succeeded in {sum(attempts)} of {len(attempts)} "
                                f"attempts; {have + len(written)} of {cfg.demos} demos available")
    return directory


def split_heldout(episodes: list) -> tuple[list, list]:
    """(kept, held out): every tenth episode kept out of training, where the critic's overfitting is
    measured. Every tenth, not the last tenth: offline_dirs come one dataset after another, and a held-out
    set of the last directory alone would measure the critic on one quality of data (e.g. only random)."""
    if len(episodes) < 2:
        return episodes, []
    out = set(range(9, len(episodes), 10)) or {len(episodes) - 1}
    return [e for i, e in enumerate(episodes) if i not in out], [e for i, e in enumerate(episodes) if i in out]


def build_trainer(cfg: ModemConfig, run_dir: Path | None = None, log_stream=None, collect: bool = True) -> Trainer:
    """The trainer with its own env (`collect`, the plain loop) or without (the ROS graph, where the
    sim bridge owns the env and episodes arrive as messages); evaluation always has its own env."""
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock_run_dir(run_dir)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    agent = ModemAgent(cfg)
    transfer = None
    if cfg.vid2act_teachers:  # paper 003: teachers of other tasks' data, frozen; the learned part beside the agent
        try:
            transfer = Vid2Act(cfg, load_teachers(cfg, agent.device), agent.device)
        except TeacherError as err:
            raise ConfigError(f"vid2act_teachers: {err}") from err
        agent.extensions.append(transfer)
    env = make_env(cfg, seed=cfg.seed) if collect else None
    eval_env = make_env(cfg, seed=cfg.seed + 1)
    logger = MetricsLogger(run_dir, total_steps=cfg.train_steps, **({} if log_stream is None else
                                                                    {"stream": log_stream}))
    logger.hparams = cfg.to_dict()
    if cfg.demos and not cfg.demo_dir and env is None:
        raise DemoError("a trainer without its own env needs demo_dir (see ensure_demos)")
    if cfg.demos == 0:
        demos = []
    else:
        demos = load_demos(cfg, logger) if cfg.demo_dir else scripted_demos(env, cfg.demos, seed=cfg.seed * 1000)
    # room for the operator's takeovers too (in sim: sim_operator.py's), oversampled like the demos
    demo_buffer = EpisodeBuffer(cfg, sum(len(d) for d in demos) + cfg.intervention_capacity, agent.device,
                                name="demo")
    for demo in demos:
        demo_buffer.add(demo)
    offline = load_offline(cfg, logger)
    offline, heldout = split_heldout(offline) if cfg.offline_steps else (offline, [])
    replay = EpisodeBuffer(cfg, cfg.train_steps + cfg.episode_length + sum(len(e) for e in offline), agent.device,
                           name="replay")
    for episode in offline:
        replay.add(episode)
    if offline:
        logger.log("offline_data", 0, {"episodes": len(offline), "steps": sum(len(e) for e in offline),
                                  "success_rate": float(np.mean([e.succeeded for e in offline]))})
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    if transfer is not None:
        logger.log("vid2act", 0, {"sources": transfer.names})
    if demos:
        logger.log("demos", 0, {"episodes": len(demos), "success_rate": float(np.mean([d.succeeded for d in demos])),
                                "mean_return": float(np.mean([d.total_reward for d in demos]))})
    # sim only, the plain loop (the ROS graph's takeovers come from the teleop gate)
    operator = (ScriptedOperator(cfg.sim_operator_patience, cfg.sim_operator_steps)
                if cfg.sim_operator_patience and env is not None else None)
    if operator is not None:
        logger.log("note", 0, {"operator": f"scripted stand-in (sim_operator.py): takes over with the env's expert "
                                           f"after {operator.patience} steps without progress, for "
                                           f"{operator.takeover_steps} steps"})
    return Trainer(cfg, env, agent, demo_buffer, replay, logger, eval_env=eval_env, run_dir=run_dir,
                   run_id=run_id_of(run_dir) if run_dir is not None else "", heldout=heldout, operator=operator)

