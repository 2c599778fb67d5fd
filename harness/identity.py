"""What a result's identity is: the one owner of what a cell's config hash and a grid's id
cover, built from plain dicts.

A cell is identified by (`cell_parts`): the model's content (`model_identity`), the content
hash of each task's data, the method's name, its declared `version` and the settings given
to it, the training, data and evaluation settings, the probes' versions, the seed, the
precision, the result schema and the results version (results.RESULTS_VERSION). The
method's source bytes are recorded for audit (`method_record`), never hashed: a comment or
a behaviour-preserving refactor leaves every result valid, a behaviour change bumps the
method's `version` (tests/test_method_fingerprints.py catches one that does not).

Settings given to a method plus its version fix the settings in force: a built-in's defaults
belong to its version (changing one changes its fingerprint, so its version).

Compatibility: the parts below that came after results were published (cells, bundles,
grids verified by bit-exact re-runs) are left out of the hashed dict while at the value
they had implicitly before (LEGACY), so that those results keep their hashes; set to
anything else, they are hashed.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from harness.storage import sha256_file, stable_hash

# part -> the value it had, unstated, before it was hashed (left out at that value)
LEGACY = {"method_version": "1", "results_version": 1, "precision": "auto",
          "primary": "strict"}
LEGACY_TRAIN = {"gradient_checkpointing": False, "optimizer": "adamw"}  # train.<key>
LEGACY_EVAL = {"rows": "all", "probe_rows": "all"}  # eval.<key>


def settings(obj) -> dict:
    """A settings dataclass (TrainSettings, DataSettings, EvalSettings) as a plain dict of
    every field."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def train_part(train) -> dict:
    """Training settings as hashed and recorded: every field, but the LEGACY_TRAIN ones at
    their legacy value."""
    return {k: v for k, v in settings(train).items()
            if k not in LEGACY_TRAIN or v != LEGACY_TRAIN[k]}


def eval_part(evaluation) -> dict:
    """Evaluation settings as hashed and recorded: every field, but the LEGACY_EVAL ones at
    their legacy value."""
    return {k: v for k, v in settings(evaluation).items()
            if k not in LEGACY_EVAL or v != LEGACY_EVAL[k]}


def hashed(parts: dict) -> dict:
    """`parts` without the LEGACY parts at their legacy value: what is hashed."""
    return {k: v for k, v in parts.items() if k not in LEGACY or v != LEGACY[k]}


# ---------------------------------------------------------------------------- methods

_warned: set[str] = set()


def method_version(spec) -> str:
    """The version a method (a config.MethodSpec) declares as `version` in its own class
    body; a method without one (a plugin) is versioned by its source file's sha256, with a
    one-line warning, so that any edit to it makes its results stale."""
    from harness.errors import HarnessError
    from harness.methods import METHODS

    try:
        cls = METHODS[spec.name]
    except HarnessError:  # a plugin that does not import: its cells fail anyway
        cls = None
    declared = declared_version(cls) if cls is not None else None
    if declared:
        return declared
    source = spec.source_file
    version = f"src-{sha256_file(source)[:16]}" if source and source.is_file() else "unknown"
    if cls is not None and spec.name not in _warned:
        _warned.add(spec.name)
        print(f"warning: method '{spec.name}' declares no `version`: its source hash "
              f"({version}) stands in, so any edit to {source.name if source else 'it'} makes "
              f"its results stale; declare one, e.g. version = \"1\"", file=sys.stderr)
    return version


def declared_version(cls) -> str | None:
    """What a method class declares itself as `version` (None: nothing)."""
    declared = cls.__dict__.get("version")
    ok = isinstance(declared, (str, int)) and not isinstance(declared, bool) and str(declared)
    return str(declared) if ok else None


def method_record(spec) -> dict | None:
    """What a result records of its method for audit: name, version, the defining file
    and its sha256 (a bundle holds the source its cells ran with)."""
    path = spec.source_file
    if path is None or not path.is_file():
        return None
    return {"name": spec.name, "version": method_version(spec), "file": path.name,
            "sha256": sha256_file(path)}


# ---------------------------------------------------------------------------- models

def model_identity(name: str, path: str) -> str:
    """A content identity (config hashes, cache keys): the GGUF's hash for an embedded model;
    for a local folder its name and the sha256 of every file in it (weights, config,
    tokenizer; not README or dotfiles), so that weights saved again into the same folder are
    another model; the id itself for a hub model."""
    from harness.models import _MARKER, EMBEDDED

    if name in EMBEDDED:
        return f"{name}@{EMBEDDED[name].sha256[:16]}"
    local = Path(path)
    if local.is_dir():
        files = sorted(p for p in local.iterdir() if p.is_file()
                       and not p.name.startswith((".", "README")) and p.name != _MARKER)
        digests = file_sha256s(files)
        return f"{local.resolve().name}@{stable_hash([[p.name, digests[p]] for p in files])}"
    return name


def file_sha256s(files: list[Path]) -> dict[Path, str]:
    """sha256 of each file, computed once: kept in <HARNESS_CACHE>/sha256.json by (path,
    size, mtime_ns), so that a weight file is read again only once it changed."""
    from harness import storage

    store = storage.cache_dir() / "sha256.json"
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):  # none yet, or damaged: computed again
        known = {}
    known = known if isinstance(known, dict) else {}
    found, changed = {}, False
    for file in files:
        stat, key = file.stat(), str(file.resolve())
        entry = known.get(key)
        if not (isinstance(entry, dict) and entry.get("size") == stat.st_size
                and entry.get("mtime_ns") == stat.st_mtime_ns and "sha256" in entry):
            entry = known[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                  "sha256": storage.sha256_file(file)}
            changed = True
        found[file] = entry["sha256"]
    if changed:
        try:
            storage.atomic_write_json(store, known)
        except OSError:  # a cache: unwritable (read-only, disk full), it is computed again
            pass
    return found


# ---------------------------------------------------------------------------- cells, grids

def cell_parts(cell, suite, model_id: str, task_hashes: dict) -> dict:
    """Everything a cell's numbers depend on, as plain data (`harness run --dry-run --json`
    prints it per cell)."""
    from harness import results
    from harness.probes import get_probe

    return {
        "model": model_id, "tasks": task_hashes,
        "method": cell.method.name, "method_version": method_version(cell.method),
        "params": cell.method.params, "train": train_part(cell.method.train), "seed": cell.seed,
        "data": settings(suite.data), "eval": eval_part(suite.eval),
        "probes": {name: get_probe(name).version for name in suite.probes},
        "schema": results.SCHEMA_VERSION, "precision": suite.precision,
        "primary": suite.primary, "results_version": results.RESULTS_VERSION,
        **({"short_look": suite.short_look} if suite.short_look else {}),
    }


def config_hash(parts: dict) -> str:
    return stable_hash(hashed(parts))


def grid_parts(suite, model_ids: dict, task_hashes: dict, probe_files: dict) -> dict:
    """Everything that fixes a grid's results: two runs with the same grid id measure the
    same thing."""
    from harness import results
    from harness.probes import get_probe

    return hashed({
        "models": model_ids, "streams": suite.streams, "task_hashes": task_hashes,
        "methods": [hashed({"name": m.name, "params": m.params, "train": train_part(m.train),
                            "method_version": method_version(m)})
                    for m in suite.methods],
        "seeds": suite.seeds, "probe_data": probe_files,
        "probes": {name: get_probe(name).version for name in suite.probes},
        "data": settings(suite.data), "eval": eval_part(suite.eval),
        "schema": results.SCHEMA_VERSION, "precision": suite.precision,
        "primary": suite.primary, "results_version": results.RESULTS_VERSION,
        **({"stream_train": suite.stream_train} if suite.stream_train else {}),
        **({"stream_method_train": suite.stream_method_train}
           if suite.stream_method_train else {}),
        **({"short_look": suite.short_look} if suite.short_look else {}),
    })




# ---------------------------------------------------------------------------- the resolved suite

def suite_record(suite) -> dict:
    """A suite as resolved once by the process that plans a run (its file read and checked,
    --methods, --seeds, --precision and --set applied), as plain data: what its `--jobs`
    workers and Ray tasks get instead of parsing the command line again."""
    record = {f.name: getattr(suite, f.name) for f in dataclasses.fields(suite)}
    return record | {
        "methods": [{"name": m.name, "params": m.params, "train": settings(m.train),
                     "source": m.source, "train_keys": list(m.train_keys)}
                    for m in suite.methods],
        "train": settings(suite.train), "data": settings(suite.data), "eval": settings(suite.eval)}


def suite_from_record(record: dict):
    """The Suite a `suite_record` describes. A file plugin's class is loaded from its file
    again (found by its name from then on); one that does not import fails its cells."""
    from harness.config import DataSettings, EvalSettings, MethodSpec, Suite, TrainSettings
    from harness.errors import HarnessError
    from harness.methods import METHODS
    from harness.methods.settings import is_file

    methods = []
    for m in record["methods"]:
        if is_file(m["source"]) and m["name"] not in METHODS:
            try:
                METHODS.locate(m["source"])
            except HarnessError:
                pass
        methods.append(MethodSpec(m["name"], m["params"], TrainSettings(**m["train"]),
                                  m["source"], tuple(m["train_keys"])))
    return Suite(**record | {
        "methods": methods, "train": TrainSettings(**record["train"]),
        "data": DataSettings(**record["data"]), "eval": EvalSettings(**record["eval"])})
