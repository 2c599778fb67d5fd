"""`harness report`: statistics across synthetic cells written in the result.json schema
(docs/results.md) -- planted effects found, planted nulls not, numbers equal to an
independent computation, broken cells named, plots written, CLI errors on one line."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from harness.cli import main
from harness.report import build_report, check_result, load_cells
from harness.ui import summary_table

FAST = dict(n_resamples=999, n_permutations=9999, n_iqm_resamples=200)
PROBE_INFO = {"drift": {"higher_is_better": False, "chance": None, "description": "KL"},
              "knowledge": {"higher_is_better": True, "chance": 0.25, "description": "MC"}}


def write_cell(out: Path, model: str, stream: str, method: str, seed: int, R,
               probes=None, metrics=None, items=None, tasks=None) -> Path:
    """A minimal valid result.json (schema_version 1) for one cell; metrics are computed
    from R by harness.metrics unless given, and `metrics` entries override them."""
    from harness.metrics import cell_metrics

    R = [list(map(float, row)) for row in R]
    T = len(R[0])
    tasks = tasks or [f"t{j + 1}" for j in range(T)]
    probes = probes if probes is not None else {
        "drift": [0.0] + [0.1 * (i + 1) for i in range(T)],
        "knowledge": [0.6] * (T + 1)}
    m = cell_metrics(R, probes)
    m.update(metrics or {})
    cell_id = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{model}__{stream}__{method}__s{seed}")
    result = {
        "schema_version": 1, "status": "complete", "cell_id": cell_id,
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
    folder = out / "cells" / cell_id
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


def comparisons(summary, metric="acc", method="B"):
    return [c for c in summary["comparisons"] if c["metric"] == metric and c["method"] == method]


# --------------------------------------------------------------------------- statistics

def test_planted_effect_is_found(tmp_path):
    planted_grid(tmp_path, effect=0.2)
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    rows = comparisons(s)
    assert len(rows) == 3
    for c in rows:
        assert c["n"] == 8 and c["seeds"] == list(range(8))
        assert c["diff"] == pytest.approx(0.2, abs=0.03)
        assert c["ci_low"] <= c["diff"] <= c["ci_high"]
        assert c["ci_low"] <= 0.2 <= c["ci_high"] or abs(c["diff"] - 0.2) < 0.02
        assert c["significant"] and c["direction"] == "better"
        assert c["p_adjusted"] < 0.05 and c["p_bh"] < 0.05
    wins = {(w["metric"], w["method"]): w for w in s["wins"]}
    assert wins[("acc", "B")]["outright"] == 3 and wins[("acc", "A")]["outright"] == 0
    assert set(s["comparisons"][0]) >= {"scenario", "method", "reference", "metric", "diff",
                                        "ci_low", "ci_high", "p", "p_adjusted", "significant"}


def test_planted_null_is_not_found(tmp_path):
    planted_grid(tmp_path, effect=0.0, methods=("A", "B", "C"))
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    acc = [c for c in s["comparisons"] if c["metric"] == "acc"]
    assert len(acc) == 6
    assert not any(c["significant"] for c in acc)
    for c in acc:
        assert c["ci_low"] <= 0.0 <= c["ci_high"] or c["p"] > 0.01


def test_numbers_agree_with_independent_computation(tmp_path):
    accs = planted_grid(tmp_path, effect=0.03, methods=("A", "B", "C"), n_seeds=6)
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    family = [c for c in s["comparisons"] if c["scenario"] == "m/s1/acc"]
    assert [c["method"] for c in family] == ["B", "C"]
    ps = []
    for c in family:
        a = np.array([accs[("s1", c["method"], k)] for k in range(6)])
        b = np.array([accs[("s1", "A", k)] for k in range(6)])
        assert c["diff"] == pytest.approx(np.mean(a - b), abs=1e-12)
        assert c["mean"] == pytest.approx(a.mean()) and c["ref_mean"] == pytest.approx(b.mean())
        ref = stats.permutation_test((a, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis),
                                     permutation_type="samples", vectorized=True,
                                     n_resamples=9999, alternative="two-sided")
        assert c["p"] == pytest.approx(ref.pvalue)  # exact: 2^6 sign flips
        ps.append(c["p"])
    # Holm by hand for a family of two: min p doubled, the other max(that, p), capped at 1.
    lo, hi = sorted(ps)
    expected = {lo: min(1, 2 * lo), hi: min(1, max(2 * lo, hi))}
    for c in family:
        assert c["p_adjusted"] == pytest.approx(expected[c["p"]])
    # BH across the grid equals scipy's on all p-values in order
    allp = [c["p"] for c in s["comparisons"]]
    bh = stats.false_discovery_control(allp, method="bh")
    assert [c["p_bh"] for c in s["comparisons"]] == pytest.approx(list(bh))
    # per-method mean/sd equal numpy's
    row = next(r for r in s["per_method"] if r["scenario"] == "m/s2/acc" and r["method"] == "C")
    v = np.array([accs[("s2", "C", k)] for k in range(6)])
    assert row["mean"] == pytest.approx(v.mean()) and row["sd"] == pytest.approx(v.std(ddof=1))


def test_direction_pairing_and_skips(tmp_path):
    # forgetting: lower is better; seeds 0..3 for A, 1..4 for B -> 3 paired seeds;
    # a one-task stream has null bwt/forgetting -> skipped with a reason.
    for s in range(4):
        write_cell(tmp_path, "m", "two", "A", s, R_for(0.5), metrics={"forgetting": 0.3 + 0.01 * s})
    for s in range(1, 5):
        write_cell(tmp_path, "m", "two", "B", s, R_for(0.5), metrics={"forgetting": 0.1 + 0.01 * s})
    for s in range(3):
        for m in ("A", "B"):
            write_cell(tmp_path, "m", "one", m, s, R_for(0.5, T=1))
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    c = next(c for c in s["comparisons"] if c["scenario"] == "m/two/forgetting")
    assert c["n"] == 3 and c["seeds"] == [1, 2, 3]
    assert c["diff"] == pytest.approx(-0.2) and c["direction"] == "better"
    assert not c["higher_is_better"]
    assert any(x["what"] == "comparisons in m/one/bwt" and "null" in x["why"]
               for x in s["skipped"])
    drift = next(m for m in s["metrics"] if m["name"] == "drift_final")
    assert drift["higher_is_better"] is False


def test_too_few_paired_seeds_is_skipped_with_reason(tmp_path):
    write_cell(tmp_path, "m", "x", "A", 0, R_for(0.5))
    write_cell(tmp_path, "m", "x", "A", 1, R_for(0.5))
    write_cell(tmp_path, "m", "x", "B", 1, R_for(0.6))
    write_cell(tmp_path, "m", "x", "B", 2, R_for(0.6))
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    assert s["comparisons"] == []
    assert any("B vs A on m/x/acc" == x["what"] and "1 paired seed" in x["why"]
               for x in s["skipped"])


# --------------------------------------------------------------------------- robustness

def test_broken_cells_are_named(tmp_path):
    planted_grid(tmp_path, effect=0.2, n_seeds=3, scenarios=("s1",))
    cells = tmp_path / "cells"
    bad = cells / "m__s1__A__s9"
    bad.mkdir()
    (bad / "result.json").write_text('{"status": "complete", "cell": ')
    nokey = cells / "m__s1__B__s9"
    nokey.mkdir()
    (nokey / "result.json").write_text(json.dumps({"status": "complete", "R": [[0.1], [0.2]]}))
    failed = cells / "m__s1__C__s0"
    failed.mkdir()
    (failed / "failure.json").write_text(json.dumps({
        "status": "failed", "cell": {"model": "m", "stream": "s1", "method": "C", "seed": 0},
        "error": "RuntimeError: CUDA out of memory", "traceback": "..."}))
    running = cells / "m__s1__C__s1"
    running.mkdir()
    (running / "progress.json").write_text(json.dumps({"status": "running", "rows_done": 2}))
    (cells / "m__s1__C__s2").mkdir()

    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    md = (tmp_path / "report.md").read_text()
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["cells"] == s["cells"]
    c = s["cells"]
    assert c["complete"] == 6 and c["folders"] == 11
    corrupt = {x["cell_id"]: x["reason"] for x in c["corrupt"]}
    assert "invalid JSON" in corrupt["m__s1__A__s9"]
    assert "missing required key" in corrupt["m__s1__B__s9"] and "metrics" in corrupt["m__s1__B__s9"]
    assert [x["cell_id"] for x in c["failed"]] == ["m__s1__C__s0"]
    assert "out of memory" in c["failed"][0]["error"]
    assert [x["cell_id"] for x in c["incomplete"]] == ["m__s1__C__s1"]
    assert c["incomplete"][0]["rows_done"] == 2
    assert [x["cell_id"] for x in c["empty"]] == ["m__s1__C__s2"]
    for name in ("m__s1__A__s9", "m__s1__B__s9", "m__s1__C__s0", "m__s1__C__s1",
                 "m__s1__C__s2", "invalid JSON", "out of memory"):
        assert name in md, name
    # the comparisons still ran on the complete cells
    assert len(comparisons(s)) == 1 and comparisons(s)[0]["n"] == 3


def test_check_result_reasons():
    good = {"status": "complete", "cell": {"model": "m", "stream": "s", "method": "a", "seed": 0},
            "R": [[0.1, 0.2], [0.5, 0.2], [0.4, 0.6]], "metrics": {"acc": 0.5, "bwt": None}}
    assert check_result(good) is None
    assert "not 'complete'" in check_result({**good, "status": "running"})
    assert "R has 2 rows" in check_result({**good, "R": [[0.1, 0.2], [0.3, 0.4]]})
    assert "not a finite" in check_result({**good, "R": [[0.1, 0.2], [0.5, None], [0.4, 0.6]]})
    assert "metrics.acc" in check_result({**good, "metrics": {"acc": "high"}})
    assert "cell.seed" in check_result({**good, "cell": {**good["cell"], "seed": "x"}})
    assert "schema_version" in check_result({**good, "schema_version": 7})
    assert "not an object" in check_result([1, 2])


def test_duplicates_and_missing_are_listed(tmp_path):
    for s in range(3):
        for m in ("A", "B"):
            if (m, s) != ("B", 2):
                write_cell(tmp_path, "m", "x", m, s, R_for(0.5 + 0.01 * s))
    dup = tmp_path / "cells" / "zz-copy"
    dup.mkdir()
    (dup / "result.json").write_text(
        (tmp_path / "cells" / "m__x__A__s0" / "result.json").read_text())
    cells = load_cells(tmp_path)
    assert [d["path"] for d in cells.duplicates] == ["cells/zz-copy/result.json"]
    assert cells.missing == [{"model": "m", "stream": "x", "method": "B", "seed": 2}]


def test_summary_table_still_works(tmp_path):
    write_cell(tmp_path, "m", "x", "A", 0, R_for(0.5))
    result = json.loads((tmp_path / "cells" / "m__x__A__s0" / "result.json").read_text())
    table = summary_table([result])
    assert table.row_count == 1


# --------------------------------------------------------------------------- plots

def test_plots_written(tmp_path):
    planted_grid(tmp_path, effect=0.1, n_seeds=3, methods=("A", "B", "C"))
    s = build_report(tmp_path, reference="A", plots=True, **FAST)
    files = {p["file"] for p in s["plots"]}
    assert {"plots/pareto.png", "plots/r_m__s1.png", "plots/curves_s1.png",
            "plots/cd_acc.png", "plots/cd_all.png"} <= files, s["skipped"]
    for f in files:
        data = (tmp_path / f).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert "plots/pareto.png" in (tmp_path / "report.md").read_text()


def test_plots_skipped_with_reason_for_one_method(tmp_path):
    for s in range(3):
        write_cell(tmp_path, "m", "x", "sft", s, R_for(0.5 + 0.01 * s))
    s = build_report(tmp_path, plots=True, **FAST)
    skipped = {x["what"]: x["why"] for x in s["skipped"]}
    assert "2 methods" in skipped["plot pareto.png"]
    assert "Friedman" in skipped["plot cd_<metric>.png"]
    assert not (tmp_path / "plots" / "pareto.png").exists()
    assert any("only the reference" in x["why"] for x in s["skipped"])
    assert s["comparisons"] == []


# --------------------------------------------------------------------------- CLI

def _cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def _one_line_error(code, err, *needles):
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("harness: error:"), err
    assert "Traceback" not in err and "Fix:" in err
    for n in needles:
        assert n in err, err


def test_cli_missing_dir(tmp_path, capsys):
    code, _, err = _cli(["report", str(tmp_path / "nope")], capsys)
    _one_line_error(code, err, "does not exist")


def test_cli_no_cells_dir(tmp_path, capsys):
    code, _, err = _cli(["report", str(tmp_path)], capsys)
    _one_line_error(code, err, "no cells/ folder")


def test_cli_unknown_reference(tmp_path, capsys):
    write_cell(tmp_path, "m", "x", "A", 0, R_for(0.5))
    write_cell(tmp_path, "m", "x", "B", 0, R_for(0.5))
    code, _, err = _cli(["report", str(tmp_path)], capsys)
    _one_line_error(code, err, "reference method 'sft'", "A, B")
    code, _, err = _cli(["report", str(tmp_path), "--reference", "A", "--alpha", "2"], capsys)
    _one_line_error(code, err, "--alpha")


def test_cli_writes_report(tmp_path, capsys):
    planted_grid(tmp_path, effect=0.2, n_seeds=4, scenarios=("s1", "s2"))
    bad = tmp_path / "cells" / "broken"
    bad.mkdir()
    (bad / "result.json").write_text("not json")
    code, out, err = _cli(["report", str(tmp_path), "--reference", "A", "--no-plots"], capsys)
    assert code == 0, err
    assert "cells/broken/result.json" in out and "report.md" in out
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["reference"] == "A" and s["alpha"] == 0.05 and s["schema_version"] == 1
    assert {"comparisons", "wins", "friedman", "iqm", "skipped", "cells"} <= set(s)
    assert s["cells"]["corrupt"][0]["path"] == "cells/broken/result.json"
    assert not (tmp_path / "plots").exists()


def test_odd_inputs_never_crash(tmp_path):
    for s in range(3):
        write_cell(tmp_path, "m", "x", "sft", s, R_for(0.5 + 0.01 * s), probes={})
        f = write_cell(tmp_path, "m", "x", "new[1]", s, R_for(0.6 + 0.01 * s),
                       probes={"drift": [0.0, None, 0.2]})
        d = json.loads((f / "result.json").read_text())
        del d["metrics"]["acc"], d["probe_info"]
        d["metrics"]["bwt"] = float("nan")
        d["items"] = {"t1": "bad"}
        (f / "result.json").write_text(json.dumps(d))
    write_cell(tmp_path, "m", "x", "sft", 9, R_for(0.5, T=3))  # another task list
    (tmp_path / "cells" / "dir" / "result.json").mkdir(parents=True)
    (tmp_path / "cells" / "list").mkdir()
    (tmp_path / "cells" / "list" / "result.json").write_text("[1, 2]")
    s = build_report(tmp_path, plots=True, **FAST)
    acc = next(c for c in s["comparisons"] if c["metric"] == "acc")
    assert acc["n"] == 3 and acc["diff"] == pytest.approx(0.1)  # acc filled from R
    assert acc["item_n"] is None and "items" in acc["item_note"]
    assert any("m/x/bwt" in x["what"] for x in s["skipped"])  # NaN bwt = null
    assert {x["cell_id"] for x in s["cells"]["corrupt"]} == {"dir", "list"}
    notes = " ".join(x["what"] + " " + x["why"] for x in s["notes"])
    assert "computed from R" in notes and "disagree on the stream's task list" in notes
    assert not any("failed" in x["why"] for x in s["skipped"]), s["skipped"]


def test_only_failed_cells_still_reported(tmp_path, capsys):
    d = tmp_path / "cells" / "a"
    d.mkdir(parents=True)
    (d / "failure.json").write_text(json.dumps({
        "status": "failed", "cell": {"model": "m", "stream": "x", "method": "sft", "seed": 0},
        "error": "boom"}))
    code, out, err = _cli(["report", str(tmp_path)], capsys)
    assert code == 0, err
    assert "cells/a/failure.json" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "summary.json").read_text())["cells"]["complete"] == 0
