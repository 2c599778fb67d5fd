"""Command-line edits of a loaded suite: `--methods`, `--seeds`, `--precision`, `--set`, the
tuned settings of `--settings` (as `--set`s) and the short look (`--steps`, `--n-train`,
`--n-test`), checked as the suite's own settings are (one line, exit 2, before anything
runs)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from harness.config import (Suite, TrainSettings, build_settings, check_precision, check_seeds,
                            check_unique, fail, method_spec)
from harness.errors import HarnessError

SHORT_KEYS = ("steps", "n_train", "n_test")  # the short look's options, as --steps etc.


def narrow(suite: Suite, methods: list[str] | None, seeds: list[int] | None,
           precision: str | None = None, where: str = "--methods", build: bool = True) -> Suite:
    """Apply --methods/--seeds/--precision: pick from the suite (by name, or by a file path
    to a method the suite lists, however spelled), or add a method with its defaults.
    `where` names the option that gave the methods, in errors; without `build`, a method
    added is not yet built (methods/settings.py: build_methods)."""
    from harness.methods.settings import is_file, one_per_name

    if methods is not None:
        if not methods:
            fail(where, "names no method", "e.g. --methods sft,lora")
        check_unique(methods, where, "methods")
        by_name = {m.name: m for m in suite.methods}
        folders = (Path.cwd(), Path(suite.path).parent) if suite.path else ()
        picked = []
        for given in methods:
            if given in by_name:
                picked.append((given, by_name[given]))
                continue
            spec = method_spec(given, {}, suite.train, where, folders, build)
            listed = by_name.get(spec.name)
            if listed is not None and is_file(given) and listed.source != spec.source:
                fail(where, f"'{given}' is named '{spec.name}', as the suite's method "
                     f"from {listed.source} is, but is another class ({spec.source})",
                     "give one of the classes another name, or name the suite's")
            picked.append((given, listed or spec))
        one_per_name(picked, where)
        suite = dataclasses.replace(suite, methods=[spec for _, spec in picked])
    if seeds is not None:
        if not seeds:
            fail("--seeds", "names no seed", "e.g. --seeds 0,1,2")
        suite = dataclasses.replace(suite, seeds=check_seeds(seeds, "--seeds"))
    if precision is not None:
        suite = dataclasses.replace(suite, precision=check_precision(precision, "--precision"))
    return suite


def apply_sets(suite: Suite, assignments: list[str], build: bool = True) -> Suite:
    """`--set METHOD.KEY=VALUE` / `METHOD.train.KEY=VALUE`, checked as a suite's settings;
    without `build`, a method given settings is typed, not yet built (build_methods)."""
    from harness.methods.settings import check_method, parse_sets

    given = parse_sets([m.name for m in suite.methods], assignments)
    methods = []
    for m in suite.methods:
        params, train = given[m.name]
        _check_keys(m.name, params)
        if params or train:
            m = dataclasses.replace(
                m, train=build_settings(TrainSettings, train, f"--set {m.name}.train", m.train),
                params=check_method(m.name, {**m.params, **params}, f"--set {m.name}", build),
                train_keys=tuple(dict.fromkeys((*m.train_keys, *train))),
                unbuilt=None if build else (m.name, f"--set {m.name}") if params else m.unbuilt)
        methods.append(m)
    return dataclasses.replace(suite, methods=methods)


def _check_keys(name: str, params: dict) -> None:
    """A setting the method does not have: name the key meant where one is near (a
    training setting given without `train.`, or a typo), before the method's own error."""
    import difflib

    from harness.methods import METHODS

    try:
        defaults = METHODS[name].defaults
    except HarnessError:  # a plugin that does not import: its cells fail with that
        return
    if not isinstance(defaults, dict):  # check_method names that
        return
    train_keys = [f.name for f in dataclasses.fields(TrainSettings)]
    for key in params:
        if key in defaults:
            continue
        if key in train_keys:
            meant = f"{name}.train.{key}"
        else:
            close = difflib.get_close_matches(key, list(defaults), n=1) or [
                f"train.{k}" for k in difflib.get_close_matches(key, train_keys, n=1)]
            meant = f"{name}.{close[0]}" if close else None
        known = f"its settings: {', '.join(defaults) or '(none)'}; training settings " \
            f"are {name}.train.KEY"
        fail(f"--set {name}", f"method '{name}' has no setting {key}",
             f"did you mean --set {meant}=...? ({known})" if meant else known)


def shorten(suite: Suite, steps: int | None = None, n_train: int | None = None,
            n_test: int | None = None) -> Suite:
    """The short look of `harness run --steps N --n-train N --n-test N`: every cell trains
    N optimiser steps a task (whatever the suite, its streams or its methods set) on at
    most n_train examples and is scored on n_test items. Recorded as the suite's
    `short_look`, which the grid id and every cell's config hash include: such cells are
    never taken for (nor skipped as) the suite's full-budget cells."""
    given = {k: v for k, v in zip(SHORT_KEYS, (steps, n_train, n_test)) if v is not None}
    for key, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail(f"--{key.replace('_', '-')}", f"must be a whole number >= 1, got {value!r}",
                 f"e.g. --{key.replace('_', '-')} 8")
    if not given:
        return suite
    data = dataclasses.replace(suite.data, **{k: given[k] for k in ("n_train", "n_test")
                                              if k in given})
    suite = dataclasses.replace(suite, data=data, short_look=given)
    if steps is None:
        return suite
    budget = {"steps": steps, "epochs": None}
    unbudgeted = lambda train: {k: v for k, v in train.items() if k not in budget}  # noqa: E731
    return dataclasses.replace(
        suite, train=dataclasses.replace(suite.train, **budget),
        methods=[dataclasses.replace(m, train=dataclasses.replace(m.train, **budget),
                                     train_keys=tuple(dict.fromkeys((*m.train_keys, *budget))))
                 for m in suite.methods],
        stream_train={s: u for s, t in suite.stream_train.items() if (u := unbudgeted(t))},
        stream_method_train={s: {m: u for m, t in by.items() if (u := unbudgeted(t))}
                             for s, by in suite.stream_method_train.items()})


def settings_sets(path: str, suite: Suite) -> list[str]:
    """`harness run --settings tuned.json`: the chosen settings as `--set` assignments for
    the suite's methods (those tuned); a file tuned for another suite is refused."""
    try:
        data = json.loads(Path(path).read_text())
        methods = data["methods"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"--settings {path}: not a tuned.json ({exc})",
                           "give the OUT/tuned.json that `harness tune` wrote") from None
    if data.get("suite") != suite.name:
        raise HarnessError(f"--settings {path}: tuned for suite '{data.get('suite')}', not "
                           f"'{suite.name}'", "tune this suite: harness tune --suite ...")
    listed = {m.name for m in suite.methods}
    return [s for name, entry in methods.items() if name in listed
            for s in as_sets(name, entry["setting"])]


def as_sets(name: str, setting: dict) -> list[str]:
    """A setting as `--set` assignments: `ewc.lambda=100000.0`, `sft.train.lr=0.0005`."""
    return [f"{name}.{key}={json.dumps(value)}" for key, value in setting.items()]
