"""`harness verify BUNDLE`: is a submission what it claims to be?

Static checks first (each rejection one line naming the file or cell and the reason): the
manifest, every checksum, the method's source against its hash (and, for a built-in, its
declared version against this harness's), its tuning (harness/bundle_tuning.py), the grid against the current leaderboard grid, the
set of cells, and every cell's results version, schema, settings hash and metrics
recomputed from its R and probes. Then it re-runs sampled cells and compares them with the
bundle: exactly where the hardware matches (same device kind, CPU model and instruction
set, thread count), else within TOLERANCE (docs/leaderboard.md). With `--work DIR` the re-runs are kept in DIR
(the pick too), so a verification stopped mid-cell resumes from the cell's checkpoint, as
a grid cell does, instead of starting over (a leaderboard cell re-run takes up to an hour).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch

from harness import bundle as B
from harness import bundle_tuning, checkpoint, claims
from harness.config import Suite
from harness.errors import HarnessError
from harness.grid import expand, plan
from harness.identity import LEGACY
from harness.metrics import cell_metrics
from harness import results
from harness.results import check_result, read_json, results_version_of
from harness.storage import atomic_write_json, sha256_file

# Where the re-run's hardware differs from the submitter's: scores may move by a couple of
# test items (a greedy answer flips), probe values by a little.
TOLERANCE = {"R_items": 2, "probe_abs": 0.05, "probe_rel": 0.10}
SOURCE_STAMP = "method.sha256"  # in a `--work` re-run's folder: the source it ran
REQUIRED = ("bundle_version", "name", "method", "suite", "cells", "hardware", "harness")


def check_contained(path: Path) -> None:
    """Stop (HarnessError: one line, exit 2) on a bundle whose method would be loaded from
    outside it: a class or source path that leaves the bundle, or a symbolic link."""
    manifest, _ = read_json(path / B.MANIFEST)
    method = manifest.get("method") if isinstance(manifest, dict) else None
    if isinstance(method, dict) and not method.get("builtin", True):
        try:
            B.bundled_source(path, method)
        except HarnessError as exc:
            raise HarnessError(f"bundle {path}: {exc.problem}", exc.fix) from None


def suite_named(path: Path) -> str:
    """The built-in suite the bundle at `path` was submitted to (so a bundle of an archived
    board verifies against its own grid), else the live board's (B.LIVE_SUITE)."""
    from harness.config import available_suites

    manifest, _ = read_json(path / B.MANIFEST)
    suite = manifest.get("suite") if isinstance(manifest, dict) else None
    name = suite.get("name") if isinstance(suite, dict) else None
    return name if isinstance(name, str) and name in available_suites() else B.LIVE_SUITE


def static_problems(path: Path, suite: Suite) -> list[str]:
    """Every reason to reject the bundle at `path` without running anything: nothing
    submitted is imported (a file plugin's cells are checked from its manifest entry)."""
    manifest, problem = read_json(path / B.MANIFEST)
    if problem or not isinstance(manifest, dict):
        return [f"{B.MANIFEST}: {problem or 'not a JSON object'}"]
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        return [f"{B.MANIFEST}: missing {', '.join(missing)}"]
    if not isinstance(manifest["method"], dict) or not isinstance(manifest["suite"], dict):
        return [f"{B.MANIFEST}: method and suite must be objects"]
    if manifest["bundle_version"] != B.BUNDLE_VERSION:
        return [f"{B.MANIFEST}: bundle_version {manifest['bundle_version']!r}, this harness "
                f"reads {B.BUNDLE_VERSION}"]
    problems = _checksum_problems(path) + _method_problems(path, manifest["method"])
    problems += bundle_tuning.problems(path, manifest)  # read as data, like everything here
    grid = B.leaderboard_grid_id(suite)
    if manifest["suite"].get("grid_id") != grid:
        problems.append(f"{B.MANIFEST}: grid {manifest['suite'].get('grid_id')} is not the "
                        f"current leaderboard grid {grid} (suite '{suite.name}')")
        return problems  # the cells cannot be checked against another grid
    stated = manifest["suite"].get("precision", suite.precision)  # absent: older bundles
    if stated != suite.precision:
        problems.append(f"{B.MANIFEST}: precision {stated!r}, but the grid's cells ran at "
                        f"{suite.precision!r}")
    try:
        narrowed = B.suite_for(manifest["method"], suite, path)
        cells = {cell.id: cell for cell in expand(narrowed)}
    except HarnessError as exc:  # a method that cannot be named or bad settings
        return problems + [exc.problem if exc.problem.startswith("method:")
                           else f"method: {exc.problem}"]
    found = {p.name for p in (path / "cells").glob("*") if p.is_dir()}
    problems += [f"cell {c}: missing" for c in sorted(set(cells) - found)]
    problems += [f"cell {c}: not a cell of the leaderboard grid" for c in sorted(found - set(cells))]
    if sorted(manifest["cells"]) != sorted(found):
        problems.append(f"{B.MANIFEST}: its cell list does not match the cells/ folder")
    for cell_id in sorted(found & set(cells)):
        problem = _cell_problem(path / "cells" / cell_id, cells[cell_id], narrowed,
                                manifest["method"].get("sha256"))
        if problem:
            problems.append(f"cell {cell_id}: {problem}")
    return problems


def _checksum_problems(path: Path) -> list[str]:
    links = [p.relative_to(path).as_posix() for p in sorted(path.rglob("*")) if p.is_symlink()]
    if links:  # a link's target is outside what was checksummed and may change
        return [f"{f}: a symbolic link (a bundle holds plain files only)" for f in links]
    listed = None
    if (path / B.CHECKSUMS).is_file():
        listed = B.parse_checksums((path / B.CHECKSUMS).read_text(errors="replace"))
    if listed is None:
        return [f"{B.CHECKSUMS}: missing or malformed"]
    actual = B.file_checksums(path)
    problems = [f"{f}: listed in {B.CHECKSUMS} but missing" for f in sorted(set(listed) - set(actual))]
    problems += [f"{f}: not listed in {B.CHECKSUMS}" for f in sorted(set(actual) - set(listed))]
    problems += [f"{f}: checksum mismatch (the file changed after submission)"
                 for f in sorted(set(listed) & set(actual)) if listed[f] != actual[f]]
    return problems


def _method_problems(path: Path, method: dict) -> list[str]:
    """The bundled source (inside the bundle) against its hash; a built-in, looked up by
    name in this harness's registry (never loaded from a file), against this harness's.
    Nothing is imported but this harness's own registered methods."""
    try:
        source = (B.bundled_file(path, method.get("source")) if method.get("builtin", True)
                  else B.bundled_source(path, method)[0])
    except HarnessError as exc:
        return [exc.problem]
    if method.get("builtin", True) and not B.registered(method.get("name")):
        return [f"method: built-in '{method.get('name')}' is unknown here"]
    if sha256_file(source) != method.get("sha256"):
        return [f"method: {method.get('source')} does not match its sha256 in the manifest"]
    if method.get("builtin", True):  # its behaviour is its declared version, not its bytes
        try:
            here = B.builtin_version(method["name"])
        except Exception as exc:
            return [f"method: built-in '{method.get('name')}' is unknown here: {exc}"]
        ran = str(method.get("version", LEGACY["method_version"]))  # bundles from before: 1
        if ran != here:
            return [f"method: built-in '{method['name']}' ran as version {ran}, this "
                    f"harness's is version {here} (its cells must be run again)"]
    return []


def _cell_problem(folder: Path, cell, suite: Suite, sha256: str | None) -> str | None:
    result, problem = read_json(folder / "result.json")
    if problem:
        return f"result.json {problem}"
    problem = check_result(result)
    if problem:
        return f"result.json {problem}"
    if result.get("cell_id") != cell.id or result["cell"] != cell.info:
        return f"result.json belongs to cell {result.get('cell_id')}"
    if results_version_of(result) != results.RESULTS_VERSION:
        return (f"measured under results version {results_version_of(result)}, this harness's "
                f"is {results.RESULTS_VERSION}: stale, run it again")
    ran = (result.get("method_source") or {}).get("sha256")
    if ran is not None and ran != sha256:
        return "ran with another version of the method's source than the bundle's"
    expected = plan(cell, suite).config_hash
    if result.get("config_hash") != expected:
        return (f"settings hash {result.get('config_hash')} is not the grid's {expected} "
                "(other settings, tasks or probes)")
    T = len(result["tasks"])
    for t, task in enumerate(result["tasks"]):
        for i, items in enumerate(result["items"][task]):
            value, scheduled = result["R"][i][t], t in suite.eval.row_tasks(i, T)
            if not scheduled:
                if items is not None or value is not None:
                    return f"R[{i}][{t}] ({task}) is evaluated where eval.rows skips it"
                continue
            if not items or value is None or not math.isclose(sum(items) / len(items), value,
                                                              abs_tol=1e-9):
                return f"R[{i}][{t}] ({task}) does not match its per-item scores"
    recomputed = cell_metrics(result["R"], result["probes"])
    for name, value in recomputed.items():
        recorded = result["metrics"].get(name)
        if not _same(value, recorded):
            return f"metric {name} is {recorded}, recomputed from R and probes {value}"
    return None


def _same(a, b, tol: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def rerun_problems(path: Path, suite: Suite, cell_ids: list[str], device, ui,
                   work: Path | None = None) -> tuple[list, list]:
    """Re-run the named cells of the bundle and compare: (rejections, per-cell records).
    In `work` (else a temporary folder) a re-run resumes from its checkpoint, and one
    complete there is compared without running again (_rerun_folder)."""
    from harness.runner import Runner

    manifest = read_json(path / B.MANIFEST)[0]
    narrowed = B.suite_for(manifest["method"], suite, path, load=True)
    cells = {cell.id: cell for cell in expand(narrowed)}
    problems, records = [], []
    for cell_id in cell_ids:
        cell = cells[cell_id]
        recorded = read_json(path / "cells" / cell_id / "result.json")[0]
        ran_on = _ran_on(manifest, recorded)
        exact = same_hardware(ran_on, device)
        ui.log(f"re-running {cell_id} ({'exact' if exact else 'tolerance'} comparison)")
        with _rerun_folder(work, cell_id, manifest["method"]) as out, _threads(ran_on, device):
            one = dataclasses.replace(narrowed, streams={cell.stream: list(cell.tasks)},
                                      seeds=[cell.seed])
            fresh = Runner(one, out, device, ui).run_cell(cell)
        diff = compare(recorded, fresh, exact)
        records.append({"cell": cell_id, "comparison": "exact" if exact else "tolerance",
                        "max_abs_diff": diff["max_abs_diff"]})
        if diff["problem"]:
            problems.append(f"cell {cell_id}: re-run differs: {diff['problem']}")
    return problems, records


@contextlib.contextmanager
def _rerun_folder(work: Path | None, cell_id: str, method: dict):
    """Where a re-run writes: a temporary folder, or `work` held by a claim on the cell (two
    verifiers sharing it must not write one cell). A result or checkpoint there of another
    source of the method (SOURCE_STAMP) is removed first: the runner would take it as
    its own (same settings)."""
    if work is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield Path(tmp)
        return
    folder = Path(work) / "cells" / cell_id
    claim = claims.acquire(folder)
    if claim is None:
        held = claims.holder(folder) or {}
        raise HarnessError(f"--work {work}: cell {cell_id} is being re-run by another process "
                           f"(pid {held.get('pid')} on {held.get('host')})",
                           "wait for it to finish, or give another --work folder")
    with claim:
        stamp, source = folder / SOURCE_STAMP, str(method.get("sha256"))
        if not stamp.is_file() or stamp.read_text() != source:
            (folder / "result.json").unlink(missing_ok=True)
            checkpoint.remove(folder)
            stamp.write_text(source)
        yield Path(work)


def draw(path: Path, listed: list[str], n: int, chosen: list[str] | None, work: Path | None,
         device) -> list[str]:
    """The cells to re-run (pick_cells), drawn among those this machine re-runs exactly
    (exact_cells) where there are any; else among all, and said on stderr."""
    exact = [] if chosen else exact_cells(path, listed, device)
    if not chosen and not exact:
        print("note: no cell of this bundle ran on this machine's processor; the re-runs "
              "are compared within tolerance, not exactly", file=sys.stderr)
    return pick_cells(exact or listed, n, chosen, work)


def exact_cells(path: Path, cell_ids: list[str], device) -> list[str]:
    """The bundle's cells that this machine can re-run exactly: those recorded on its device
    kind, processor and machine. The draw is made among them where there are any (a grid
    run over several sessions may span machines), since elsewhere a re-run is compared
    only within TOLERANCE."""
    manifest = read_json(path / B.MANIFEST)[0]
    mine = []
    for cell_id in cell_ids:
        recorded = read_json(path / "cells" / cell_id / "result.json")[0] or {}
        if same_hardware(_ran_on(manifest, recorded), device):
            mine.append(cell_id)
    return mine


def _ran_on(manifest: dict, recorded: dict) -> dict:
    """The machine a cell ran on: its own record, the manifest's where it recorded none."""
    return manifest["hardware"] | {k: v for k, v in B.cell_hardware(
        recorded.get("hardware") or {}).items() if v is not None}


def same_hardware(recorded: dict, device) -> bool:
    """Same device kind, processor, instruction set and machine (the thread count is
    matched by _threads)."""
    here = B.hardware_fingerprint(device)
    return all(recorded.get(k) == here[k] for k in ("device_type", "processor", "machine")) \
        and recorded.get("isa") in (None, here["isa"])  # None: recorded before cpu_isa was


@contextlib.contextmanager
def _threads(recorded: dict, device):
    """On a CPU, run with the submitter's thread count (matmul reductions depend on it)."""
    before = torch.get_num_threads()
    if device.type == "cpu" and isinstance(recorded.get("threads"), int):
        torch.set_num_threads(max(1, recorded["threads"]))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def compare(recorded: dict, fresh: dict, exact: bool) -> dict:
    """The first difference between a bundled result and its re-run beyond what is allowed."""
    worst, problem = 0.0, None
    n_items = max(len(recorded["items"][t][0]) for t in recorded["tasks"])
    pairs = [(f"R[{i}][{j}]", a, b, TOLERANCE["R_items"] / n_items, 0.0)
             for i, (ra, rb) in enumerate(zip(recorded["R"], fresh["R"]))
             for j, (a, b) in enumerate(zip(ra, rb))]
    pairs += [(f"{name}[{i}]", a, b, TOLERANCE["probe_abs"], TOLERANCE["probe_rel"])
              for name, values in recorded["probes"].items()
              for i, (a, b) in enumerate(zip(values, fresh["probes"].get(name, [])))]
    if len(recorded["R"]) != len(fresh["R"]) or set(recorded["probes"]) != set(fresh["probes"]):
        return {"max_abs_diff": None, "problem": "different rows or probes"}
    for what, a, b, abs_tol, rel_tol in pairs:
        if a is None or b is None:  # not evaluated (eval.rows): in both, or a difference
            if problem is None and a is not b:
                problem = f"{what} is {a} in the bundle, {b} re-run"
            continue
        gap = abs(a - b)
        worst = max(worst, gap)
        allowed = 0.0 if exact else max(abs_tol, rel_tol * abs(a))
        if problem is None and gap > allowed:
            problem = f"{what} is {a} in the bundle, {b} re-run"
    return {"max_abs_diff": worst, "problem": problem}


def pick_cells(cell_ids: list[str], n: int, chosen: list[str] | None,
               work: Path | None = None) -> list[str]:
    """The cells to re-run: those named, else n drawn at random (not predictable by the
    submitter). With `work`, the draw is kept in WORK/picked.json: a resumed verification
    re-runs the cells its first start drew (while they are still the bundle's and as many
    as asked)."""
    if chosen:
        return chosen
    drawn = sorted(random.SystemRandom().sample(sorted(cell_ids), min(n, len(cell_ids))))
    if work is None:
        return drawn
    try:
        Path(work).mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file there, no permission
        raise HarnessError(f"--work {work}: cannot be made a folder ({exc.strerror or exc})",
                           "name a writable folder (it is created if missing)") from None
    path = Path(work) / "picked.json"
    kept = read_json(path)[0] if path.is_file() else None
    kept = kept.get("cells") if isinstance(kept, dict) else None
    if isinstance(kept, list) and len(kept) == min(n, len(cell_ids)) and set(kept) <= set(cell_ids):
        return kept
    atomic_write_json(path, {"cells": drawn})
    return drawn


def write_verification(path: Path, records: list[dict], device) -> dict:
    """The verifier's statement, tied to the checksums it checked (an edit afterwards
    makes the leaderboard show the bundle as self-reported again)."""
    record = {"verified": True, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "harness": B.git_revision(), "hardware": B.hardware_fingerprint(device),
              "checksums_sha256": sha256_file(path / B.CHECKSUMS), "reruns": records}
    atomic_write_json(path / B.VERIFICATION, record)
    return record
