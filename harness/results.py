"""The one owner of a cell's files: `result.json` (schema, builder, validator), the writers
of progress.json, samples.json, result.json and failure.json, the cell id, the vocabulary of
cell states, and the reader of one cell folder (`read_result`); the reader of a whole output
folder (`read_cells`) is harness/cells.py, built on this module's readers and validator.

The runner writes through here, `harness report`, `--dry-run`, resume and the scripts read
through here or harness/cells.py; docs/results.md documents the fields. Nobody else parses
these files.
"""

from __future__ import annotations

import datetime as dt
import enum
import errno
import json
import math
import os
import re
import traceback
from pathlib import Path

from harness.eval_rows import PROBE_SCHEDULES, ROW_SCHEDULES, probes_run, row_tasks
from harness.metrics import cell_metrics, not_evaluated
from harness.storage import FULL_ERRNOS, atomic_write_json, read_regular

SCHEMA_VERSION = 1
# Bump when a change to training, evaluation or scoring moves numbers: a cell of another
# results version is stale (re-run), never mixed with this one's (harness/identity.py).
RESULTS_VERSION = 1
REQUIRED_KEYS = ("status", "cell", "R", "metrics")


class CellState(str, enum.Enum):
    """What a cell folder holds, in the words `--dry-run`, resume and `harness report` share.

    complete: a valid result.json (for a run: of the same settings, so it is skipped);
    running: not complete, and a live process holds its claim.json (harness/claims.py: a
    run leaves it to that process); stale: a valid result.json of other settings (a run
    re-runs it); failed: failure.json (retried); incomplete: progress.json only, interrupted
    (re-run); corrupt: a result.json that cannot be used (re-run); empty: a folder with none
    of these; new: no folder yet.
    """

    COMPLETE = "complete"
    RUNNING = "running"
    STALE = "stale"
    FAILED = "failed"
    INCOMPLETE = "incomplete"
    CORRUPT = "corrupt"
    EMPTY = "empty"
    NEW = "new"


def cell_id(model: str, stream: str, method: str, seed: int) -> str:
    """The cell's folder name. A model folder counts by its name, a method file by its stem
    and class (`variants.SDFTShort`); anything outside [A-Za-z0-9._-] becomes '-'."""
    if Path(model).is_dir():
        model = Path(os.path.abspath(model)).name
    if ".py:" in method:
        path, cls = method.rsplit(":", 1)
        method = f"{Path(path).stem}.{cls}"
    raw = f"{model}__{stream}__{method}__s{seed}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-")


# --------------------------------------------------------------------------- building, writing

def build_result(*, cell: dict, tasks: list[str], rows: list[dict], probes: dict,
                 training: list[dict], config: dict, config_hash: str,
                 model_id: str, grid_id: str, suite: str, timings: dict, versions: dict,
                 hardware: dict, method_stats: dict, method_source: dict | None = None,
                 primary: str = "strict") -> dict:
    """result.json of a complete cell from its evaluation rows (row 0 = base model) and the
    cell's plan; every key is documented in docs/results.md. `R`, `items` and `metrics`
    are those of the suite's primary metric; `by_metric` holds both scorings."""
    probe_values = {name: [row["probes"][name] for row in rows] for name in probes}
    by_metric = {metric: scoring(rows, tasks, key, probe_values)
                 for metric, key in PRIMARY_METRICS.items() if all(key in row for row in rows)}
    R, items = by_metric[primary]["R"], by_metric[primary]["items"]
    return {
        "schema_version": SCHEMA_VERSION,
        "status": "complete",
        "cell_id": cell_id(cell["model"], cell["stream"], cell["method"], cell["seed"]),
        "cell": cell,
        "tasks": list(tasks),
        "R": R,
        "items": items,
        "primary": primary,
        "by_metric": by_metric,
        "probes": probe_values,
        "probe_info": {name: {"higher_is_better": p.higher_is_better, "chance": p.chance,
                              "description": p.description}
                       for name, p in probes.items()},
        "metrics": by_metric[primary]["metrics"],
        **({"metrics_not_evaluated": by_metric[primary]["metrics_not_evaluated"]}
           if "metrics_not_evaluated" in by_metric[primary] else {}),
        "training": [dict(s) for s in training],
        "method_params": config["params"],
        "train_settings": config["train"],
        "data_settings": config["data"],
        "eval_settings": config["eval"],
        "precision": config.get("precision", "auto"),
        "task_hashes": config["tasks"],
        "model_id": model_id,
        "config_hash": config_hash,
        "grid_id": grid_id,
        "suite": suite,
        "timings": timings,
        "versions": versions,
        "hardware": hardware,
        "finished_at": _now(),
        "method_source": method_source,  # name, version, file, sha256: for audit
        "results_version": RESULTS_VERSION,
        "method_stats": method_stats,
        **({"short_look": config["short_look"]} if "short_look" in config else {}),
    }


def results_version_of(result: dict) -> int:
    """The results version a result.json was measured under (1: cells from before it was
    recorded)."""
    return result.get("results_version", 1)


def cold_cpu_s(result: dict) -> tuple[float | None, bool]:
    """(CPU seconds the cell would have taken with an empty cache, exact?): its own
    `timings.cpu_s` plus `cache_cpu_s`, the cost of the cache entries it reused (work
    another cell paid for: base rows, self-dialogues, rewrites). Where `cache_cpu_s` is
    unknown (null: an entry from before costs were recorded; absent: a cell from before
    the field), `cpu_s` alone, flagged (value, False): a lower bound. (None, False) where
    `cpu_s` itself is unknown."""
    timings = result.get("timings") or {}
    own, reused = finite(timings.get("cpu_s")), finite(timings.get("cache_cpu_s"))
    if own is None:
        return None, False
    return (own, False) if reused is None else (own + reused, True)


# a suite's `primary` -> the evaluation row's per-item scores it ranks on: `strict` (the
# answer in the task's format, Task.score) or `content` (the answer whatever its wrapper)
PRIMARY_METRICS = {"strict": "items", "content": "content"}


def scoring(rows: list[dict], tasks: list[str], key: str, probe_values: dict) -> dict:
    """R, per-item scores and the cell's metrics under one scoring (`key` of the rows)."""
    items = {t: [row[key][t] for row in rows] for t in tasks}  # None: not evaluated
    R = [[None if items[t][i] is None else sum(items[t][i]) / len(items[t][i])
          if items[t][i] else 0.0 for t in tasks] for i in range(len(rows))]
    if key == "items":  # strict: the row's own means, bit for bit as before
        R = [[row["scores"][t] for t in tasks] for row in rows]
    missing = not_evaluated(R)
    return {"R": R, "items": items, "metrics": cell_metrics(R, probe_values),
            **({"metrics_not_evaluated": missing} if missing else {})}


def write_progress(folder: Path, config_hash: str, tasks: list[str], rows: list[dict]) -> None:
    atomic_write_json(folder / "progress.json", {
        "status": "running", "config_hash": config_hash, "rows_done": len(rows),
        "R": [[r["scores"][t] for t in tasks] for r in rows]})


def write_samples(folder: Path, samples: dict) -> None:
    """What the model answered, per task and row (prompts, targets, outputs)."""
    atomic_write_json(folder / "samples.json", samples)


def write_result(folder: Path, result: dict) -> None:
    """Write result.json (only ever a complete, valid one) and drop progress.json."""
    problem = check_result(result)
    if problem is not None:
        raise ValueError(f"refusing to write an invalid result.json: {problem}")
    atomic_write_json(folder / "result.json", result)
    (folder / "progress.json").unlink(missing_ok=True)


def write_failure(folder: Path, cell: dict, message: str) -> OSError | None:
    """Write failure.json (with the current traceback); return why it could not be written."""
    try:
        atomic_write_json(folder / "failure.json", {
            "status": "failed", "cell": cell, "error": message,
            "traceback": traceback.format_exc(), "finished_at": _now()})
    except OSError as exc:
        return exc
    return None


def failure_message(exc: Exception, out: Path) -> str:
    """A failed cell's one line: a full disk names the file it could not write and the
    fix (whatever raised it, a method's hook included); a HarnessError its problem and fix;
    anything else its type and text."""
    from harness.errors import HarnessError
    from harness.storage import cache_dir, full_disk

    full = full_disk(exc)
    if full is not None:
        path = full.filename and Path(full.filename).absolute()
        try:
            cache = cache_dir().absolute()
        except HarnessError:  # no folder for a cache: the write was not the cache's
            cache = None
        if not path:
            return (f"{full.strerror}: a disk is full (the output folder '{out}' or the cache "
                    f"'{cache}'). Fix: free space on it, then re-run the same command")
        other = ("set HARNESS_CACHE to a folder on another disk" if cache in path.parents
                 else "give --out a folder on another disk")
        return (f"cannot write '{path}': {full.strerror}. Fix: free space on its disk (or "
                f"{other}), then re-run the same command")
    if isinstance(exc, HarnessError):
        return exc.args[0]
    return f"{type(exc).__name__}: {exc}"


def stop_message(unwritable: OSError, out: Path, left: int) -> str:
    """Why the grid stops when a failed cell's failure.json cannot be written either: the
    output folder takes no file (a full disk, a read-only file system), so every cell
    would fail alike."""
    why = ("the output disk is full" if unwritable.errno in FULL_ERRNOS
           else "the output folder cannot be written")
    return (f"{why} ('{unwritable.filename or out}': {unwritable.strerror or unwritable}): "
            f"stopping with {left} cells not run. Fix: free space on it (or give --out a "
            "folder on another disk), then re-run the same command to resume: complete "
            "cells are kept")


# Why a cell's own folder cannot be written (no permission, a folder linking to itself, a
# file where its folder should be): the other cells can still run. Any other OSError (a
# full disk, a read-only file system) stops the grid: every cell would fail alike.
CELL_LOCAL_ERRORS = {errno.EACCES, errno.EPERM, errno.ELOOP, errno.ENOTDIR, errno.EISDIR,
                     errno.ENAMETOOLONG, errno.EEXIST}


def cell_local(exc: BaseException) -> bool:
    """Is `exc` (or what caused it) an OSError of the cell's folder alone?"""
    while exc is not None:
        if isinstance(exc, OSError):
            return exc.errno in CELL_LOCAL_ERRORS
        exc = exc.__cause__ or exc.__context__
    return False


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


# --------------------------------------------------------------------------- validating

def is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def finite(x) -> float | None:
    """A finite float, or None for null / NaN / inf / a whole number beyond any float
    (YAML and JSON read 1e400 as inf but 10**400 as an int) / anything else."""
    if not is_num(x):
        return None
    try:
        x = float(x)
    except OverflowError:
        return None
    return x if math.isfinite(x) else None


def check_result(data) -> str | None:
    """Why a parsed result.json cannot be used, or None if it can.

    Required: `status` ("complete"), `cell` {model, stream, method, seed}, `R` ((T+1) x T
    finite numbers; null where the cell's schedule, `eval_settings.rows`, evaluates no
    entry, and only there) and `metrics` (numbers or null). `tasks`, `probes` and `probe_info`
    are optional but must be well formed when present (under `eval_settings.probe_rows:
    final`, row 0 and the last row hold every probe's value); `items` is checked where used.
    """
    if not isinstance(data, dict):
        return f"top level is a JSON {type(data).__name__}, not an object"
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        return "missing required key" + ("s " if len(missing) > 1 else " ") + ", ".join(missing)
    if data["status"] != "complete":
        return f"status is {data['status']!r}, not 'complete'"
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        return (f"schema_version {version!r} is not supported "
                f"(this harness reads {SCHEMA_VERSION})")
    rows = (data.get("eval_settings") or {}).get("rows", "all")
    if rows not in ROW_SCHEDULES:
        return f"eval_settings.rows is not one of {', '.join(ROW_SCHEDULES)} ({rows!r})"
    probe_rows = (data.get("eval_settings") or {}).get("probe_rows", "all")
    if probe_rows not in PROBE_SCHEDULES:
        return (f"eval_settings.probe_rows is not one of {', '.join(PROBE_SCHEDULES)} "
                f"({probe_rows!r})")
    return (_check_cell(data["cell"]) or _check_R(data["R"], rows)
            or _check_rest(data, probe_rows))


def _check_cell(cell) -> str | None:
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
    if not is_num(seed) or not math.isfinite(seed) or int(seed) != seed:
        return f"cell.seed is not a whole number ({seed!r})"
    return None


def _check_R(R, rows: str = "all") -> str | None:
    """R's shape, and a finite number in every entry that the schedule `rows` evaluates
    (null in the others)."""
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
            if finite(x) is None and (x is not None or j in row_tasks(rows, i, T)):
                return f"R[{i}][{j}] is not a finite number ({x!r})"
    return None


def _check_rest(data: dict, probe_rows: str = "all") -> str | None:
    T = len(data["R"][0])
    tasks = data.get("tasks")
    if tasks is not None and (not isinstance(tasks, list) or len(tasks) != T
                              or not all(isinstance(t, str) for t in tasks)):
        return f"tasks is not a list of {T} task names (one per column of R)"
    metrics = data["metrics"]
    if not isinstance(metrics, dict):
        return "metrics is not an object"
    for key, value in metrics.items():
        if value is not None and not is_num(value):
            return f"metrics.{key} is not a number or null ({value!r})"
    probes = data.get("probes")
    if probes is not None:
        if not isinstance(probes, dict):
            return "probes is not an object"
        for name, values in probes.items():
            if not isinstance(values, list) or len(values) != T + 1:
                return f"probes.{name} is not a list of T+1 = {T + 1} values"
            if not all(v is None or is_num(v) for v in values):
                return f"probes.{name} holds a value that is not a number or null"
            for i, v in enumerate(values):  # `final`: the rows it probes hold values (the
                # default stays as lenient as before: a null anywhere reads as not measured)
                if v is None and probe_rows != "all" and probes_run(probe_rows, i, T):
                    return f"probes.{name}[{i}] is null in a row that runs the probes"
    info = data.get("probe_info")
    if info is not None:
        if not isinstance(info, dict) or not all(isinstance(v, dict) for v in info.values()):
            return "probe_info is not an object of objects"
        for name, v in info.items():
            if "higher_is_better" in v and not isinstance(v["higher_is_better"], bool):
                return f"probe_info.{name}.higher_is_better is not true/false"
    return None


# --------------------------------------------------------------------------- reading

def read_json(path: Path) -> tuple[object, str | None]:
    """(parsed JSON, None), or (None, why it cannot be read): the one reader of the files
    of a cell folder and a bundle. A named pipe or other special file is unreadable, never
    waited on (storage.read_regular)."""
    try:
        text = read_regular(path).decode("utf-8")
    except OSError as exc:
        return None, f"unreadable: {type(exc).__name__}: {exc.strerror or exc}"
    except UnicodeDecodeError as exc:
        return None, f"unreadable: {type(exc).__name__}: {exc}"
    if not text.strip():
        return None, "empty file"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"


def check_not_newer(out: Path) -> None:
    """Stop (one line) where OUT holds a result.json of a newer schema than this harness
    writes: it would count as corrupt here and be re-run, overwriting a newer harness's
    work. Checked before a run writes anything."""
    from harness.errors import HarnessError

    for path in sorted(Path(out).glob("cells/*/result.json")):
        data, _ = read_json(path)
        version = data.get("schema_version") if isinstance(data, dict) else None
        if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
            raise HarnessError(f"{path} was written by a newer harness (schema_version "
                               f"{version}; this one writes {SCHEMA_VERSION}), and a run "
                               "would overwrite it", "update the harness, or choose another --out")


def cell_hardware(recorded: dict) -> dict:
    """The fingerprint of the machine a cell ran on, from its result.json's `hardware`;
    None where the cell did not record it (cells written before `cpu`, `machine` and
    `cpu_isa` were)."""
    kind = str(recorded.get("device", "")).split(":")[0] or None
    return {"device_type": kind,
            "processor": recorded.get("gpu") if kind == "cuda" else recorded.get("cpu"),
            "isa": None if kind == "cuda" else recorded.get("cpu_isa"),
            "machine": recorded.get("machine"), "threads": recorded.get("threads")}


def recorded(out: Path, key: str) -> dict[str, int]:
    """`cell_hardware`'s `key` (processor: the GPU for a CUDA cell, else the CPU; isa) ->
    how many complete cells under OUT (its grid and `harness tune` cells) recorded each
    value (cells that recorded none are not counted): a grid run across sessions may land
    on other machines, whose cells are not bit for bit what this one gives (a verifier
    re-runs a cell exactly only on its own processor), nor are their costs."""
    found: dict[str, int] = {}
    for folder in [*out.glob("cells/*"), *out.glob("tuning/*/*/cells/*")]:
        result, state = read_result(folder)
        if state is not CellState.COMPLETE:
            continue
        value = cell_hardware(result.get("hardware") or {})[key]
        if value:
            found[value] = found.get(value, 0) + 1
    return found


def recorded_processors(out: Path) -> dict[str, int]:
    """Processor -> how many of OUT's complete cells ran on it (`recorded`)."""
    return recorded(out, "processor")


def read_result(folder: Path) -> tuple[dict | None, CellState]:
    """A cell folder's valid result.json and its state, as resume and `--dry-run` see it:
    (result, COMPLETE), or (None, CORRUPT / FAILED / INCOMPLETE / EMPTY / NEW). Whether a
    complete result is stale is the caller's question (it knows the config hash)."""
    if (folder / "result.json").exists():
        data, problem = read_json(folder / "result.json")
        if problem is None and check_result(data) is None:
            return data, CellState.COMPLETE
        return None, CellState.CORRUPT
    if (folder / "failure.json").exists():
        return None, CellState.FAILED
    if (folder / "progress.json").exists():
        return None, CellState.INCOMPLETE
    return None, CellState.EMPTY if folder.is_dir() else CellState.NEW

