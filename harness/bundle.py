"""Submission bundles: one method's results on the leaderboard grid, self-describing and
checksummed, so that anyone can check them (`harness verify`) and rank them
(`harness leaderboard`). `harness submit` writes them (docs/leaderboard.md).

    leaderboard/submissions/<name>/
      manifest.json        the method (name, class, settings, source hash), the grid, the
                           harness and library versions, hardware, seeds, cost
      method/<file>.py     the method's source as it ran
      cells/<cell id>/     result.json and samples.json of every cell of the grid
      tuning.json          the method's rows of `harness tune`'s table, where it was tuned
                           (harness/bundle_tuning.py; absent: untuned)
      checksums.sha256     sha256 of every file above (`sha256sum -c` reads it)
      verification.json    written by `harness verify` when it accepts the bundle
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import bundle_tuning
from harness.config import MethodSpec, Suite
from harness.errors import HarnessError
from harness.grid import expand, grid_definition, state
from harness.identity import method_version, train_part
from harness.results import CellState, cell_hardware, read_json, read_result
from harness.storage import atomic_write_json, atomic_write_text, sha256_file, stable_hash

BUNDLE_VERSION = 1
MANIFEST, CHECKSUMS, VERIFICATION = "manifest.json", "checksums.sha256", "verification.json"
SUBMISSIONS = Path("leaderboard") / "submissions"
# the suite of the live board in leaderboard/ (earlier boards: leaderboard/archive/NAME/);
# the default of submit, verify and leaderboard, switched when a new board is published
LIVE_SUITE = "leaderboard"
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def scenario(suite: Suite) -> dict:
    """What a leaderboard entry is measured on: the suite's grid without its method list
    (models, streams, task and probe content, seeds, data, evaluation, the default training
    budget). Every bundle of one leaderboard has the same scenario."""
    definition = {k: v for k, v in grid_definition(suite).items() if k != "methods"}
    return definition | {"train": train_part(suite.train)}


def leaderboard_grid_id(suite: Suite) -> str:
    return stable_hash(scenario(suite))


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name or ""):
        raise HarnessError(f"submission name '{name}' is not a valid folder name",
                           "use lower-case letters, digits, '.', '_' and '-' (e.g. --name my-method)")
    return name


def method_class(spec: str) -> type:
    from harness.methods import METHODS

    return METHODS[spec]


def builtin_version(name: str) -> str:
    """The version this harness's registered method `name` has (harness/identity.py)."""
    return method_version(MethodSpec(name, source=f"{method_source(name)}:"))


def method_source(name: str, source: str = "") -> Path:
    """The file that defines the method's class (what the bundle keeps and hashes):
    `source` where a file plugin's MethodSpec names it, else the class's module file."""
    from harness.methods.settings import is_file

    if is_file(source):
        return Path(source.rpartition(":")[0]).resolve()
    if not source and ":" in name and is_file(name):
        return Path(name.rpartition(":")[0]).resolve()
    return Path(inspect.getsourcefile(method_class(name))).resolve()


def file_checksums(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` but the checksum file and the verifier's record,
    by POSIX path relative to `root`, sorted."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in files
            if p.relative_to(root).as_posix() not in (CHECKSUMS, VERIFICATION)}


def format_checksums(sums: dict[str, str]) -> str:
    return "".join(f"{digest}  {path}\n" for path, digest in sums.items())


def parse_checksums(text: str) -> dict[str, str] | None:
    """The checksum file's entries, or None where a line is not `<64 hex>  <path>`."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([0-9a-f]{64})  (\S.*)", line)
        if not match:
            return None
        found[match.group(2)] = match.group(1)
    return found


def git_revision(root: Path | None = None) -> str | None:
    """The harness checkout's commit, with "-dirty" where tracked files differ outside
    leaderboard/ (the board `harness leaderboard` rebuilds there is output, not code), or
    None outside a git checkout."""
    root = root or Path(__file__).resolve().parent.parent

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=10)
    try:
        head = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ":/",
                      ":(top,exclude)leaderboard")
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0 or not head.stdout.strip():
        return None
    return head.stdout.strip() + ("-dirty" if changed.stdout.strip() else "")


def method_entry(spec: MethodSpec) -> tuple[dict, Path]:
    """The manifest's description of a method and the source file to copy."""
    from harness.methods import METHODS
    from harness.methods.settings import in_force

    cls = method_class(spec.name)
    source = method_source(spec.name, spec.source)
    builtin = spec.name in METHODS  # registered (built in or installed), else a file
    return ({"name": spec.name, "builtin": builtin, "description": cls.description,
             "class": f"{cls.__module__}:{cls.__qualname__}" if builtin
             else f"method/{source.name}:{cls.__qualname__}",
             "source": f"method/{source.name}", "sha256": sha256_file(source),
             "version": method_version(spec),
             "params": in_force(spec) or dict(spec.params), "params_given": spec.params,
             "train": train_part(spec.train)}, source)


def _complete_results(suite: Suite, out: Path) -> dict[str, dict]:
    """Every cell's result.json from `out`, each complete and current; else the one line
    that says which cell is not and how to finish it."""
    found = {}
    for cell in expand(suite):
        folder = out / "cells" / cell.id
        now = state(cell, suite, folder)
        if now is not CellState.COMPLETE:
            raise HarnessError(f"cell {cell.id} in {out} is {now.value}, not complete",
                               "run the same `harness submit` command again to finish the grid")
        found[cell.id] = read_result(folder)[0]
    return found


def _check_sources(results: dict[str, dict], sha256: str, source: Path) -> None:
    """Every cell ran with the source being bundled (cells from before results recorded
    their method's source are taken as they are)."""
    for cell_id, result in results.items():
        ran = (result.get("method_source") or {}).get("sha256")
        if ran is not None and ran != sha256:
            raise HarnessError(f"cell {cell_id} ran with another version of {source.name} "
                               "than the one being bundled",
                               "re-run it (delete its folder in the run folder) or submit from "
                               "the checkout it ran with")


def write_bundle(dest: Path, suite: Suite, out: Path, threads: int,
                 tuning: dict | None = None) -> dict:
    """Bundle the one method of `suite` from its run folder `out` into `dest`, with its
    tuning part (bundle_tuning.method_part, checked by submit) where given; returns the
    manifest. Written beside `dest` and renamed into place: never half a bundle."""
    (spec,) = suite.methods
    results = _complete_results(suite, out)
    method, source = method_entry(spec)
    _check_sources(results, method["sha256"], source)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "method").mkdir(parents=True)
    shutil.copyfile(source, tmp / method["source"])
    for cell_id in results:
        for name in ("result.json", "samples.json"):
            target = tmp / "cells" / cell_id / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / "cells" / cell_id / name, target)
    if tuning:
        atomic_write_json(tmp / bundle_tuning.TUNING, tuning)
    first = next(iter(results.values()))
    seconds = sum(r["timings"]["total_s"] for r in results.values())
    manifest = {
        "bundle_version": BUNDLE_VERSION,
        "name": dest.name,
        "method": method,
        "suite": {"name": suite.name, "grid_id": leaderboard_grid_id(suite),
                  "models": suite.models, "streams": suite.streams, "seeds": suite.seeds,
                  "probes": suite.probes, "precision": suite.precision},
        "harness": {"version": first["versions"]["harness"], "git_revision": git_revision()},
        "task_hashes": scenario(suite)["task_hashes"],
        "probe_data": scenario(suite)["probe_data"],
        "libraries": first["versions"],
        "hardware": _hardware(results, threads),
        "cells": sorted(results),
        "tuning": bundle_tuning.TUNING if tuning else None,
        "wall_clock_s": round(seconds, 1),
        "device_hours": round(seconds / 3600, 3),
    }
    atomic_write_json(tmp / MANIFEST, manifest)
    atomic_write_text(tmp / CHECKSUMS, format_checksums(file_checksums(tmp)))
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return manifest


def _hardware(results: dict, threads: int) -> dict:
    """The machine most cells ran on, as its fingerprint; what a cell did not record is
    taken from this machine (verify compares each re-run with its own cell's record)."""
    from harness.runner import cpu_isa, cpu_name

    prints = [cell_hardware(r["hardware"]) for r in results.values()]
    common = max(prints, key=prints.count)
    here = {"device_type": "cpu", "processor": cpu_name(), "isa": cpu_isa(),
            "machine": platform.machine(), "threads": threads}
    if common["device_type"] == "cuda":
        here["isa"] = None  # the GPU's kernels decide a CUDA cell's numbers
    return {k: here[k] if v is None else v for k, v in common.items()}


def hardware_fingerprint(device, threads: int | None = None) -> dict:
    """What decides whether a re-run can match bit for bit: the device kind, the processor
    (CPU model or GPU name), on a CPU its instruction set and the number of threads."""
    import torch

    device = torch.device(device)
    from harness.runner import cpu_isa, cpu_name

    cuda = device.type == "cuda"
    return {"device_type": device.type,
            "processor": torch.cuda.get_device_name(device) if cuda else cpu_name(),
            "isa": None if cuda else cpu_isa(), "machine": platform.machine(),
            "threads": torch.get_num_threads() if threads is None else threads}


@dataclass
class Bundle:
    path: Path
    manifest: dict
    results: dict[str, dict]  # cell id -> result.json
    tuning: dict | None = None  # tuning.json, where the manifest names one


def read_bundle(path: Path) -> Bundle:
    """A bundle's manifest, cell results and tuning as written (no checks: `harness verify`
    checks)."""
    manifest, problem = read_json(path / MANIFEST)
    if problem or not isinstance(manifest, dict):
        raise HarnessError(f"{path / MANIFEST}: {problem or 'not a JSON object'}",
                           "is this a bundle written by `harness submit`?")
    results = {}
    for folder in sorted((path / "cells").glob("*")):
        data, problem = read_json(folder / "result.json")
        if problem is None:
            results[folder.name] = data
    tuning = read_json(path / bundle_tuning.TUNING)[0] if manifest.get("tuning") else None
    return Bundle(path, manifest, results, tuning if isinstance(tuning, dict) else None)


_SOURCE_RE = re.compile(r"method/[^/\\\0]+\.py")
_CLASS_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def bundled_file(bundle: Path, source) -> Path:
    """The bundle's copy of its method's source, `method/<file>.py`: a regular file inside
    the bundle, reached through no symbolic link, else HarnessError."""
    if not isinstance(source, str) or not _SOURCE_RE.fullmatch(source) or source.startswith(
            "method/."):
        raise HarnessError(f"method: source {source!r} is not a file method/<name>.py inside "
                           "the bundle", "submit the bundle again with `harness submit`")
    file = bundle / source
    for part in (bundle / "method", file):
        if part.is_symlink():
            raise HarnessError(f"method: {part.relative_to(bundle)} is a symbolic link",
                               "a bundle holds plain files only: submit it again")
    if (not os.path.realpath(file).startswith(os.path.realpath(bundle) + os.sep)
            or not file.is_file()):
        raise HarnessError(f"method: source {source} is missing or not a file inside the "
                           "bundle", "submit the bundle again with `harness submit`")
    return file


def bundled_source(bundle: Path, method: dict) -> tuple[Path, str]:
    """(the bundle's copy of a file plugin's source, the class's name in it), from the
    manifest alone: `method.class` must be `<method.source>:<Class>`, with the source
    inside the bundle (bundled_file, checksummed with the rest). A class that points
    elsewhere (`../outside.py:Good`, an absolute path) is refused before anything could
    import it: only the code that was checked may ever run."""
    file = bundled_file(bundle, method.get("source"))
    target = method.get("class")
    path, _, cls = target.rpartition(":") if isinstance(target, str) else ("", "", "")
    if path != method["source"] or not _CLASS_RE.fullmatch(cls):
        raise HarnessError(f"method: class {target!r} is not a class of the bundled source "
                           f"{method['source']} (it must read '{method['source']}:<Class>')",
                           "a bundle's method runs only from its own checksummed copy: "
                           "submit it again with `harness submit`")
    return file, cls


def registered(name) -> bool:
    """Is `name` a method of this harness's registry (a name, never a file path)?"""
    from harness.methods import METHODS
    from harness.methods.settings import is_file

    return isinstance(name, str) and not is_file(name) and name in METHODS


def bundle_method(method: dict, bundle: Path, load: bool = False) -> MethodSpec:
    """The MethodSpec a bundle's cells ran: a registered method as this harness has it; a
    file plugin by its manifest entry alone unless `load` (only a re-run loads it, from the
    bundle's own copy, bundled_source). Static checks and the leaderboard never import
    submitted code."""
    from harness.config import TrainSettings, method_spec
    from harness.methods.settings import is_file

    where = f"{bundle / MANIFEST}, method"
    name = method.get("name")
    # the settings the cells ran with as given (their hash); `params` adds the defaults
    params = (method["params_given"] if "params_given" in method else method.get("params")) or {}
    if not isinstance(name, str) or not name or is_file(name) or not isinstance(params, dict):
        raise HarnessError(f"{where}: name {name!r} or params {params!r} is malformed",
                           "submit the bundle again with `harness submit`")
    try:
        train = TrainSettings(**method["train"])
    except (KeyError, TypeError) as exc:
        raise HarnessError(f"{where}: unusable training settings ({exc})",
                           "submit the bundle again with `harness submit`") from None
    if method.get("builtin", True):
        if not registered(name):
            raise HarnessError(f"{where}: '{name}' is not a method registered in this harness",
                               "a file plugin is bundled with builtin: false and its source")
        return _in_force_checked(method_spec(name, dict(params), train, where, ()), method)
    file, cls = bundled_source(bundle, method)
    if not load:
        return MethodSpec(name, dict(params), train, f"{file.resolve()}:{cls}")
    spec = method_spec(f"{file}:{cls}", dict(params), train, where, ())
    if spec.name != name:
        raise HarnessError(f"{where}: the bundled class is named '{spec.name}', the manifest "
                           f"says '{name}'", "submit the bundle again with `harness submit`")
    return _in_force_checked(spec, method)


def _in_force_checked(spec: MethodSpec, method: dict) -> MethodSpec:
    """`spec`, where the manifest's `params` are the settings in force of its `params_given`
    (bundles from before `params_given` recorded the given settings as `params`)."""
    from harness.methods.settings import in_force

    if "params_given" in method and in_force(spec) != method.get("params"):
        raise HarnessError(f"params {method.get('params')} are not the settings in force "
                           f"{in_force(spec)} of params_given {method['params_given']}",
                           "submit the method again")
    return spec


def suite_for(method: dict, suite: Suite, bundle: Path, load: bool = False) -> Suite:
    """The leaderboard suite narrowed to a bundle's method with its recorded settings
    (bundle_method: a file plugin is imported only where `load`)."""
    found = bundle_method(method, bundle, load)
    own = tuple(k for k, v in dataclasses.asdict(found.train).items()  # beat a stream's settings
                if v != getattr(suite.train, k))
    return dataclasses.replace(suite, methods=[dataclasses.replace(found, train_keys=own)])


def submit(name: str | None, suite: Suite, out: Path | None, root: Path, device,
           ui, tuning: dict | None = None) -> tuple[dict, Path]:
    """Run `suite` (the leaderboard grid) for one method, resumably, and bundle its cells
    and its tuning part into root/leaderboard/submissions/<name>/. `suite` is already
    narrowed to the method; a method not at its tuning's choice is refused before any cell
    runs."""
    import torch

    from harness.runner import Runner

    (spec,) = suite.methods
    bundle_tuning.check_settings(method_entry(spec)[0], tuning)
    name = check_name(name or method_class(spec.name).name)
    out = Path(out) if out else root / "runs" / "submit" / name
    _, failures = Runner(suite, out, device, ui).run()
    if failures:
        raise HarnessError(f"{len(failures)} cell(s) failed (first: {failures[0][0].id}: "
                           f"{failures[0][1]}); no bundle written",
                           f"fix the cause and run the same command again (results in {out})")
    dest = root / SUBMISSIONS / name
    return write_bundle(dest, suite, out, torch.get_num_threads(), tuning), dest
