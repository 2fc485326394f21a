"""Process-level settings, called once at program start: CPU training speed, and how a process stops."""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys
from pathlib import Path

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def cpuinfo(*keys: str) -> str:
    """The value of the first /proc/cpuinfo field named one of `keys` ("" where there is none, or no
    /proc/cpuinfo): what the host's CPU is, for choices and records that depend on it."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    fields = (line.split(":", 1) for line in lines if ":" in line)
    return next((value.strip() for name, value in fields if name.strip() in keys), "")


def keep_freed_memory() -> bool:
    """Stop glibc from handing large freed blocks back to the OS.

    An update allocates and frees gigabytes of activations; by default glibc serves each large block
    with a fresh mmap and unmaps it on free, so every update page-faults all of it in again (half the
    CPU time of an 84 px update went to the kernel). Serving them from the heap and never trimming
    keeps that memory mapped between updates. Linux/glibc only; returns whether it was applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError):
        return False


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """Ctrl-C and SIGTERM both raise KeyboardInterrupt, so a long process stops the same way either way.
    SIGINT is installed explicitly: a process started in the background by a non-interactive shell
    (`nohup ... &`) inherits it as ignored, and SIGTERM is then the only way to stop it."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
