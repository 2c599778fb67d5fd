"""A cell that runs out of GPU memory fails alone, with what would make it fit (the
estimate of harness/memory_fit.py for the GPU it ran on), and leaves the GPU clean for the next."""

from __future__ import annotations

import functools
import os

from harness.errors import HarnessError
from harness.memory import GIB
from harness.memory_fit import estimate


def is_oom(exc: BaseException) -> bool:
    """Is `exc` CUDA running out of memory?"""
    import torch

    kinds = tuple(k for k in (getattr(torch.cuda, "OutOfMemoryError", None),
                              getattr(torch, "OutOfMemoryError", None)) if k)
    return isinstance(exc, kinds) or (isinstance(exc, RuntimeError)
                                      and "out of memory" in str(exc))


def oom_error(cell, suite, device, exc: BaseException) -> HarnessError:
    """The one-line failure of a cell that ran out of GPU memory, with the estimate's
    advice for the GPU it ran on."""
    import torch

    first, gib = (str(exc).strip().splitlines() or [""])[0][:120], None
    try:
        gib = (torch.cuda.get_device_properties(device).total_memory / GIB
               if torch.device(device).type == "cuda" else None)
        e = estimate(cell, suite, gib if gib else None)
        told = f"estimated peak {e['peak_gib']:.1f} GiB ({e['phase']})"
        fix = e.get("advice") or ("the estimate fits: lower train.batch_size (raising "
                                  "train.grad_accum) or eval.batch_size, or set "
                                  "train.gradient_checkpointing: true")
    except Exception as why:  # the estimate itself failed: still fail the cell clearly
        told, fix = f"no estimate: {type(why).__name__}", (
            "set train.gradient_checkpointing: true, train.optimizer: adamw-8bit or "
            "precision: bf16-weights, or lower train.batch_size")
    on = f" on {torch.cuda.get_device_name(device)}" if gib else ""
    shared = int(os.environ.get("HARNESS_CELLS_PER_GPU", "1"))  # set by `--jobs` workers
    if shared > 1:
        fix = f"{shared} cells share this GPU: run fewer at once (--jobs), or {fix}"
    return HarnessError(f"out of GPU memory{on} ({first}; {told})", fix)


def advise_on_oom(run_cell):
    """Decorates Runner.run_cell: an out-of-memory error fails only that cell, as a
    HarnessError carrying the estimate's advice; the failed cell's tensors are released
    (the error's frames let go, cached blocks returned) before the next cell starts."""

    @functools.wraps(run_cell)
    def wrapper(runner, cell, *args, **kwargs):
        try:
            return run_cell(runner, cell, *args, **kwargs)
        except Exception as exc:
            if not is_oom(exc):
                raise
            error = oom_error(cell, runner.suite, runner.device, exc)
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise error

    return wrapper
