"""harness/report/markdown.py: report.md is rendered from the summary alone."""

from harness.report import build_report, render_markdown
from harness.report.markdown import _bullets, num, pval
from synthetic_cells import FAST, planted_grid


def test_bullets_title_items_and_limit():
    assert _bullets("## X", [], str) == []
    assert _bullets("## X", [1, 2], lambda i: f"n{i}") == ["## X", "", "- n1", "- n2", ""]
    assert _bullets("## X", [1, 2, 3], str, limit=2) == [
        "## X", "", "- 1", "- 2", "- ... and 1 more (summary.json lists all)", ""]


def test_numbers_are_formatted_for_reading():
    assert num(None) == "-" and num(0.5) == "0.500" and num(0.5, True) == "+0.500"
    assert num(1e-5) == "1.00e-05" and num(0) == "0.000"
    assert pval(0.0001) == "1.0e-04" and pval(0.2) == "0.200"


def test_report_md_is_the_summary_rendered(tmp_path):
    planted_grid(tmp_path, effect=0.2, n_seeds=3, methods=("A", "B", "C"))
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    md = (tmp_path / "report.md").read_text()
    assert md == render_markdown(s)
    for section in ("## Cells", "## Seeds", "## How these numbers were computed",
                    "## Results per scenario", "### m / s1", "## Across scenarios",
                    "## Wins", "## Friedman test", "## IQM", "## Skipped"):
        assert section in md, section
    assert "Every (model, stream, method) has 3 complete seed(s): 0-2." in md
    assert "| B | 3 |" in md and "A (ref)" in md


def test_terminal_shows_the_pooled_test_as_the_summary_has_it(tmp_path):
    from rich.console import Console

    from harness.report import terminal_tables

    planted_grid(tmp_path, effect=0.2, n_seeds=3, scenarios=("s1", "s2"), methods=("A", "B", "C"))
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    console = Console(width=400, record=True, color_system=None)
    for item in terminal_tables(s):
        console.print(item)
    text = console.export_text()
    assert "All scenarios pooled: diff vs A" in text
    acc = {r["method"]: r for r in s["across_scenarios"] if r["metric"] == "acc"}
    assert acc["B"]["significant_pooled"] and not acc["C"]["significant_pooled"]
    pooled = text.split("All scenarios pooled")[1].split("Wins over")[0]
    line = {row.split()[1]: row for row in pooled.splitlines()
            if row.startswith("│ B ") or row.startswith("│ C ")}
    assert line["B"].split("│")[2].strip() == "6"  # pairs: 2 scenarios x 3 seeds
    assert num(acc["B"]["pooled_diff"], True) + "*" in line["B"]
    assert num(acc["C"]["pooled_diff"], True) + "*" not in line["C"]
