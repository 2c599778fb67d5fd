"""The memory settings of `train:` (docs/suites.md): their values, and how they stay out of
every config hash while at their defaults.

`train.gradient_checkpointing` and `train.optimizer` came after results were published
(cells, bundles, a running grid verified by bit-exact re-runs). Their defaults train
exactly as before, so a TrainSettings that leaves them at their defaults must hash as
before: `opt_in` makes dataclasses.asdict leave them out until they are set.
"""

from __future__ import annotations

from harness.errors import HarnessError

OPTIMIZERS = ("adamw", "adamw-8bit", "paged-adamw-8bit")  # train.optimizer
OPT_IN = {"gradient_checkpointing": False, "optimizer": "adamw"}  # default: as before


class _OptInFields:
    """A dataclass's __dataclass_fields__: on the class, every field; on an instance, the
    OPT_IN settings at their default are left out, so that dataclasses.asdict (every config
    hash, grid id and bundle) is what it was before they existed; set, they appear. replace()
    gives a left-out one its default, the value it had; ==, hash, repr, pickle see all."""

    def __init__(self, every: dict):
        self.every = every

    def __get__(self, obj, cls=None) -> dict:
        return self.every if obj is None else {
            k: f for k, f in self.every.items() if k not in OPT_IN or getattr(obj, k) != OPT_IN[k]}


def opt_in(cls):
    cls.__dataclass_fields__ = _OptInFields(cls.__dataclass_fields__)
    return cls


def check_optimizer(value, where: str) -> str:
    if value not in OPTIMIZERS:
        raise HarnessError(f"{where}: optimizer must be one of {', '.join(OPTIMIZERS)}, got "
                           f"{value!r}", "e.g. optimizer: adamw (see docs/suites.md)")
    return value
