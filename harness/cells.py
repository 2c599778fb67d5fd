"""The reader of a whole output folder: `read_cells(OUT)` sorts every folder of OUT/cells
by state into a `Cells` (complete ones as `Record`s; failed, incomplete or running, corrupt
or stale, empty, duplicate and missing cells listed with why). It is apart from
harness/results.py because it is the consumers' side (`harness report`, the leaderboard,
`--paper`, the scripts): it reads and classifies many cells, asks harness/claims.py which
are running and works out the grid's missing cells, while results.py owns one cell's files,
how they are written and what makes one valid, which it uses here unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from harness import claims, results
from harness.results import CellState, cell_id, check_result, is_num, read_json


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
    """Every folder under OUT/cells, sorted by state (records are the complete ones)."""

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


def read_cells(out: Path) -> Cells:
    """Sort every folder of OUT/cells by state: complete (valid result.json), failed
    (failure.json), incomplete (progress.json only, or a live claim: listed with state
    "running" and the claim's pid, host and start), corrupt (result.json unreadable or
    invalid, or stale: of another results version) or empty. Two complete cells with the
    same (model, stream, method, seed) keep the first (sorted by folder name); the other is
    listed under duplicates. Cells expected from the grid of models x streams x methods x
    seeds seen, but with no folder at all, are listed as missing."""
    out = Path(out)
    found, seen = Cells(), {}
    folders = sorted((d for d in (out / "cells").iterdir() if d.is_dir()), key=lambda d: d.name)
    found.n_folders = len(folders)
    for folder in folders:
        running = None if (folder / "result.json").exists() else claims.holder(folder)
        if (folder / "result.json").exists():
            _read_complete(folder, out, found, seen)
        elif running is not None:
            found.incomplete.append(_read_running(folder, out, running))
        elif (folder / "failure.json").exists():
            found.failed.append(_read_failure(folder, out))
        elif (folder / "progress.json").exists():
            data, problem = read_json(folder / "progress.json")
            rows = data.get("rows_done") if isinstance(data, dict) else None
            found.incomplete.append({
                "path": _rel(folder / "progress.json", out), "cell_id": folder.name,
                "rows_done": rows if is_num(rows) else None,
                "note": f"progress.json {problem}" if problem else
                        "no result.json: the run was interrupted or is still going"})
        else:
            found.empty.append({"path": _rel(folder, out), "cell_id": folder.name,
                                "files": sorted(p.name for p in folder.iterdir())[:20]})
    found.missing = _missing_cells(found)
    return found


def _read_complete(folder: Path, out: Path, found: Cells, seen: dict) -> None:
    path = folder / "result.json"
    data, problem = read_json(path)
    if problem is None:
        problem = check_result(data)
    if problem is None and results.results_version_of(data) != results.RESULTS_VERSION:
        problem = (f"stale: measured under results version "
                   f"{results.results_version_of(data)}, this harness's is "
                   f"{results.RESULTS_VERSION} (never mixed: re-run it)")
    if problem is not None:
        found.corrupt.append({"path": _rel(path, out), "cell_id": folder.name,
                              "reason": problem})
        return
    record = Record(_rel(path, out), data)
    if record.key in seen:
        found.duplicates.append({"path": record.path, "duplicate_of": seen[record.key].path,
                                 "why": "same (model, stream, method, seed); the first one "
                                        "(by folder name) is used"})
        return
    seen[record.key] = record
    found.records.append(record)


def _read_running(folder: Path, out: Path, claim: dict) -> dict:
    """A cell another process is running now: its claim and the rows it has done."""
    data, _ = read_json(folder / "progress.json")
    rows = data.get("rows_done") if isinstance(data, dict) else None
    holder = {k: claim.get(k) for k in ("pid", "host", "since", "worker") if claim.get(k)}
    return {"path": _rel(folder / claims.CLAIM, out), "cell_id": folder.name,
            "rows_done": rows if is_num(rows) else None, "state": CellState.RUNNING.value,
            "running": holder, "note": f"running: {claims.describe(claim)}"}


def _read_failure(folder: Path, out: Path) -> dict:
    data, problem = read_json(folder / "failure.json")
    entry = {"path": _rel(folder / "failure.json", out), "cell_id": folder.name,
             "cell": None, "error": None}
    if problem is not None:
        entry["error"] = f"failure.json {problem}"
    elif isinstance(data, dict):
        entry["cell"] = data.get("cell") if isinstance(data.get("cell"), dict) else None
        error = data.get("error")
        entry["error"] = str(error) if error is not None else "no error message"
    else:
        entry["error"] = "failure.json is not an object"
    return entry


def _missing_cells(found: Cells, limit: int = 100_000) -> list[dict]:
    """Cells of the grid spanned by the cells seen that have no folder at all."""
    infos = [r.data["cell"] for r in found.records] + [f["cell"] for f in found.failed
                                                        if f["cell"]]
    axes = {k: set() for k in ("model", "stream", "method", "seed")}
    have = {r.key for r in found.records}
    for c in infos:
        try:
            key = (c["model"], c["stream"], c["method"], int(c["seed"]))
        except (KeyError, TypeError, ValueError):
            continue
        for axis, value in zip(axes, key):
            axes[axis].add(value)
        have.add(key)
    if not all(axes.values()) or math.prod(len(v) for v in axes.values()) > limit:
        return []
    folder_ids = {e["cell_id"] for e in found.incomplete + found.corrupt + found.empty}
    missing = []
    for model in sorted(axes["model"]):
        for stream in sorted(axes["stream"]):
            for method in sorted(axes["method"]):
                for seed in sorted(axes["seed"]):
                    ids = {cell_id(model, stream, method, seed),
                           cell_id(Path(model).name, stream, method, seed)}
                    if (model, stream, method, seed) not in have and not ids & folder_ids:
                        missing.append({"model": model, "stream": stream, "method": method,
                                        "seed": seed})
    return missing
