"""leaderboard.json's content (docs/leaderboard.md), computed once in Python so that the page
and README.md only display it: the page switches views (a stream or all) and the ranking
metric by picking precomputed rankings, never by doing statistics in JavaScript.

Deterministic by construction: sorted names everywhere, a fixed bootstrap seed, no clock,
no absolute paths, floats rounded to DIGITS places.
"""

from __future__ import annotations

import harness.leaderboard.ranking as K
from harness.bundle_tuning import board_part
from harness.leaderboard.cellfacts import method_cost, method_truncation
from harness.leaderboard.entries import (REFERENCE, Entry, metric_catalogue, primary_of,
                                         score_table)
from harness.leaderboard.explain import summary
from harness.scores import offset_of

LEADERBOARD_VERSION = 1
DIGITS = 6
ALL = "all"
PARETO = ("drift_final", "task_gain")  # x (lower is better), y (higher is better)


def tidy(obj):
    """Round floats to DIGITS places (and -0.0 to 0.0), tuples to lists, recursively."""
    if isinstance(obj, float):
        return round(obj, DIGITS) + 0.0
    if isinstance(obj, dict):
        return {str(k): tidy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [tidy(v) for v in obj]
    return obj


def grid_of(entries: list[Entry]) -> dict:
    """The grid the bundles share (they all passed the grid-id check)."""
    suite = entries[0].manifest.get("suite", {})
    streams = suite.get("streams") or {}
    names = list(streams) if isinstance(streams, dict) else list(streams)
    found = sorted({r["cell"]["stream"] for e in entries for r in e.results.values()})
    names = [s for s in names if s in found] + [s for s in found if s not in names]
    models = list(suite.get("models") or sorted({r["cell"]["model"] for e in entries
                                                  for r in e.results.values()}))
    seeds = sorted(suite.get("seeds") or {int(r["cell"]["seed"]) for e in entries
                                          for r in e.results.values()})
    tasks = {s: list(streams[s]) for s in names if isinstance(streams, dict) and s in streams}
    for s in names:  # a manifest that lists no stream's tasks: the cells' order
        tasks.setdefault(s, next((list(r.get("tasks") or []) for e in entries
                                  for r in e.results.values() if r["cell"]["stream"] == s), []))
    return {"name": suite.get("name"), "grid_id": suite.get("grid_id"), "models": models,
            "streams": names, "seeds": seeds, "probes": list(suite.get("probes") or []),
            **({"precision": suite["precision"]} if "precision" in suite else {}),
            "tasks": tasks, "task_descriptions": task_descriptions(tasks)}



def task_descriptions(tasks: dict[str, list[str]]) -> dict[str, str]:
    """Each task's one-line description from the task registry ("" for a task not
    installed here: the page still lists it)."""
    from harness.errors import HarnessError
    from harness.tasks import get_task

    out = {}
    for name in sorted({t for names in tasks.values() for t in names}):
        try:
            out[name] = " ".join(get_task(name).description.split())
        except HarnessError:
            out[name] = ""
    return out


def duplicates(table: dict, catalogue: list[dict]) -> dict[str, dict]:
    """Metric -> {"of": an earlier metric, "sign": 1 or -1, "shifted": bool} where its value
    equals that metric's (sign 1) or its negation (-1) in every cell of this board: e.g. task
    gain is ACC when the base model scores 0, forgetting is -BWT on two-task streams; or,
    "shifted", it is that metric less the base model's value of it (scores.offset_of: task
    gain and ACC, a probe's change and final value) and that value is the same for every
    method within each (model, stream, seed) pair, as it is on a grid whose methods share
    their base rows. Either way the methods' differences in every pair are the other
    metric's, so the ranking, the tests and the pairs found significant are too: the column
    says nothing new, the page hides it by default and says which it repeats. Two metrics
    unrelated by definition are never "shifted" (a coincidence of a small or synthetic
    board), and "shifted" needs two methods or more in every pair. A metric may repeat one
    that is itself a hidden repeat: the first earlier metric it repeats is named."""
    out: dict[str, dict] = {}
    keys = [m["key"] for m in catalogue]
    for i, key in enumerate(keys):
        for other in keys[:i]:
            # "shifted" needs `key` to be a metric less the base model's value of `other`,
            # or of a metric equal to `other` (a hidden duplicate of it) on this board
            based = offset_of(key) == other or out.get(offset_of(key)) == {
                "of": other, "sign": 1, "shifted": False}
            found = _repeat(table[key], table[other], based)
            if found:
                out[key] = {"of": other, **found}
                break
    return out


def _repeat(cells: dict, other: dict, based: bool) -> dict | None:
    """{"sign", "shifted"} where the metric `cells` (method -> pair -> value) repeats `other`
    as duplicates() defines it; None where it does not."""
    if not cells or {m: set(v) for m, v in cells.items()} != {m: set(v) for m, v in other.items()}:
        return None
    for sign in (1, -1):
        gaps: dict = {}  # pair -> this metric minus sign * the other, per method
        for m, by_pair in cells.items():
            for pair, v in by_pair.items():
                gaps.setdefault(pair, []).append(v - sign * other[m][pair])
        if all(abs(g) <= 1e-9 for found in gaps.values() for g in found):
            return {"sign": sign, "shifted": False}
        if sign == 1 and based and all(len(found) > 1 and max(found) - min(found) <= 1e-9
                                       for found in gaps.values()):
            return {"sign": sign, "shifted": True}
    return None


def _view(table: dict, stream: str | None) -> dict:
    """The score table restricted to one stream's pairs (None: every pair)."""
    return {metric: {m: {p: v for p, v in by_pair.items() if stream is None or p[1] == stream}
                     for m, by_pair in by_method.items()}
            for metric, by_method in table.items()}


def analyse_metric(values: dict, higher_is_better: bool, n_pairs: int, n_strata: int,
                   n_methods: int) -> dict | None:
    """One (view, metric): each method's aggregate, t interval, rank and rank interval, the
    methods significantly better, its comparison with the reference; the rank order; the
    number of significant pairs; what is detectable."""
    present = {m: v for m, v in values.items() if v}
    if not present:
        return None
    ranked, family = K.ranks(present, higher_is_better)
    versus = K.versus_reference(present, REFERENCE, higher_is_better, family)
    sign = 1.0 if higher_is_better else -1.0
    rows = {}
    for m, by_pair in present.items():
        point, low, high = K.mean_ci(by_pair)
        rows[m] = {"mean": point, "ci": [low, high] if low is not None else None,
                   "n": len(by_pair), "rank": ranked[m]["rank"],
                   "rank_interval": ranked[m]["rank_interval"], "better": ranked[m]["better"],
                   "vs_reference": versus.get(m)}
    order = sorted(rows, key=lambda m: (rows[m]["rank"], -sign * round(rows[m]["mean"], DIGITS), m))
    return {"order": order, "methods": rows, "significant_pairs": family.significant_pairs,
            "significant": K.decisions(family, higher_is_better), "pairs": len(family.pairs),
            "detectable": K.detectable(present, n_pairs, n_strata, n_methods)}


def pareto(view: dict) -> dict | None:
    """Task gain against drift per method (means over the view's pairs), front marked."""
    x_key, y_key = PARETO
    if not view.get(x_key) or not view.get(y_key):
        return None
    xs, ys = view[x_key]["methods"], view[y_key]["methods"]
    points = {m: (xs[m]["mean"], ys[m]["mean"]) for m in sorted(set(xs) & set(ys))}
    rounded = {m: (round(x, DIGITS), round(y, DIGITS)) for m, (x, y) in points.items()}
    front = K.pareto_front(rounded)
    return {"x": x_key, "y": y_key, "front": front,
            "points": [{"method": m, "x": x, "y": y, "front": m in front}
                       for m, (x, y) in points.items()]}


def in_force(method: dict) -> dict:
    """A method's settings in force: a built-in's registered defaults under the bundle's
    settings (bundles list the settings as given). A file plug-in is never imported here."""
    from harness.errors import HarnessError
    from harness.methods import METHODS

    defaults = {}
    if method.get("builtin"):
        try:
            defaults = dict(METHODS[method.get("name")].defaults)
        except HarnessError:
            pass
    return {**defaults, **(method.get("params") or {})}


def method_meta(entry: Entry, keys: list[str]) -> dict:
    """What the page says about a method beside its numbers, and its cells."""
    from harness.scores import cell_value

    man, method = entry.manifest, entry.manifest.get("method", {})
    hardware = man.get("hardware", {})
    cells = {}
    for cell_id in sorted(entry.results):
        r = entry.results[cell_id]
        cells[cell_id] = {"model": r["cell"]["model"], "stream": r["cell"]["stream"],
                          "seed": int(r["cell"]["seed"]), "tasks": r.get("tasks") or [],
                          "R": r["R"], "probes": r.get("probes") or {},
                          "values": {k: cell_value(r, k)[0] for k in keys}}
    record = entry.verification or {}
    results = [entry.results[c] for c in sorted(entry.results)]
    return {"bundle": f"submissions/{entry.name}", "method": method.get("name", entry.name),
            "description": method.get("description", ""), "class": method.get("class"), "builtin": method.get("builtin"),
            "params": method.get("params") or {}, "train": method.get("train") or {},
            "source": method.get("source"), "source_sha256": method.get("sha256"),
            "verified": entry.verified,
            "verified_at": str(record.get("at", ""))[:10] or None if entry.verified else None,
            "device_hours": man.get("device_hours"), "wall_clock_s": man.get("wall_clock_s"),
            "cost": method_cost(results, man.get("device_hours")),
            "truncation": method_truncation(results, in_force(method)),
            "harness": man.get("harness", {}),
            "hardware": {k: hardware.get(k) for k in ("device_type", "processor", "threads")},
            "tuning": board_part(entry.tuning), "cells": cells}


def leaderboard_data(entries: list[Entry], rejected: dict[str, list[str]],
                     pending: list[str] | None = None, notes: dict[str, str] | None = None
                     ) -> dict:
    """Everything leaderboard.json holds (see docs/leaderboard.md), rounded. `pending`: the
    leaderboard suite's methods that have no bundle yet (said on the page, not ranked)."""
    entries = sorted(entries, key=lambda e: e.name)
    catalogue = metric_catalogue(entries)
    keys = [m["key"] for m in catalogue]
    scored = score_table(entries, keys)
    table = {k: scored.by_pair(k) for k in keys}
    grid = grid_of(entries)
    per_stream = len(grid["models"]) * len(grid["seeds"])
    n_methods = len(entries)
    views, figures = {}, {}
    for view in [ALL, *grid["streams"]]:
        sub = _view(table, None if view == ALL else view)
        n_strata = len(grid["models"]) * (len(grid["streams"]) if view == ALL else 1)
        n_pairs = per_stream * (len(grid["streams"]) if view == ALL else 1)
        metrics = {}
        for metric in catalogue:
            found = analyse_metric(sub[metric["key"]], metric["higher_is_better"], n_pairs,
                                   n_strata, n_methods)
            if found:
                metrics[metric["key"]] = found
        views[view] = {"label": "all streams" if view == ALL else f"stream {view}",
                       "n_pairs": n_pairs, "power": K.power(n_pairs, n_strata, n_methods),
                       "metrics": metrics}
        figures[view] = pareto(metrics)
    catalogue = [m for m in catalogue if m["key"] in views[ALL]["metrics"]]
    repeats = duplicates(table, catalogue)
    catalogue = [m | ({"duplicates": repeats[m["key"]]} if m["key"] in repeats else {})
                 for m in catalogue]
    default = "acc"
    return tidy({
        "leaderboard_version": LEADERBOARD_VERSION,
        "grid": grid,
        "settings": {"aggregate": "mean over streams of the mean over seeds",
                     "confidence": K.CONFIDENCE,
                     "interval": "t interval (harness.statistics.stratified_t): residuals "
                                 "around each stream's mean, df = pairs - streams",
                     "rank_test": "paired t-test over (model, stream, seed) pairs, "
                                  "stream-centred (harness.statistics.stratified_t)",
                     "correction": "Holm over all pairs of methods of a ranking (one family "
                                   "per view and metric)",
                     "alpha": K.ALPHA,
                     "rank_rule": "1 + the number of methods significantly better, "
                                  "directly or through a chain of significant differences",
                     "rank_interval": "[rank, number of methods - the methods it is "
                                      "significantly better than]: simultaneous at 1 - alpha "
                                      "over the board, because the pairwise decisions are "
                                      "family-wise controlled",
                     "significant_pairs": "number of pairs significant on the ranking "
                                          "metric (of all pairs)",
                     "detectable": "per ranking metric, from the board's own spread: the "
                                   "median over all method pairs of the sd of their "
                                   "stream-centred paired differences (harness.power."
                                   "observed_spread); first/last: the smallest difference "
                                   "significant at Holm's first/last step for a pair with "
                                   "that sd; mdd80: the minimum detectable difference, found "
                                   "with 80% power at alpha after Holm over all pairs "
                                   "(harness.power.minimum_detectable_difference)",
                     "reference": REFERENCE, "default_metric": default},
        "primary": primary_of(entries),
        "summary": summary(views[ALL]["metrics"].get(default), REFERENCE,
                           next(m["label"] for m in catalogue if m["key"] == default), K.ALPHA)
        if default in views[ALL]["metrics"] else None,
        "significant_pairs": views[ALL]["metrics"]["acc"]["significant_pairs"]
        if "acc" in views[ALL]["metrics"] else None,
        "minimum_detectable_difference": {m["key"]: views[ALL]["metrics"][m["key"]]
                                          ["detectable"]["mdd80"] for m in catalogue},
        "metrics": catalogue,
        "reference": REFERENCE if any(e.name == REFERENCE for e in entries) else None,
        "views": views,
        "pareto": figures,
        "methods": {e.name: method_meta(e, keys) | ({"note": notes[e.name]} if e.name in
                                                      (notes or {}) else {}) for e in entries},
        "rejected": {k: rejected[k] for k in sorted(rejected)},
        "pending": sorted(pending or []),
    })
