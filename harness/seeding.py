"""Random state owned by the cell, not by the process; the one owner of every random stream.

Every generator in the harness and its plug-ins comes from `generator(seed, purpose, *keys)`
(Python `random.Random`, numpy or torch), every seed handed on from `derive(seed, purpose,
*keys)`, and every block that draws from the global generators runs under `seeded(seed,
purpose)`. A stream therefore depends only on (seed, purpose, keys): never on cache state,
on earlier phases' consumption of random numbers, or on libraries that reset global
generators (lm-eval's `simple_evaluate` reseeds Python `random`, numpy and torch by default).

The recipe is a hash of (seed, purpose, keys) (`_hashed`). The purposes in `LEGACY` are
results version 1 recipes: each site derived its stream its own way before this module
owned them all, and the committed cells and method fingerprints were measured with them, so
those purposes keep their old derivation; a results version bump may replace them by the
hash recipe. A new purpose gets the hash recipe.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np

from harness.storage import stable_hash


def _hashed(seed: int, purpose: str, *keys) -> int:
    """The recipe: a 63-bit seed from a hash of (seed, purpose, keys)."""
    return int(stable_hash([int(seed), str(purpose), *keys]), 16) & (2**63 - 1)


# Results version 1 recipes: purpose -> (seed, *keys) -> what the generator is seeded with
# (an int, or the text Python's `random.Random` hashes). A results version bump may replace
# them by the hash recipe (`_hashed`).
LEGACY = {
    # harness/tasks.py (and the tasks deriving from it): a task's train/test split
    "task data": lambda seed, task, version: f"{task}:{version}:{seed}",
    # harness/training.py: the batch order of a task's epoch
    "train batches": lambda seed, task_index, epoch: (seed * 100 + task_index) * 1000 + epoch,
    # harness/data.py: one epoch of length-grouped batches from the seed its caller gives
    "batches": lambda seed: seed,
    # harness/generation.py: sampling, torch's generator seeded with the seed its caller gives
    "sampling": lambda seed: seed,
    # baselines/ewc.py: the Fisher estimate's draws, from a seed drawn from its "ewc" stream
    "ewc fisher": lambda seed: seed,
    # methods: what a method draws per task
    "replay": lambda seed, task: f"replay:{seed}:{task}",
    "mix-external": lambda seed, task: f"mix-external:{seed}:{task}",
    "ewc": lambda seed, task: f"ewc:{seed}:{task}",
    "sa-sft mix": lambda seed, task: f"sa-sft:{seed}:{task}",
    # sa-sft's generation seeds: a base pool (task i of the stream), a round's turn (part 0
    # the user's, 1 the answer), a pool drawn from the current model after `done` tasks
    "sa-sft pool": lambda seed, i: seed if i == 0 else _hashed(seed, f"sa-sft pool {i}") % 2**31,
    "sa-sft turn": lambda seed, round_, turn, part: seed * 10_000 + 100 * round_ + 2 * turn + part,
    "sa-sft current": lambda seed, done: seed * 100 + done,
    # a paper dataset's hold-out: numpy's permutation, as `datasets.Dataset.shuffle(seed)`
    "holdout": lambda seed: seed,
    # statistics: bootstrap, permutation and simulation draws from the seed given
    "statistics": lambda seed: seed,
    # a probe file's generator (benchmarks/probes)
    "probe data": lambda seed: seed,
}


def derive(seed: int, purpose: str, *keys):
    """The value the stream (seed, purpose, keys) is seeded with: its legacy recipe, else
    the hash recipe; distinct purposes and keys draw independent streams."""
    recipe = LEGACY.get(purpose)
    return recipe(seed, *keys) if recipe else _hashed(seed, purpose, *keys)


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for (cell seed, purpose) by the hash recipe (the API's name for it)."""
    return _hashed(seed, purpose)


def generator(seed: int, purpose: str, *keys, kind: str = "python", device=None):
    """The generator of the stream (seed, purpose, keys): `random.Random` ("python"),
    `numpy.random.Generator` ("numpy") or a `torch.Generator` on `device` ("torch")."""
    value = derive(seed, purpose, *keys)
    if kind == "python":
        return random.Random(value)
    if kind == "numpy":
        return np.random.default_rng(value)
    if kind == "torch":
        import torch

        return torch.Generator(device or "cpu").manual_seed(value)
    raise ValueError(f"unknown generator kind {kind!r}: python, numpy or torch")


def _cuda_devices() -> list[int]:
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


@contextlib.contextmanager
def isolated():
    """Run a block without letting it change, or depend on being given, the global state of
    Python `random`, numpy and torch (CPU and CUDA): the states are restored on exit."""
    import torch

    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=_cuda_devices()):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


@contextlib.contextmanager
def seeded(seed: int, purpose: str, *keys):
    """Run a block with Python `random`, numpy and torch seeded from (seed, purpose, keys),
    and the caller's global state restored afterwards."""
    import torch

    value = derive(seed, purpose, *keys)
    with isolated():
        random.seed(value)
        np.random.seed(value % 2**32)
        torch.manual_seed(value)  # seeds every CUDA device too
        yield
