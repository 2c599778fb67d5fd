"""Every built-in method's numbers on a short stream of the tiny random model, against the
fingerprints committed in tests/fixtures/method_fingerprints.json.

A method's results are identified by its declared `version` (harness/identity.py), not by
its source's bytes: a comment, a docstring or a refactor that keeps the numbers leaves its
results valid. A change that moves the numbers must bump the version; this test is what
notices one that does not. After bumping it, record the new fingerprint with

    python -m tests.test_method_fingerprints --refresh

which re-records only the methods whose version changed (or that have none recorded);
`--refresh --all` re-records every method, for a library upgrade that moves them all.
Float32 on a CPU with one thread is deterministic on one machine; TOLERANCE allows for
another processor's reductions.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import tempfile
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "method_fingerprints.json"
REFRESH = "python -m tests.test_method_fingerprints --refresh"
TOLERANCE = {"rel": 1e-4, "abs": 1e-5}
# small budgets: the tiny model generates a few tokens, never the defaults' hundreds
PARAMS = {"freeze": {"top_k": 1}, "sdft": {"max_new_tokens": 8},
          "sdft-rewrite": {"max_new_tokens": 8},
          "sa-sft": {"user_tokens": 8, "answer_tokens": 8, "max_rounds": 1, "min_chars": 1}}
SUITE = {"streams": {"two": ["arith", "json-extract"]}, "probes": ["drift"], "seeds": [0],
         "train": {"steps": 2, "lr": 1e-3, "batch_size": 4, "max_len": 64},
         "data": {"n_train": 8, "n_test": 4}, "eval": {"batch_size": 8, "max_new_tokens": 4}}


def builtins() -> list[str]:
    from harness.methods import shipped

    names = shipped()
    assert len(names) == 14, names  # the 4 methods under study and the 10 baselines
    return names


@contextlib.contextmanager
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fingerprints(model_dir: Path, folder: Path, names: list[str]) -> dict[str, dict]:
    """Each method's version and numbers: training losses per task, R, the drift probe per
    row and the numbers it recorded (method_stats)."""
    import torch

    from harness.bundle import builtin_version
    from harness.config import load_suite
    from harness.grid import expand
    from harness.runner import Runner
    from harness.ui import UI
    from tests.helpers import tiny_suite

    path = tiny_suite(folder, str(model_dir), methods={n: PARAMS.get(n, {}) for n in names},
                      **SUITE)
    suite = load_suite(str(path))
    runner = Runner(suite, folder / "out", torch.device("cpu"), UI(quiet=True))
    found = {}
    with one_thread():
        for cell in expand(suite):
            result = runner.run_cell(cell)
            found[cell.method.name] = {
                "version": builtin_version(cell.method.name),
                "losses": [t["losses"] for t in result["training"]],
                "R": result["R"], "drift": result["probes"]["drift"],
                "stats": numbers_only(result["method_stats"])}
    return found


def numbers_only(stats):
    """What a method recorded, but its timings (keys ending in _s): those vary run to run."""
    if isinstance(stats, dict):
        return {k: numbers_only(v) for k, v in stats.items() if not str(k).endswith("_s")}
    return stats


def differences(recorded, now, where: str = "") -> list[str]:
    """Where `now` differs from `recorded` beyond TOLERANCE (numbers) or at all (the rest)."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        if set(recorded) != set(now):
            return [f"{where or 'keys'}: {sorted(recorded)} recorded, {sorted(now)} now"]
        return [d for k in recorded for d in differences(recorded[k], now[k], f"{where}.{k}")]
    if isinstance(recorded, list) and isinstance(now, list):
        if len(recorded) != len(now):
            return [f"{where}: {len(recorded)} values recorded, {len(now)} now"]
        return [d for i, (a, b) in enumerate(zip(recorded, now))
                for d in differences(a, b, f"{where}[{i}]")]
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (recorded, now))
    if numbers and math.isclose(recorded, now, rel_tol=TOLERANCE["rel"], abs_tol=TOLERANCE["abs"]):
        return []
    return [] if recorded == now else [f"{where}: {recorded!r} recorded, {now!r} now"]


def check(name: str, recorded: dict | None, now: dict) -> str | None:
    """Why the method's numbers do not stand with its version, or None."""
    if recorded is None:
        return f"method '{name}' has no recorded fingerprint: record it with `{REFRESH}`"
    if recorded["version"] != now["version"]:
        return (f"method '{name}' is version {now['version']}, its fingerprint is of version "
                f"{recorded['version']}: record the new one with `{REFRESH}`")
    diff = differences({k: v for k, v in recorded.items() if k != "version"},
                       {k: v for k, v in now.items() if k != "version"})
    if diff:
        return (f"method '{name}' changed its numbers without a version bump ({diff[0]}"
                f"{f'; {len(diff) - 1} more' if len(diff) > 1 else ''}): if the change is "
                f"meant, bump its `version` and record the new fingerprint with `{REFRESH}`; "
                "else the change is a bug")
    return None


@pytest.fixture(scope="module")
def measured(tiny_model_dir, tmp_path_factory):
    return fingerprints(tiny_model_dir, tmp_path_factory.mktemp("fingerprints"), builtins())


@pytest.mark.parametrize("name", builtins())
def test_method_numbers_match_its_versions_fingerprint(name, measured):
    recorded = json.loads(FIXTURE.read_text())["methods"].get(name)
    problem = check(name, recorded, measured[name])
    assert problem is None, problem


def test_the_check_catches_a_change_and_passes_the_same_numbers():
    now = {"version": "1", "losses": [[6.25, 6.16]], "R": [[0.0]], "drift": [0.0, 0.002],
           "stats": {}}
    assert check("sft", json.loads(json.dumps(now)), now) is None
    moved = json.loads(json.dumps(now)) | {"losses": [[6.25 * 1.5, 6.16 * 1.5]]}
    problem = check("sft", now, moved)
    assert problem.startswith("method 'sft' changed its numbers without a version bump "
                              "(.losses[0][0]: 6.25 recorded, 9.375 now; 1 more)")
    assert REFRESH in problem
    assert "version 2" in check("sft", now, now | {"version": "2"})
    assert check("sft", now, moved | {"losses": [[6.25 * (1 + 1e-6), 6.16]]}) is None


def refresh(all_methods: bool) -> list[str]:
    """Record the fingerprints of the methods whose version changed (all: every method)."""
    from tests.conftest import build_tiny_model

    stored = json.loads(FIXTURE.read_text()) if FIXTURE.is_file() else {"methods": {}}
    with tempfile.TemporaryDirectory() as tmp:
        import os

        os.environ["HARNESS_CACHE"] = str(Path(tmp) / "cache")
        model = build_tiny_model(Path(tmp) / "tiny")
        now = fingerprints(model, Path(tmp), builtins())
    changed = [n for n in now if all_methods or n not in stored["methods"]
               or stored["methods"][n]["version"] != now[n]["version"]]
    import torch
    import transformers

    stored["about"] = ("written by `python -m tests.test_method_fingerprints --refresh`; torch "
                       f"{torch.__version__}, transformers {transformers.__version__}")
    methods = dict(sorted((stored["methods"] | {n: now[n] for n in changed}).items()))
    lines = [f"  {json.dumps(n)}: {json.dumps(v)}" for n, v in methods.items()]  # one a line
    FIXTURE.write_text(f'{{\n "about": {json.dumps(stored["about"])},\n "methods": {{\n'
                       + ",\n".join(lines) + "\n }\n}\n")
    return changed


if __name__ == "__main__":
    if "--refresh" not in sys.argv[1:]:
        sys.exit(f"usage: {REFRESH} [--all]")
    changed = refresh("--all" in sys.argv[1:])
    print(f"recorded {', '.join(changed) or 'nothing (no version changed; --all records all)'}"
          f" in {FIXTURE}")
