"""Suites: YAML files that fix models x streams x methods x seeds x probes plus settings.

Every key is validated; a mistake gives one line naming the file, the key and the fix.
See docs/suites.md for the format.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SUITES_DIR = BENCHMARKS / "suites"
STREAMS_FILE = BENCHMARKS / "streams.yaml"


@dataclass(frozen=True)
class TrainSettings:
    steps: int | None = None  # optimiser steps per task; or give epochs
    epochs: float | None = None
    lr: float = 5e-5
    batch_size: int = 8  # examples per micro-batch
    grad_accum: int = 1  # micro-batches per optimiser step
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_len: int = 256  # tokens per training sequence (prompt + response)


@dataclass(frozen=True)
class DataSettings:
    n_train: int = 64  # training examples per task
    n_test: int = 32  # test items per task
    seed: int = 0  # data seed: fixed across cells so that items pair across seeds


@dataclass(frozen=True)
class EvalConfig:
    batch_size: int = 16
    max_new_tokens: int | None = None  # None: each task's own budget


@dataclass(frozen=True)
class MethodSpec:
    name: str  # registry name or path/to/file.py:Class
    params: dict = field(default_factory=dict)
    train: TrainSettings = TrainSettings()


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    models: list[str]
    streams: dict[str, list[str]]
    methods: list[MethodSpec]
    seeds: list[int]
    probes: list[str]
    train: TrainSettings
    data: DataSettings
    eval: EvalConfig
    path: str = ""


_TOP = {"name", "description", "models", "streams", "methods", "seeds", "probes", "train",
        "data", "eval"}
_POSITIVE = {"lr", "batch_size", "grad_accum", "max_len", "n_train", "n_test", "steps",
             "epochs", "max_new_tokens", "max_grad_norm"}


def _fail(where: str, problem: str, fix: str):
    raise HarnessError(f"{where}: {problem}", fix)


def _settings(cls, raw: Any, where: str, base=None):
    """Build a settings dataclass from a mapping, checking keys, types and ranges."""
    base = base or cls()
    if raw is None:
        return base
    if not isinstance(raw, dict):
        _fail(where, f"expected a mapping, got {type(raw).__name__}", "see docs/suites.md")
    known = {f.name: f for f in fields(cls)}
    for key, value in raw.items():
        if key not in known:
            _fail(where, f"unknown key '{key}'", f"use one of: {', '.join(known)}")
        default = getattr(cls(), key)
        numeric = isinstance(default, (int, float)) or key in _POSITIVE
        if numeric and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                _fail(where, f"{key} must be a number, got {value!r}", "write a number")
            if key in _POSITIVE and value <= 0:
                _fail(where, f"{key} must be > 0, got {value}", f"set {key} to a positive value")
            if value < 0:
                _fail(where, f"{key} must be >= 0, got {value}", f"set {key} to 0 or more")
            if key in {"batch_size", "grad_accum", "max_len", "n_train", "n_test", "steps",
                       "max_new_tokens", "seed"} and value != int(value):
                _fail(where, f"{key} must be a whole number, got {value}", "drop the fraction")
    settings = dataclasses.replace(base, **raw)
    if isinstance(settings, TrainSettings):
        if settings.steps is None and settings.epochs is None:
            _fail(where, "neither steps nor epochs is set", "set train.steps or train.epochs")
        if settings.warmup_ratio >= 1:
            _fail(where, f"warmup_ratio must be < 1, got {settings.warmup_ratio}",
                  "use a fraction such as 0.1")
    return settings


def _string_list(raw, where, what) -> list:
    if isinstance(raw, (str, int)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        _fail(where, f"'{what}' must be a non-empty list", f"list at least one {what[:-1]}")
    return raw


def load_streams() -> dict[str, list[str]]:
    """Named streams shipped with the harness (benchmarks/streams.yaml)."""
    return yaml.safe_load(STREAMS_FILE.read_text()) or {}


def available_suites() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SUITES_DIR.glob("*.yaml"))}


def suite_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"}:
        if not path.is_file():
            raise HarnessError(f"suite file '{name_or_path}' does not exist",
                               "check the path, or name a built-in suite")
        return path
    suites = available_suites()
    if name_or_path not in suites:
        raise HarnessError(f"unknown suite '{name_or_path}'",
                           f"use one of: {', '.join(suites)} (see `harness list suites`), "
                           "or a path to a suite .yaml")
    return suites[name_or_path]


def load_suite(name_or_path: str) -> Suite:
    path = suite_path(name_or_path)
    where = f"suite {path.name}"
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        _fail(where, f"malformed YAML{line} ({getattr(exc, 'problem', exc)})",
              "fix the YAML syntax (indentation, colons, quotes)")
    if not isinstance(raw, dict):
        _fail(where, "the file is not a mapping of settings", "see docs/suites.md")
    unknown = set(raw) - _TOP
    if unknown:
        _fail(where, f"unknown key '{sorted(unknown)[0]}'", f"use only: {', '.join(sorted(_TOP))}")
    for key in ("models", "streams", "methods", "seeds", "train"):
        if key not in raw:
            _fail(where, f"missing key '{key}'", f"add '{key}:' (see docs/suites.md)")

    train = _settings(TrainSettings, raw["train"], f"{where}, train")
    streams = _parse_streams(raw["streams"], where)
    methods = _parse_methods(raw["methods"], train, where)
    seeds = _string_list(raw["seeds"], where, "seeds")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        _fail(where, f"seeds must be non-negative whole numbers, got {seeds}", "e.g. seeds: [0, 1, 2]")
    if len(set(seeds)) != len(seeds):
        _fail(where, f"seeds repeat: {seeds}", "list each seed once")
    probes = raw.get("probes", [])
    if not isinstance(probes, list):
        _fail(where, "'probes' must be a list", "e.g. probes: [drift, knowledge]")
    from harness.probes import get_probe

    for probe in probes:
        try:
            get_probe(probe)
        except HarnessError as exc:
            _fail(where, exc.problem, exc.fix)
    return Suite(
        name=raw.get("name", path.stem), description=raw.get("description", ""),
        models=[str(m) for m in _string_list(raw["models"], where, "models")],
        streams=streams, methods=methods, seeds=seeds, probes=probes, train=train,
        data=_settings(DataSettings, raw.get("data"), f"{where}, data"),
        eval=_settings(EvalConfig, raw.get("eval"), f"{where}, eval"), path=str(path),
    )


def _parse_streams(raw, where) -> dict[str, list[str]]:
    from harness.tasks import all_tasks

    named = load_streams()
    if isinstance(raw, (str, list)):
        items = _string_list(raw, where, "streams")
        raw = {}
        for name in items:
            if name not in named:
                _fail(where, f"unknown stream '{name}'",
                      f"use one of: {', '.join(named)}, or define it inline as name: [tasks]")
            raw[name] = named[name]
    if not isinstance(raw, dict) or not raw:
        _fail(where, "'streams' must list stream names or map names to task lists",
              "e.g. streams: [arith-json]")
    tasks = all_tasks()
    for name, stream in raw.items():
        if not isinstance(stream, list) or not stream:
            _fail(where, f"stream '{name}' is empty", "give it at least one task")
        for task in stream:
            if task not in tasks:
                _fail(where, f"stream '{name}' names unknown task '{task}'",
                      f"use one of: {', '.join(tasks)}")
        if len(set(stream)) != len(stream):
            _fail(where, f"stream '{name}' repeats a task", "list each task once")
    return {str(k): list(v) for k, v in raw.items()}


def _parse_methods(raw, train: TrainSettings, where) -> list[MethodSpec]:
    from harness.methods import PluginImportError, load_method_class

    if isinstance(raw, list):
        raw = {str(m): {} for m in raw}
    if not isinstance(raw, dict) or not raw:
        _fail(where, "'methods' must name at least one method", "e.g. methods: [sft, lora]")
    specs = []
    for name, params in raw.items():
        params = dict(params or {})
        overrides = params.pop("train", None)
        method_train = _settings(TrainSettings, overrides, f"{where}, methods.{name}.train", train)
        try:
            load_method_class(name)(**params)  # validates the name and the settings
        except PluginImportError:
            pass  # found but broken: its cells fail with this error, the others run
        except HarnessError as exc:
            _fail(where, exc.problem, exc.fix)
        specs.append(MethodSpec(name, params, method_train))
    return specs


def narrow(suite: Suite, methods: list[str] | None, seeds: list[int] | None) -> Suite:
    """Apply --methods/--seeds: pick from the suite, or add a method with its defaults."""
    if methods:
        by_name = {m.name: m for m in suite.methods}
        picked = []
        for name in methods:
            if name not in by_name:
                from harness.methods import PluginImportError, load_method_class

                try:
                    load_method_class(name)()
                except PluginImportError:
                    pass  # found but broken: its cells fail with this error, the others run
            picked.append(by_name.get(name, MethodSpec(name, {}, suite.train)))
        suite = dataclasses.replace(suite, methods=picked)
    if seeds:
        suite = dataclasses.replace(suite, seeds=list(seeds))
    return suite
