"""Run a paper suite end to end offline, on the fixtures and a small local model, then print
`harness report --paper`: a check that the suite's tasks, methods, scorers and paper table
work together before GPU time is spent (the numbers mean nothing).

    python scripts/paper_smoke.py SUITE --model MODEL [--out OUT] [--streams a,b] [--keep-suite]

The suite is copied with: the model replaced (a local folder, or smollm2-135m-instruct),
every task reading HARNESS_PAPER_FIXTURES (default tests/fixtures/papers), one seed, the
lm-eval probes left out (they need hub data), `task:` probes kept, and every budget tiny
(1 step a task, 2 training and 2 test items, 4 new tokens for evaluation and for what
methods generate, 256-token sequences, no per-stream recipes, no memory settings).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# method settings that are generation budgets, and their smoke values
TINY_PARAMS = {"max_new_tokens": 4, "answer_tokens": 4, "user_tokens": 4}


def smoke_suite(suite: dict, model: str, streams: list[str] | None = None) -> dict:
    """The paper suite `suite` (parsed YAML) shrunk to a smoke run on `model`."""
    from harness.methods import METHODS

    chosen = {name: s for name, s in suite["streams"].items() if not streams or name in streams}
    methods = {}
    for name, params in (suite.get("methods") or {}).items():
        params = dict(params or {})
        params.pop("train", None)
        budgets = {**METHODS[name].defaults, **params}  # a default budget too: the tiny
        # model's context (512) takes none of the papers' (harness/limits.py refuses them)
        params.update({k: v for k, v in TINY_PARAMS.items() if k in budgets})
        if name == "freeze":
            params["top_k"] = 1
        methods[name] = params
    return {**suite, "models": [model], "seeds": [0], "methods": methods,
            "streams": {n: s["tasks"] if isinstance(s, dict) else s for n, s in chosen.items()},
            "probes": [p for p in suite.get("probes") or [] if not p.startswith("lm-eval:")],
            "train": {"steps": 1, "lr": 1e-4, "batch_size": 2, "grad_accum": 1, "max_len": 256},
            "data": {"n_train": 2, "n_test": 2, "seed": 0},
            "eval": {"batch_size": 4, "max_new_tokens": 4}, "precision": "auto"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/paper_smoke.py")
    parser.add_argument("suite", help="a paper suite's name, e.g. sdft-rewrite-2024")
    parser.add_argument("--model", required=True, help="a local model folder, or "
                        "smollm2-135m-instruct")
    parser.add_argument("--out", type=Path, help="default: a temporary folder")
    parser.add_argument("--streams", help="only these streams, comma-separated")
    parser.add_argument("--keep-suite", action="store_true", help="print the smoke suite")
    args = parser.parse_args(argv)
    from harness.cli import main as harness
    from harness.config import suite_path
    from harness.yamlio import read_yaml
    from harness.errors import HarnessError

    try:
        source = suite_path(args.suite)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("HARNESS_PAPER_FIXTURES", str(ROOT / "tests" / "fixtures" / "papers"))
    suite = smoke_suite(read_yaml(source, source.name), args.model,
                        args.streams.split(",") if args.streams else None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / source.name  # the paper's name: `--paper` finds its numbers by it
        path.write_text(yaml.safe_dump(suite, sort_keys=False))
        if args.keep_suite:
            print(path.read_text())
        out = args.out or Path(tmp) / "out"
        code = harness(["run", "--suite", str(path), "--out", str(out), "--quiet"])
        if code != 0:
            return code
        return harness(["report", str(out), "--paper"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
