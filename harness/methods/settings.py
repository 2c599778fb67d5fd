"""A method named in a suite or on the command line -> its MethodSpec: the method's one
identity is its class's `name` (a file plugin's path only says where to load it from), and
its settings are checked against its defaults before anything runs: each value has its
default's type, LoRA settings are checked in full, and the method is built once so that
any constructor error is one line (exit 2), never a traceback mid-grid."""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.errors import HarnessError
from harness.methods.lora import LORA_DEFAULTS
from harness.registry import PluginImportError
from harness.results import finite
from harness.storage import check_folder_name, file_kind


def _fail(where: str, problem: str, fix: str):
    raise HarnessError(f"{where}: {problem}", fix)


def is_file(spec: str) -> bool:
    """Does `spec` name a method by file, `path/to/file.py:Class`?"""
    return spec.rpartition(":")[0].endswith(".py")


def resolve_method(spec: str, params: dict, where: str, folders: tuple = (),
                   build: bool = True) -> tuple:
    """(name, checked settings, source) of the method `spec` names (a registered name, or
    `path/to/file.py:Class` with a relative path looked up in `folders` in turn, then the
    working directory): the name is the class's `name`, the source where the class is
    defined. A plugin found but failing to import is named by its absolute path until it
    imports: its cells fail with that error and the others run. Without `build`, the
    settings are typed but the method is not built (`build_methods` builds it once)."""
    from harness.methods import METHODS

    target = spec
    if is_file(spec):
        path, _, cls_name = spec.rpartition(":")
        target = f"{find_file(path, folders, where)}:{cls_name}"
    try:
        cls, source = METHODS.locate(target)
    except PluginImportError:
        path, _, cls_name = target.rpartition(":")
        target = f"{os.path.abspath(path)}:{cls_name}"
        return target, params, target
    except HarnessError as exc:
        _fail(where, exc.problem, exc.fix)
    params = _checked(cls, spec, params, where, build)
    return _name_of(cls, spec, source, where), params, source


def one_per_name(specs: list[tuple], where: str) -> None:
    """A name names one method: the same class listed twice, or two classes sharing a
    name, is an error (their cells and rows would be one method's)."""
    seen: dict[str, tuple] = {}
    for given, spec in specs:
        if spec.name not in seen:
            seen[spec.name] = (given, spec)
            continue
        first, other = seen[spec.name]
        if other.source == spec.source:
            _fail(where, f"methods repeat: '{spec.name}' is listed twice ('{first}' and "
                  f"'{given}')", "list each method once")
        _fail(where, f"two different methods are named '{spec.name}': '{first}' "
              f"({other.source}) and '{given}' ({spec.source})",
              "give one of the classes another name (its `name` names its cells and rows)")


def find_file(path: str, folders: tuple, where: str) -> str:
    """A method file's path: absolute, or relative to the first of `folders` that holds it,
    or to the working directory."""
    candidates = [Path(path)] if Path(path).is_absolute() else [
        Path(folder) / path for folder in folders] + [Path(path)]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
        if os.path.lexists(candidate):  # a folder, a named pipe, a device, a broken link
            _fail(where, f"method file '{path}' is {file_kind(candidate)}, not a regular file",
                  "give a path to a .py file")
    looked = ", ".join(dict.fromkeys(os.path.abspath(c) for c in candidates))
    _fail(where, f"method file '{path}' does not exist",
          f"give a path to a .py file as path/to/file.py:ClassName (tried {looked}; a "
          "suite's paths are relative to the suite's folder)")


def _name_of(cls, spec: str, source: str, where: str) -> str:
    """The class's `name`: set, and not a registered method's unless it is that method."""
    from harness.methods import METHODS

    if not is_file(spec):
        return spec  # the registry holds a registered class to its name
    name = getattr(cls, "name", None)
    label = f"'{cls.__name__}' in {spec.rpartition(':')[0]}"
    if not isinstance(name, str) or not name.strip():
        _fail(where, f"method class {label} has no name",
              f"set one in the class, e.g. name = \"{cls.__name__.lower()}\": it names the "
              "method's cells, result rows and settings (--set NAME.KEY=VALUE)")
    check_folder_name(name, where, f"the name of method class {label},")
    if name in METHODS:
        try:
            registered = METHODS.locate(name)[1]
        except HarnessError:
            registered = None
        if registered != source:
            _fail(where, f"method class {label} is named '{name}', as the registered "
                  f"method '{name}' is", f"give the class a name of its own, e.g. "
                  f"name = \"{name}-variant\" (a subclass inherits its parent's name)")
    return name


def parse_sets(names: list[str], assignments: list[str]) -> dict[str, tuple[dict, dict]]:
    """`--set METHOD.KEY=VALUE` (a setting) and `--set METHOD.train.KEY=VALUE` (a training
    setting of that method alone), VALUE read as YAML: method name -> (settings, training
    settings) given. The caller checks them as a suite's; a setting given twice is refused
    (the last would win without a word)."""
    from harness.yamlio import parse_yaml

    given = {name: ({}, {}) for name in names}
    for text in assignments:
        where = f"--set {text}"
        target, eq, raw = text.partition("=")
        name = max((n for n in names if target.startswith(n + ".")), key=len, default=None)
        if not eq or name is None and "." not in target:
            _fail(where, "expected METHOD.KEY=VALUE", "e.g. --set sdft.skip_tokens=0, or "
                  "--set lora.train.lr=1e-3 for a training setting")
        if name is None and ".py:" in target:
            _fail(where, "--set names a method by its name, not its file",
                  f"name one of the methods this command runs: {', '.join(names)}")
        if name is None:
            _fail(where, f"no method '{target.split('.')[0]}' in this run",
                  f"name one of the methods this command runs: {', '.join(names)}")
        key = target[len(name) + 1:]
        value = parse_yaml(raw, where)
        train = key.startswith("train.") and key != "train."
        key = key[len("train."):] if train else key
        if not key or "." in key or key == "train":
            _fail(where, f"'{target[len(name) + 1:]}' is not a setting name",
                  f"write {name}.KEY=VALUE or {name}.train.KEY=VALUE")
        if key in given[name][train]:
            _fail(where, f"{target} is set twice", "give each setting once")
        given[name][train][key] = value
    return given


def in_force(method: MethodSpec) -> dict | None:
    """The settings a method runs with: its defaults updated with the given ones (None
    for a plugin that does not import)."""
    from harness.methods import METHODS

    try:
        return {**METHODS[method.name].defaults, **method.params}
    except HarnessError:
        return None


def modelled_as(spec: MethodSpec) -> tuple[str, dict]:
    """(the built-in a method spec is estimated as, the settings it runs with): one answer
    for the memory and the cost estimates."""
    from harness.methods import builtin_of

    return builtin_of(spec.name), in_force(spec) or dict(spec.params)


def check_method(name: str, params: dict, where: str, build: bool = True,
                 label: str | None = None) -> dict:
    """Check a method's settings against its defaults and (with `build`) build it once, so
    that a bad setting stops the run before anything is written. Returns the settings
    (whole numbers given as 4.0 become 4). A plugin that is found but fails to import is
    let through: its cells fail with that error and the others run. `label`: the method as
    the user named it, in errors."""
    from harness.methods import METHODS

    try:
        cls = METHODS[name]
    except PluginImportError:
        return params
    except HarnessError as exc:
        _fail(where, exc.problem, exc.fix)
    return _checked(cls, label or name, params, where, build)


def build_methods(methods: list) -> list:
    """The method specs, each one whose settings were typed but not yet built (`unbuilt`:
    read from a suite, then edited by --methods and --set) built once with the settings in
    force: a suite's settings are resolved in full first, then checked by one build."""
    import dataclasses

    built = []
    for m in methods:
        if m.unbuilt:
            label, where = m.unbuilt
            m = dataclasses.replace(m, params=check_method(m.name, m.params, where, label=label),
                                    unbuilt=None)
        built.append(m)
    return built


def _checked(cls, name: str, params: dict, where: str, build: bool = True) -> dict:
    """`params` typed against `cls.defaults`, and (with `build`) the method built once
    with them."""
    params = _typed_params(cls, params, where)
    if not build:
        return params
    try:
        cls(**params)
    except HarnessError as exc:
        _fail(where, exc.problem, exc.fix)
    except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() too
        shown = ", ".join(f"{k}: {v!r}" for k, v in params.items()) or "its defaults"
        _fail(where, f"method '{name}' rejected its settings ({shown}): "
              f"{type(exc).__name__}: {exc}",
              "see `harness list methods --json` and docs/methods.md for its settings")
    return params


def _typed_params(cls, params: dict, where: str) -> dict:
    """Each setting must have its default's type: a number where the default is a number
    (a whole one where the default is whole), true/false, text, or a list of these. LoRA
    settings (the lora method's own, or a `lora:` mapping) are checked in full."""
    defaults = cls.defaults
    if not isinstance(defaults, dict):
        _fail(where, f"{cls.__name__}.defaults must be a mapping of settings, got {defaults!r}",
              "write defaults = {} (or a dict of settings) in the method class")
    out = dict(params)
    is_lora = set(LORA_DEFAULTS) <= set(defaults)
    if is_lora:
        out.update(_lora_settings({k: v for k, v in params.items() if k in LORA_DEFAULTS}, where))
    for key, value in params.items():
        if key not in defaults or (is_lora and key in LORA_DEFAULTS):
            continue  # unknown keys: the constructor names them with the known ones
        default = defaults[key]
        if key == "lora":
            if isinstance(value, dict):
                out[key] = _lora_settings(value, f"{where}.lora")
            elif not isinstance(value, bool):
                _fail(where, "lora must be true, false or a mapping of LoRA settings, "
                      f"got {value!r}", "e.g. lora: true, or lora: {r: 8, alpha: 16}")
            continue
        out[key] = _typed(key, value, default, where)
    return out


def _typed(key: str, value, default, where: str):
    """`value` checked against the type of `default` (None: anything goes)."""
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = finite(value) is not None and value == int(value), "a whole number"
        value = int(value) if ok else value
    elif isinstance(default, float):
        ok, kind = finite(value) is not None, "a finite number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "text"
    elif isinstance(default, list):
        # a list of what the default lists (its first item's type; anything for [])
        try:
            if not isinstance(value, list):
                raise HarnessError("not a list")
            return [_typed(key, x, default[0], where) for x in value] if default else value
        except HarnessError:
            _fail(where, f"{key} must be a list like its default {json.dumps(default)}, "
                  f"got {value!r}", f"e.g. {key}: {json.dumps(default)}")
    else:
        return value
    if not ok:
        _fail(where, f"{key} must be {kind}, got {value!r:.60}", f"e.g. {key}: {json.dumps(default)}")
    return value


def _lora_settings(given: dict, where: str) -> dict:
    """LoRA settings: known keys, r a whole number >= 1, alpha > 0, dropout in [0, 1),
    target_modules a non-empty list of module names."""
    unknown = sorted(set(map(str, given)) - set(LORA_DEFAULTS))
    if unknown:
        _fail(where, f"unknown LoRA setting {', '.join(unknown)}",
              f"use some of: {', '.join(LORA_DEFAULTS)}")
    out = {k: _typed(k, v, LORA_DEFAULTS[k], where) for k, v in given.items()}
    if out.get("r", 1) < 1:
        _fail(where, f"LoRA r must be >= 1, got {out['r']}", "e.g. r: 8")
    if "alpha" in out and out["alpha"] <= 0:
        _fail(where, f"LoRA alpha must be > 0, got {out['alpha']}", "e.g. alpha: 16 (twice r)")
    if not 0 <= out.get("dropout", 0) < 1:
        _fail(where, f"LoRA dropout must be in [0, 1), got {out['dropout']}", "e.g. dropout: 0.05")
    if out.get("target_modules") == []:
        _fail(where, "LoRA target_modules is empty", "e.g. target_modules: [q_proj, v_proj]")
    return out
