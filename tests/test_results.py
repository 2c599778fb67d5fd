"""harness/results.py: validating result.json and sorting the folders of OUT/cells by
state."""

import json

from harness.results import CellState, check_result, read_cells, read_result
from synthetic_cells import R_for, write_cell


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
    cells = read_cells(tmp_path)
    assert [d["path"] for d in cells.duplicates] == ["cells/zz-copy/result.json"]
    assert cells.missing == [{"model": "m", "stream": "x", "method": "B", "seed": 2}]


def test_every_folder_gets_one_state(tmp_path):
    good = write_cell(tmp_path, "m", "x", "A", 0, R_for(0.5))
    cells = tmp_path / "cells"
    for name, file, text in [("bad", "result.json", "not json"),
                             ("failed", "failure.json", json.dumps({"error": "boom"})),
                             ("running", "progress.json", json.dumps({"rows_done": 1}))]:
        (cells / name).mkdir()
        (cells / name / file).write_text(text)
    (cells / "empty").mkdir()
    found = read_cells(tmp_path)
    assert found.n_folders == 5 and [r.path for r in found.records] == [
        f"cells/{good.name}/result.json"]
    assert [x["cell_id"] for x in found.corrupt] == ["bad"]
    assert [x["error"] for x in found.failed] == ["boom"]
    assert [x["rows_done"] for x in found.incomplete] == [1]
    assert [x["cell_id"] for x in found.empty] == ["empty"]
    assert read_result(cells / "bad") == (None, CellState.CORRUPT)
    assert read_result(good)[1] is CellState.COMPLETE
