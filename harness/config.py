"""Suites: YAML files that fix models x streams x methods x seeds x probes plus settings.
Every key is validated: a mistake is one line naming the file, key and fix (docs/suites.md)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.eval_rows import check_probe_rows, check_rows, probes_run, row_tasks
from harness.yamlio import fail, read_yaml
from harness.memory_settings import check_optimizer
from harness.results import finite
from harness.storage import check_folder_name

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
    mix_within_batches: bool = True  # data a method adds (replay, self/external) shares batches
    gradient_checkpointing: bool = False  # memory settings: harness/memory_settings.py
    optimizer: str = "adamw"  # adamw (fused) | adamw-8bit | paged-adamw-8bit (bitsandbytes)


@dataclass(frozen=True)
class DataSettings:
    n_train: int = 64  # training examples per task
    n_test: int = 32  # test items per task
    # data seed: a number fixes the items across cells (they pair across seeds, but one item
    # sample is all any interval sees); "per-seed" draws the data with each cell's training
    # seed, so item sampling is in the seed-to-seed spread (docs/suites.md, docs/report.md)
    seed: int | str = 0


@dataclass(frozen=True)
class EvalSettings:
    batch_size: int = 16
    max_new_tokens: int | None = None  # None: each task's own budget
    rows: str = "all"  # which tasks each row after training evaluates: harness/eval_rows.py
    probe_rows: str = "all"  # which rows run the probes: harness/eval_rows.py

    def row_tasks(self, row: int, T: int) -> range:
        return row_tasks(self.rows, row, T)

    def probes_run(self, row: int, T: int) -> bool:
        return probes_run(self.probe_rows, row, T)


@dataclass(frozen=True)
class MethodSpec:
    name: str  # the method's one identity: its class's `name` (cells, rows, config hash)
    params: dict = field(default_factory=dict)
    train: TrainSettings = TrainSettings()
    source: str = ""  # where its class is defined, /abs/file.py:Class: never hashed
    train_keys: tuple[str, ...] = ()  # training settings the method sets itself: they win
    # (as named, where) while its settings are typed but not yet built (methods/settings.py:
    # build_methods builds it once, after --methods and --set); None once built
    unbuilt: tuple[str, str] | None = field(default=None, compare=False, repr=False)
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
    primary: str = "strict"  # the pre-registered metric that R and the ranking use:
    #   strict (answer in the task's format) | content (the answer whatever its wrapper)
    tune: dict | None = None  # the `tune:` block (harness/tune.py checks it)
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
        "data", "eval", "precision", "primary", "tune"}
_POSITIVE = {"lr", "batch_size", "grad_accum", "max_len", "n_train", "n_test", "steps",
             "epochs", "max_new_tokens", "max_grad_norm"}
_WHOLE = {"batch_size", "grad_accum", "max_len", "n_train", "n_test", "steps",
          "max_new_tokens", "seed"}
MAX_LR = 1.0  # AdamW with a larger rate only destroys the model
MIN_MAX_LEN = 16  # tokens: below this no prompt leaves room for a response
MAX_SEED = 2**32 - 1
PER_SEED = "per-seed"  # data.seed: vary the data seed with the training seed


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
        if cls is DataSettings and key == "seed" and isinstance(value, str):
            if value != PER_SEED:
                fail(where, f"seed must be a number or {PER_SEED}, got {value!r}",
                     f"seed: 0 (the same items in every cell) or seed: {PER_SEED}")
            values[key] = value
            continue
        if value is None and default is None or isinstance(default, str):  # unset; a word
            values[key] = None if default is None else (
                {"optimizer": check_optimizer, "probe_rows": check_probe_rows}.get(
                    key, check_rows))(value, where)
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
        if finite(value) is None:
            fail(where, f"{key} must be a finite number, got {str(value)[:20]}", "write a number")
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
        if settings.lr * settings.weight_decay >= 1:  # AdamW scales weights by 1 - lr * wd
            fail(where, f"weight_decay {settings.weight_decay:g} with lr {settings.lr:g} "
                 "scales every weight to zero or below at each step (lr x weight_decay >= 1)",
                 "use a weight_decay such as 0.01")
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
    return read_yaml(STREAMS_FILE, STREAMS_FILE.name) or {}


def available_suites() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SUITES_DIR.glob("*.yaml"))}


def suite_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"}:
        if not path.is_file():
            raise HarnessError(f"suite file '{name_or_path}' "
                               + ("is a folder" if path.is_dir() else "is not a regular file "
                                  "(a named pipe or device)" if path.exists() else "does not exist"),
                               "check the path, or name a built-in suite")
        return path
    suites = available_suites()
    if name_or_path not in suites:
        raise HarnessError(f"unknown suite '{name_or_path}'",
                           f"use one of: {', '.join(suites)} (see `harness list suites`), "
                           "or a path to a suite .yaml")
    return suites[name_or_path]


def load_suite(name_or_path: str, build: bool = True) -> Suite:
    """A suite file read and checked; without `build` its methods' settings are typed but
    the methods not yet built (methods/settings.py: build_methods)."""
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
    check_folder_name(name, where, "name")
    description = raw.get("description")
    description = "" if description is None else description
    if not isinstance(description, str):
        fail(where, f"description must be text, got {description!r}",
             "write it as one string (quote it if it contains ': ')")

    train = build_settings(TrainSettings, raw["train"], f"{where}, train")
    models = _names(raw["models"], where, "models", "[smollm2-135m-instruct]")
    streams, stream_train, per_method = _parse_streams(raw["streams"], train, where)
    methods = _parse_methods(raw["methods"], train, where, path.parent, build)
    for stream, given in per_method.items():
        for name in set(given) - {m.name for m in methods}:
            fail(where, f"stream '{stream}', methods names '{name}', which the suite does not "
                 "list", f"use one of: {', '.join(m.name for m in methods)}")
    seeds = check_seeds(_list(raw["seeds"], where, "seeds"), where)
    probes = raw.get("probes")  # none is [], but false or 0 is a mistake
    probes = [] if probes is None else probes
    if probes != []:
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
        stream_method_train=per_method, primary=check_primary(raw.get("primary", "strict"), where),
        tune=raw.get("tune"),
    )


def check_primary(value, where: str) -> str:
    from harness.results import PRIMARY_METRICS

    if value not in PRIMARY_METRICS:
        fail(where, f"primary must be one of {', '.join(PRIMARY_METRICS)}, got {value!r}",
             "e.g. primary: content (the answer whatever its format; strict: in the format)")
    return value


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
        check_folder_name(str(name), where, "stream")
        if isinstance(stream, dict):
            unknown = set(map(str, stream)) - {"tasks", "train", "methods"}
            if unknown or "tasks" not in stream:
                fail(where, f"stream '{name}' as a mapping takes 'tasks', 'train' and "
                     "'methods'" + (f", not '{sorted(unknown)[0]}'" if unknown else ""),
                     f"e.g. {name}: {{tasks: [arith], train: {{epochs: 2}}}}")
            overrides = stream.get("train")  # false, 0 or a list is refused, not dropped
            build_settings(TrainSettings, {} if overrides is None else overrides,
                           f"{where}, stream '{name}', train", train)
            if overrides:
                stream_train[str(name)] = dict(overrides)
            methods = {} if stream.get("methods") is None else stream["methods"]
            if not isinstance(methods, dict):
                fail(where, f"stream '{name}', methods must map method names to training "
                     "settings", f"e.g. methods: {{sft: {{lr: 5.0e-6}}}}")
            for method, given in methods.items():
                build_settings(TrainSettings, {} if given is None else given,
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


def _parse_methods(raw, train: TrainSettings, where, folder: Path,
                   build: bool = True) -> list[MethodSpec]:
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
        spec = method_spec(name, params, method_train, f"{where}, methods.{name}", (folder,),
                           build)
        specs.append((name, dataclasses.replace(spec, train_keys=tuple(overrides or ()))))
    one_per_name(specs, where)
    return [spec for _, spec in specs]


def method_spec(spec: str, params: dict, train: TrainSettings, where: str,
                folders: tuple, build: bool = True) -> MethodSpec:
    """A method named by a registered name or a file, under its class's `name`; without
    `build`, not yet built (`unbuilt`)."""
    from harness.methods.settings import resolve_method

    name, params, source = resolve_method(spec, params, where, folders, build)
    return MethodSpec(name, params, train, source, unbuilt=None if build else (spec, where))
