"""harness/report/plots.py through `build_report`: every PNG written, or skipped with why."""

from harness.report import build_report
from synthetic_cells import FAST, R_for, planted_grid, write_cell


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
