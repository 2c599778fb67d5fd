"""`harness report OUT`: statistics across cells.

`build_report(out)` reads every cell under OUT/cells, computes per-cell metrics across
seeds and the statistics of METRICS.md (harness/statistics.py does the maths), and writes
OUT/report.md, OUT/summary.json and OUT/plots/*.png; `run_report` adds the terminal
tables for the CLI. docs/report.md documents the summary.json schema and how to read a
report. A broken or missing cell never stops a report: every cell folder is accounted for
as complete, failed, incomplete, corrupt or empty, and the report names all but the first.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, stdev

from rich.table import Table

from harness.errors import HarnessError

SUMMARY_SCHEMA_VERSION = 1
RESULT_SCHEMA_VERSION = 1
REQUIRED_KEYS = ("status", "cell", "R", "metrics")

#: Per-cell metrics compared across methods, with their direction (True: higher is better).
#: Every probe adds `<probe>_final` with the direction from `probe_info`.
STANDARD_METRICS = {"acc": True, "aia": True, "bwt": True, "fwt": True,
                    "forgetting": False, "plasticity": True}
#: Directions of the built-in probes, used only when no cell states `probe_info`.
KNOWN_PROBE_DIRECTIONS = {"drift": False, "style-leak": False, "knowledge": True,
                          "agreement": True}

NORMALISATION = ("per scenario (model, stream, metric): min-max over the methods' seed "
                 "means, oriented so that higher is better; norm(x) = (x - worst) / "
                 "(best - worst), applied to every seed's value (so single seeds may fall "
                 "outside [0, 1]); scenarios where all method means are equal are left out")
TIE_RULE = ("a method wins a scenario when its seed mean is the best; methods whose mean "
            "equals the best or lies inside (inclusive) the 95% bootstrap CI of the best "
            "method's mean (over seeds) are tied with it: every tied method gets a shared "
            "win, counted separately from outright wins; scenarios with fewer than two "
            "methods are not counted")


# --------------------------------------------------------------------------- reading cells

def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _finite(x) -> float | None:
    """A finite float, or None for null / NaN / inf / anything else."""
    if not _is_num(x):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def check_result(data) -> str | None:
    """Why a parsed result.json cannot be used, or None if it can.

    Required: `status` ("complete"), `cell` {model, stream, method, seed}, `R` ((T+1) x T
    finite numbers) and `metrics` (numbers or null). `tasks`, `probes` and `probe_info`
    are optional but must be well formed when present; `items` is checked where used.
    """
    if not isinstance(data, dict):
        return f"top level is a JSON {type(data).__name__}, not an object"
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        return "missing required key" + ("s " if len(missing) > 1 else " ") + ", ".join(missing)
    if data["status"] != "complete":
        return f"status is {data['status']!r}, not 'complete'"
    version = data.get("schema_version", RESULT_SCHEMA_VERSION)
    if version != RESULT_SCHEMA_VERSION:
        return (f"schema_version {version!r} is not supported "
                f"(this report reads {RESULT_SCHEMA_VERSION})")
    cell = data["cell"]
    if not isinstance(cell, dict):
        return "cell is not an object"
    for key in ("model", "stream", "method"):
        if key not in cell:
            return f"missing required key cell.{key}"
        if not isinstance(cell[key], str) or not cell[key]:
            return f"cell.{key} is not a non-empty string ({cell[key]!r})"
    if "seed" not in cell:
        return "missing required key cell.seed"
    seed = cell["seed"]
    if not _is_num(seed) or not math.isfinite(seed) or int(seed) != seed:
        return f"cell.seed is not a whole number ({seed!r})"
    R = data["R"]
    if not isinstance(R, list) or not R or not all(isinstance(row, list) for row in R):
        return "R is not a list of rows"
    T = len(R[0])
    if T == 0:
        return "R has no tasks (row 0 is empty)"
    if len(R) != T + 1:
        return f"R has {len(R)} rows for {T} tasks; expected T+1 = {T + 1}"
    for i, row in enumerate(R):
        if len(row) != T:
            return f"R row {i} has {len(row)} scores, expected {T}"
        for j, x in enumerate(row):
            if _finite(x) is None:
                return f"R[{i}][{j}] is not a finite number ({x!r})"
    tasks = data.get("tasks")
    if tasks is not None and (not isinstance(tasks, list) or len(tasks) != T
                              or not all(isinstance(t, str) for t in tasks)):
        return f"tasks is not a list of {T} task names (one per column of R)"
    metrics = data["metrics"]
    if not isinstance(metrics, dict):
        return "metrics is not an object"
    for key, value in metrics.items():
        if value is not None and not _is_num(value):
            return f"metrics.{key} is not a number or null ({value!r})"
    probes = data.get("probes")
    if probes is not None:
        if not isinstance(probes, dict):
            return "probes is not an object"
        for name, values in probes.items():
            if not isinstance(values, list) or len(values) != T + 1:
                return f"probes.{name} is not a list of T+1 = {T + 1} values"
            if not all(v is None or _is_num(v) for v in values):
                return f"probes.{name} holds a value that is not a number or null"
    info = data.get("probe_info")
    if info is not None:
        if not isinstance(info, dict) or not all(isinstance(v, dict) for v in info.values()):
            return "probe_info is not an object of objects"
        for name, v in info.items():
            if "higher_is_better" in v and not isinstance(v["higher_is_better"], bool):
                return f"probe_info.{name}.higher_is_better is not true/false"
    return None


@dataclass
class Record:
    """One complete cell: its result.json (validated) and where it was read from."""

    path: str  # relative to OUT, POSIX style
    data: dict

    @property
    def model(self) -> str:
        return self.data["cell"]["model"]

    @property
    def stream(self) -> str:
        return self.data["cell"]["stream"]

    @property
    def method(self) -> str:
        return self.data["cell"]["method"]

    @property
    def seed(self) -> int:
        return int(self.data["cell"]["seed"])

    @property
    def key(self) -> tuple:
        return (self.model, self.stream, self.method, self.seed)

    @property
    def T(self) -> int:
        return len(self.data["R"][0])

    @property
    def tasks(self) -> list[str]:
        return self.data.get("tasks") or [f"task{j + 1}" for j in range(self.T)]


@dataclass
class Cells:
    """Every folder under OUT/cells, sorted into what it holds."""

    records: list[Record] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    incomplete: list[dict] = field(default_factory=list)
    corrupt: list[dict] = field(default_factory=list)
    empty: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)
    n_folders: int = 0


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _read_json(path: Path) -> tuple[object, str | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable: {type(exc).__name__}: {exc}"
    if not text.strip():
        return None, "empty file"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"


def _cell_slug(model: str, stream: str, method: str, seed: int) -> str:
    if ".py:" in method:
        path, cls = method.rsplit(":", 1)
        method = f"{Path(path).stem}.{cls}"
    raw = f"{model}__{stream}__{method}__s{seed}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-")


def load_cells(out: Path) -> Cells:
    """Sort every folder of OUT/cells: complete (valid result.json), failed (failure.json),
    incomplete (progress.json only), corrupt (result.json unreadable or invalid) or empty.
    Two complete cells with the same (model, stream, method, seed) keep the first (sorted by
    folder name); the other is listed under duplicates. Cells expected from the grid of
    models x streams x methods x seeds seen, but with no folder at all, are listed as missing.
    """
    out = Path(out)
    cells_dir = out / "cells"
    found = Cells()
    seen: dict[tuple, Record] = {}
    folders = sorted((d for d in cells_dir.iterdir() if d.is_dir()), key=lambda d: d.name)
    found.n_folders = len(folders)
    for folder in folders:
        result, failure, progress = (folder / "result.json", folder / "failure.json",
                                     folder / "progress.json")
        rel = _rel(folder, out)
        if result.exists():
            data, problem = _read_json(result)
            if problem is None:
                problem = check_result(data)
            if problem is not None:
                found.corrupt.append({"path": _rel(result, out), "cell_id": folder.name,
                                      "reason": problem})
                continue
            record = Record(_rel(result, out), data)
            if record.key in seen:
                found.duplicates.append({"path": record.path,
                                         "duplicate_of": seen[record.key].path,
                                         "why": "same (model, stream, method, seed); the "
                                                "first one (by folder name) is used"})
                continue
            seen[record.key] = record
            found.records.append(record)
        elif failure.exists():
            data, problem = _read_json(failure)
            entry = {"path": _rel(failure, out), "cell_id": folder.name, "cell": None,
                     "error": None}
            if problem is not None:
                entry["error"] = f"failure.json {problem}"
            elif isinstance(data, dict):
                entry["cell"] = data.get("cell") if isinstance(data.get("cell"), dict) else None
                error = data.get("error")
                entry["error"] = str(error) if error is not None else "no error message"
            else:
                entry["error"] = "failure.json is not an object"
            found.failed.append(entry)
        elif progress.exists():
            data, problem = _read_json(progress)
            rows = data.get("rows_done") if isinstance(data, dict) else None
            found.incomplete.append({
                "path": _rel(progress, out), "cell_id": folder.name,
                "rows_done": rows if _is_num(rows) else None,
                "note": f"progress.json {problem}" if problem else
                        "no result.json: the run was interrupted or is still going"})
        else:
            found.empty.append({"path": rel, "cell_id": folder.name,
                                "files": sorted(p.name for p in folder.iterdir())[:20]})
    found.missing = _missing_cells(found)
    return found


def _missing_cells(found: Cells, limit: int = 100_000) -> list[dict]:
    infos = [r.data["cell"] for r in found.records]
    infos += [f["cell"] for f in found.failed if f["cell"]]
    axes = {k: set() for k in ("model", "stream", "method", "seed")}
    for c in infos:
        try:
            for k in axes:
                axes[k].add(c[k] if k != "seed" else int(c[k]))
        except (KeyError, TypeError, ValueError):
            continue
    if not all(axes.values()):
        return []
    size = math.prod(len(v) for v in axes.values())
    if size > limit:
        return []
    have = {r.key for r in found.records}
    for f in found.failed:
        c = f["cell"] or {}
        try:
            have.add((c["model"], c["stream"], c["method"], int(c["seed"])))
        except (KeyError, TypeError, ValueError):
            pass
    folder_ids = {e["cell_id"] for e in found.incomplete + found.corrupt + found.empty}
    missing = []
    for model in sorted(axes["model"]):
        for stream in sorted(axes["stream"]):
            for method in sorted(axes["method"]):
                for seed in sorted(axes["seed"]):
                    if (model, stream, method, seed) in have:
                        continue
                    ids = {_cell_slug(model, stream, method, seed),
                           _cell_slug(Path(model).name, stream, method, seed)}
                    if ids & folder_ids:
                        continue
                    missing.append({"model": model, "stream": stream, "method": method,
                                    "seed": seed})
    return missing


# --------------------------------------------------------------------------- values

def _metric_from_R(record: Record, metric: str) -> float | None:
    from harness import metrics as M

    fn = {"acc": M.acc, "aia": M.aia, "bwt": M.bwt, "fwt": M.fwt,
          "forgetting": M.forgetting, "plasticity": M.plasticity}[metric]
    return fn(record.data["R"])


def metric_value(record: Record, metric: str) -> tuple[float | None, bool]:
    """(value, filled): the cell's value of a metric, None where null/undefined/non-finite.
    `filled` is True when result.json's `metrics` lacked the key and the value was
    computed from R (standard metrics) or the probe's last value (`<probe>_final`)."""
    metrics = record.data["metrics"]
    if metric in metrics:
        return _finite(metrics[metric]), False
    if metric in STANDARD_METRICS:
        return _finite(_metric_from_R(record, metric)), True
    if metric.endswith("_final"):
        values = (record.data.get("probes") or {}).get(metric[: -len("_final")])
        if values:
            return _finite(values[-1]), True
    return None, False


def _probe_directions(records: list[Record], notes: list[dict]) -> dict[str, bool]:
    probes = set()
    votes: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        probes |= set(r.data.get("probes") or {})
        probes |= {k[: -len("_final")] for k in r.data["metrics"] if k.endswith("_final")}
        for name, info in (r.data.get("probe_info") or {}).items():
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
        elif p in KNOWN_PROBE_DIRECTIONS:
            directions[p] = KNOWN_PROBE_DIRECTIONS[p]
        else:
            directions[p] = True
            notes.append({"what": f"direction of probe {p}",
                          "why": "no cell states probe_info.higher_is_better; assumed "
                                 "higher is better"})
    return directions


# --------------------------------------------------------------------------- helpers

def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(mean(values)), (float(stdev(values)) if len(values) > 1 else None)


def _clean(obj):
    """JSON-safe: numpy scalars/arrays to Python, non-finite floats to null."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    return obj


def _cliques(ranks: dict[str, float], cd: float) -> list[list[str]]:
    """Maximal runs of methods (sorted by average rank) whose ranks differ by at most CD:
    the groups a CD diagram joins with a bar (no significant difference inside a group)."""
    order = sorted(ranks, key=lambda m: (ranks[m], m))
    groups: list[tuple[int, int]] = []
    for i in range(len(order)):
        j = i
        while j + 1 < len(order) and ranks[order[j + 1]] - ranks[order[i]] <= cd:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in groups):
            groups.append((i, j))
    return [order[a:b + 1] for a, b in groups]


# --------------------------------------------------------------------------- the report

@dataclass
class _Ctx:
    out: Path
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
    skipped: list[dict] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)


def _scenario_id(model: str, stream: str, metric: str | None = None) -> str:
    return f"{model}/{stream}" + (f"/{metric}" if metric else "")


def _collect(ctx: _Ctx) -> None:
    records = ctx.cells.records
    ctx.probes = _probe_directions(records, ctx.notes)
    ctx.metrics = dict(STANDARD_METRICS)
    ctx.metrics.update({f"{p}_final": hib for p, hib in ctx.probes.items()})
    for r in sorted(records, key=lambda r: r.key):
        ctx.groups.setdefault((r.model, r.stream), {}).setdefault(r.method, {})[r.seed] = r
    for (model, stream), methods in sorted(ctx.groups.items()):
        task_lists = Counter(tuple(r.tasks) for by in methods.values() for r in by.values())
        if len(task_lists) > 1:
            ctx.notes.append({"what": f"tasks of {_scenario_id(model, stream)}",
                              "why": "cells disagree on the stream's task list ("
                                     + "; ".join(f"{', '.join(t)}: {n} cell(s)"
                                                 for t, n in task_lists.most_common())
                                     + "); their metrics are compared as they are"})
    filled: Counter = Counter()
    for (model, stream), methods in sorted(ctx.groups.items()):
        for metric in ctx.metrics:
            key = (model, stream, metric)
            for method, by_seed in sorted(methods.items()):
                for seed, r in sorted(by_seed.items()):
                    value, was_filled = metric_value(r, metric)
                    if was_filled:
                        filled[metric] += 1
                    if value is None:
                        ctx.nulls.setdefault(key, {}).setdefault(method, []).append(seed)
                    else:
                        ctx.values.setdefault(key, {}).setdefault(method, {})[seed] = value
    for metric, count in sorted(filled.items()):
        source = "R" if metric in STANDARD_METRICS else "the probe's last value"
        ctx.notes.append({"what": f"metric {metric}",
                          "why": f"missing from `metrics` in {count} cell(s); computed "
                                 f"from {source}"})


def _per_method(ctx: _Ctx) -> list[dict]:
    rows = []
    for (model, stream), methods in sorted(ctx.groups.items()):
        for metric, hib in ctx.metrics.items():
            key = (model, stream, metric)
            for method in sorted(methods):
                vals = ctx.values.get(key, {}).get(method, {})
                nulls = ctx.nulls.get(key, {}).get(method, [])
                m, sd = _mean_sd(list(vals.values()))
                rows.append({"scenario": _scenario_id(model, stream, metric), "model": model,
                             "stream": stream, "metric": metric, "higher_is_better": hib,
                             "method": method, "n": len(vals), "seeds": sorted(vals),
                             "values": [vals[s] for s in sorted(vals)], "mean": m, "sd": sd,
                             "null_seeds": sorted(nulls)})
    return rows


def _final_items(record: Record) -> tuple[list[float] | None, str | None]:
    """Per-item scores of the final row, all tasks concatenated in stream order."""
    items = record.data.get("items")
    if not isinstance(items, dict):
        return None, "no per-item scores (items)"
    flat = []
    for task in record.tasks:
        rows = items.get(task)
        if not isinstance(rows, list) or len(rows) != record.T + 1:
            return None, f"items[{task}] is not a list of T+1 rows"
        final = rows[-1]
        if not isinstance(final, list) or not all(_finite(x) is not None for x in final):
            return None, f"items[{task}] final row is not a list of numbers"
        flat.extend(float(x) for x in final)
    return (flat, None) if flat else (None, "no items in the final row")


def _item_ci(ctx: _Ctx, model: str, stream: str, method: str, seeds: list[int]):
    from harness.statistics import item_bootstrap_ci

    by_seed = ctx.groups[(model, stream)]
    items_a, items_b = [], []
    for s in seeds:
        ra, rb = by_seed[method][s], ctx.groups[(model, stream)][ctx.reference][s]
        ha, hb = ra.data.get("task_hashes"), rb.data.get("task_hashes")
        if ra.tasks != rb.tasks or (ha and hb and ha != hb):
            return None, f"seed {s}: tasks or task data differ from the reference's"
        a, why = _final_items(ra)
        if a is None:
            return None, f"{method} seed {s}: {why}"
        b, why = _final_items(rb)
        if b is None:
            return None, f"{ctx.reference} seed {s}: {why}"
        if len(a) != len(b):
            return None, f"seed {s}: {len(a)} items vs {len(b)} for the reference"
        items_a.append(a)
        items_b.append(b)
    try:
        return item_bootstrap_ci(items_a, items_b, ctx.confidence, ctx.n_item_resamples,
                                 seed=ctx.seed), None
    except ValueError as exc:
        return None, str(exc)


def _comparisons(ctx: _Ctx) -> list[dict]:
    from harness.statistics import (benjamini_hochberg, holm, paired_bootstrap_ci,
                                    paired_permutation_test)

    ref = ctx.reference
    rows: list[dict] = []
    for (model, stream), methods in sorted(ctx.groups.items()):
        group = _scenario_id(model, stream)
        if ref not in methods:
            ctx.skipped.append({"what": f"comparisons in {group}",
                                "why": f"reference {ref!r} has no complete cell there "
                                       f"(methods: {', '.join(sorted(methods))})"})
            continue
        others = sorted(m for m in methods if m != ref)
        if not others:
            ctx.skipped.append({"what": f"comparisons in {group}",
                                "why": f"only the reference {ref!r} has complete cells there"})
            continue
        for metric, hib in ctx.metrics.items():
            key = (model, stream, metric)
            scenario = _scenario_id(model, stream, metric)
            vals = ctx.values.get(key, {})
            if not vals:
                ctx.skipped.append({"what": f"comparisons in {scenario}",
                                    "why": "the metric is null in every cell (undefined, "
                                           "e.g. bwt/fwt/forgetting on a one-task stream, "
                                           "or a probe these cells did not run)"})
                continue
            ref_vals = vals.get(ref, {})
            for method in others:
                what = f"{method} vs {ref} on {scenario}"
                mv = vals.get(method, {})
                seeds = sorted(set(mv) & set(ref_vals))
                if len(seeds) < 2:
                    why = (f"{len(seeds)} paired seed(s); need at least 2 (seeds with a "
                           f"value: {method} {sorted(mv) or 'none'}, {ref} "
                           f"{sorted(ref_vals) or 'none'})")
                    ctx.skipped.append({"what": what, "why": why})
                    continue
                a = [mv[s] for s in seeds]
                b = [ref_vals[s] for s in seeds]
                try:
                    ci = paired_bootstrap_ci(a, b, ctx.confidence, ctx.n_resamples, ctx.seed)
                    p = paired_permutation_test(a, b, ctx.n_permutations, ctx.seed)
                except ValueError as exc:
                    ctx.skipped.append({"what": what, "why": f"statistics failed: {exc}"})
                    continue
                diff = float(mean(x - y for x, y in zip(a, b)))
                ma, sa = _mean_sd(a)
                mb, sb = _mean_sd(b)
                row = {"scenario": scenario, "model": model, "stream": stream,
                       "metric": metric, "higher_is_better": hib, "method": method,
                       "reference": ref, "n": len(seeds), "seeds": seeds,
                       "mean": ma, "sd": sa, "ref_mean": mb, "ref_sd": sb,
                       "diff": diff, "ci_low": ci.ci_low, "ci_high": ci.ci_high,
                       "ci_method": ci.method, "confidence": ctx.confidence,
                       "p": p, "p_adjusted": None, "p_bh": None, "significant": False,
                       "direction": ("equal" if diff == 0 else
                                     "better" if (diff > 0) == hib else "worse"),
                       "item_diff": None, "item_ci_low": None, "item_ci_high": None,
                       "item_n": None, "item_note": None}
                if metric == "acc":
                    ici, why = _item_ci(ctx, model, stream, method, seeds)
                    if ici is not None:
                        row.update(item_diff=ici.diff, item_ci_low=ici.ci_low,
                                   item_ci_high=ici.ci_high, item_n=ici.n)
                    else:
                        row["item_note"] = why
                rows.append(row)
    families: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        families[row["scenario"]].append(row)
    for family in families.values():
        for row, adj in zip(family, holm([r["p"] for r in family])):
            row["p_adjusted"] = float(adj)
            row["significant"] = bool(adj < ctx.alpha)
    if rows:
        for row, adj in zip(rows, benjamini_hochberg([r["p"] for r in rows])):
            row["p_bh"] = float(adj)
    return rows


def _mean_cis(ctx: _Ctx, values: dict[int, float]) -> tuple[float, float]:
    """CI of one method's mean over seeds: the paired bootstrap of (values - 0)."""
    from harness.statistics import paired_bootstrap_ci

    v = [values[s] for s in sorted(values)]
    ci = paired_bootstrap_ci(v, [0.0] * len(v), ctx.confidence, ctx.n_resamples, ctx.seed)
    return ci.ci_low, ci.ci_high


def _scenario_means(ctx: _Ctx, metric: str) -> dict[tuple, dict[str, float]]:
    out = {}
    for (model, stream) in sorted(ctx.groups):
        vals = ctx.values.get((model, stream, metric), {})
        means = {m: float(mean(v.values())) for m, v in vals.items() if v}
        if means:
            out[(model, stream)] = means
    return out


def _wins(ctx: _Ctx) -> list[dict]:
    from harness.statistics import win_counts

    rows = []
    all_means, all_cis = {}, {}
    for metric, hib in ctx.metrics.items():
        means, cis = {}, {}
        for (model, stream), by_method in _scenario_means(ctx, metric).items():
            if len(by_method) < 2:
                continue
            sid = _scenario_id(model, stream)
            means[sid] = by_method
            vals = ctx.values[(model, stream, metric)]
            cis[sid] = {m: _mean_cis(ctx, vals[m]) for m in by_method}
            sign = 1.0 if hib else -1.0
            full = _scenario_id(model, stream, metric)
            all_means[full] = {m: sign * v for m, v in by_method.items()}
            all_cis[full] = {m: tuple(sorted((sign * lo, sign * hi)))
                             for m, (lo, hi) in cis[sid].items()}
        if not means:
            continue
        for method, wc in sorted(win_counts(means, cis, hib).items()):
            rows.append({"metric": metric, "method": method, "outright": wc.outright,
                         "shared": wc.shared, "n": wc.n, "text": wc.describe()})
    if all_means:
        for method, wc in sorted(win_counts(all_means, all_cis, True).items()):
            rows.append({"metric": "all", "method": method, "outright": wc.outright,
                         "shared": wc.shared, "n": wc.n, "text": wc.describe()})
    if not rows:
        ctx.skipped.append({"what": "win counts",
                            "why": "no scenario has two or more methods"})
    return rows


def _across_scenarios(ctx: _Ctx, comparisons: list[dict]) -> list[dict]:
    """Wilcoxon signed-rank over (model, stream) scenarios of the per-scenario mean paired
    difference, per metric and method vs the reference."""
    from harness.statistics import wilcoxon_test

    by: dict[tuple, list[dict]] = defaultdict(list)
    for c in comparisons:
        by[(c["metric"], c["method"])].append(c)
    rows = []
    for (metric, method), cs in sorted(by.items(), key=lambda kv: (
            list(ctx.metrics).index(kv[0][0]), kv[0][1])):
        if len(cs) < 2:
            continue
        d = [c["diff"] for c in cs]
        rows.append({"metric": metric, "method": method, "reference": ctx.reference,
                     "n_scenarios": len(cs), "mean_diff": float(mean(d)),
                     "n_better": sum(c["direction"] == "better" for c in cs),
                     "n_worse": sum(c["direction"] == "worse" for c in cs),
                     "n_significant": sum(c["significant"] for c in cs),
                     "p_wilcoxon": wilcoxon_test(d, [0.0] * len(d))})
    if comparisons and not rows:
        ctx.skipped.append({"what": "Wilcoxon across scenarios",
                            "why": "every method meets the reference in only one "
                                   "(model, stream) scenario"})
    return rows


def _friedman_one(ctx: _Ctx, label: str, table: dict[str, dict[str, float]]) -> dict | None:
    """Friedman + Nemenyi on {scenario: {method: oriented mean}} (higher is better)."""
    from harness.statistics import friedman, nemenyi_cd

    methods = sorted({m for v in table.values() for m in v})
    scenarios = sorted(table)
    # Complete blocks: keep every method and drop scenarios missing one if that leaves
    # >= 2 scenarios; otherwise keep the scenarios and drop methods missing from any.
    full = [s for s in scenarios if all(m in table[s] for m in methods)]
    if len(full) >= 2:
        use_methods, use_scen = methods, full
    else:
        use_methods = [m for m in methods if all(m in table[s] for s in scenarios)]
        use_scen = scenarios
    if len(use_methods) < 3 or len(use_scen) < 2:
        ctx.skipped.append({"what": f"Friedman/Nemenyi ({label})",
                            "why": f"needs >= 3 methods in >= 2 common scenarios; have "
                                   f"{len(methods)} method(s) over {len(scenarios)} "
                                   f"scenario(s)"
                                   + ("" if len(methods) < 3 or len(scenarios) < 2 else
                                      ", but not enough of them together")})
        return None
    scores = [[table[s][m] for m in use_methods] for s in use_scen]
    res = friedman(scores, higher_is_better=True)
    cd = nemenyi_cd(len(use_methods), len(use_scen), ctx.alpha)
    ranks = {m: float(r) for m, r in zip(use_methods, res.avg_ranks)}
    return {"metric": label, "methods": use_methods, "n_methods": len(use_methods),
            "n_scenarios": len(use_scen), "scenarios": use_scen,
            "statistic": res.statistic, "p": res.pvalue, "avg_ranks": ranks,
            "cd": cd, "alpha": ctx.alpha, "groups": _cliques(ranks, cd),
            "excluded_methods": sorted(set(methods) - set(use_methods)),
            "excluded_scenarios": sorted(set(scenarios) - set(use_scen))}


def _friedman(ctx: _Ctx) -> list[dict]:
    rows = []
    pooled: dict[str, dict[str, float]] = {}
    for metric, hib in ctx.metrics.items():
        sign = 1.0 if hib else -1.0
        table = {_scenario_id(m, s): {k: sign * v for k, v in by.items()}
                 for (m, s), by in _scenario_means(ctx, metric).items()}
        if not table:
            continue
        pooled.update({f"{sid}/{metric}": v for sid, v in table.items()})
        entry = _friedman_one(ctx, metric, table)
        if entry:
            rows.append(entry)
    if pooled:
        entry = _friedman_one(ctx, "all", pooled)
        if entry:
            entry["note"] = ("pooled over every (model, stream, metric) scenario, each metric "
                             "oriented so higher is better; metrics of one (model, stream) are "
                             "correlated, so read this as a summary, not an independent test")
            rows.append(entry)
    return rows


def _iqm(ctx: _Ctx) -> dict:
    import numpy as np

    from harness.statistics import probability_of_improvement, stratified_bootstrap_iqm_ci

    ref = ctx.reference
    norm: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    oriented: dict[str, dict[str, dict[str, list]]] = defaultdict(lambda: defaultdict(dict))
    flat = 0
    for (model, stream, metric), by_method in sorted(ctx.values.items()):
        hib = ctx.metrics[metric]
        by_method = {m: v for m, v in by_method.items() if v}
        if len(by_method) < 2:
            continue
        sign = 1.0 if hib else -1.0
        means = {m: sign * float(mean(v.values())) for m, v in by_method.items()}
        lo, hi = min(means.values()), max(means.values())
        sid = _scenario_id(model, stream, metric)
        for m, v in by_method.items():
            oriented[metric][m][sid] = [sign * x for x in v.values()]
            oriented["all"][m][sid] = oriented[metric][m][sid]
        if hi - lo <= 1e-12 * max(1.0, abs(hi)):
            flat += 1
            continue
        for m, v in by_method.items():
            scaled = [(sign * x - lo) / (hi - lo) for x in v.values()]
            norm[metric][m].append(scaled)
            norm["all"][m].append(scaled)
    if flat:
        ctx.notes.append({"what": "IQM normalisation",
                          "why": f"{flat} scenario(s) left out: every method has the same "
                                 "mean, so min-max normalisation is undefined"})
    rows = []
    for metric in [*ctx.metrics, "all"]:
        for method in sorted(norm.get(metric, {})):
            groups = norm[metric][method]
            res = stratified_bootstrap_iqm_ci(groups, ctx.confidence, ctx.n_iqm_resamples,
                                              ctx.seed)
            pi, pi_n = None, 0
            if method != ref and ref in oriented[metric]:
                x = oriented[metric][method]
                y = oriented[metric][ref]
                common = sorted(set(x) & set(y))
                if common:
                    pi = probability_of_improvement([np.asarray(x[s]) for s in common],
                                                    [np.asarray(y[s]) for s in common])
                    pi_n = len(common)
            rows.append({"metric": metric, "method": method, "iqm": res.point,
                         "ci_low": res.low, "ci_high": res.high,
                         "n_scenarios": len(groups), "n_values": sum(len(g) for g in groups),
                         "prob_improvement": pi, "pi_n_scenarios": pi_n})
    if not rows:
        ctx.skipped.append({"what": "IQM and probability of improvement",
                            "why": "no scenario has two or more methods with different means"})
    return {"normalisation": NORMALISATION,
            "prob_improvement": (f"P(method > {ref}): Mann-Whitney U / (n_x n_y) of the "
                                 "method's seeds against the reference's, oriented so higher "
                                 "is better, averaged over scenarios"),
            "confidence": ctx.confidence, "n_resamples": ctx.n_iqm_resamples, "rows": rows}


def _seed_summary(ctx: _Ctx) -> list[dict]:
    return [{"model": model, "stream": stream, "method": method, "n": len(by_seed),
             "seeds": sorted(by_seed)}
            for (model, stream), methods in sorted(ctx.groups.items())
            for method, by_seed in sorted(methods.items())]


def _cells_summary(cells: Cells) -> dict:
    return {"folders": cells.n_folders, "complete": len(cells.records),
            "failed": cells.failed, "incomplete": cells.incomplete,
            "corrupt": cells.corrupt, "empty": cells.empty,
            "duplicates": cells.duplicates, "missing": cells.missing}


def build_report(out, reference: str = "sft", alpha: float = 0.05, plots: bool = True,
                 confidence: float = 0.95, n_resamples: int = 9999,
                 n_permutations: int = 9999, n_iqm_resamples: int = 2000,
                 n_item_resamples: int = 1999, seed: int = 0) -> dict:
    """Read OUT/cells, compute the statistics, write OUT/report.md, OUT/summary.json and
    (unless plots=False) OUT/plots/*.png; return the summary (the content of summary.json).

    Raises HarnessError when OUT or OUT/cells does not exist, OUT/cells holds no cell
    folder, alpha is not in (0, 1), or the reference method has no complete cell (while
    other methods do).
    """
    out = Path(out)
    if not out.exists():
        raise HarnessError(f"output directory '{out}' does not exist",
                           "pass the folder given to `harness run --out` (it holds cells/)")
    if not out.is_dir():
        raise HarnessError(f"'{out}' is not a directory",
                           "pass the folder given to `harness run --out` (it holds cells/)")
    if not (out / "cells").is_dir():
        hint = ("pass its parent folder" if out.name == "cells" else
                "pass the folder given to `harness run --out`, which holds cells/")
        raise HarnessError(f"'{out}' has no cells/ folder", hint)
    if not 0 < alpha < 1:
        raise HarnessError(f"--alpha must be between 0 and 1, got {alpha}", "e.g. --alpha 0.05")
    cells = load_cells(out)
    if cells.n_folders == 0:
        raise HarnessError(f"'{out / 'cells'}' holds no cell folders",
                           "run `harness run --suite S --out DIR` first, then report on DIR")
    methods_present = sorted({r.method for r in cells.records})
    if cells.records and reference not in methods_present:
        raise HarnessError(f"reference method '{reference}' has no complete cell in '{out}' "
                           f"(methods with complete cells: {', '.join(methods_present)})",
                           f"pass --reference with one of: {', '.join(methods_present)}")
    ctx = _Ctx(out=out, reference=reference, alpha=alpha, confidence=confidence,
               n_resamples=n_resamples, n_permutations=n_permutations,
               n_iqm_resamples=n_iqm_resamples,
               n_item_resamples=min(n_item_resamples, n_resamples), seed=seed, cells=cells)
    if not cells.records:
        ctx.skipped.append({"what": "all statistics and plots",
                            "why": "no complete cell (see cells: failed, incomplete, corrupt)"})
    _collect(ctx)
    per_method = _per_method(ctx)
    comparisons = _comparisons(ctx)
    wins = _wins(ctx) if cells.records else []
    across = _across_scenarios(ctx, comparisons)
    friedman_rows = _friedman(ctx) if cells.records else []
    iqm = _iqm(ctx) if cells.records else {"normalisation": NORMALISATION, "rows": []}
    from harness import __version__

    summary = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "harness_version": __version__,
        "out": str(out),
        "reference": reference,
        "alpha": alpha,
        "settings": {
            "confidence": confidence,
            "pairing": ("by seed: a comparison uses only the seeds with a value for both "
                        "the method and the reference (n in every row)"),
            "ci": ("paired bootstrap over seeds of the mean difference (scipy.stats."
                   "bootstrap, paired=True, BCa; percentile where BCa degenerates)"),
            "bootstrap_resamples": n_resamples,
            "item_ci": ("acc only: item-level paired bootstrap pooling (seed, item) units "
                        "of the final row over all tasks"),
            "item_bootstrap_resamples": min(n_item_resamples, n_resamples),
            "test": ("two-sided paired sign-flip permutation test of the mean difference "
                     "(scipy.stats.permutation_test, permutation_type='samples'; exact when "
                     "2^n <= permutation_resamples)"),
            "permutation_resamples": n_permutations,
            "family": ("Holm within each scenario (model, stream, metric): every method vs "
                       "the reference is one family -> p_adjusted"),
            "across_grid": f"Benjamini-Hochberg over all {len(comparisons)} comparisons -> p_bh",
            "significant": "p_adjusted < alpha",
            "tie_rule": TIE_RULE,
            "random_seed": seed,
        },
        "metrics": [{"name": m, "higher_is_better": hib} for m, hib in ctx.metrics.items()],
        "cells": _cells_summary(cells),
        "seeds": _seed_summary(ctx),
        "per_method": per_method,
        "comparisons": comparisons,
        "across_scenarios": across,
        "wins": wins,
        "friedman": friedman_rows,
        "iqm": iqm,
        "plots": [],
        "skipped": ctx.skipped,
        "notes": ctx.notes,
    }
    if plots and cells.records:
        from harness.plots import make_plots

        made, skipped = make_plots(ctx.groups, per_method, ctx.metrics, list(ctx.probes),
                                   friedman_rows, out / "plots")
        summary["plots"] = made
        ctx.skipped.extend(skipped)
    elif not plots:
        ctx.skipped.append({"what": "plots", "why": "--no-plots"})
    summary = _clean(summary)
    try:
        _write(out / "summary.json", json.dumps(summary, indent=1, allow_nan=False) + "\n")
        _write(out / "report.md", render_markdown(summary))
    except OSError as exc:
        raise HarnessError(f"cannot write the report into '{out}': {exc.strerror or exc}",
                           "make the folder writable or copy it somewhere writable") from exc
    return summary


def _write(path: Path, text: str) -> None:
    from harness.paths import atomic_write_text

    atomic_write_text(path, text)


# --------------------------------------------------------------------------- formatting

def _num(x, signed: bool = False) -> str:
    if x is None:
        return "-"
    if x != 0 and abs(x) < 1e-3:
        return f"{x:+.2e}" if signed else f"{x:.2e}"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _p(p) -> str:
    if p is None:
        return "-"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def _md(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _seed_text(seeds: list[int]) -> str:
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(s: dict) -> str:
    """report.md from a summary (the content of summary.json)."""
    ref, alpha, st = s["reference"], s["alpha"], s["settings"]
    cells = s["cells"]
    conf = int(round(st["confidence"] * 100))
    L = [f"# Report: {s['out']}", "",
         f"Generated {s['generated_at']} by harness {s['harness_version']}. "
         "The numbers are in `summary.json` (schema: docs/report.md).", ""]

    # cells
    L += ["## Cells", ""]
    L.append(f"{cells['folders']} cell folder(s): {cells['complete']} complete, "
             f"{len(cells['failed'])} failed, {len(cells['incomplete'])} incomplete, "
             f"{len(cells['corrupt'])} corrupt, {len(cells['empty'])} empty; "
             f"{len(cells['duplicates'])} duplicate(s); {len(cells['missing'])} expected "
             "cell(s) without a folder.")
    L.append("")
    if cells["failed"]:
        L += ["**Failed** (failure.json; not in any statistic):", ""]
        L += [f"- `{f['path']}`: {_md(f['error'])}" for f in cells["failed"]]
        L.append("")
    if cells["incomplete"]:
        L += ["**Incomplete** (progress.json, no result.json; not in any statistic):", ""]
        L += [f"- `{f['path']}`: rows done {f['rows_done'] if f['rows_done'] is not None else '?'}"
              f" ({_md(f['note'])})" for f in cells["incomplete"]]
        L.append("")
    if cells["corrupt"]:
        L += ["**Corrupt** (result.json unusable; not in any statistic):", ""]
        L += [f"- `{f['path']}`: {_md(f['reason'])}" for f in cells["corrupt"]]
        L.append("")
    if cells["empty"]:
        L += ["**Empty** (no result.json, failure.json or progress.json):", ""]
        L += [f"- `{f['path']}`" for f in cells["empty"]]
        L.append("")
    if cells["duplicates"]:
        L += ["**Duplicates** (ignored):", ""]
        L += [f"- `{d['path']}` repeats `{d['duplicate_of']}`" for d in cells["duplicates"]]
        L.append("")
    if cells["missing"]:
        L += ["**Missing** (expected from the grid of models x streams x methods x seeds "
              "seen, but no folder):", ""]
        L += [f"- {m['model']} / {m['stream']} / {m['method']} / seed {m['seed']}"
              for m in cells["missing"][:50]]
        if len(cells["missing"]) > 50:
            L.append(f"- ... and {len(cells['missing']) - 50} more (summary.json lists all)")
        L.append("")

    # seeds and methods
    seeds = s["seeds"]
    L += ["## Seeds", ""]
    sets = {tuple(g["seeds"]) for g in seeds}
    if len(sets) == 1 and seeds:
        only = list(next(iter(sets)))
        L.append(f"Every (model, stream, method) has {len(only)} complete seed(s): "
                 f"{_seed_text(only)}.")
    elif seeds:
        L += _table(["model", "stream", "method", "n", "seeds"],
                    [[g["model"], g["stream"], g["method"], g["n"], _seed_text(g["seeds"])]
                     for g in seeds])
    else:
        L.append("No complete cells.")
    L.append("")

    # method
    n_comp = len(s["comparisons"])
    L += ["## How these numbers were computed", "",
          f"- **Reference**: `{ref}`. Every other method is compared with it in each "
          "scenario = (model, stream, metric).",
          "- **Pairing**: by seed (seeds fix data order and sampling). A comparison uses only "
          "the seeds with a value for both methods; `n` in every row is that number.",
          f"- **Effect size**: diff = mean over the n paired seeds of (method - {ref}), with a "
          f"{conf}% paired bootstrap CI ({st['bootstrap_resamples']} resamples, BCa; percentile "
          "when BCa degenerates). With few seeds such CIs are too narrow; read them with n.",
          f"- **Test**: two-sided paired sign-flip permutation test of the mean difference "
          f"(exact for n <= 13). With n seeds the smallest possible p is 2/2^n "
          "(0.0625 for n = 5).",
          f"- **Correction**: Holm within each family = all methods vs `{ref}` in one scenario "
          f"(p_adj); Benjamini-Hochberg across all {n_comp} comparisons of the grid (p_bh, "
          "reported only).",
          f"- **Significance**: `sig` = p_adj < alpha = {alpha}. Directions: ↑ higher is "
          "better, ↓ lower is better; `better`/`worse` is the direction of diff.",
          f"- **Wins**: {TIE_RULE}.",
          f"- **IQM**: 25% trimmed mean of normalised scores with a stratified bootstrap CI "
          f"(seeds resampled within each scenario). Normalisation: {NORMALISATION}.",
          "- **Friedman / Nemenyi**: per metric over (model, stream) scenarios, on seed means; "
          "average rank 1 = best; two methods differ when their average ranks differ by more "
          f"than the critical difference CD (alpha = {alpha}).",
          ""]

    # comparison tables
    comps = defaultdict(dict)
    for c in s["comparisons"]:
        comps[c["scenario"]][c["method"]] = c
    per = defaultdict(list)
    for r in s["per_method"]:
        per[(r["model"], r["stream"])].append(r)
    if per:
        L += ["## Results per scenario", ""]
    for (model, stream), rows in per.items():
        L += [f"### {model} / {stream}", ""]
        by_metric = defaultdict(list)
        for r in rows:
            by_metric[r["metric"]].append(r)
        for metric, mrows in by_metric.items():
            if not any(r["n"] for r in mrows):
                continue
            hib = mrows[0]["higher_is_better"]
            scen = mrows[0]["scenario"]
            L += [f"**{metric}** ({'↑' if hib else '↓'})", ""]
            table = []
            for r in sorted(mrows, key=lambda r: (r["method"] != ref, r["method"])):
                ms = f"{_num(r['mean'])} ± {_num(r['sd'])}" if r["sd"] is not None \
                    else _num(r["mean"])
                c = comps.get(scen, {}).get(r["method"])
                if r["method"] == ref:
                    table.append([r["method"] + " (ref)", r["n"], ms, "-", "-", "-", "-", "-"])
                elif c is None:
                    table.append([r["method"], r["n"], ms, "not compared (see Skipped)",
                                  "-", "-", "-", "-"])
                else:
                    table.append([r["method"], c["n"], ms,
                                  f"{_num(c['diff'], True)} [{_num(c['ci_low'], True)}, "
                                  f"{_num(c['ci_high'], True)}] {c['direction']}",
                                  _p(c["p"]), _p(c["p_adjusted"]), _p(c["p_bh"]),
                                  "**yes**" if c["significant"] else "no"])
            L += _table(["method", "n", "mean ± sd", f"diff vs {ref} [{conf}% CI]", "p",
                         "p_adj (Holm)", "p_bh", "sig"], table)
            L.append("")
            items = [comps[scen][m] for m in sorted(comps.get(scen, {}))
                     if comps[scen][m].get("item_n")]
            if items:
                L.append("Item-level paired bootstrap (final row, items x seeds pooled): " +
                         "; ".join(f"{c['method']} {_num(c['item_diff'], True)} "
                                   f"[{_num(c['item_ci_low'], True)}, "
                                   f"{_num(c['item_ci_high'], True)}] over {c['item_n']} units"
                                   for c in items) + ".")
                L.append("")

    # across scenarios
    if s["across_scenarios"]:
        L += ["## Across scenarios (Wilcoxon signed-rank)", "",
              f"Per metric: the mean paired difference vs `{ref}` in each (model, stream) "
              "scenario, tested with a two-sided Wilcoxon signed-rank test over scenarios "
              "(uncorrected; with k scenarios the smallest p is 2/2^k).", ""]
        L += _table(["metric", "method", "scenarios", "mean diff", "better / worse",
                     "significant (Holm)", "p (Wilcoxon)"],
                    [[r["metric"], r["method"], r["n_scenarios"], _num(r["mean_diff"], True),
                      f"{r['n_better']} / {r['n_worse']}", r["n_significant"],
                      _p(r["p_wilcoxon"])] for r in s["across_scenarios"]])
        L.append("")

    # wins
    if s["wins"]:
        L += ["## Wins", "", f"Tie rule: {TIE_RULE}. `all` counts every (model, stream, "
              "metric) scenario.", ""]
        metrics = list(dict.fromkeys(w["metric"] for w in s["wins"]))
        methods = sorted({w["method"] for w in s["wins"]})
        lookup = {(w["metric"], w["method"]): w for w in s["wins"]}
        rows = []
        for m in methods:
            row = [m]
            for k in metrics:
                w = lookup.get((k, m))
                row.append(f"{w['outright']} (+{w['shared']}) / {w['n']}" if w else "-")
            rows.append(row)
        L.append("Cells read: outright wins (+ shared wins) / scenarios run.")
        L.append("")
        L += _table(["method", *metrics], rows)
        L.append("")
        for w in s["wins"]:
            if w["metric"] == "all":
                L.append(f"- {w['method']}: {w['text']}")
        L.append("")

    # friedman
    if s["friedman"]:
        L += ["## Friedman test and Nemenyi critical difference", ""]
        for f in s["friedman"]:
            ranks = ", ".join(f"{m} {r:.2f}" for m, r in sorted(f["avg_ranks"].items(),
                                                                key=lambda kv: kv[1]))
            groups = "; ".join("{" + ", ".join(g) + "}" for g in f["groups"]) or "none"
            L.append(f"- **{f['metric']}**: {f['n_methods']} methods over {f['n_scenarios']} "
                     f"scenarios, chi2 = {f['statistic']:.2f}, p = {_p(f['p'])}; CD = "
                     f"{f['cd']:.2f}; average ranks: {ranks}; not significantly different: "
                     f"{groups}"
                     + (f"; left out: methods {', '.join(f['excluded_methods'])}"
                        if f["excluded_methods"] else "")
                     + (f"; left out: {len(f['excluded_scenarios'])} scenario(s) missing a "
                        "method" if f["excluded_scenarios"] else "")
                     + (f". {f['note']}" if f.get("note") else ""))
        L.append("")

    # iqm
    iqm = s["iqm"]
    if iqm.get("rows"):
        L += ["## IQM and probability of improvement", "",
              f"Normalisation: {iqm['normalisation']}. P(> {ref}): {iqm['prob_improvement']}.",
              ""]
        L += _table(["metric", "method", f"IQM [{conf}% CI]", "scenarios",
                     f"P(> {ref})"],
                    [[r["metric"], r["method"],
                      f"{_num(r['iqm'])} [{_num(r['ci_low'])}, {_num(r['ci_high'])}]",
                      r["n_scenarios"], _num(r["prob_improvement"])]
                     for r in iqm["rows"]])
        L.append("")

    # plots
    if s["plots"]:
        L += ["## Plots", ""]
        L += [f"- `{p['file']}`: {p['what']}" for p in s["plots"]]
        L.append("")

    # skipped and notes
    if s["skipped"]:
        L += ["## Skipped", ""]
        L += [f"- {_md(x['what'])}: {_md(x['why'])}" for x in s["skipped"]]
        L.append("")
    if s["notes"]:
        L += ["## Notes", ""]
        L += [f"- {_md(x['what'])}: {_md(x['why'])}" for x in s["notes"]]
        L.append("")
    return "\n".join(L)


def terminal_tables(s: dict) -> list:
    """Rich renderables for the terminal: cells, per-(model, stream) results, wins."""
    from rich.markup import escape
    from rich.text import Text

    out = []
    cells = s["cells"]
    broken = Table(title="Cells not in the statistics", title_justify="left")
    for col in ("cell", "state", "why"):
        broken.add_column(col)
    for f in cells["failed"]:
        broken.add_row(escape(f["path"]), "failed", escape(str(f["error"])))
    for f in cells["incomplete"]:
        broken.add_row(escape(f["path"]), "incomplete", f"rows done {f['rows_done']}")
    for f in cells["corrupt"]:
        broken.add_row(escape(f["path"]), "[red]corrupt[/red]", escape(f["reason"]))
    for f in cells["empty"]:
        broken.add_row(escape(f["path"]), "empty", "no result/failure/progress file")
    for d in cells["duplicates"]:
        broken.add_row(escape(d["path"]), "duplicate", f"repeats {escape(d['duplicate_of'])}")
    out.append(Text(f"{cells['complete']} complete cell(s) of {cells['folders']}; "
                    f"reference {s['reference']}, alpha {s['alpha']}, "
                    "Holm within scenario, BH across the grid"))
    if broken.row_count:
        out.append(broken)
    if cells["missing"]:
        out.append(Text(f"{len(cells['missing'])} expected cell(s) have no folder "
                        "(listed in report.md)"))
    ref = s["reference"]
    comps = {(c["scenario"], c["method"]): c for c in s["comparisons"]}
    per = defaultdict(list)
    for r in s["per_method"]:
        per[(r["model"], r["stream"])].append(r)
    for (model, stream), rows in per.items():
        metrics = [m for m in dict.fromkeys(r["metric"] for r in rows)
                   if any(r["n"] for r in rows if r["metric"] == m)]
        t = Table(title=escape(f"{model} / {stream}: mean over seeds; diff vs {ref} "
                               "(* = significant after Holm)"), title_justify="left")
        t.add_column("method")
        t.add_column("n")
        for m in metrics:
            hib = next(r["higher_is_better"] for r in rows if r["metric"] == m)
            t.add_column(escape(f"{m} {'↑' if hib else '↓'}"), justify="right")
        methods = sorted({r["method"] for r in rows}, key=lambda m: (m != ref, m))
        look = {(r["method"], r["metric"]): r for r in rows}
        for method in methods:
            cols = []
            for m in metrics:
                r = look[(method, m)]
                text = _num(r["mean"])
                c = comps.get((r["scenario"], method))
                if c is not None:
                    mark = "*" if c["significant"] else ""
                    color = ("green" if c["direction"] == "better" else "red") \
                        if c["significant"] else "dim"
                    text += f"\n[{color}]{_num(c['diff'], True)}{mark}[/{color}]"
                cols.append(text)
            n = max((look[(method, m)]["n"] for m in metrics), default=0)
            t.add_row(escape(method) + (" (ref)" if method == ref else ""), str(n), *cols)
        out.append(t)
    wins = [w for w in s["wins"] if w["metric"] == "all"]
    if wins:
        t = Table(title="Wins over all scenarios (outright; shared = within the best's CI)",
                  title_justify="left")
        for col in ("method", "outright", "shared", "scenarios"):
            t.add_column(col)
        for w in sorted(wins, key=lambda w: (-w["outright"], -w["shared"], w["method"])):
            t.add_row(escape(w["method"]), str(w["outright"]), str(w["shared"]), str(w["n"]))
        out.append(t)
    for f in s["friedman"]:
        if f["metric"] == "all":
            out.append(Text(f"Friedman (all scenarios): p = {_p(f['p'])}, CD = {f['cd']:.2f}; "
                            "average ranks " + ", ".join(
                                f"{m} {r:.2f}" for m, r in sorted(f["avg_ranks"].items(),
                                                                  key=lambda kv: kv[1]))))
    if s["skipped"]:
        out.append(Text(f"{len(s['skipped'])} item(s) skipped with a reason (report.md, "
                        "section Skipped)"))
    return out


def run_report(out, reference: str = "sft", alpha: float = 0.05, plots: bool = True,
               console=None) -> int:
    """`harness report OUT`: build the report, print the terminal tables; exit code 0."""
    from rich.console import Console

    console = console or Console()
    summary = build_report(out, reference=reference, alpha=alpha, plots=plots)
    for item in terminal_tables(summary):
        console.print(item)
    out = Path(out)
    console.print(f"report: {out / 'report.md'}  summary: {out / 'summary.json'}"
                  + (f"  plots: {out / 'plots'} ({len(summary['plots'])})"
                     if summary["plots"] else ""), highlight=False, markup=False)
    return 0
