"""The memory settings of `train:` (docs/suites.md): `gradient_checkpointing` and
`optimizer`. They came after results were published; at their defaults they train exactly
as before, and harness/identity.py leaves them out of every hash at those defaults
(LEGACY_TRAIN) so that those results keep their hashes."""

from __future__ import annotations

from harness.errors import HarnessError

OPTIMIZERS = ("adamw", "adamw-8bit", "paged-adamw-8bit")  # train.optimizer


def check_optimizer(value, where: str) -> str:
    if value not in OPTIMIZERS:
        raise HarnessError(f"{where}: optimizer must be one of {', '.join(OPTIMIZERS)}, got "
                           f"{value!r}", "e.g. optimizer: adamw (see docs/suites.md)")
    return value
