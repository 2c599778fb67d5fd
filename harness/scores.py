"""What a cell's numbers mean, for `harness report`, the leaderboard and the terminal tables:
the one score table ((model, stream, metric) -> method -> seed -> value, `score_table`), the
one rule for a metric's direction (`higher_is_better`, `directions`), a cell's value of a
metric (`cell_value`), its per-item scores (`final_items`) and the item-level counts derived
from them (`item_flips`).

A metric is higher-is-better unless it says otherwise: the CL metrics of harness.metrics
declare it, a probe's `<probe>_final` / `<probe>_delta` take the probe's own direction
(probe_info, else True), and the item counts below are declared here.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from harness.metrics import METRICS

# item-level forgetting ("Mapping Post-Training Forgetting", ICLR 2026): items right after
# their task was trained and wrong in the final row (forgotten, lower is better), and the
# reverse (learned, higher is better); summed over the stream's tasks
ITEM_METRICS = {"forgotten_items": False, "learned_items": True}
# the leaderboard's own per-cell figures (not in `harness report`'s standard metrics):
# learned_from_base, the items wrong with the base model (row 0) and right in the final row
# summed over the stream's tasks (what the stream taught and kept; learned_items counts only
# flips after a task's own training); format_acc, the strict scoring's ACC
# (by_metric.strict) of a cell ranked on another scoring (primary: content), else undefined
BOARD_METRICS = {"learned_from_base": True, "format_acc": True}
CORRECT = 0.5  # an item counts as correct when its score is >= CORRECT (scores are 0/1)


def offset_of(metric: str) -> str | None:
    """The metric this one is, less the base model's value of it (the same for every method
    within a (model, stream, seed) pair): `task_gain` is `acc`'s, `<probe>_delta` is
    `<probe>_final`'s; else None."""
    if metric == "task_gain":
        return "acc"
    return metric[: -len("_delta")] + "_final" if metric.endswith("_delta") else None


def higher_is_better(metric: str, probes: Mapping[str, bool] | None = None) -> bool:
    """The one rule for a metric's direction."""
    if metric in METRICS:
        return METRICS[metric].higher_is_better
    if metric in ITEM_METRICS:
        return ITEM_METRICS[metric]
    if metric in BOARD_METRICS:
        return BOARD_METRICS[metric]
    for suffix in ("_final", "_delta"):
        if metric.endswith(suffix):
            return bool((probes or {}).get(metric[: -len(suffix)], True))
    return True


def directions(metrics: Iterable[str], probes: Mapping[str, bool] | None = None
               ) -> dict[str, bool]:
    """metric -> higher is better, for each of `metrics` in order (higher_is_better)."""
    return {m: higher_is_better(m, probes) for m in metrics}


def standard_metrics(probes: Iterable[str]) -> list[str]:
    """The metrics every cell has, in report order: the CL metrics of harness.metrics, each
    probe's `<probe>_final`, then the item counts."""
    return [*METRICS, *(f"{p}_final" for p in probes), *ITEM_METRICS]


def _registry_direction(probe: str) -> bool | None:
    """The direction a built-in probe declares, or None for a probe the harness does not
    define (unknown names, and lm-eval tasks, whose direction lm-eval does not state)."""
    from harness.errors import HarnessError
    from harness.probes import LmEvalProbe, get_probe

    try:
        found = get_probe(probe)
    except HarnessError:
        return None
    return None if isinstance(found, LmEvalProbe) else found.higher_is_better


def probe_directions(results: list[Mapping], notes: list[dict] | None = None
                     ) -> dict[str, bool]:
    """Probe -> higher is better, for result.json dicts: the majority of the cells'
    `probe_info`, else the probe registry, else True; disagreements and assumptions are
    appended to `notes` (when given). The report, the leaderboard and the terminal table
    all read probe directions here."""
    notes = [] if notes is None else notes
    probes = set()
    votes: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        probes |= set(r.get("probes") or {})
        probes |= {k[: -len("_final")] for k in (r.get("metrics") or {})
                   if k.endswith("_final")}
        for name, info in (r.get("probe_info") or {}).items():
            if isinstance(info.get("higher_is_better"), bool):
                votes[name][info["higher_is_better"]] += 1
    directions = {}
    for p in sorted(probes):
        if votes[p]:
            (best, count), *rest = votes[p].most_common()
            if rest:
                notes.append({"what": f"direction of probe {p}",
                              "why": f"cells disagree on probe_info.{p}.higher_is_better "
                                     f"({dict(votes[p])}); used the majority ({best})"})
            directions[p] = best
        elif (declared := _registry_direction(p)) is not None:
            directions[p] = declared
        else:
            directions[p] = True
            notes.append({"what": f"direction of probe {p}",
                          "why": "no cell states probe_info.higher_is_better; assumed "
                                 "higher is better"})
    return directions


def cell_value(result: Mapping, metric: str) -> tuple[float | None, bool]:
    """The one rule for a cell's value of a metric: (value, filled), None where null,
    undefined or non-finite. Item counts come from the per-item scores, `task_gain` from R
    (ACC minus the base model's), everything else from result.json's `metrics`; `filled`
    is True when `metrics` lacked the key and the value was computed from R (standard
    metrics) or the probe's last value (`<probe>_final`)."""
    from statistics import mean

    from harness.results import finite

    metrics = result.get("metrics") or {}
    if metric in ITEM_METRICS:  # counted from the per-item scores, never stored
        flips = item_flips(result.get("items") or {}, result.get("tasks") or [])
        return (None if flips is None else float(flips[metric])), False
    if metric == "learned_from_base":
        return learned_from_base(result.get("items") or {}, result.get("tasks") or []), False
    if metric == "format_acc":
        strict = (result.get("by_metric") or {}).get("strict")
        if result.get("primary", "strict") == "strict" or not isinstance(strict, Mapping):
            return None, False
        return cell_value({"R": strict["R"], "metrics": strict.get("metrics") or {}}, "acc")[0], False
    if metric == "task_gain":
        R = result["R"]
        return finite(mean(R[-1]) - mean(R[0])), False
    if metric in metrics:
        return finite(metrics[metric]), False
    if metric in METRICS:
        return finite(METRICS[metric].fn(result["R"])), True
    if metric.endswith("_final"):
        values = (result.get("probes") or {}).get(metric[: -len("_final")])
        if values:
            return finite(values[-1]), True
    return None, False


def item_flips(items: Mapping, tasks: list[str]) -> dict | None:
    """Per task and row, the items that flipped since the row right after the task was
    trained (row j + 1 for the j-th task, 0-based; row 0 is the base model).

    Returns {"forgotten": {task: [count per row]}, "learned": {...}, "forgotten_items",
    "learned_items"}: a row before or at the trained row has None, and so has a row that
    did not evaluate the task (null: `eval.rows: own-and-final`); the two totals are the
    final row's counts summed over tasks. None when a task's items are not a list of T + 1
    rows, the trained and final ones among them, of equally many numbers (then no count is
    honest).
    """
    T = len(tasks)
    forgotten, learned = {}, {}
    for j, task in enumerate(tasks):
        rows = items.get(task) if isinstance(items, Mapping) else None
        if not isinstance(rows, list) or len(rows) != T + 1 or any(
                not (isinstance(r, list) and len(r) == len(rows[-1])
                     or r is None and i not in (j + 1, T)) for i, r in enumerate(rows)):
            return None
        try:
            correct = [None if row is None else [float(x) >= CORRECT for x in row]
                       for row in rows]
        except (TypeError, ValueError):
            return None
        trained = correct[j + 1]
        forgotten[task] = [None if r <= j + 1 or correct[r] is None else
                           sum(a and not b for a, b in zip(trained, correct[r]))
                           for r in range(T + 1)]
        learned[task] = [None if r <= j + 1 or correct[r] is None else
                         sum(b and not a for a, b in zip(trained, correct[r]))
                         for r in range(T + 1)]
    return {"forgotten": forgotten, "learned": learned,
            "forgotten_items": sum(v[-1] or 0 for v in forgotten.values()),
            "learned_items": sum(v[-1] or 0 for v in learned.values())}


def learned_from_base(items: Mapping, tasks: list[str]) -> float | None:
    """Items wrong with the base model (row 0) and right in the final row, summed over the
    tasks; None when a task lacks either row or they differ in length."""
    total = 0
    for task in tasks:
        rows = items.get(task) if isinstance(items, Mapping) else None
        if not isinstance(rows, list) or len(rows) < 2 or not all(
                isinstance(r, list) for r in (rows[0], rows[-1])) or len(rows[0]) != len(rows[-1]):
            return None
        try:
            total += sum(float(a) < CORRECT <= float(b) for a, b in zip(rows[0], rows[-1]))
        except (TypeError, ValueError):
            return None
    return float(total) if tasks else None


def final_items(result: Mapping, tasks: list[str]) -> tuple[list[float] | None, str | None]:
    """(per-item scores of the final row, `tasks` concatenated in stream order, None) or
    (None, why not)."""
    from harness.results import finite

    items = result.get("items")
    if not isinstance(items, Mapping):
        return None, "no per-item scores (items)"
    flat = []
    for task in tasks:
        rows = items.get(task)
        if not isinstance(rows, list) or len(rows) != len(tasks) + 1:
            return None, f"items[{task}] is not a list of T+1 rows"
        final = rows[-1]
        if not isinstance(final, list) or not all(finite(x) is not None for x in final):
            return None, f"items[{task}] final row is not a list of numbers"
        flat.extend(float(x) for x in final)
    return (flat, None) if flat else (None, "no items in the final row")


Key = tuple[str, str, str]  # (model, stream, metric)


@dataclass
class ScoreTable:
    """The score table of a set of cells: every metric's direction, the finite values by
    (model, stream, metric) -> method -> seed, the seeds whose value is null or undefined,
    and per metric the number of cells whose value was filled in (computed from R or the
    probe's last value because result.json's `metrics` lacked it)."""

    directions: dict[str, bool]
    values: dict[Key, dict[str, dict[int, float]]] = field(default_factory=dict)
    nulls: dict[Key, dict[str, list[int]]] = field(default_factory=dict)
    filled: Counter = field(default_factory=Counter)

    def by_pair(self, metric: str) -> dict[str, dict[tuple[str, str, int], float]]:
        """method -> (model, stream, seed) -> value of one metric: what methods are paired
        on when they are compared across streams."""
        out: dict[str, dict] = {}
        for (model, stream, m), by_method in self.values.items():
            if m == metric:
                for method, by_seed in by_method.items():
                    out.setdefault(method, {}).update(
                        {(model, stream, seed): v for seed, v in by_seed.items()})
        return out


def score_table(cells: Iterable[tuple[str, Mapping]], metrics: Iterable[str],
                probes: Mapping[str, bool] | None = None) -> ScoreTable:
    """The one score table of (method, result.json) pairs: each cell's value of each metric
    by cell_value, its direction by higher_is_better (`probes`: probe_directions). Keys are
    inserted in order: (model, stream) sorted, then `metrics` in order, methods and seeds
    sorted; a later cell of the same (model, stream, method, seed) replaces an earlier."""
    table = ScoreTable(directions(metrics, probes))
    groups: dict[tuple, dict[str, dict[int, Mapping]]] = {}
    for method, result in cells:
        c = result["cell"]
        groups.setdefault((c["model"], c["stream"]), {}).setdefault(method, {})[
            int(c["seed"])] = result
    for (model, stream), by_method in sorted(groups.items()):
        for metric in table.directions:
            key = (model, stream, metric)
            for method, by_seed in sorted(by_method.items()):
                for seed, result in sorted(by_seed.items()):
                    value, was_filled = cell_value(result, metric)
                    if was_filled:
                        table.filled[metric] += 1
                    if value is None:
                        table.nulls.setdefault(key, {}).setdefault(method, []).append(seed)
                    else:
                        table.values.setdefault(key, {}).setdefault(method, {})[seed] = value
    return table
