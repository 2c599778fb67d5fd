"""What every report section reads: the report's settings, the complete cells grouped by
(model, stream) and method, and harness.scores' one score table of them, (model, stream,
metric) -> method -> seed -> value with each metric's direction.

Metrics are harness.scores.standard_metrics: `harness.metrics.METRICS`, `<probe>_final` for
every probe (direction from the cells' `probe_info`, else the probe registry) and the item
counts. A missing standard metric is computed from R, a missing `<probe>_final` taken from
the probe's last value (both noted). Null, NaN and infinite values are left out of the table
and their seeds kept in `nulls`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from statistics import mean, stdev

from harness import scores
from harness.cells import Cells, Record
from harness.metrics import METRICS


@dataclass
class ReportInputs:
    """What every analysis reads: the report's settings and the collected score table."""

    reference: str
    alpha: float
    confidence: float
    n_resamples: int
    n_permutations: int
    n_iqm_resamples: int
    n_item_resamples: int
    seed: int
    cells: Cells
    metrics: dict[str, bool] = field(default_factory=dict)  # metric -> higher is better
    probes: dict[str, bool] = field(default_factory=dict)
    # (model, stream) -> method -> seed -> Record
    groups: dict[tuple, dict[str, dict[int, Record]]] = field(default_factory=dict)
    table: scores.ScoreTable | None = None  # harness.scores' one table of these cells
    # its parts: (model, stream, metric) -> method -> seed -> value (finite only), and nulls
    values: dict[tuple, dict[str, dict[int, float]]] = field(default_factory=dict)
    nulls: dict[tuple, dict[str, list[int]]] = field(default_factory=dict)
    notes: list[dict] = field(default_factory=list)


def scenario_id(model: str, stream: str, metric: str | None = None) -> str:
    return f"{model}/{stream}" + (f"/{metric}" if metric else "")


def skip(what: str, why: str) -> dict:
    """One entry of a section's skipped items: what was not computed, and why."""
    return {"what": what, "why": why}


def mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(mean(values)), (float(stdev(values)) if len(values) > 1 else None)


def collect(cells: Cells, **settings) -> ReportInputs:
    """The score table of the complete cells (harness.scores.score_table, which the
    leaderboard reads too); `settings` are ReportInputs' own fields."""
    inputs = ReportInputs(cells=cells, **settings)
    inputs.probes = scores.probe_directions([r.data for r in cells.records], inputs.notes)
    for r in sorted(cells.records, key=lambda r: r.key):
        inputs.groups.setdefault((r.model, r.stream), {}).setdefault(r.method, {})[r.seed] = r
    _note_task_lists(inputs)
    _note_not_evaluated(inputs, cells.records)
    inputs.table = table = scores.score_table(((r.method, r.data) for r in cells.records),
                                              scores.standard_metrics(inputs.probes),
                                              inputs.probes)
    inputs.metrics, inputs.values, inputs.nulls = table.directions, table.values, table.nulls
    for metric, count in sorted(table.filled.items()):
        source = "R" if metric in METRICS else "the probe's last value"
        inputs.notes.append({"what": f"metric {metric}",
                             "why": f"missing from `metrics` in {count} cell(s); computed "
                                    f"from {source}"})
    return inputs


def _note_not_evaluated(inputs: ReportInputs, records: list[Record]) -> None:
    """Metrics null because a cell's schedule left entries of R unevaluated (`eval.rows:
    own-and-final`), with result.json's reason (`metrics_not_evaluated`)."""
    why: dict[str, Counter] = {}
    for r in records:
        for metric, reason in (r.data.get("metrics_not_evaluated") or {}).items():
            why.setdefault(metric, Counter())[str(reason)] += 1
    for metric, reasons in sorted(why.items()):
        for reason, n in sorted(reasons.items()):
            inputs.notes.append({"what": f"metric {metric}",
                                 "why": f"null in {n} cell(s): {reason}"})


def _note_task_lists(inputs: ReportInputs) -> None:
    """Cells of one (model, stream) should share a task list; say so where they do not."""
    for (model, stream), methods in sorted(inputs.groups.items()):
        task_lists = Counter(tuple(r.tasks) for by in methods.values() for r in by.values())
        if len(task_lists) > 1:
            inputs.notes.append({"what": f"tasks of {scenario_id(model, stream)}",
                                 "why": "cells disagree on the stream's task list ("
                                        + "; ".join(f"{', '.join(t)}: {n} cell(s)"
                                                    for t, n in task_lists.most_common())
                                        + "); their metrics are compared as they are"})


def scenario_means(inputs: ReportInputs, metric: str) -> dict[tuple, dict[str, float]]:
    """(model, stream) -> method -> mean over seeds, for the scenarios with a value."""
    out = {}
    for (model, stream) in sorted(inputs.groups):
        vals = inputs.values.get((model, stream, metric), {})
        means = {m: float(mean(v.values())) for m, v in vals.items() if v}
        if means:
            out[(model, stream)] = means
    return out
