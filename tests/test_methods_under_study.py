"""The four methods under study (SA-SFT, SDFT, SDFT by rewriting, SelfAug) through the CLI."""

import json

from harness.cli import main
from helpers import tiny_suite


STUDIED = ["sa-sft", "sdft", "sdft-rewrite", "selfaug"]


def test_listed_with_their_defaults(capsys):
    assert main(["list", "methods", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    names = {m["name"] for m in listed} if isinstance(listed, list) else set(listed)
    assert set(STUDIED) <= names


def test_the_four_run_through_the_stream(tmp_path, tiny_model_dir):
    methods = {"sa-sft": {"min_chars": 1, "user_tokens": 16, "answer_tokens": 16}, "sdft": {"max_new_tokens": 8},
               "sdft-rewrite": {"max_new_tokens": 8}, "selfaug": {"lora": {"r": 4, "alpha": 8}}}
    suite = tiny_suite(tmp_path, str(tiny_model_dir), methods=methods, probes=["drift"])
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet"]) == 0
    results = {json.loads(p.read_text())["cell"]["method"]: json.loads(p.read_text())
               for p in (out / "cells").glob("*/result.json")}
    assert set(results) == set(STUDIED)
    for r in results.values():
        assert r["status"] == "complete" and len(r["R"]) == 3
        assert all(s["steps"] == 3 for s in r["training"])
    rates = results["sdft-rewrite"]["method_stats"]
    assert set(rates) == {"arith", "json-extract"}
    assert all(0 <= v["rewrite_acceptance"] <= 1 for v in rates.values())
    assert "self_examples" in results["sa-sft"]["method_stats"]["arith"]
