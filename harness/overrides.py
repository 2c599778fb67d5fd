"""Command-line edits of a loaded suite: `--methods`, `--seeds`, `--precision` and `--set`,
checked as the suite's own settings are (one line, exit 2, before anything runs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.config import (Suite, TrainSettings, build_settings, check_precision, check_seeds,
                            check_unique, fail, method_spec)


def narrow(suite: Suite, methods: list[str] | None, seeds: list[int] | None,
           precision: str | None = None, where: str = "--methods") -> Suite:
    """Apply --methods/--seeds/--precision: pick from the suite (by name, or by a file path
    to a method the suite lists, however spelled), or add a method with its defaults.
    `where` names the option that gave the methods, in errors."""
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
            spec = method_spec(given, {}, suite.train, where, folders)
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


def apply_sets(suite: Suite, assignments: list[str]) -> Suite:
    """`--set METHOD.KEY=VALUE` / `METHOD.train.KEY=VALUE`, checked as a suite's settings."""
    from harness.methods.settings import check_method, parse_sets

    given = parse_sets([m.name for m in suite.methods], assignments)
    methods = []
    for m in suite.methods:
        params, train = given[m.name]
        if params or train:
            m = dataclasses.replace(
                m, train=build_settings(TrainSettings, train, f"--set {m.name}.train", m.train),
                params=check_method(m.name, {**m.params, **params}, f"--set {m.name}"),
                train_keys=tuple(dict.fromkeys((*m.train_keys, *train))))
        methods.append(m)
    return dataclasses.replace(suite, methods=methods)
