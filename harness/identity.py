"""What a result's identity is: the one owner of what a cell's config hash and a grid's id
cover, built from plain dicts.

A cell is identified by (`cell_parts`): the model's content (harness/models.py,
`model_identity`), the content hash of each task's data, the method's name, its declared
`version` and the settings given to it, the training, data and evaluation settings, the
probes' versions, the seed, the precision, the result schema and RESULTS_VERSION. The
method's source bytes are recorded for audit (`method_record`), never hashed: a comment or a
behaviour-preserving refactor leaves every result valid, a behaviour change bumps the
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
import sys

from harness.storage import sha256_file, stable_hash

# Bump when a change to training, evaluation or scoring moves numbers: every cell of another
# results version is stale (re-run), never mixed with this one's (docs/results.md).
RESULTS_VERSION = 1

# part -> the value it had, unstated, before it was hashed (left out at that value)
LEGACY = {"method_version": "1", "results_version": 1, "precision": "auto"}
LEGACY_TRAIN = {"gradient_checkpointing": False, "optimizer": "adamw"}  # train.<key>


def settings(obj) -> dict:
    """A settings dataclass (TrainSettings, DataSettings, EvalSettings) as a plain dict of
    every field."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def train_part(train) -> dict:
    """Training settings as hashed and recorded: every field, but the LEGACY_TRAIN ones at
    their legacy value."""
    return {k: v for k, v in settings(train).items()
            if k not in LEGACY_TRAIN or v != LEGACY_TRAIN[k]}


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


# ---------------------------------------------------------------------------- cells, grids

def cell_parts(cell, suite, model_id: str, task_hashes: dict) -> dict:
    """Everything a cell's numbers depend on, as plain data (`harness run --dry-run --json`
    prints it per cell)."""
    from harness.probes import get_probe
    from harness.results import SCHEMA_VERSION

    return {
        "model": model_id, "tasks": task_hashes,
        "method": cell.method.name, "method_version": method_version(cell.method),
        "params": cell.method.params, "train": train_part(cell.method.train), "seed": cell.seed,
        "data": settings(suite.data), "eval": settings(suite.eval),
        "probes": {name: get_probe(name).version for name in suite.probes},
        "schema": SCHEMA_VERSION, "precision": suite.precision,
        "results_version": RESULTS_VERSION,
    }


def config_hash(parts: dict) -> str:
    return stable_hash(hashed(parts))


def grid_parts(suite, model_ids: dict, task_hashes: dict, probe_files: dict) -> dict:
    """Everything that fixes a grid's results: two runs with the same grid id measure the
    same thing."""
    from harness.probes import get_probe
    from harness.results import SCHEMA_VERSION

    return hashed({
        "models": model_ids, "streams": suite.streams, "task_hashes": task_hashes,
        "methods": [hashed({"name": m.name, "params": m.params, "train": train_part(m.train),
                            "method_version": method_version(m)})
                    for m in suite.methods],
        "seeds": suite.seeds, "probe_data": probe_files,
        "probes": {name: get_probe(name).version for name in suite.probes},
        "data": settings(suite.data), "eval": settings(suite.eval),
        "schema": SCHEMA_VERSION, "precision": suite.precision,
        "results_version": RESULTS_VERSION,
        **({"stream_train": suite.stream_train} if suite.stream_train else {}),
        **({"stream_method_train": suite.stream_method_train}
           if suite.stream_method_train else {}),
    })


def results_version_of(result: dict) -> int:
    """The results version a result.json was measured under (cells from before it was
    recorded: 1)."""
    return result.get("results_version", 1)
