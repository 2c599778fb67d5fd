"""The numeric precision of a run: `precision: auto | fp32 | bf16 | bf16-weights` in a
suite (or `--precision`).

auto: bf16 autocast on CUDA, float32 on a CPU (the harness's behaviour before the setting
existed, so its results and cache keys are unchanged); bf16: bf16 autocast on any device
(on a CPU with avx512_bf16 or AMX it is faster; elsewhere slower); fp32: no autocast.
Weights stay float32 in those three. bf16-weights: the weights themselves are loaded in
bfloat16 (harness/models.py: half the weight, gradient and AdamW-state memory of float32,
and no autocast copy of every weight), with bf16 autocast; meant for large models on
CUDA, and lossy: an update below a weight's bf16 resolution (2^-8 of it) is rounded away.
Autocast covers training, generation, evaluation and the probes. The runner sets the
precision for a whole cell (`using`); every cache key of model outputs includes it when it
is not `auto` (see harness/storage.py), as do the grid id and the cell's config hash.
"""

from __future__ import annotations

import contextlib
import contextvars

import torch

CHOICES = ("auto", "fp32", "bf16", "bf16-weights")
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
    enabled = precision in ("bf16", "bf16-weights") or (precision == "auto"
                                                         and dev.type == "cuda")
    kind = "cuda" if dev.type == "cuda" else "cpu"
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=enabled)


def weights_dtype(precision: str | None = None) -> torch.dtype:
    """The dtype models are loaded in at `precision` (the current one by default)."""
    return torch.bfloat16 if (precision or current()) == "bf16-weights" else torch.float32


def cpu_flags() -> set[str]:
    """The CPU's feature flags (/proc/cpuinfo; none where it cannot be read)."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return set()
    return {f for line in text.splitlines() if line.startswith("flags")
            for f in line.split(":", 1)[1].split()}


def cpu_has_bf16() -> bool:
    """Does this CPU compute bf16 natively (avx512_bf16 or AMX)? Without, bf16 is slower."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
