"""`harness tune`: the same tuning budget for every method, on validation streams.

Every method declares its knobs and a fixed grid of exactly `BUDGET` settings in its code
(`Method.tune`, e.g. `{"lambda": [1e4, 1e5, 1e6, 1e7]}`; a key `train.lr` or `train.steps`
tunes a training setting), the built-ins' in their own files. A method that declares
none is tuned on its learning rate (`DEFAULT_LR_FACTORS` x its rate). Each setting runs on the suite's `tune:`
block, never on the ranked streams:

    tune:
      streams: [tune-a, tune-b]   # named streams or {name: [tasks]}; none a ranked stream's
      seeds: [0]                  # 1 or 2
      select: acc                 # the pre-registered criterion: a cell metric of the
                                  # suite's primary scoring (mean over streams and seeds)
      n_test: 64                  # optional: test items a validation task (default: the
                                  # suite's data.n_test; selection needs fewer than ranking)

OUT/tuning/<method>/<setting>/cells/ holds the tuning cells (their own folders, resumable
like any run); OUT/tuning.json and OUT/tuning.md the full table; OUT/tuned.json the chosen
settings, which `harness run --settings OUT/tuned.json` applies (as `--set`s). A chosen
setting whose cells are item-identical to SFT's at the same training settings is flagged:
it does nothing the reference does not.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path
from statistics import mean

from harness.config import Suite, TrainSettings, build_settings, check_seeds, fail, load_streams
from harness.errors import HarnessError
from harness.metrics import METRICS
from harness.scores import higher_is_better
from harness.storage import atomic_write_json, atomic_write_text

BUDGET = 4  # settings per method: the same for every method
DEFAULT_LR_FACTORS = (0.25, 0.5, 1.0, 2.0)  # x the method's own rate, when it declares no knobs
REFERENCE = "sft"  # chosen settings item-identical to this method's are flagged
MAX_SEEDS = 2
@dataclasses.dataclass(frozen=True)
class TunePlan:
    streams: dict[str, list[str]]
    seeds: list[int]
    select: str
    n_test: int | None = None  # test items a validation task (None: the suite's n_test)


def tune_plan(suite: Suite) -> TunePlan:
    """The suite's `tune:` block, checked: validation streams disjoint from the ranked ones
    (no stream name and no task order shared), 1-2 seeds, a known selection metric."""
    where = f"suite {Path(suite.path).name or suite.name}, tune"
    raw = suite.tune
    if raw is None:
        fail(f"suite {suite.name}", "has no `tune:` block", "add tune: {streams: [...], "
             "seeds: [0], select: acc} naming validation streams (see harness/tune.py)")
    if not isinstance(raw, dict):
        fail(where, f"expected a mapping, got {type(raw).__name__}", "e.g. tune: {streams: "
             "[tune-a], seeds: [0], select: acc}")
    unknown = set(map(str, raw)) - {"streams", "seeds", "select", "n_test"}
    missing = {"streams", "seeds", "select"} - set(raw)
    if unknown or missing:
        key = sorted(unknown or missing)[0]
        fail(where, f"{'unknown' if unknown else 'missing'} key '{key}'",
             "give streams, seeds, select (and optionally n_test)")
    streams = raw["streams"]
    named = load_streams()
    if isinstance(streams, (str, list)):
        streams = [streams] if isinstance(streams, str) else streams
        if not streams or any(not isinstance(s, str) or s not in named for s in streams):
            fail(where, f"streams must name streams of benchmarks/streams.yaml, got {streams!r}",
                 f"use some of: {', '.join(named)}, or map names to task lists")
        streams = {s: named[s] for s in streams}
    if not isinstance(streams, dict) or not streams:
        fail(where, "streams must list or map at least one stream", "e.g. streams: [tune-a]")
    from harness.tasks import all_tasks

    tasks = all_tasks(datasets=True)
    for name, stream in streams.items():
        if not isinstance(stream, list) or not stream or any(t not in tasks for t in stream):
            fail(where, f"stream '{name}' must list known tasks, got {stream!r}",
                 f"use some of: {', '.join(all_tasks())}")
        clash = next((r for r, ranked in suite.streams.items()
                      if r == name or list(ranked) == list(stream)), None)
        if clash is not None:
            fail(where, f"validation stream '{name}' is the ranked stream '{clash}'",
                 "tune on other tasks or another order, never on a stream that is ranked")
    seeds = raw["seeds"]
    seeds = check_seeds(seeds if isinstance(seeds, list) else [seeds], f"{where}, seeds")
    if not 1 <= len(seeds) <= MAX_SEEDS:
        fail(where, f"seeds must be 1 or 2 seeds, got {len(seeds)}", "e.g. seeds: [0]")
    if raw["select"] not in METRICS:
        fail(where, f"select must be a cell metric, got {raw['select']!r}",
             f"use one of: {', '.join(METRICS)} (of the suite's primary scoring)")
    n_test = raw.get("n_test")
    if n_test is not None and (isinstance(n_test, bool) or not isinstance(n_test, int)
                               or n_test < 1):
        fail(where, f"n_test must be a whole number of at least 1, got {n_test!r}",
             "e.g. n_test: 64 (validation items a task; default: the suite's data.n_test)")
    return TunePlan({str(k): list(v) for k, v in streams.items()}, seeds, raw["select"], n_test)


def grid_of(method) -> dict[str, list]:
    """A method's declared knobs -> values (its class's `tune`), or its learning rate."""
    from harness.methods import METHODS

    declared = dict(getattr(METHODS[method.name], "tune", None) or {})
    return declared or {"train.lr": [method.train.lr * f for f in DEFAULT_LR_FACTORS]}


def settings_of(method) -> list[dict]:
    """The method's BUDGET settings, each {knob: value}, in the author's order."""
    grid = grid_of(method)
    where = f"method '{method.name}', tune"
    if not all(isinstance(v, list) and v for v in grid.values()):
        fail(where, "every knob must list its values", 'e.g. tune = {"lambda": [1e4, 1e5, 1e6, 1e7]}')
    settings = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    if len(settings) != BUDGET:
        fail(where, f"declares {len(settings)} settings; the budget is {BUDGET} for every method",
             f"list knob values whose combinations number {BUDGET}")
    return settings


def apply_setting(method, setting: dict):
    """The MethodSpec with one setting applied, checked as a suite's settings are."""
    from harness.methods.settings import check_method

    params = {k: v for k, v in setting.items() if not k.startswith("train.")}
    train = {k[len("train."):]: v for k, v in setting.items() if k.startswith("train.")}
    where = f"method '{method.name}', tune setting {setting}"
    return dataclasses.replace(
        method, params=check_method(method.name, {**method.params, **params}, where),
        train=build_settings(TrainSettings, train, where, method.train) if train else method.train,
        train_keys=tuple(dict.fromkeys((*method.train_keys, *train))))


def slug(setting: dict) -> str:
    """A setting's folder name, e.g. `lambda=10000.0` or `train.lr=2.5e-05`."""
    text = ",".join(f"{k}={v}" for k, v in setting.items())
    return re.sub(r"[^A-Za-z0-9._=,+-]+", "-", text)


def setting_suite(suite: Suite, plan: TunePlan, method) -> Suite:
    """The suite a tuning setting runs: the validation streams, seeds and items, one method,
    no probes (the criterion is a cell metric of the tasks' scores, and a probe row costs
    about a minute of CPU on the embedded model: docs/benchmark-card.md)."""
    data = suite.data if plan.n_test is None else dataclasses.replace(suite.data,
                                                                       n_test=plan.n_test)
    return dataclasses.replace(suite, streams=plan.streams, seeds=plan.seeds, methods=[method],
                               data=data, probes=[], stream_train={}, stream_method_train={},
                               tune=None)


def tune(suite: Suite, out: Path, device, ui, jobs: int | None = None,
         threads: int | None = None) -> dict:
    """Run every method's settings on the validation streams, in this process or with
    `jobs` worker processes of `threads` torch threads each (harness/executors.py), then
    select and write the table and the chosen settings; return the table. Complete cells
    are kept and skipped on a re-run."""
    from harness.runner import Runner

    plan = tune_plan(suite)
    entries = [(m, s, apply_setting(m, s)) for m in suite.methods for s in settings_of(m)]
    runs = [(setting_suite(suite, plan, spec), folder(out, m.name, s)) for m, s, spec in entries]
    ui.log(f"tuning {len(suite.methods)} methods x {BUDGET} settings x {len(plan.streams)} "
           f"streams x {len(plan.seeds)} seeds -> {out / 'tuning'}")
    if (jobs or 1) > 1:
        failures = in_workers(suite, runs, out, device, ui, jobs, threads)
    else:
        failures = []
        with ui.session():
            for (method, setting, _), (variant, where) in zip(entries, runs):
                ui.log(f"{method.name} {slug(setting)}")
                failures += [(c.id, message) for c, message in
                             Runner(variant, where, device, ui).run()[1]]
    table = build_table(suite, plan, out, entries)
    write(out, table)
    if failures:
        raise HarnessError(f"{len(failures)} tuning cell(s) failed (first: {failures[0][0]}: "
                           f"{failures[0][1]})", "fix the cause and re-run `harness tune`: "
                           "complete cells are kept")
    return table


def in_workers(suite: Suite, runs: list, out: Path, device, ui, jobs: int,
               threads: int | None) -> list[tuple[str, str]]:
    """Every setting's cells with `jobs` workers (harness/executors.py run_jobs): one plan
    file of a plan a setting (its suite, cells and folder), which every worker walks in
    order, claiming cell by cell. The failures (cell id, message), read back from the
    folders; a cell no worker ran (one stopped early) is one."""
    import os

    from harness import executors, plans
    from harness.grid import expand
    from harness.models import resolve_model

    cells = [expand(variant) for variant, _ in runs]
    workers = executors.worker_plan(min(jobs, sum(map(len, cells))), None, threads)
    ui.log(f"{len(workers)} workers x {workers[0]['threads']} torch threads on {device}")
    for model in suite.models:  # provisioned once, before the workers start
        resolve_model(model, log=ui.log)
    path = Path(out) / "tuning" / f".plan-{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    plans.write_plans(path, [plans.plan_of(variant, c, where)
                             for (variant, where), c in zip(runs, cells)])
    try:
        executors.run_jobs(path, device, workers, ui.log)
    finally:
        path.unlink(missing_ok=True)
    found = [executors.outcome(variant, where, c) for (variant, where), c in zip(runs, cells)]
    return ([(c.id, message) for f in found for c, message in f.failures]
            + [(c.id, "not run (its worker stopped early)") for f in found for c in f.not_run])


def dry_run(suite: Suite, out: Path, jobs: int | None = None) -> list[str]:
    """What `harness tune` would run: per method its settings, cells still to run and the
    estimated seconds (harness/grid.py's estimate: figures from complete cells of the
    setting's folder, else the 2-core CPU figures); a total line last, with the wall clock
    of `jobs` workers where there are several."""
    from harness.dryrun import duration, makespan, workers_text
    from harness.grid import estimate, expand, measured_seconds, shared_generation, state
    from harness.results import CellState

    plan = tune_plan(suite)
    lines, spent, shared = [], [], {}
    for method in suite.methods:
        seconds = []
        for setting in settings_of(method):
            variant = setting_suite(suite, plan, apply_setting(method, setting))
            where = folder(out, method.name, setting)
            for cell in expand(variant):
                if state(cell, variant, where / "cells" / cell.id) is CellState.COMPLETE:
                    continue
                e = estimate(cell, variant, measured_seconds(where))
                seconds.append(e["train_s"] + e["eval_s"] + (e["setup_s"] or 0.0))
                if e["source"].startswith("135M"):  # shared by the settings: counted once
                    shared.update(shared_generation(cell, variant))
        lines.append(f"{method.name:<14} {' | '.join(slug(s) for s in settings_of(method))}: "
                     f"{len(seconds)} cells, ~{sum(seconds) / 60:.0f} min")
        spent += seconds
    spent += list(shared.values())  # each cached generation once, as its own item
    wall = (f"; {workers_text(makespan(spent, jobs), jobs)}" if jobs and jobs > 1 else "")
    cells = len(spent) - len(shared)
    lines.append(f"{cells} tuning cells to run ({len(suite.methods)} methods x {BUDGET} "
                 f"settings x {len(plan.streams)} streams x {len(plan.seeds)} seeds, select "
                 f"{plan.select} of {suite.primary}); estimated {duration(sum(spent))} in one "
                 f"process{wall}" + (f" (with {len(shared)} cached generation(s) the cells "
                 f"share, counted as not yet cached: {duration(sum(shared.values()))})"
                 if shared else ""))
    return lines


def add_parser(sub, command) -> None:
    """`harness tune`'s options (its command: harness/cli.py cmd_tune)."""
    tun = sub.add_parser("tune", help="tune every method's declared knobs with the same "
                         "budget on the suite's validation streams (its tune: block)")
    tun.add_argument("--suite", required=True, help="built-in suite name or path")
    tun.add_argument("--out", help="output directory (default: runs/<suite>-tune)")
    tun.add_argument("--methods", help="comma-separated methods to tune (default: all)")
    tun.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    tun.add_argument("--jobs", type=int, metavar="N", help="run N tuning cells at once as N "
                     "worker processes (as `harness run --jobs`)")
    tun.add_argument("--threads", type=int, metavar="N", help="torch threads per cell "
                     "(default: all cores; with --jobs, the cores shared out)")
    tun.add_argument("--quiet", action="store_true", help="plain log lines")
    tun.add_argument("--dry-run", action="store_true", help="list the settings, cells and "
                     "estimated cost (with --jobs N: the wall clock of N workers); run nothing")
    tun.set_defaults(func=command)


def folder(out: Path, method: str, setting: dict) -> Path:
    return Path(out) / "tuning" / method / slug(setting)


def _cells(path: Path) -> list[dict]:
    from harness.results import CellState, read_result

    found = [read_result(p) for p in sorted(path.glob("cells/*"))]
    return [r for r, state in found if state is CellState.COMPLETE]


def build_table(suite: Suite, plan: TunePlan, out: Path, jobs: list) -> dict:
    """Per method: every setting's criterion (mean over its cells) and the chosen one (the
    best; a tie goes to the first listed), with the item-identical-to-SFT flag."""
    higher = higher_is_better(plan.select)
    methods: dict[str, dict] = {}
    for method, setting, spec in jobs:
        cells = _cells(folder(out, method.name, setting))
        per_cell = [{"cell": c["cell_id"], "stream": c["cell"]["stream"],
                     "seed": c["cell"]["seed"],
                     "value": c["by_metric"][suite.primary]["metrics"].get(plan.select)}
                    for c in cells]
        values = [p["value"] for p in per_cell if p["value"] is not None]
        row = {"setting": setting, "params": spec.params, "train": dataclasses.asdict(spec.train),
               "cells": len(cells), "score": mean(values) if values else None,
               "per_cell": per_cell}
        methods.setdefault(method.name, {"knobs": list(grid_of(method)), "settings": []})
        methods[method.name]["settings"].append(row)
    expected = len(plan.streams) * len(plan.seeds)
    for name, entry in methods.items():
        done = [i for i, r in enumerate(entry["settings"]) if r["cells"] == expected
                and r["score"] is not None]
        best = best_of([r["score"] if i in done else None
                        for i, r in enumerate(entry["settings"])], higher)
        entry["chosen"] = best
        entry["complete"] = len(done) == len(entry["settings"])
        entry["identical_to_sft"] = None if best is None else identical_to_reference(
            out, name, entry["settings"][best], methods.get(REFERENCE))
    return {"suite": suite.name, "primary": suite.primary, "select": plan.select,
            "higher_is_better": higher, "streams": plan.streams, "seeds": plan.seeds,
            "n_test": plan.n_test or suite.data.n_test, "budget": BUDGET, "methods": methods}


def best_of(scores: list, higher_is_better: bool) -> int | None:
    """The index of the best score (None scores never win); strictly better only, so the
    first listed wins a tie. `harness verify` re-selects a bundled tuning by this rule."""
    found = None
    for i, s in enumerate(scores):
        if s is not None and (found is None or (s > scores[found] if higher_is_better
                                                else s < scores[found])):
            found = i
    return found


def edge_of(entry: dict) -> str | None:
    """Where the chosen setting lies at the edge of the method's grid: "lowest KNOB" or
    "highest KNOB" for each numeric knob whose chosen value is the smallest or largest
    tried (a better setting may lie beyond the grid); None inside it or with nothing
    chosen."""
    if entry.get("chosen") is None:
        return None
    settings = [r["setting"] for r in entry["settings"]]
    chosen, edges = settings[entry["chosen"]], []
    for knob, value in chosen.items():
        tried = {s.get(knob) for s in settings}
        if len(tried) < 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                     for v in tried):
            continue
        if value in (min(tried), max(tried)):
            edges.append(f"{'lowest' if value == min(tried) else 'highest'} {knob}")
    return ", ".join(edges) or None


def edge_note(entry: dict) -> str:
    """The note a table shows beside a chosen setting at its grid's edge ("" otherwise)."""
    edge = edge_of(entry)
    return f"at the grid's edge ({edge} tried): a better setting may lie beyond" if edge else ""


def identical_to_reference(out: Path, name: str, chosen: dict, reference: dict | None):
    """Are the chosen setting's cells item for item SFT's at the same training settings
    (every row, every task, both scorings)? None where SFT ran no such setting."""
    if name == REFERENCE or reference is None:
        return None
    same = [r for r in reference["settings"] if r["train"] == chosen["train"]]
    if not same:
        return None

    def items(method: str, setting: dict) -> dict:
        return {(c["cell"]["stream"], c["cell"]["seed"]): c["by_metric"]
                for c in _cells(folder(out, method, setting))}

    ours, theirs = items(name, chosen["setting"]), items(REFERENCE, same[0]["setting"])
    return bool(ours) and ours.keys() == theirs.keys() and all(
        {m: v["items"] for m, v in ours[k].items()} == {m: v["items"] for m, v in theirs[k].items()}
        for k in ours)


def write(out: Path, table: dict) -> None:
    """OUT/tuning.json (the full table), OUT/tuning.md, OUT/tuned.json (the chosen settings)."""
    atomic_write_json(Path(out) / "tuning.json", table)
    atomic_write_text(Path(out) / "tuning.md", markdown(table))
    chosen = {name: {"setting": e["settings"][e["chosen"]]["setting"],
                     "identical_to_sft": e["identical_to_sft"]}
              for name, e in table["methods"].items() if e["chosen"] is not None}
    atomic_write_json(Path(out) / "tuned.json", {"suite": table["suite"], "select": table["select"],
                                                 "methods": chosen})


def markdown(table: dict) -> str:
    def fmt(v):
        return "-" if v is None else f"{v:.3f}"

    lines = [f"# Tuning of suite {table['suite']}", "",
             f"Criterion (pre-registered): {table['select']} of the {table['primary']} scoring, "
             f"{'higher' if table['higher_is_better'] else 'lower'} is better, mean over "
             f"streams {', '.join(table['streams'])} and seeds "
             f"{', '.join(map(str, table['seeds']))}; {table['budget']} settings per method; "
             "a tie goes to the first listed.", "",
             "| method | setting | cells | score | chosen | note |", "|---|---|---|---|---|---|"]
    for name, e in table["methods"].items():
        for i, row in enumerate(e["settings"]):
            chosen = i == e["chosen"]
            notes = [n for n in ("item-identical to sft" if e["identical_to_sft"] else "",
                                 edge_note(e)) if n] if chosen else []
            note = "; ".join(notes)
            lines.append(f"| {name} | {slug(row['setting'])} | {row['cells']} | "
                         f"{fmt(row['score'])} | {'**yes**' if chosen else ''} | {note} |")
    return "\n".join(lines) + "\n"
