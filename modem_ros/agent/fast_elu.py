"""ELU for planning on CPU: one vectorised pass instead of torch's expm1, built on first use.

Planning runs ~126 ELUs per action on [537, 512] activations and torch's CPU ELU spends most of that in
its vectorised expm1 (Sleef, ~4x the cost of exp): on the AMX Xeon host it was 21 ms of a 70 ms bf16 plan
(BENCHMARKS.md), and torch's oneDNN linear takes no ELU epilogue to fuse it. This kernel computes
expm1(x) = 2^n (expm1(r) + 1) - 1 with |r| <= ln2/2 and a degree-7 polynomial for expm1(r): within 1 ulp
of float64 ELU (as torch's own), bitwise equal to F.elu on bf16, NaN/inf/-0 kept.

It is a few lines of C compiled with the host's C compiler (`$CC`, else `cc`) for this CPU
(-march=native) into ~/.cache/modem_ros/kernels (keyed by source, flags and the CPU's ISA flags, so a
home shared by hosts of different ISAs is safe), and called through ctypes (no torch headers, no
pybind: a build takes well under a second). Where no compiler works, `elu_` is F.elu and one warning
says why. Inference only: tensors that need grad, non-contiguous ones and other dtypes take F.elu.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from modem_ros.runtime import cpuinfo

SOURCE = r"""
#include <stdint.h>
#include <string.h>
#include <stddef.h>

/* expm1(x) for x in [-87, 0]: x = n ln2 + r, |r| <= ln2/2, expm1(x) = 2^n (expm1(r) + 1) - 1. */
static inline float expm1_neg(float x) {
    x = x < -87.0f ? -87.0f : x;                          /* expm1(-87) is -1 in float already */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  /* round(x / ln2) */
    float r = x - n * 0.693145751953125f;                 /* Cody-Waite: ln2 = hi + lo */
    r = r - n * 1.42860682030941723212e-6f;
    float p = 1.0f / 5040.0f;                             /* Taylor to r^7: error < 2e-8 relative */
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r * r + r;
    int32_t bits = ((int32_t)n + 127) << 23;              /* 2^n, n in [-126, 0] */
    float s;
    memcpy(&s, &bits, sizeof s);
    return s * p + (s - 1.0f);
}

void elu_f32(float *x, ptrdiff_t count) {
    for (ptrdiff_t i = 0; i < count; ++i) {
        float v = x[i];
        float e = expm1_neg(v < 0.0f ? v : 0.0f);
        x[i] = v < 0.0f ? e : v;                          /* NaN, +-0 and positives pass unchanged */
    }
}

void elu_bf16(uint16_t *x, ptrdiff_t count) {
    for (ptrdiff_t i = 0; i < count; ++i) {
        uint32_t bits = (uint32_t)x[i] << 16;
        float v;
        memcpy(&v, &bits, sizeof v);
        float e = expm1_neg(v < 0.0f ? v : 0.0f);
        uint32_t u;
        memcpy(&u, &e, sizeof u);
        u += 0x7FFFu + ((u >> 16) & 1u);                  /* round to nearest even, as torch does */
        x[i] = v < 0.0f ? (uint16_t)(u >> 16) : x[i];
    }
}
"""

FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-shared", "-fPIC"]
X86_FLAGS = ["-mprefer-vector-width=512"]  # gcc defaults to 256-bit vectors even on AVX-512 CPUs
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modem_ros" / "kernels"

_state: dict = {"lib": None, "tried": False, "enabled": os.environ.get("MODEM_ROS_FAST_ELU", "1") != "0"}


def _cpu_key() -> str:
    """The CPU's feature flags (what -march=native compiles for), so a build never runs on another ISA."""
    return cpuinfo("flags", "Features") or platform.processor() + platform.machine()


def _build(cache: Path) -> Path:
    compiler = os.environ.get("CC", "cc")
    flags = FLAGS + (X86_FLAGS if platform.machine() in ("x86_64", "AMD64") else [])
    key = hashlib.sha256("\n".join([SOURCE, compiler, *flags, _cpu_key()]).encode()).hexdigest()[:16]
    target = cache / f"elu-{key}.so"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:  # build beside the target, then rename atomically
        src, out = Path(tmp) / "elu.c", Path(tmp) / "elu.so"
        src.write_text(SOURCE)
        done = subprocess.run([compiler, *flags, str(src), "-o", str(out)], capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {done.stderr.strip()[-500:]}")
        os.replace(out, target)
    return target


def library(cache: Path = CACHE) -> ctypes.CDLL | None:
    """The compiled kernel, built once per process (and once per host into the cache); None where no C
    compiler works here (then a warning, and F.elu everywhere)."""
    if not _state["tried"]:
        _state["tried"] = True
        try:
            lib = ctypes.CDLL(str(_build(cache)))
            for name in ("elu_f32", "elu_bf16"):
                getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
                getattr(lib, name).restype = None
            _state["lib"] = lib
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            warnings.warn(f"fast ELU kernel unavailable, planning uses torch's ELU ({exc})", RuntimeWarning,
                          stacklevel=2)
    return _state["lib"]


def available() -> bool:
    return _state["enabled"] and library() is not None


@contextlib.contextmanager
def fast_elu_kernel(enabled: bool):
    """Plan with this kernel (when it built) or with torch's ELU: same function to 1 ulp."""
    previous, _state["enabled"] = _state["enabled"], enabled
    try:
        yield
    finally:
        _state["enabled"] = previous


def elu_(x: torch.Tensor) -> torch.Tensor:
    """F.elu(x, inplace=True), on this kernel for contiguous fp32/bf16 CPU tensors outside autograd."""
    if (_state["enabled"] and x.device.type == "cpu" and x.is_contiguous() and not x.requires_grad
            and x.dtype in (torch.float32, torch.bfloat16) and not torch.compiler.is_compiling()
            and library() is not None):
        kernel = _state["lib"].elu_f32 if x.dtype == torch.float32 else _state["lib"].elu_bf16
        kernel(x.data_ptr(), x.numel())  # x stays referenced here for the call: the pointer stays valid
        return x
    return F.elu(x, inplace=True)
