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
