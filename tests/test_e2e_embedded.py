"""End to end on the embedded SmolLM2-135M (provisioned from its PyPI wheel on first use):
a reduced quickstart. Slow (minutes on a 2-core CPU); CI runs it."""

import json
from pathlib import Path

import pytest
import yaml

from harness.cli import main

QUICKSTART = Path(__file__).resolve().parent.parent / "benchmarks" / "suites" / "quickstart.yaml"


@pytest.fixture
def shared_cache(monkeypatch):
    """Use the caller's cache (CI points HARNESS_CACHE at a fresh folder), not the per-test
    one, so the converted model is reused by later runs."""
    from conftest import USER_CACHE

    if USER_CACHE:
        monkeypatch.setenv("HARNESS_CACHE", USER_CACHE)
    else:
        monkeypatch.delenv("HARNESS_CACHE", raising=False)


@pytest.mark.slow
def test_reduced_quickstart_learns_and_sft_drifts(tmp_path, shared_cache):
    suite = yaml.safe_load(QUICKSTART.read_text())
    suite["train"]["steps"] = 16
    suite["data"]["n_test"] = 24
    path = tmp_path / "quickstart-reduced.yaml"
    path.write_text(yaml.safe_dump(suite))
    out = tmp_path / "out"
    assert main(["run", "--suite", str(path), "--out", str(out), "--quiet"]) == 0
    results = {json.loads(p.read_text())["cell"]["method"]: json.loads(p.read_text())
               for p in (out / "cells").glob("*/result.json")}
    assert set(results) == {"sft", "lora"}
    for method, r in results.items():
        R = r["R"]
        assert len(R) == 3 and all(len(row) == 2 for row in R)
        for j, task in enumerate(r["tasks"]):
            assert R[j + 1][j] > R[0][j], f"{method} did not learn {task}: {R}"
        assert r["probes"]["drift"][0] == pytest.approx(0.0, abs=1e-6)
    assert results["sft"]["probes"]["drift"][-1] > 0.0
    assert results["sft"]["metrics"]["drift_final"] > 0.0
