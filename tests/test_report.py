"""`harness report` end to end (harness/report/__init__.py): broken cells named, odd
inputs never crash it, CLI errors on one line. The statistics, markdown and plots have
their own test files (test_report_*.py)."""

import json

import pytest

from harness.cli import main
from harness.report import build_report
from synthetic_cells import FAST, R_for, planted_grid, write_cell


def comparisons(summary, metric="acc", method="B"):
    return [c for c in summary["comparisons"] if c["metric"] == metric and c["method"] == method]


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
    assert "…" not in out  # not a terminal: wide enough that no number is cut short
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
