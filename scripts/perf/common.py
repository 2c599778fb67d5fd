"""What every part shares: the hardware line, the arith data, loading, timing summaries."""

from __future__ import annotations

import logging
import os
import platform
import statistics
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
BATCH, MAX_LEN, LR = 8, 192, 5e-5


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def bf16() -> bool:
    """Does the harness autocast to bf16 here, at the current precision? TRL is set alike."""
    from harness.precision import current

    return current() == "bf16" or (current() == "auto" and device().type == "cuda")


def hardware(threads: int) -> dict:
    """What the figures were measured on: they mean nothing without it."""
    if torch.cuda.is_available():
        chip = torch.cuda.get_device_name(0)
    else:
        chip = platform.processor() or "unknown CPU"
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.exists():
            names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                     if line.startswith("model name")]
            chip = names[0] if names else chip
    dtype = "bf16 autocast (ours and TRL)" if bf16() else "float32"
    return {"device": chip, "threads": threads, "cores": os.cpu_count(),
            "torch": torch.__version__, "dtype": dtype}


def quiet() -> None:
    """Library warnings would bury the figures."""
    import transformers

    transformers.logging.set_verbosity_error()
    for name in ("lm-eval", "lm_eval", "datasets", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import datasets

    datasets.disable_progress_bars()


def arith_train() -> list:
    """The 64 training examples of `arith` with the default data seed, as a cell uses them."""
    from harness.tasks import get_task

    return list(get_task("arith").split(64, 32, 0).train)


def load(model_path: str):
    """(model, tokenizer) in float32 on the benchmark device, through the harness loader."""
    from harness.models import load_model

    model, tok, _ = load_model(model_path, str(device()), log=lambda m: None)
    return model, tok


def spread(values: list[float]) -> dict:
    """Median with min-max: a single ratio hides how much the machine wandered."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def fmt_spread(s: dict, digits: int = 2) -> str:
    return (f"{s['median']:.{digits}f}x (min {s['min']:.{digits}f}, max {s['max']:.{digits}f}, "
            f"{s['n']} rounds)")


def intervals(stamps: list[float]) -> list[float]:
    """Step times from step-end timestamps, the first step (warm-up) dropped: step k takes
    stamps[k] - stamps[k-1], so the first measured step is the second one."""
    return [b - a for a, b in zip(stamps, stamps[1:])]
