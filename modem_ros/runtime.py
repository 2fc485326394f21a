"""Process-level settings: CPU training speed (call once at program start) and scheduling policy."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


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


def normal_scheduling() -> None:
    """The calling thread back to SCHED_OTHER (no-op where it already is, or where not supported)."""
    with contextlib.suppress(OSError, AttributeError):
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
