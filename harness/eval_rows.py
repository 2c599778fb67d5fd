"""The evaluation schedule (`eval.rows`): which entries of R each row after training
evaluates. Row 0 (the base model, cached and shared) and the last row are always
complete.

`eval.probe_rows`: which rows run the probes. `all` (the default): every row; `final`: row 0
and the last row only (the rows metrics read: `<probe>_final` and `<probe>_delta`), the
others' probe values null. The tasks' answers do not change (harness/evaluation.py).

- `all` (the default): every task in every row, the full (T+1) x T matrix;
- `own-and-final`: after task i < T only task i (the diagonal R[i][i]), after the last task
  every task: 2T - 1 entries instead of T^2. ACC, BWT, plasticity and the item flips of the
  final row read only these and come out the same; FWT, and from 3 tasks AIA and (Chaudhry)
  forgetting, need the others and are null (harness/metrics.py).
"""

from __future__ import annotations

from harness.errors import HarnessError

ROW_SCHEDULES = ("all", "own-and-final")
PROBE_SCHEDULES = ("all", "final")


def row_tasks(rows: str, row: int, T: int) -> range:
    """The task indices (0-based) that row `row` of R evaluates under schedule `rows`."""
    if rows == "all" or row in (0, T):
        return range(T)
    return range(row - 1, row)


def evaluated_entries(rows: str, T: int) -> int:
    """Entries of R after training (rows 1..T) a schedule evaluates: T^2 or 2T - 1."""
    return sum(len(row_tasks(rows, i, T)) for i in range(1, T + 1))


def _check(key: str, allowed: tuple, example: str, value, where: str) -> str:
    """One schedule setting's value, or one line naming the problem and an example."""
    if value not in allowed:
        raise HarnessError(f"{where}: {key} must be one of {', '.join(allowed)}, got "
                           f"{value!r}", f"e.g. {key}: {example}")
    return value


def check_rows(value, where: str) -> str:
    return _check("rows", ROW_SCHEDULES, "own-and-final (each task right after its training, "
                  "every task after the last; see docs/suites.md)", value, where)


def probes_run(probe_rows: str, row: int, T: int) -> bool:
    """Does row `row` run the probes under schedule `probe_rows`?"""
    return probe_rows == "all" or row in (0, T)


def probed_rows(probe_rows: str, T: int) -> int:
    """Rows after training (1..T) that run the probes: T or 1."""
    return sum(probes_run(probe_rows, i, T) for i in range(1, T + 1))


def check_probe_rows(value, where: str) -> str:
    return _check("probe_rows", PROBE_SCHEDULES, "final (the probes after the last task "
                  "only, and on the base model; see docs/suites.md)", value, where)
