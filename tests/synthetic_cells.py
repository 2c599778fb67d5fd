"""Synthetic cells for the report and results tests: valid result.json files (the schema of
docs/results.md) with planted effects."""

import json
from pathlib import Path

import numpy as np

from harness.metrics import cell_metrics
from harness.results import cell_id

FAST = dict(n_resamples=999, n_permutations=9999, n_iqm_resamples=200)
PROBE_INFO = {"drift": {"higher_is_better": False, "chance": None, "description": "KL"},
              "knowledge": {"higher_is_better": True, "chance": 0.25, "description": "MC"}}


def write_cell(out: Path, model: str, stream: str, method: str, seed: int, R,
               probes=None, metrics=None, items=None, tasks=None) -> Path:
    """A minimal valid result.json (schema_version 1) for one cell; metrics are computed
    from R by harness.metrics unless given, and `metrics` entries override them."""
    R = [list(map(float, row)) for row in R]
    T = len(R[0])
    tasks = tasks or [f"t{j + 1}" for j in range(T)]
    probes = probes if probes is not None else {
        "drift": [0.0] + [0.1 * (i + 1) for i in range(T)],
        "knowledge": [0.6] * (T + 1)}
    m = cell_metrics(R, probes)
    m.update(metrics or {})
    folder = out / "cells" / cell_id(model, stream, method, seed)
    result = {
        "schema_version": 1, "status": "complete", "cell_id": folder.name,
        "cell": {"model": model, "stream": stream, "method": method, "seed": seed},
        "tasks": tasks, "R": R,
        "items": items if items is not None else {t: [[R[i][j]] * 4 for i in range(T + 1)]
                                                  for j, t in enumerate(tasks)},
        "probes": probes, "probe_info": {k: PROBE_INFO.get(k, {"higher_is_better": True})
                                         for k in probes},
        "metrics": m, "training": [], "method_params": {}, "train_settings": {},
        "data_settings": {}, "eval_settings": {}, "task_hashes": {t: "h" for t in tasks},
        "model_id": model, "config_hash": "x", "suite": "synthetic",
        "timings": {"total_s": 1.0, "setup_s": 0.1, "train_s": 0.5, "eval_s": 0.3,
                    "base_eval_s": 0.1},
        "versions": {}, "hardware": {}, "finished_at": "2025-01-01T00:00:00+00:00",
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(result))
    return folder


def R_for(acc: float, T: int = 2) -> list[list[float]]:
    """An R matrix whose final average is exactly `acc` (and well-defined other metrics)."""
    base = [0.1] * T
    rows = [base]
    for i in range(1, T + 1):
        rows.append([min(1.0, acc + 0.05) if j < i else 0.1 for j in range(T)])
    rows[-1] = [acc] * T
    return rows


def planted_grid(out: Path, effect: float, n_seeds: int = 8, scenarios=("s1", "s2", "s3"),
                 methods=("A", "B"), seed: int = 0) -> dict:
    """Method B's acc = A's + effect + small noise; other methods (C, ...) = A + noise."""
    rng = np.random.default_rng(seed)
    accs = {}
    for stream in scenarios:
        for s in range(n_seeds):
            a = 0.4 + 0.05 * rng.standard_normal()
            for method in methods:
                if method == "A":
                    v = a
                elif method == "B":
                    v = a + effect + 0.02 * rng.standard_normal()
                else:
                    v = a + 0.02 * rng.standard_normal()
                accs[(stream, method, s)] = v
                write_cell(out, "m", stream, method, s, R_for(v))
    return accs
