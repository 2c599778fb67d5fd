"""harness/ui.py: the end-of-run table of `harness run`."""

import json

from harness.metrics import METRICS
from harness.ui import summary_table
from synthetic_cells import R_for, write_cell


def test_summary_table_columns_follow_the_catalogue(tmp_path):
    for seed in (0, 1):
        write_cell(tmp_path, "m", "x", "A", seed, R_for(0.5 + 0.1 * seed))
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("cells/*/result.json"))]
    table = summary_table(results)
    headers = [c.header for c in table.columns]
    assert headers == ["model", "stream", "method", "seeds",
                       *(m.label for m in METRICS.values() if m.headline),
                       "drift final (↓)", "knowledge final (↑)", "train s"]
    assert headers[4:7] == ["ACC", "BWT", "plasticity"]
    assert table.row_count == 1
    assert list(table.columns[4].cells) == ["0.550 ± 0.071"]
