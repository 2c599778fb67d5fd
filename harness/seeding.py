"""Random state owned by the cell, not by the process.

Libraries reset global generators (lm-eval's `simple_evaluate` reseeds Python `random`,
numpy and torch by default), and what ran before a phase (a cached or a computed base row,
another cell) must not change what it draws. So every phase of a cell runs under
`seeded(seed, purpose)`: the global generators are set from a seed derived from (cell seed,
purpose) and restored on exit. A phase's numbers then depend only on the cell's seed and
the phase, never on cache state or on earlier phases' consumption of random numbers.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from harness.storage import stable_hash


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for (cell seed, purpose); different purposes draw independent streams."""
    return int(stable_hash([int(seed), str(purpose)]), 16) & (2**63 - 1)


def _cuda_devices() -> list[int]:
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


@contextlib.contextmanager
def isolated():
    """Run a block without letting it change, or depend on being given, the global state of
    Python `random`, numpy and torch (CPU and CUDA): the states are restored on exit."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=_cuda_devices()):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


@contextlib.contextmanager
def seeded(seed: int, purpose: str):
    """Run a block with Python `random`, numpy and torch seeded from (seed, purpose), and
    the caller's global state restored afterwards."""
    value = derive_seed(seed, purpose)
    with isolated():
        random.seed(value)
        np.random.seed(value % 2**32)
        torch.manual_seed(value)  # seeds every CUDA device too
        yield
