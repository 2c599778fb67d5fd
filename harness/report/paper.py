"""`harness report OUT --paper`: the paper's numbers beside ours, per metric.

benchmarks/paper_numbers/<suite>.yaml holds a paper suite's numbers with their provenance
(format: docs/paper-suites.md): metric definitions (how ours is computed from a cell, how
comparable it is and why it may differ) and tables transcribed from the paper (source,
provenance, model, setting, our stream, paper columns -> our methods, one row per metric).
`paper_report(out)` reads OUT's complete cells through harness.cells, takes the suite from
them, and gives one row per (table, metric, column): the paper's value, ours (mean over
seeds with a 95% CI, in the paper's unit), the difference, each side's change from its own
base row, and a status: comparable, approximate, not comparable, needs a judge, local
judge, not reproduced, not run, or no paper number (a method of ours the paper lacks).
With a judge (`Judging`), judged tasks are scored from the answers their cells recorded.
harness/report/paper_render.py renders the report as markdown and as terminal tables.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import mean, stdev

from harness.cells import Record, read_cells
from harness.config import BENCHMARKS
from harness.errors import HarnessError
from harness.results import read_json
from harness.seeding import generator
from harness.storage import atomic_write_json
from harness.yamlio import read_yaml

NUMBERS_DIR = BENCHMARKS / "paper_numbers"
COMPARABILITY = ("comparable", "approximate", "not-comparable", "judge", "not-reproduced")
UNITS = {"percent": 100.0, "fraction": 1.0}
CONFIDENCE = 0.95
ITEM_RESAMPLES = 2000
STATUS_OF = {"comparable": "comparable", "approximate": "approximate",
             "not-comparable": "not comparable", "not-reproduced": "not reproduced"}


# --------------------------------------------------------------------------- numbers files

def numbers_files() -> dict[str, Path]:
    """suite name -> its numbers file."""
    return {p.stem: p for p in sorted(NUMBERS_DIR.glob("*.yaml"))}


def load_numbers(suite: str) -> dict:
    """A suite's numbers file, checked; HarnessError (one line) if absent or malformed."""
    files = numbers_files()
    if suite not in files:
        raise HarnessError(f"no paper numbers for suite '{suite}'",
                           f"--paper works on the runs of a paper suite: {', '.join(files)}")
    where = f"paper numbers {files[suite].name}"
    data = read_yaml(files[suite], where)
    problems = check_numbers(data)
    if problems:
        raise HarnessError(f"{where}: {problems[0]}", "fix the file (docs/paper-suites.md)")
    return data


def check_numbers(data) -> list[str]:
    """What is wrong with a numbers file (empty: nothing); every number must have its
    provenance: the file's paper and transcription, its table's source and provenance."""
    if not isinstance(data, dict):
        return ["not a mapping"]
    problems = []
    for key in ("suite", "transcribed_from"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            problems.append(f"'{key}' must be text")
    if not isinstance(data.get("paper"), dict) or not data["paper"].get("arxiv"):
        problems.append("'paper' must give at least its arxiv id")
    if data.get("unit") not in UNITS:
        problems.append(f"'unit' must be one of {', '.join(UNITS)}")
    metrics = data.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        return problems + ["'metrics' must map metric ids to definitions"]
    for mid, m in metrics.items():
        if not isinstance(m, dict):
            problems.append(f"metric {mid}: not a mapping")
            continue
        for key in ("label", "definition"):
            if not isinstance(m.get(key), str):
                problems.append(f"metric {mid}: '{key}' must be text")
        if m.get("comparability") not in COMPARABILITY:
            problems.append(f"metric {mid}: comparability must be one of {', '.join(COMPARABILITY)}")
        elif m["comparability"] != "comparable" and not isinstance(m.get("why"), str):
            problems.append(f"metric {mid}: say why it is {m['comparability']} ('why')")
        problems += [f"metric {mid}: {p}" for p in _spec_problems(m.get("ours"), metrics)]
    tables = data.get("tables")
    if not isinstance(tables, list) or not tables:
        return problems + ["'tables' must list the paper's tables"]
    seen = set()
    for t in tables:
        tid = t.get("id") if isinstance(t, dict) else None
        if not isinstance(tid, str) or tid in seen:
            problems.append(f"table {tid!r}: needs a unique 'id'")
            continue
        seen.add(tid)
        for key in ("source", "provenance", "setting"):
            if not isinstance(t.get(key), str) or not t[key].strip():
                problems.append(f"table {tid}: '{key}' must be text (provenance of its numbers)")
        for key in ("model", "stream"):
            if key not in t or not (t[key] is None or isinstance(t[key], str)):
                problems.append(f"table {tid}: '{key}' must be a name or null (any)")
        columns = t.get("columns")
        if not isinstance(columns, dict) or not columns:
            problems.append(f"table {tid}: 'columns' must map paper columns to our methods")
            continue
        rows = t.get("rows")
        if not isinstance(rows, dict) or not rows:
            problems.append(f"table {tid}: 'rows' must map metric ids to values")
            continue
        for mid, values in rows.items():
            if mid not in metrics:
                problems.append(f"table {tid}: row {mid} is not a defined metric")
            elif not isinstance(values, list) or len(values) != len(columns):
                problems.append(f"table {tid}: row {mid} needs {len(columns)} values, one per column")
            elif not all(v is None or _is_number(v) for v in values):
                problems.append(f"table {tid}: row {mid} holds a value that is not a number")
    return problems


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _spec_problems(spec, metrics) -> list[str]:
    if isinstance(spec, list):
        return [p for s in spec for p in _spec_problems(s, metrics)] if spec else ["'ours' is empty"]
    if not isinstance(spec, dict) or len(set(spec) & {"task", "probe", "mean", "weighted", "of"}) != 1:
        return ["'ours' needs exactly one of task, probe, mean, weighted, of"]
    refs = (spec.get("mean") or list(spec.get("weighted") or {})
            or ([spec["of"]] if "of" in spec else []))
    return [f"'ours' refers to unknown metric {r}" for r in refs if r not in metrics]


# --------------------------------------------------------------------------- our values

def _value(spec, record: Record, metrics: dict, row: int, judging=None) -> tuple[float | None, str]:
    """A cell's value of an `ours` spec at R/probe row `row` (0 base, -1 final), as a
    fraction, or (None, why not); a judged task's value is the judge's where one is given."""
    if isinstance(spec, list):
        why = ""
        for alternative in spec:
            value, why = _value(alternative, record, metrics, row, judging)
            if value is not None:
                return value, ""
        return None, why
    if "task" in spec:
        tasks = record.tasks
        if spec["task"] not in tasks:
            return None, f"task {spec['task']} is not in stream {record.stream}"
        judged = judging.value(record, spec["task"], row) if judging else None
        if judged is not None:
            return judged, ""
        value = record.data["R"][row][tasks.index(spec["task"])]
        if value is None:
            return None, (f"task {spec['task']} was not evaluated in row {row} "
                          "(eval.rows: own-and-final)")
        return float(value), ""
    if "probe" in spec:
        values = (record.data.get("probes") or {}).get(spec["probe"])
        if not values or values[row] is None:
            return None, f"probe {spec['probe']} was not run"
        return float(values[row]), ""
    if "of" in spec:
        value, why = _value(metrics[spec["of"]]["ours"], record, metrics, row, judging)
        return (None, why) if value is None else (
            value * spec.get("scale", 1.0) + spec.get("offset", 0.0), "")
    weights = spec.get("weighted") or {m: 1.0 for m in spec["mean"]}
    total = 0.0
    for mid, weight in weights.items():
        value, why = _value(metrics[mid]["ours"], record, metrics, row, judging)
        if value is None:
            return None, why
        total += weight * value
    return total / sum(weights.values()), ""


def _plain_task(spec) -> str | None:
    if isinstance(spec, list):
        return next((t for t in map(_plain_task, spec) if t), None)
    return spec.get("task") if isinstance(spec, dict) else None


class Judging:
    """Judge-scored values of OUT's cells: a judged task's answers recorded in samples.json,
    at the R row asked for, scored by the task's rubric (`task.judge_outputs` on the cell's
    test split, or `task.rubric()` / the harness.judge Rubric named `task.judged`); kept in
    OUT/paper_judged.json per (cell, task, row, judge), so each answer set is judged once.
    The answers of `task:` probes are not recorded: they cannot be judged after the run."""

    def __init__(self, out: Path, judge):
        from harness.judge import Judge

        self.judge = judge if isinstance(judge, Judge) else Judge(str(judge))
        self.path = out / "paper_judged.json"
        found = read_json(self.path)[0] if self.path.exists() else None
        self.store: dict = found if isinstance(found, dict) else {}
        self.used: set[tuple[str, str]] = set()  # (cell path, task) judged
        self.samples: dict[str, object] = {}

    def value(self, record: Record, task: str, row: int) -> float | None:
        from harness.tasks import get_task

        found = get_task(task)
        if not getattr(found, "judged", None):
            return None
        if record.path not in self.samples:
            folder = (self.path.parent / record.path).parent
            self.samples[record.path] = read_json(folder / "samples.json")[0]
        samples = self.samples[record.path]
        if not isinstance(samples, dict) or task not in samples:
            return None
        index = row % len(samples[task]["outputs"])
        if samples[task]["outputs"][index] is None:  # not evaluated (eval.rows)
            return None
        key = f"{record.path}|{task}|{index}|{self.judge.model_id}"
        if key not in self.store:
            self.store[key] = self._judge(found, record, samples[task], index).as_dict()
            atomic_write_json(self.path, self.store)
        self.used.add((record.path, task))
        return self.store[key]["value"]

    def _judge(self, task, record: Record, samples: dict, index: int):
        from harness.judge import Item, judge_items

        outputs = samples["outputs"][index]
        data = record.data.get("data_settings") or {}
        if hasattr(task, "judge_outputs") and "n_test" in data:
            split = task.split(0, data["n_test"], data.get("seed", 0))  # the cell's test items
            if [e.prompt for e in split.test] == samples["prompts"]:
                return task.judge_outputs(split, outputs, self.judge)
        rubric = task.rubric() if hasattr(task, "rubric") else _rubric(task.judged)
        items = [Item(q, a, _references(t))
                 for q, a, t in zip(samples["prompts"], outputs, samples["targets"])]
        return judge_items(rubric, items, self.judge)


def _rubric(name: str):
    """The harness.judge.Rubric subclass named `name`, instantiated."""
    from harness.judge import Rubric

    found, todo = {}, [Rubric]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.name, cls)
        todo += cls.__subclasses__()
    return found[name]()


def _references(target: str) -> list[str]:
    """A recorded target as the judge's references: a JSON list of answers, or the text."""
    try:
        value = json.loads(target)
    except (TypeError, ValueError):
        return [target]
    return [str(v) for v in value] if isinstance(value, list) and value else [target]


def _ci(values: list[float], items: list[float] | None) -> tuple[list | None, str]:
    """95% CI of the mean: Student t over seeds (n >= 2), else a percentile bootstrap over
    the test items of the single seed (a task score), else none."""
    from scipy import stats

    if len(values) >= 2:
        half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * stdev(values) / math.sqrt(len(values))
        return [mean(values) - half, mean(values) + half], "t over seeds"
    if items and len(items) >= 2:
        rng = generator(0, "statistics")
        means = sorted(mean(rng.choices(items, k=len(items))) for _ in range(ITEM_RESAMPLES))
        lo = int(ITEM_RESAMPLES * (1 - CONFIDENCE) / 2)
        return [means[lo], means[-lo - 1]], "bootstrap over items"
    return None, ""


# --------------------------------------------------------------------------- the table

def paper_report(out, suite: str | None = None, judge=None) -> dict:
    """The side-by-side table of OUT's cells and the paper's numbers (see the module doc);
    `suite` overrides the suite named in the cells' result.json; `judge` (a local chat
    model id or path, or a harness.judge.Judge) scores the judged tasks' recorded answers."""
    out = Path(out)
    if not (out / "cells").is_dir():
        raise HarnessError(f"'{out}' has no cells/ folder",
                           "pass the folder given to `harness run --out` (it holds cells/)")
    records = read_cells(out).records
    if suite is None:
        suites = sorted({str(r.data.get("suite")) for r in records})
        if not suites:
            raise HarnessError(f"'{out}' has no complete cell, so no suite to compare with",
                               "run the paper suite first, or name it: --paper --suite NAME")
        if len(suites) > 1:
            raise HarnessError(f"'{out}' holds cells of several suites ({', '.join(suites)})",
                               "name the paper suite to compare with")
        suite = suites[0]
    numbers = load_numbers(suite)
    judging = Judging(out, judge) if judge is not None else None
    records = [r for r in records if r.data.get("suite") in (None, suite)]
    scale = UNITS[numbers["unit"]]
    named = {t["model"] for t in numbers["tables"] if t["model"]}
    ours_models = sorted({r.model for r in records})
    substitute = ours_models[0] if len(ours_models) == 1 and not named & set(ours_models) else None
    rows, covered = [], set()
    for table in numbers["tables"]:
        model = table["model"]
        if model is None or model in ours_models:
            picked = [r for r in records if model is None or r.model == model]
        else:
            picked = [r for r in records if r.model == substitute] if substitute else []
        rows += _table_rows(table, numbers, picked, scale, model if picked else None, judging)
        covered |= {(r.model, r.stream) for r in picked if table["stream"] in (None, r.stream)}
    left = sorted({r.stream for r in records if (r.model, r.stream) not in covered})
    notes = [f"stream {s}: no paper numbers to compare with (see `harness report {out}`)"
             for s in left]
    if substitute:
        notes.append(f"ours ran on {substitute}, not on the paper's model: a substitute "
                     "(e.g. the fixtures' tiny model); the numbers only show the table works")
    return {"suite": suite, "out": str(out), "paper": numbers["paper"],
            "judge": judging.judge.model_id if judging else None,
            "transcribed_from": numbers["transcribed_from"], "unit": numbers["unit"],
            "scale": scale, "best_of_seeds": bool(numbers.get("best_of_seeds")),
            "metrics": numbers["metrics"],
            "tables": [{k: t.get(k) for k in ("id", "source", "provenance", "model", "setting",
                                              "stream", "notes", "differences")}
                       for t in numbers["tables"]],
            "rows": rows, "notes": notes, "not_compared": numbers.get("not_compared") or []}


def paper_table(out, suite: str | None = None, judge=None) -> list[dict]:
    """The rows of `paper_report` (one per table, metric and column)."""
    return paper_report(out, suite, judge)["rows"]


def _params_match(given, wanted) -> bool:
    if isinstance(wanted, dict):
        return isinstance(given, dict) and all(_params_match(given.get(k), v) for k, v in wanted.items())
    return given == wanted


def _table_rows(table: dict, numbers: dict, records: list[Record], scale: float,
                model: str | None, judging=None) -> list[dict]:
    metrics, params = numbers["metrics"], table.get("params") or {}
    stream = table["stream"]
    in_stream = [r for r in records if stream is None or r.stream == stream]
    columns = list(table["columns"].items())
    extra = sorted({r.method for r in in_stream} - {m for _, m in columns if m}) if stream else []
    rows = []
    for mid, values in table["rows"].items():
        metric = metrics[mid]
        base = {}
        for (column, method), theirs in list(zip(columns, values)) + [((m, m), None) for m in extra]:
            row = {"table": table["id"], "metric": mid, "label": metric["label"],
                   "column": column, "method": method, "model": table["model"],
                   "ours_model": model, "stream": stream, "theirs": theirs}
            row.update(_ours(metric, metrics, in_stream, method, params, scale,
                             numbers.get("best_of_seeds"), judging))
            if method == "base":
                base = {"theirs": theirs, "ours": row["ours"]}
            row["diff"] = _minus(row["ours"], theirs)
            row["theirs_delta"] = None if method == "base" else _minus(theirs, base.get("theirs"))
            row["ours_delta"] = None if method == "base" else _minus(row["ours"], base.get("ours"))
            if theirs is None and method is not None and method in extra:
                row["status"], row["why"] = "no paper number", "a method of ours the paper does not report"
            rows.append(row)
    return rows


def _minus(a, b):
    return None if a is None or b is None else a - b


def _ours(metric: dict, metrics: dict, records: list[Record], method, params: dict,
          scale: float, best_of: bool, judging=None) -> dict:
    """Our value of one metric for one paper column: mean, CI, n, best, status and why."""
    empty = {"ours": None, "ci": None, "ci_kind": "", "n": 0, "best": None}
    kind = metric["comparability"]
    if method is None:
        return {**empty, "status": "not run", "why": "not a method of the harness"}
    row = 0 if method == "base" else -1
    cells = records if method == "base" else [
        r for r in records if r.method == method and _params_match(r.data.get("method_params"),
                                                                    params.get(method, {}))]
    if not cells:
        ran = method != "base" and any(r.method == method for r in records)
        why = (f"our {method} cells ran with other settings (this table needs "
               f"{params.get(method)})" if ran else "no complete cell of ours for this setting")
        return {**empty, "status": "not run", "why": why}
    by_seed: dict[int, list[float]] = {}
    why = ""
    for r in sorted(cells, key=lambda r: (r.seed, r.method)):
        value, reason = _value(metric["ours"], r, metrics, row, judging)
        if value is None:
            why = why or reason
            continue
        by_seed.setdefault(r.seed, []).append(value)
    task = _plain_task(metric["ours"])
    judged = bool(judging) and any((r.path, task) in judging.used for r in cells)
    if not by_seed:
        status = {"judge": "needs a judge", "not-reproduced": "not reproduced"}.get(kind, "not run")
        return {**empty, "status": status, "why": metric.get("why") if kind == "not-reproduced"
                else why}
    values = [mean(v) * scale for _, v in sorted(by_seed.items())]
    items = None
    if len(values) == 1 and task and not judged:
        found = (cells[0].data.get("items") or {}).get(task)
        items = [float(x) * scale for x in found[row]] if found and found[row] else None
    ci, ci_kind = _ci(values, items)
    result = {"ours": mean(values), "ci": ci, "ci_kind": ci_kind, "n": len(values),
              "best": max(values) if best_of else None}
    if kind == "judge":
        if judged:
            return {**result, "status": "local judge",
                    "why": f"judged by {judging.judge.model_id}: {metric.get('why', '')}"}
        return {**result, "status": "needs a judge",
                "why": "no judge (report --paper --judge MODEL judges a trained task's recorded "
                       "answers): ours is the judge-free proxy, not comparable"}
    status = "not comparable" if kind == "not-reproduced" else STATUS_OF[kind]
    return {**result, "status": status, "why": metric.get("why", "")}


def run_paper_report(out, suite: str | None = None, judge: str | None = None,
                     console=None) -> int:
    """`harness report OUT --paper [--suite NAME] [--judge MODEL]`: print the tables, write
    OUT/paper.md and OUT/paper.json; exit code 0."""
    from harness.report.paper_render import paper_terminal, render_paper_markdown
    from harness.storage import atomic_write_text
    from harness.ui import make_console

    console = console or make_console()
    report = paper_report(out, suite, judge)
    for item in paper_terminal(report):
        console.print(item)
    out = Path(out)
    try:
        atomic_write_text(out / "paper.md", render_paper_markdown(report))
        atomic_write_text(out / "paper.json", json.dumps(report, indent=1, allow_nan=False) + "\n")
    except OSError as exc:
        raise HarnessError(f"cannot write the paper table into '{out}': {exc.strerror or exc}",
                           "make the folder writable or copy it somewhere writable") from exc
    console.print(f"paper table: {out / 'paper.md'}  rows: {out / 'paper.json'}",
                  highlight=False, markup=False)
    return 0
