"""A method's settings from a suite, checked against its defaults before anything runs:
each value has its default's type, LoRA settings are checked in full, and the method is
built once so that any constructor error is one line (exit 2), never a traceback mid-grid."""

from __future__ import annotations

import json
import math

from harness.errors import HarnessError
from harness.methods.lora import LORA_DEFAULTS
from harness.registry import PluginImportError


def _fail(where: str, problem: str, fix: str):
    raise HarnessError(f"{where}: {problem}", fix)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_method(name: str, params: dict, where: str) -> dict:
    """Check a method's settings against its defaults and build it once, so that a bad
    setting stops the run before anything is written. Returns the settings (whole numbers
    given as 4.0 become 4). A plugin that is found but fails to import is let through:
    its cells fail with that error and the others run."""
    from harness.methods import METHODS

    try:
        cls = METHODS[name]
    except PluginImportError:
        return params
    except HarnessError as exc:
        _fail(where, exc.problem, exc.fix)
    params = _typed_params(cls, params, where)
    try:
        cls(**params)
    except HarnessError as exc:
        _fail(where, exc.problem, exc.fix)
    except Exception as exc:
        shown = ", ".join(f"{k}: {v!r}" for k, v in params.items()) or "its defaults"
        _fail(where, f"method '{name}' rejected its settings ({shown}): "
              f"{type(exc).__name__}: {exc}",
              "see `harness list methods --json` and docs/methods.md for its settings")
    return params


def _typed_params(cls, params: dict, where: str) -> dict:
    """Each setting must have its default's type: a number where the default is a number
    (a whole one where the default is whole), true/false, text, or a list of text. LoRA
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
        ok, kind = _number(value) and math.isfinite(value) and value == int(value), "a whole number"
        value = int(value) if ok else value
    elif isinstance(default, float):
        ok, kind = _number(value) and math.isfinite(value), "a finite number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "text"
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(x, str) for x in value)
        kind = "a list of names"
    else:
        return value
    if not ok:
        _fail(where, f"{key} must be {kind}, got {value!r}", f"e.g. {key}: {json.dumps(default)}")
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
