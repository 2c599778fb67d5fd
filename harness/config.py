"""Suites: YAML files that fix models x streams x methods x seeds x probes plus settings.
Every key is validated: a mistake is one line naming the file, key and fix (docs/suites.md)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Hashable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError
from harness.memory_settings import check_optimizer, opt_in

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SUITES_DIR = BENCHMARKS / "suites"
STREAMS_FILE = BENCHMARKS / "streams.yaml"


@opt_in  # the memory settings at their defaults stay out of dataclasses.asdict
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
    mix_within_batches: bool = True  # data a method adds (replay, self/external) shares batches
    gradient_checkpointing: bool = False  # memory settings: harness/memory_settings.py
    optimizer: str = "adamw"  # adamw (fused) | adamw-8bit | paged-adamw-8bit (bitsandbytes)


@dataclass(frozen=True)
class DataSettings:
    n_train: int = 64  # training examples per task
    n_test: int = 32  # test items per task
    seed: int = 0  # data seed: fixed across cells so that items pair across seeds


@dataclass(frozen=True)
class EvalSettings:
    batch_size: int = 16
    max_new_tokens: int | None = None  # None: each task's own budget


@dataclass(frozen=True)
class MethodSpec:
    name: str  # the method's one identity: its class's `name` (cells, rows, config hash)
    params: dict = field(default_factory=dict)
    train: TrainSettings = TrainSettings()
    source: str = ""  # where its class is defined, /abs/file.py:Class: never hashed
    train_keys: tuple[str, ...] = ()  # training settings the method sets itself: they win
    # over a stream's (cell_train)

    @property
    def source_file(self) -> Path | None:
        """The file that defines the method's class, where known."""
        path = self.source.rpartition(":")[0]
        return Path(path) if path.endswith(".py") else None


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
    eval: EvalSettings
    path: str = ""
    precision: str = "auto"  # auto | fp32 | bf16 | bf16-weights: harness/precision.py
    stream_train: dict = field(default_factory=dict)  # stream -> its training overrides
    stream_method_train: dict = field(default_factory=dict)  # stream -> method -> overrides
    short_look: dict = field(default_factory=dict)  # --steps/--n-train/--n-test given


def cell_train(suite: Suite, stream: str, method: MethodSpec) -> TrainSettings:
    """A cell's training settings: the suite's, then its stream's, then those the method
    sets itself (a method's own learning rate or budget beats the stream's), then those
    the stream sets for this method (e.g. a paper's full fine-tuning rate on one dataset)."""
    overrides = suite.stream_train.get(stream)
    train = method.train
    if overrides:
        train = build_settings(TrainSettings, overrides, f"stream '{stream}', train", suite.train)
        keys = set(method.train_keys)
        if keys & {"steps", "epochs"}:
            keys |= {"steps", "epochs"}  # the method's budget replaces the stream's whole
        train = dataclasses.replace(train, **{k: getattr(method.train, k) for k in keys})
    own = suite.stream_method_train.get(stream, {}).get(method.name)
    if not own:
        return train
    return build_settings(TrainSettings, own, f"stream '{stream}', methods, {method.name}", train)


_TOP = {"name", "description", "models", "streams", "methods", "seeds", "probes", "train",
        "data", "eval", "precision"}
_POSITIVE = {"lr", "batch_size", "grad_accum", "max_len", "n_train", "n_test", "steps",
             "epochs", "max_new_tokens", "max_grad_norm"}
_WHOLE = {"batch_size", "grad_accum", "max_len", "n_train", "n_test", "steps",
          "max_new_tokens", "seed"}
MAX_LR = 1.0  # AdamW with a larger rate only destroys the model
MIN_MAX_LEN = 16  # tokens: below this no prompt leaves room for a response
MAX_SEED = 2**32 - 1


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


class SuiteLoader(yaml.SafeLoader):
    """Safe YAML that refuses a repeated key (plain YAML keeps the last one silently) and
    reads 1e-3 as a number, as YAML 1.2 does (PyYAML's YAML 1.1 reads it as a string)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` may be overridden by the keys beside it
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the base class reports an unhashable key
            if key in seen:
                raise _DuplicateKey("while reading a mapping", node.start_mark,
                                    f"duplicate key '{key}'", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


SuiteLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def fail(where: str, problem: str, fix: str):
    raise HarnessError(f"{where}: {problem}", fix)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def build_settings(cls, raw: Any, where: str, base=None):
    """Build a settings dataclass from a mapping, checking keys, types and ranges."""
    if raw is None and base is not None:
        return base  # a method without train overrides: the suite's, already checked
    base = base or cls()
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        fail(where, f"expected a mapping, got {type(raw).__name__}", "see docs/suites.md")
    known = [f.name for f in fields(cls)]
    values = {}
    for key, value in raw.items():
        if key not in known:
            fail(where, f"unknown key '{key}'", f"use one of: {', '.join(known)}")
        default = getattr(cls(), key)
        if value is None and default is None or isinstance(default, str):  # unset; a word
            values[key] = None if default is None else check_optimizer(value, where)
            continue
        if isinstance(default, bool):
            if not isinstance(value, bool):
                fail(where, f"{key} must be true or false, got {value!r}",
                     f"e.g. {key}: {json.dumps(default)}")
            values[key] = value
            continue
        if not _number(value):
            fail(where, f"{key} must be a number, got {value!r}",
                 f"write a number, e.g. {key}: {default or 1}")
        if not math.isfinite(value):
            fail(where, f"{key} must be a finite number, got {value}", "write a number")
        if key in _POSITIVE and value <= 0:
            fail(where, f"{key} must be > 0, got {value}", f"set {key} to a positive value")
        if value < 0:
            fail(where, f"{key} must be >= 0, got {value}", f"set {key} to 0 or more")
        if key in _WHOLE:
            if value != int(value):
                fail(where, f"{key} must be a whole number, got {value}", "drop the fraction")
            value = int(value)
        values[key] = value
    if cls is TrainSettings:
        if values.get("steps") is not None and values.get("epochs") is not None:
            fail(where, "both steps and epochs are set",
                 "give one training budget: steps or epochs")
        for given, other in (("steps", "epochs"), ("epochs", "steps")):
            if values.get(given) is not None:  # a method's budget replaces the suite's
                values[other] = None
    settings = dataclasses.replace(base, **values)
    if isinstance(settings, TrainSettings):
        if settings.steps is None and settings.epochs is None:
            fail(where, "neither steps nor epochs is set", "set train.steps or train.epochs")
        if settings.warmup_ratio >= 1:
            fail(where, f"warmup_ratio must be < 1, got {settings.warmup_ratio}",
                 "use a fraction such as 0.1")
        if settings.lr > MAX_LR:
            fail(where, f"lr must be <= {MAX_LR:g}, got {settings.lr:g}",
                 "use a learning rate such as 5e-5 (full fine-tuning) or 1e-3 (LoRA)")
        if settings.max_len < MIN_MAX_LEN:
            fail(where, f"max_len must be at least {MIN_MAX_LEN} tokens, got {settings.max_len}",
                 "leave room for the prompt and the response, e.g. max_len: 256")
    return settings


def _list(raw, where, what) -> list:
    """A non-empty list; a single item stands for a list of one."""
    if isinstance(raw, (str, int)) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        fail(where, f"'{what}' must be a non-empty list", f"list at least one {what[:-1]}")
    return raw


def _names(raw, where, what, example) -> list[str]:
    """A non-empty list of distinct, non-empty strings."""
    items = _list(raw, where, what)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            fail(where, f"'{what}' must list names, got {item!r}", f"e.g. {what}: {example}")
    check_unique(items, where, what)
    return items


def check_seeds(seeds: list, where: str) -> list[int]:
    """Distinct whole numbers in [0, 2**32): what every random generator accepts."""
    if not all(_number(s) and s == int(s) and 0 <= s <= MAX_SEED for s in seeds):
        fail(where, f"seeds must be whole numbers from 0 to {MAX_SEED}, got {seeds}",
             "e.g. --seeds 0,1,2" if where.startswith("--") else "e.g. seeds: [0, 1, 2]")
    seeds = [int(s) for s in seeds]
    check_unique(seeds, where, "seeds")
    return seeds


def check_unique(items, where, what) -> None:
    seen = set()
    for item in items:
        if item in seen:
            fail(where, f"{what} repeat: {item!r} is listed twice", f"list each {what[:-1]} once")
        seen.add(item)


def load_streams() -> dict[str, list[str]]:
    """Named streams shipped with the harness (benchmarks/streams.yaml)."""
    return yaml.safe_load(STREAMS_FILE.read_text()) or {}


def available_suites() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SUITES_DIR.glob("*.yaml"))}


def suite_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"}:
        if not path.is_file():
            raise HarnessError(f"suite file '{name_or_path}' "
                               + ("is a folder" if path.is_dir() else "does not exist"),
                               "check the path, or name a built-in suite")
        return path
    suites = available_suites()
    if name_or_path not in suites:
        raise HarnessError(f"unknown suite '{name_or_path}'",
                           f"use one of: {', '.join(suites)} (see `harness list suites`), "
                           "or a path to a suite .yaml")
    return suites[name_or_path]


def read_yaml(path: Path, where: str):
    """Parse a suite file, turning every way it can be unreadable into one line."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(where, f"is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
             f"{exc.start})", "save the file as UTF-8")
    except OSError as exc:
        fail(where, f"cannot be read ({exc.strerror or exc})", "check the file's permissions")
    try:
        return yaml.load(text, Loader=SuiteLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        if isinstance(exc, _DuplicateKey):
            fail(where, f"{exc.problem}{line}",
                 "keep one of the two (YAML would silently use the last)")
        fail(where, f"malformed YAML{line} ({getattr(exc, 'problem', None) or exc})",
             "fix the YAML syntax (indentation, colons, quotes)")


def load_suite(name_or_path: str) -> Suite:
    path = suite_path(name_or_path)
    where = f"suite {path.name}"
    raw = read_yaml(path, where)
    if not isinstance(raw, dict):
        fail(where, "the file is not a mapping of settings", "see docs/suites.md")
    unknown = set(map(str, raw)) - _TOP
    if unknown:
        fail(where, f"unknown key '{sorted(unknown)[0]}'", f"use only: {', '.join(sorted(_TOP))}")
    for key in ("models", "streams", "methods", "seeds", "train"):
        if key not in raw:
            fail(where, f"missing key '{key}'", f"add '{key}:' (see docs/suites.md)")
    name = raw.get("name", path.stem)
    if (not isinstance(name, str) or not name.strip() or name in (".", "..")
            or set("/\\") & set(name)):
        fail(where, f"name must be a word (it names the output folder), got {name!r}",
             "e.g. name: my-suite")
    description = raw.get("description") or ""
    if not isinstance(description, str):
        fail(where, f"description must be text, got {description!r}",
             "write it as one string (quote it if it contains ': ')")

    train = build_settings(TrainSettings, raw["train"], f"{where}, train")
    models = _names(raw["models"], where, "models", "[smollm2-135m-instruct]")
    streams, stream_train, per_method = _parse_streams(raw["streams"], train, where)
    methods = _parse_methods(raw["methods"], train, where, path.parent)
    for stream, given in per_method.items():
        for name in set(given) - {m.name for m in methods}:
            fail(where, f"stream '{stream}', methods names '{name}', which the suite does not "
                 "list", f"use one of: {', '.join(m.name for m in methods)}")
    seeds = check_seeds(_list(raw["seeds"], where, "seeds"), where)
    probes = raw.get("probes") or []
    if probes:
        probes = _names(probes, where, "probes", "[drift, knowledge]")
    from harness.probes import LmEvalProbe, get_probe

    for probe_name in probes:
        try:
            probe = get_probe(probe_name)
            if isinstance(probe, LmEvalProbe):
                probe.check()
        except HarnessError as exc:
            fail(where, exc.problem, exc.fix)
    return Suite(
        name=name, description=description, models=models, streams=streams, methods=methods,
        seeds=seeds, probes=probes, train=train,
        data=build_settings(DataSettings, raw.get("data"), f"{where}, data"),
        eval=build_settings(EvalSettings, raw.get("eval"), f"{where}, eval"), path=str(path),
        precision=check_precision(raw.get("precision", "auto"), where), stream_train=stream_train,
        stream_method_train=per_method,
    )


def check_precision(value, where: str) -> str:
    from harness.precision import CHOICES

    if value not in CHOICES:
        fail(where, f"precision must be one of {', '.join(CHOICES)}, got {value!r}", "e.g. "
             f"{'--precision ' if where.startswith('--') else 'precision: '}bf16 (bf16 "
             "autocast; auto: bf16 on CUDA, float32 on a CPU)")
    return value


def _parse_streams(raw, train: TrainSettings, where) -> tuple[dict[str, list[str]], dict]:
    """The streams (name -> tasks) and each stream's training overrides, where a stream is
    written as {tasks: [...], train: {...}} (e.g. a paper's epochs per dataset)."""
    from harness.tasks import all_tasks

    named = load_streams()
    if isinstance(raw, (str, list)):
        items = _names(raw, where, "streams", "[arith-json], or {my-stream: [arith, facts]}")
        raw = {}
        for name in items:
            if name not in named:
                fail(where, f"unknown stream '{name}'",
                     f"use one of: {', '.join(named)}, or define it inline as name: [tasks]")
            raw[name] = named[name]
    if not isinstance(raw, dict) or not raw:
        fail(where, "'streams' must list stream names or map names to task lists",
             "e.g. streams: [arith-json]")
    tasks = all_tasks(datasets=True)  # the papers' dataset tasks train in their suites
    raw, stream_train, per_method = dict(raw), {}, {}
    for name, stream in raw.items():
        if isinstance(stream, dict):
            unknown = set(map(str, stream)) - {"tasks", "train", "methods"}
            if unknown or "tasks" not in stream:
                fail(where, f"stream '{name}' as a mapping takes 'tasks', 'train' and "
                     "'methods'" + (f", not '{sorted(unknown)[0]}'" if unknown else ""),
                     f"e.g. {name}: {{tasks: [arith], train: {{epochs: 2}}}}")
            overrides = stream.get("train") or {}
            build_settings(TrainSettings, overrides, f"{where}, stream '{name}', train", train)
            if overrides:
                stream_train[str(name)] = dict(overrides)
            methods = stream.get("methods") or {}
            if not isinstance(methods, dict):
                fail(where, f"stream '{name}', methods must map method names to training "
                     "settings", f"e.g. methods: {{sft: {{lr: 5.0e-6}}}}")
            for method, given in methods.items():
                build_settings(TrainSettings, given or {},
                               f"{where}, stream '{name}', methods, {method}", train)
            if methods:
                per_method[str(name)] = {str(m): dict(t or {}) for m, t in methods.items()}
            raw[name] = stream = stream["tasks"]
        if stream in (None, []):
            fail(where, f"stream '{name}' is empty", "give it at least one task")
        if not isinstance(stream, list):
            fail(where, f"stream '{name}' must be a list of tasks, got {stream!r}",
                 f"e.g. {name}: [arith, json-extract]")
        for task in stream:
            if not isinstance(task, str) or task not in tasks:
                fail(where, f"stream '{name}' names unknown task {task!r}",
                     f"use one of: {', '.join(tasks)}")
            if getattr(tasks[task], "eval_only", False):
                fail(where, f"stream '{name}' names task '{task}', which is evaluation-only "
                     "(it has no training data)", f"measure it as a probe: task:{task}")
        if len(set(stream)) != len(stream):
            fail(where, f"stream '{name}' repeats a task", "list each task once")
    return {str(k): list(v) for k, v in raw.items()}, stream_train, per_method


def _parse_methods(raw, train: TrainSettings, where, folder: Path) -> list[MethodSpec]:
    """The suite's methods; a file's path is relative to the suite's folder (or, failing
    that, to the working directory, as suites written before were)."""
    from harness.methods.settings import one_per_name

    if isinstance(raw, (str, list)):
        raw = {name: {} for name in _names(raw, where, "methods", "[sft, lora]")}
    if not isinstance(raw, dict) or not raw:
        fail(where, "'methods' must name at least one method", "e.g. methods: [sft, lora]")
    specs = []
    for name, params in raw.items():
        name = str(name)
        if params is None:
            params = {}
        if not isinstance(params, dict):
            fail(where, f"methods.{name} must be a mapping of settings, got {params!r}",
                 f"e.g. methods: {{{name}: {{}}}} (see `harness list methods --json`)")
        params = dict(params)
        overrides = params.pop("train", None)
        method_train = build_settings(TrainSettings, overrides, f"{where}, methods.{name}.train",
                                      train)
        spec = method_spec(name, params, method_train, f"{where}, methods.{name}", (folder,))
        specs.append((name, dataclasses.replace(spec, train_keys=tuple(overrides or ()))))
    one_per_name(specs, where)
    return [spec for _, spec in specs]


def method_spec(spec: str, params: dict, train: TrainSettings, where: str,
            folders: tuple) -> MethodSpec:
    """A method named by a registered name or a file, under its class's `name`."""
    from harness.methods.settings import resolve_method

    name, params, source = resolve_method(spec, params, where, folders)
    return MethodSpec(name, params, train, source)
