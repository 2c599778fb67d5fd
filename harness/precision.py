"""The numeric precision of a run: `precision: auto | fp32 | bf16` in a suite (or
`--precision`).

auto: bf16 autocast on CUDA, float32 on a CPU (the harness's behaviour before the setting
existed, so its results and cache keys are unchanged); bf16: bf16 autocast on any device
(on a CPU with avx512_bf16 or AMX it is faster; elsewhere slower); fp32: no autocast.
Weights stay float32 in every case; autocast covers training, generation, evaluation and
the probes. The runner sets the precision for a whole cell (`using`); every cache key of
model outputs includes it when it is not `auto` (see harness/storage.py).
"""

from __future__ import annotations

import contextlib
import contextvars

import torch

CHOICES = ("auto", "fp32", "bf16")
_CURRENT = contextvars.ContextVar("precision", default="auto")


def current() -> str:
    return _CURRENT.get()


@contextlib.contextmanager
def using(precision: str):
    """Run a block (a cell) at `precision`."""
    token = _CURRENT.set(precision)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def autocast(device):
    """The autocast context for `device` at the current precision (a no-op context where
    the precision is float32)."""
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    precision = current()
    enabled = precision == "bf16" or (precision == "auto" and dev.type == "cuda")
    kind = "cuda" if dev.type == "cuda" else "cpu"
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=enabled)


def cpu_has_bf16() -> bool:
    """Does this CPU compute bf16 natively (avx512_bf16 or AMX)? Without, bf16 is slower."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
