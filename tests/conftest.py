"""Shared fixtures: a small but complete MoDem configuration on the built-in toy-reach task."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from modem_ros.config import ModemConfig, load_config
from modem_ros.launcher import die_with_parent
from modem_ros.runtime import keep_freed_memory

keep_freed_memory()

# Small widths and budgets so the whole suite runs on a 2-core CPU; the math is the reference's.
SMALL = {"img_size": 48, "mlp_dim": 64, "enc_dim": 32, "latent_dim": 16, "num_channels": 8,
         "batch_size": 16, "num_samples": 64, "num_elites": 8, "iterations": 3, "episode_length": 20,
         "seed_steps": 40, "train_steps": 80, "bc_iters": 20, "eval_episodes": 2, "eval_freq": 80,
         "save_freq": 80, "demos": 3, "device": "cpu"}


def small_config(**overrides) -> ModemConfig:
    return load_config("toy-reach", {**SMALL, **overrides})


def random_episode_batch(cfg: ModemConfig, size: int = 16):
    """A replay batch of snippets from one toy-reach episode of uniformly random actions (seed 0)."""
    from modem_ros.data.replay import EpisodeBuffer
    from modem_ros.envs.point_reach import PointReachEnv
    from modem_ros.trainer import run_episode

    env = PointReachEnv(img_size=cfg.img_size, episode_length=cfg.episode_length)
    buffer = EpisodeBuffer(cfg, 2 * cfg.episode_length, "cpu")
    buffer.add(run_episode(env, lambda o, t: np.random.uniform(-1, 1, 2), seed=0))
    return buffer.sample(size)[0]


@pytest.fixture
def cfg() -> ModemConfig:
    return small_config()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


def drop_realtime() -> None:
    """libfranka raises the thread that connects to a robot to SCHED_FIFO 99 (even with RealtimeConfig.Ignore,
    as root). A test that drove a FrankyArm in this process would hand that priority to every process later
    tests launch from it (a whole graph at FIFO 99, whose torch threads starve the camera and the arm's
    server on a 2-core machine) and to every thread it starts: glibc's pthread_create copies the policy
    libfranka cached in the thread's descriptor, not the kernel's, so os.sched_setscheduler alone left the
    in-process probes' DDS and spin threads at FIFO 99 (their answers then came seconds late). Reset through
    pthread_setschedparam, which updates both. The bridge process still connects, and gets FIFO 99, on its own."""
    libc = ctypes.CDLL(None)
    libc.pthread_self.restype = ctypes.c_ulong
    priority = ctypes.c_int(0)  # struct sched_param {int sched_priority;}
    err = libc.pthread_setschedparam(ctypes.c_ulong(libc.pthread_self()), os.SCHED_OTHER, ctypes.byref(priority))
    if err:
        raise OSError(err, f"pthread_setschedparam(SCHED_OTHER): {os.strerror(err)}")


@pytest.fixture(autouse=True, scope="module")
def _no_inherited_realtime():
    """After each test module (a module's own arm keeps its priority while the module runs)."""
    yield
    drop_realtime()


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _franky_sim_binary() -> Path:
    """franky-sim lives in its own venv (mujoco 4 breaks dm_control): $FRANKY_SIM, or the one
    scripts/install.sh made beside this interpreter's venv."""
    if os.environ.get("FRANKY_SIM"):
        return Path(os.environ["FRANKY_SIM"])
    return Path(sys.prefix + "-franky-sim") / "bin" / "franky-sim"


@pytest.fixture(scope="session")
def franky_sim(tmp_path_factory):
    """A franky-sim server (MuJoCo FR3 behind the real Franka FCI protocol) on 127.0.0.1; yields its IP."""
    binary = _franky_sim_binary()
    assert binary.exists(), f"{binary} missing: scripts/install.sh test installs franky-sim into .venv-franky-sim"
    log = tmp_path_factory.mktemp("franky_sim") / "server.log"
    with open(log, "w") as out:
        # dies with the test process, however that ends (a crash, a kill): no orphan server left running
        proc = subprocess.Popen([str(binary), "-s", "mujoco", "--hostname", "127.0.0.1"], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, "MUJOCO_GL": "egl"},
                                start_new_session=True, preexec_fn=die_with_parent)
    deadline = time.monotonic() + 120
    while "Connect to the server" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, f"franky-sim did not start:\n{log.read_text()}"
        time.sleep(0.2)
    yield "127.0.0.1"
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def sigterm_when(args: list[str], ready, timeout: float = 300) -> tuple[int, str]:
    """Run `modem-ros ARGS` in its own session (as `nohup ... &` would, SIGINT ignored), send it SIGTERM
    once ready() holds; its exit code and output."""
    proc = subprocess.Popen([sys.executable, "-m", "modem_ros.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else ""
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        text, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, text

