"""The tuning part of a submission bundle: the method's rows of `harness tune`'s table.

`harness submit` copies them into BUNDLE/tuning.json and applies their chosen setting;
`harness verify` checks that file from its text alone (no submitted code is imported); the
leaderboard shows it. A bundle without one (every bundle from before tuning) stays valid and
is shown as untuned.

    tuning.json   method, suite, primary, select, higher_is_better, streams, seeds, budget,
                  knobs, settings (each: setting, params, train, cells, score, per_cell:
                  [{cell, stream, seed, value}]), chosen (an index into settings), complete,
                  identical_to_sft (true, false, or null where it could not be told)
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import mean

from harness.config import Suite
from harness.errors import HarnessError
from harness.identity import LEGACY_TRAIN
from harness.results import read_json
from harness.scores import higher_is_better
from harness.overrides import as_sets
from harness.tune import BUDGET, MAX_SEEDS, best_of, slug

TUNING = "tuning.json"
SHARED = ("suite", "primary", "select", "higher_is_better", "streams", "seeds", "budget")
ENTRY = ("knobs", "settings", "chosen", "complete", "identical_to_sft")
UNTUNED_FIX = "or give --tuning none to submit it untuned"


def table_path(given: str | None, out: Path) -> Path | None:
    """The tuning table `harness submit` takes: `--tuning PATH` (a tuning.json, or the folder
    `harness tune --out` wrote), none for `--tuning none`, else the run folder's
    OUT/tuning.json where it has one."""
    if given is None:
        found = Path(out) / TUNING
        return found if found.is_file() else None
    if given == "none":
        return None
    path = Path(given) / TUNING if Path(given).is_dir() else Path(given)
    if not path.is_file():
        raise HarnessError(f"--tuning {given}: no tuning table at {path}",
                           "give the tuning.json that `harness tune --out OUT` wrote in OUT, "
                           + UNTUNED_FIX)
    return path


def method_part(path: Path, suite: Suite, name: str) -> dict:
    """The method's rows of the tuning table at `path` with the table's criterion; refused
    where the table is another suite's, lacks the method or is incomplete (every method
    gets the whole budget)."""
    table, problem = read_json(path)
    where, given = f"tuning table {path}", suite.path or suite.name
    if problem or not isinstance(table, dict) or not isinstance(table.get("methods"), dict):
        raise HarnessError(f"{where}: {problem or 'not a table written by `harness tune`'}",
                           "give the OUT/tuning.json that `harness tune` wrote, " + UNTUNED_FIX)
    if table.get("suite") != suite.name:
        raise HarnessError(f"{where}: tuned for suite '{table.get('suite')}', not "
                           f"'{suite.name}'", f"tune it: harness tune --suite {given}, "
                           + UNTUNED_FIX)
    entry = table["methods"].get(name)
    if not isinstance(entry, dict):
        raise HarnessError(f"{where}: method '{name}' was not tuned",
                           f"harness tune --suite {given} --methods {name} --out "
                           f"{path.parent}, " + UNTUNED_FIX)
    if not entry.get("complete") or entry.get("chosen") is None:
        raise HarnessError(f"{where}: the tuning of '{name}' is incomplete (not every setting "
                           "has all its cells)", "run the same `harness tune` again: complete "
                           "cells are kept")
    return {"method": name} | {k: table.get(k) for k in SHARED} | {k: entry[k] for k in ENTRY}


def chosen_setting(part: dict) -> dict:
    return part["settings"][part["chosen"]]["setting"]


def with_chosen(part: dict | None, sets: list[str]) -> list[str]:
    """The user's `--set`s after the chosen setting's, but for a key the user sets (so
    check_settings can tell a contradiction from a repetition)."""
    given = {s.partition("=")[0].strip() for s in sets}
    chosen = as_sets(part["method"], chosen_setting(part)) if part else []
    return [s for s in chosen if s.partition("=")[0] not in given] + list(sets)


def mismatch(method: dict, setting: dict) -> str | None:
    """How a manifest's method entry (its `params` and `train` in force) differs from a
    tuning setting, e.g. "lambda=1000000.0 vs the chosen lambda=100000.0"; None where the
    cells ran with it."""
    params, train = method.get("params") or {}, method.get("train") or {}
    ran = {k: train.get(k[6:], LEGACY_TRAIN.get(k[6:])) if k.startswith("train.")
           else params.get(k) for k in setting}
    return None if ran == setting else f"{slug(ran)} vs the chosen {slug(setting)}"


def check_settings(method: dict, part: dict | None) -> None:
    """Refuse (one line, exit 2) a method whose settings are not its tuning's choice."""
    problem = part and mismatch(method, chosen_setting(part))
    if problem:
        raise HarnessError(f"method '{part['method']}' runs with {problem} of its tuning table",
                           "drop the --set that overrides the chosen setting (submit applies "
                           "it), tune again, " + UNTUNED_FIX)


def problems(bundle: Path, manifest: dict) -> list[str]:
    """`harness verify`'s static check of a bundle's tuning (its checksum is checked with
    every file): named by the manifest iff present, and consistent (part_problem)."""
    named, present = manifest.get("tuning"), (bundle / TUNING).exists()
    if named is None:
        return [f"{TUNING}: present, but the manifest names no tuning"] if present else []
    if named != TUNING:
        return [f"manifest.json: tuning {named!r} is not '{TUNING}'"]
    part, problem = read_json(bundle / TUNING)
    problem = problem or part_problem(part, manifest)
    return [f"{TUNING}: {problem}"] if problem else []


def part_problem(part, manifest: dict) -> str | None:
    """The first inconsistency of a bundled tuning, read as data: another method or suite,
    a validation stream that is ranked, a budget other than everyone's, a score that is
    not the mean of its cells, a choice that is not the criterion's best, or a chosen
    setting that is not the settings the cells ran with."""
    from harness.metrics import METRICS

    if not isinstance(part, dict) or any(k not in part for k in ("method", *SHARED, *ENTRY)):
        return "not a tuning part written by `harness submit` (keys missing)"
    method, suite = manifest["method"], manifest["suite"]
    if part["method"] != method.get("name") or part["suite"] != suite.get("name"):
        return (f"the tuning of '{part['method']}' on suite '{part['suite']}', the bundle is "
                f"'{method.get('name')}' on '{suite.get('name')}'")
    streams, seeds = part["streams"], part["seeds"]
    if not isinstance(streams, dict) or not streams or not all(
            isinstance(t, list) for t in streams.values()) or not isinstance(seeds, list) \
            or not 1 <= len(seeds) <= MAX_SEEDS or not all(type(n) is int for n in seeds):
        return "streams must map names to task lists and seeds list 1 or 2 seeds"
    ranked = suite.get("streams") or {}
    if any(s in ranked or t in map(list, ranked.values()) for s, t in streams.items()):
        return "a validation stream is a ranked stream"
    if part["select"] not in METRICS or part["higher_is_better"] != \
            higher_is_better(part["select"]):
        return f"select {part['select']!r} is not a cell metric with its direction"
    rows = part["settings"]
    if not isinstance(rows, list) or len(rows) != BUDGET or part["budget"] != BUDGET:
        return f"{len(rows) if isinstance(rows, list) else 0} settings; the budget is {BUDGET}"
    pairs = sorted(((s, n) for s in streams for n in seeds), key=repr)
    for i, row in enumerate(rows):
        problem = _row_problem(row, part["knobs"], pairs)
        if problem:
            return f"setting {i}: {problem}"
    top = best_of([r["score"] for r in rows], part["higher_is_better"])
    if part["chosen"] != top or part["complete"] is not True:
        return f"chosen is setting {part['chosen']!r}; the criterion's best is setting {top}"
    if part["identical_to_sft"] not in (True, False, None):
        return "identical_to_sft must be true, false or null"
    problem = mismatch(method, chosen_setting(part))
    return f"the manifest's settings are {problem}" if problem else None


def _row_problem(row, knobs, pairs: list) -> str | None:
    if not isinstance(row, dict) or not isinstance(row.get("setting"), dict) \
            or list(row["setting"]) != knobs or not isinstance(row.get("per_cell"), list):
        return f"setting, per_cell or knobs {knobs!r} malformed"
    cells = row["per_cell"]
    if not all(isinstance(c, dict) and {"stream", "seed", "value"} <= set(c) for c in cells) \
            or sorted(((c["stream"], c["seed"]) for c in cells), key=repr) != pairs \
            or row.get("cells") != len(cells):
        return "its cells are not one per validation stream and seed"
    values = [c["value"] for c in cells if c["value"] is not None]
    if not all(isinstance(v, (int, float)) for v in values):
        return "a cell's value is not a number"
    score = mean(values) if values else None
    same = (score is None) == (row.get("score") is None) and (
        score is None or isinstance(row["score"], (int, float))
        and math.isclose(score, row["score"], rel_tol=1e-9, abs_tol=1e-12))
    return None if same else f"score {row.get('score')} is not the mean of its cells {score}"


def board_part(part: dict | None) -> dict | None:
    """What leaderboard.json keeps of a bundled tuning (null: untuned)."""
    if part is None:
        return None
    keep = ("select", "primary", "higher_is_better", "streams", "seeds", "knobs", "chosen",
            "identical_to_sft")
    return {k: part[k] for k in keep} | {"settings": [
        {"setting": r["setting"], "score": r["score"],
         "values": [{k: c[k] for k in ("stream", "seed", "value")} for c in r["per_cell"]]}
        for r in part["settings"]]}
