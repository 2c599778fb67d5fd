"""The score table of a report: every complete cell's value of every compared metric,
as (model, stream, metric) -> method -> seed -> value, with each metric's direction.

Metrics come from `harness.metrics.METRICS` plus `<probe>_final` for every probe, whose
direction is read from the cells' `probe_info`, else from the probe registry. Values are
read from result.json's `metrics`; a missing standard metric is computed from R, a missing
`<probe>_final` taken from the probe's last value (both noted). Null, NaN and infinite
values are left out of the table and their seeds kept in `nulls`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from statistics import mean, stdev

from harness.cells import Cells, Record
from harness.metrics import METRICS
from harness import scores
from harness.scores import ITEM_METRICS, higher_is_better


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
    # (model, stream, metric) -> method -> seed -> value (finite only)
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


def metric_value(record: Record, metric: str) -> tuple[float | None, bool]:
    """(value, filled): harness.scores.cell_value, the rule the leaderboard reads too."""
    return scores.cell_value(record.data, metric)


def probe_directions(records: list[Record], notes: list[dict]) -> dict[str, bool]:
    """Probe -> higher is better (harness.scores.probe_directions: the one rule)."""
    return scores.probe_directions([r.data for r in records], notes)


def collect(cells: Cells, **settings) -> ReportInputs:
    """The score table of the complete cells; `settings` are ReportInputs' own fields."""
    inputs = ReportInputs(cells=cells, **settings)
    inputs.probes = probe_directions(cells.records, inputs.notes)
    inputs.metrics = {name: higher_is_better(name) for name in METRICS}
    inputs.metrics.update({f"{p}_final": higher_is_better(f"{p}_final", inputs.probes)
                           for p in inputs.probes})
    inputs.metrics.update({name: higher_is_better(name) for name in ITEM_METRICS})
    for r in sorted(cells.records, key=lambda r: r.key):
        inputs.groups.setdefault((r.model, r.stream), {}).setdefault(r.method, {})[r.seed] = r
    _note_task_lists(inputs)
    filled: Counter = Counter()
    _note_not_evaluated(inputs, cells.records)
    for (model, stream), methods in sorted(inputs.groups.items()):
        for metric in inputs.metrics:
            key = (model, stream, metric)
            for method, by_seed in sorted(methods.items()):
                for seed, r in sorted(by_seed.items()):
                    value, was_filled = metric_value(r, metric)
                    if was_filled:
                        filled[metric] += 1
                    if value is None:
                        inputs.nulls.setdefault(key, {}).setdefault(method, []).append(seed)
                    else:
                        inputs.values.setdefault(key, {}).setdefault(method, {})[seed] = value
    for metric, count in sorted(filled.items()):
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
