"""A run's settings, resolved once and handed on as a file: what `harness run` asked for
(`Request`: the suite and --methods, --seeds, --precision, --settings, --set, the short
look) is resolved by one process into a Suite (the suite file read and checked, the
edits applied, each method built once with the settings in force), and the processes
that run its cells read that Suite back from a plan file (identity.suite_record) instead
of parsing a command line or the suite file again:

- `--jobs` workers: the parent writes OUT/.plan-PID.json and starts
  `python -m harness.executors PLAN K ...` per worker (harness/executors.py); `harness
  tune --jobs` writes one file of a plan per tuning setting, which the workers walk;
- Ray tasks: the plan dict travels with each task;
- one process per cell (`--cell-index I`, a Slurm array; `--cell ID`): the first process
  of a request writes OUT/plans/<request hash>.json and the others read it, while the
  files it was resolved from (suite, streams, method sources) are unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.identity import suite_from_record, suite_record
from harness.storage import atomic_write_json, sha256_file, stable_hash

PLANS = "plans"  # OUT/plans/<request hash>.json


@dataclass(frozen=True)
class Request:
    """What `harness run` was asked for: the suite, --methods, --seeds, --precision, the
    tuned settings file (--settings), --set and the short look (--steps, --n-train,
    --n-test)."""

    suite: str
    methods: list[str] | None = None
    seeds: list[int] | None = None
    precision: str | None = None
    sets: list[str] = field(default_factory=list)
    short: dict = field(default_factory=dict)
    settings: str | None = None

    def resolve(self):
        """The Suite, resolved once: the file read and checked, --methods, --seeds,
        --precision, the tuned settings and --set applied (tuned ones first), the short
        look; then each method built once with the settings in force."""
        from harness.config import load_suite
        from harness.methods.settings import build_methods
        from harness.overrides import apply_sets, narrow, shorten

        suite = narrow(load_suite(self.suite, build=False), self.methods, self.seeds,
                       self.precision, build=False)
        tuned = []
        if self.settings:
            from harness.overrides import settings_sets
            tuned = settings_sets(self.settings, suite)
        suite = shorten(apply_sets(suite, tuned + list(self.sets), build=False), **self.short)
        return dataclasses.replace(suite, methods=build_methods(suite.methods))


def plan_of(suite, cells: list, out: Path, **options) -> dict:
    """A plan: the suite as resolved, the ids of the cells to run, the output folder and
    run options (save_model, keep_checkpoints)."""
    return {"suite": suite_record(suite), "cells": [c.id for c in cells],
            "out": str(out.resolve()), **options}


def write_plan(path: Path, suite, cells: list, out: Path, **options) -> None:
    """The plan file of a run's workers (`plan_of`)."""
    atomic_write_json(path, plan_of(suite, cells, out, **options))


def write_plans(path: Path, plans: list[dict]) -> None:
    """One plan file of several plans (`plan_of`), each its own suite and output folder,
    that every worker walks in order (`harness tune --jobs`: a plan a tuning setting)."""
    atomic_write_json(path, {"parts": plans})


def read_plan(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def parts(plan: dict) -> list[dict]:
    """The plans a plan file holds, in order: one (`write_plan`) or several (`write_plans`)."""
    return plan["parts"] if "parts" in plan else [plan]


def plan_suite(plan: dict):
    return suite_from_record(plan["suite"])


# ---------------------------------------------------------------------------- one process a cell

def _request_key(request: Request) -> str:
    """What a request's resolution depends on that can be known without resolving it: its
    fields, the suite file's and the tuned settings file's bytes, the streams file, the
    working directory (relative method files) and the results version."""
    from harness import results
    from harness.config import STREAMS_FILE, suite_path

    def digest(path):
        return sha256_file(Path(path)) if path and Path(path).is_file() else None

    return stable_hash([dataclasses.asdict(request), digest(suite_path(request.suite)),
                        digest(request.settings), digest(STREAMS_FILE), os.getcwd(),
                        results.RESULTS_VERSION])


def _sources(suite) -> dict:
    """sha256 of each method's source file: an edited method (its defaults, its version)
    is resolved again."""
    return {m.name: sha256_file(m.source_file) for m in suite.methods
            if m.source_file is not None and m.source_file.is_file()}


def _stored_path(request: Request, out: Path) -> Path:
    return out / PLANS / f"{_request_key(request)[:24]}.json"


def stored(request: Request, out: Path):
    """The Suite of `request` as the first process that ran it into `out` resolved it
    (`store`), for the others (a Slurm array's tasks): no suite file parsed, no method
    built again. None where there is no such file, it cannot be read, or a method's
    source changed since (then: resolve it and `store` it)."""
    try:
        found = json.loads(_stored_path(request, out).read_text())
        suite = suite_from_record(found["suite"])
        return suite if found["sources"] == _sources(suite) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(request: Request, out: Path, suite) -> None:
    """Write `suite`, as resolved from `request`, for the run's other processes (once its
    cells are known to be valid and OUT writable)."""
    atomic_write_json(_stored_path(request, out), {"suite": suite_record(suite),
                                                   "sources": _sources(suite)})
