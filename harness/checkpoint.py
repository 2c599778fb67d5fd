"""Mid-cell checkpoints: a killed cell resumes after its last completed task.

After each task of a cell but the last (below), the runner saves what the cell needs to go
on in one file, `cells/<id>/checkpoint.pt`, written to a temp file beside it and renamed
into place, so a kill during the write leaves the previous checkpoint whole:

- `config_hash`, `cell`, `tasks`: whose it is; a checkpoint of other settings is removed,
  never used;
- `done`: how many tasks are complete;
- `weights`: the parameters that train (requires_grad) after the task; the frozen ones are
  the base model's and load again with it (under LoRA: the adapters only; a method that
  changes frozen weights itself must put them in its state);
- `method`: the method's `state_dict(ctx)` (harness/methods/api.py; default: nothing);
- `rows`, `training`, `stats`, `history`: the score and probe rows so far, the training
  statistics, `ctx.stats` and `ctx.history`;
- `rng`: the states of Python `random`, numpy and torch (CPU and CUDA) after the task's
  evaluation;
- `setup_s`, `elapsed_s`, `generation_s`, `cpu_s`, `resumed_after`: the cell's timings so far
  (`cpu_s`, the process's CPU seconds, is absent from checkpoints written before it: a cell
  resumed from such a one records `cpu_s` null, unknown);
- `cache`: the cell's ledger of cache entries so far (harness/storage.py `Ledger.state`:
  those it computed, those it reused with their cost), so that `timings.cache_cpu_s` counts
  each reused entry once across a resume and none the cell computed before it (absent
  from checkpoints written before it: the resumed cell records `cache_cpu_s` null).

The last task is checkpointed too with `--keep-checkpoints`, or `--save-model` (saving the
model after it takes a while).

No optimiser state: harness/training.py builds the optimiser and its schedule afresh for
every task. The file is read back with `torch.load(weights_only=True)` (tensors, numbers,
strings, lists, tuples, dicts and the task Example classes; nothing else is unpickled).
It is removed when the cell completes, unless `harness run --keep-checkpoints`.
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path

import numpy as np
import torch

from harness.storage import writing

FILE = "checkpoint.pt"
FORMAT = 1
KEYS = {"config_hash", "cell", "tasks", "done", "weights", "method", "rows", "training",
        "stats", "history", "rng", "setup_s", "elapsed_s", "generation_s", "resumed_after"}


def path(folder: Path) -> Path:
    return Path(folder) / FILE


def trainable(model) -> dict[str, torch.Tensor]:
    """The parameters that train, by name, as they are: torch.save copies a GPU tensor to
    the CPU as it writes it, one at a time, never the whole model at once."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def weights_problem(model, weights) -> str | None:
    """Why `weights` cannot be loaded into `model`'s trainable parameters (None: they can)."""
    if not isinstance(weights, dict):
        return "no weights"
    own = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if set(own) != set(weights):
        return "its trainable parameters are not the model's"
    for n, p in own.items():
        w = weights[n]
        if not isinstance(w, torch.Tensor) or w.shape != p.shape or w.dtype != p.dtype:
            return f"parameter {n} has another shape or dtype"
    return None


@torch.no_grad()
def load_weights(model, weights: dict) -> None:
    for n, p in model.named_parameters():
        if p.requires_grad:
            p.copy_(weights[n])


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(folder: Path, state: dict) -> None:
    """Write the checkpoint atomically (temp file + rename): a reader, or a run after a
    kill, sees the previous checkpoint or this one, never half of one."""
    target = path(folder)
    tmp = target.with_name(f".{FILE}.tmp-{os.getpid()}")
    try:  # through a file object: torch's own writer reports a full disk without errno
        with writing(target), open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def _safe_classes() -> list:
    from harness.tasks import Dialogue, Example, Framed, Plain

    return [Example, Dialogue, Framed, Plain]


def load(folder: Path, config_hash: str, tasks: list[str]) -> tuple[dict | None, str | None]:
    """(checkpoint, None) when the cell has one of these settings; else (None, why not:
    None when there is none at all). Only tensors, plain values and the task Example
    classes are unpickled."""
    target = path(folder)
    if not target.exists():
        return None, None
    try:
        with torch.serialization.safe_globals(_safe_classes()):
            state = torch.load(target, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - whatever the file holds, it is not used
        return None, f"unreadable ({type(exc).__name__})"
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return None, "of another format"
    if not KEYS <= set(state):
        return None, "missing " + ", ".join(sorted(KEYS - set(state)))
    if state.get("config_hash") != config_hash or state.get("tasks") != list(tasks):
        return None, "of other settings (its config hash differs)"
    done = state.get("done")
    if not isinstance(done, int) or not 0 < done < len(tasks) + 1:
        return None, "without a valid count of completed tasks"
    if len(state.get("training") or ()) != done or len(state.get("rows") or ()) != done + 1:
        return None, "whose rows do not match its completed tasks"
    return state, None


def remove(folder: Path) -> None:
    path(folder).unlink(missing_ok=True)


def remove_temp_files(folder: Path) -> list[str]:
    """Remove the temp files of atomic writes that a killed process left in a cell folder
    (its checkpoint's, progress.json's, ...); the caller holds the cell's claim, so no live
    process is writing them. Returns the names removed."""
    removed = []
    for stray in Path(folder).glob(".*.tmp-*"):
        if stray.is_file():
            stray.unlink(missing_ok=True)
            removed.append(stray.name)
    return removed


def disk_bytes(cell, suite) -> int | None:
    """About what one checkpoint of `cell` takes on disk: the trainable weights, plus the
    method's state (ewc: its Fisher and anchor, two more copies; sdft: its EMA teacher, one
    more); None when the model's architecture is unknown here."""
    from harness.errors import HarnessError
    from harness.memory import architecture, components, setup_of

    try:
        arch = architecture(cell.model)
    except HarnessError:
        return None
    s = setup_of(cell, suite)
    weights = components(arch, s)[0]["gradients"]  # the trainable weights, in their dtype
    return int(weights * (1 + {"ewc": 2, "sdft": 1}.get(s.method, 0)))
