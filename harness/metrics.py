"""Continual-learning metrics of one cell, as defined in docs/metrics.md, and `METRICS`,
the one catalogue of them (name, function, direction) that result.json, `harness report`
and the end-of-run table iterate.

R is (T+1) x T: R[i][j] = score on task j after training through task i; row 0 is the
base model, b_j = R[0][j]. Metrics that need two or more tasks are None when T = 1, and
those that need an entry the evaluation schedule left out (None: `eval.rows:
own-and-final` evaluates only the diagonal and the last row) are None (`not_evaluated`).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean
from typing import Callable


def acc(R) -> float | None:
    """Final average: mean_j R[T][j]."""
    return _mean(R[-1])


def aia(R) -> float | None:
    """Average incremental accuracy: mean over i=1..T of mean_{j<=i} R[i][j]."""
    T = len(R[0])
    return _mean(_mean(R[i][:i]) for i in range(1, T + 1))


def bwt(R) -> float | None:
    """Backward transfer: mean_{j<T} R[T][j] - R[j][j] (tasks 1-indexed). Negative = forgetting."""
    T = len(R[0])
    if T < 2:
        return None
    return _mean(_minus(R[T][j], R[j + 1][j]) for j in range(T - 1))


def fwt(R) -> float | None:
    """Forward transfer against the base model: mean_{j>=2} R[j-1][j] - b_j."""
    T = len(R[0])
    if T < 2:
        return None
    return _mean(_minus(R[j][j], R[0][j]) for j in range(1, T))


def forgetting(R) -> float | None:
    """Chaudhry forgetting: mean_{j<T} max_{l in 1..T-1} R[l][j] - R[T][j].

    The base row (l = 0) does not count: forgetting is measured from scores reached by
    training, never from the base model's own skill. Rows before task j was trained do
    count (a task improved by transfer and then lost is forgotten too), so it needs every
    row: under `eval.rows: own-and-final` it is None, never the max of the rows at hand.
    """
    T = len(R[0])
    if T < 2:
        return None
    return _mean(_minus(_max(R[l][j] for l in range(1, T)), R[T][j]) for j in range(T - 1))


def plasticity(R) -> float | None:
    """Mean gain on each task right after training on it: mean_j R[j][j] - b_j."""
    T = len(R[0])
    return _mean(_minus(R[j + 1][j], R[0][j]) for j in range(T))


# Entries of R a row did not evaluate (`eval.rows: own-and-final`) are None; a metric that
# needs one is None too, never computed from the entries at hand.

def _mean(values) -> float | None:
    values = list(values)
    return None if any(v is None for v in values) else mean(values)


def _max(values) -> float | None:
    values = list(values)
    return None if any(v is None for v in values) else max(values)


def _minus(a, b) -> float | None:
    return None if a is None or b is None else a - b


@dataclass(frozen=True)
class Metric:
    """One per-cell metric of R. `min_tasks`: below it `fn` returns None (undefined);
    `label`: its name in every table (`harness run`'s, `harness report`'s), `meaning` its
    words in their legend; `headline`: a column of `harness run`'s end-of-run table."""

    fn: Callable[[list[list[float]]], float | None]
    higher_is_better: bool
    min_tasks: int
    label: str
    headline: bool = False
    meaning: str = ""
    needs: str = "R[T][j] and R[j][j]"  # the entries of R it reads beyond row 0 (docs)


#: Every per-cell metric of R, in the order of result.json's `metrics` and of the report.
METRICS: dict[str, Metric] = {
    "acc": Metric(acc, True, 1, "ACC", headline=True,
                  meaning="mean score on every task after the last", needs="R[T][j]"),
    "aia": Metric(aia, True, 1, "AIA", meaning="mean score on the tasks seen so far, averaged "
                  "over the stream", needs="R[i][j] for every j <= i"),
    "bwt": Metric(bwt, True, 2, "BWT", headline=True,
                  meaning="change on earlier tasks by the end (< 0: forgetting)"),
    "fwt": Metric(fwt, True, 2, "FWT", meaning="gain on a task from the tasks before it",
                  needs="R[j-1][j], each task just before its training"),
    "forgetting": Metric(forgetting, False, 2, "forgetting",
                         meaning="drop from each earlier task's best score",
                         needs="R[l][j] for every row l in 1..T-1 (the best of them)"),
    "plasticity": Metric(plasticity, True, 1, "plasticity", headline=True,
                         meaning="gain on each task from training on it", needs="R[j][j]"),
}


def label(name: str) -> str:
    """A metric's one name in every table: METRICS' label, or for a probe's figures
    `<probe> final` (its value after the last task) and `<probe> change` (from the base
    model's)."""
    if name in METRICS:
        return METRICS[name].label
    for suffix, shown in (("_final", "final"), ("_delta", "change")):
        if name.endswith(suffix):
            return f"{name[:-len(suffix)]} {shown}"
    return name


def legend(names) -> str:
    """One line that explains the named metrics (as `label` shows them)."""
    parts = [f"{METRICS[n].label}: {METRICS[n].meaning}" for n in names if n in METRICS]
    if any(n.endswith(("_final", "_delta")) for n in names):
        parts.append("<probe> final: the probe after the last task, <probe> change: minus "
                     "the base model's (docs/metrics.md)")
    return "; ".join(parts)



def cell_metrics(R, probes: dict[str, list[float]] | None = None) -> dict:
    """All per-cell metrics; probes contribute their final value and change from base."""
    out = {name: metric.fn(R) for name, metric in METRICS.items()}
    for name, values in (probes or {}).items():
        out[f"{name}_final"] = values[-1]
        out[f"{name}_delta"] = values[-1] - values[0]
    return out


def not_evaluated(R) -> dict[str, str]:
    """Why each metric that R's unevaluated entries (None: `eval.rows`) leave undefined is
    None: result.json's `metrics_not_evaluated`, the report's footnote."""
    T = len(R[0])
    return {name: f"needs {m.needs}, which eval.rows: own-and-final does not evaluate"
            for name, m in METRICS.items()
            if T >= m.min_tasks and m.fn(R) is None and any(x is None for row in R for x in row)}
