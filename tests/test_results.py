"""harness/results.py: validating result.json; harness/cells.py: sorting the folders of
OUT/cells by state."""

import json

import pytest

from harness.cells import read_cells
from harness.results import CellState, check_result, read_result
from synthetic_cells import R_for, write_cell


def test_check_result_reasons():
    good = {"status": "complete", "cell": {"model": "m", "stream": "s", "method": "a", "seed": 0},
            "R": [[0.1, 0.2], [0.5, 0.2], [0.4, 0.6]], "metrics": {"acc": 0.5, "bwt": None}}
    assert check_result(good) is None
    assert "not 'complete'" in check_result({**good, "status": "running"})
    assert "R has 2 rows" in check_result({**good, "R": [[0.1, 0.2], [0.3, 0.4]]})
    assert "not a finite" in check_result({**good, "R": [[0.1, 0.2], [0.5, None], [0.4, 0.6]]})
    cheap = {**good, "eval_settings": {"rows": "own-and-final"}}  # null where it evaluates none
    assert check_result({**cheap, "R": [[0.1, 0.2], [0.5, None], [0.4, 0.6]]}) is None
    assert "R[1][0] is not a finite" in check_result({**cheap, "R": [[0.1, 0.2], [None, 0.2],
                                                                     [0.4, 0.6]]})
    assert "eval_settings.rows" in check_result({**good, "eval_settings": {"rows": "some"}})
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


class _Probe:
    higher_is_better, chance, description = False, None, "a probe"


def _built(**over):
    from harness.results import build_result

    rows = [{"scores": {"a": 0.1, "b": 0.2}, "items": {"a": [0.0, 0.2], "b": [0.2, 0.2]},
             "probes": {"drift": 0.0}},
            {"scores": {"a": 0.9, "b": 0.3}, "items": {"a": [1.0, 0.8], "b": [0.3, 0.3]},
             "probes": {"drift": 0.2}},
            {"scores": {"a": 0.7, "b": 0.8}, "items": {"a": [0.6, 0.8], "b": [0.8, 0.8]},
             "probes": {"drift": 0.3}}]
    config = {"params": {}, "train": {}, "data": {}, "eval": {}, "tasks": {"a": "h1", "b": "h2"}}
    args = dict(cell={"model": "m", "stream": "s", "method": "sft", "seed": 0},
                tasks=["a", "b"], rows=rows, probes={"drift": _Probe()}, training=[],
                config=config, config_hash="c", model_id="m", grid_id="g", suite="x",
                timings={}, versions={}, hardware={}, method_stats={})
    return build_result(**{**args, **over})


def test_built_result_is_valid_and_computes_R_and_metrics():
    result = _built()
    assert check_result(result) is None
    assert result["R"] == [[0.1, 0.2], [0.9, 0.3], [0.7, 0.8]]
    assert result["probes"] == {"drift": [0.0, 0.2, 0.3]}
    assert result["cell_id"] == "m__s__sft__s0"
    assert abs(result["metrics"]["acc"] - 0.75) < 1e-12  # mean of the last row
    assert abs(result["metrics"]["bwt"] - (0.7 - 0.9)) < 1e-12  # task a: after all - after a
    assert list(result)[-1] == "method_stats"


def test_write_result_writes_only_a_valid_result_and_drops_progress(tmp_path):
    from harness.results import write_progress, write_result

    rows = [{"scores": {"a": 0.5}}]
    write_progress(tmp_path, "c", ["a"], rows)
    assert read_result(tmp_path) == (None, CellState.INCOMPLETE)
    bad = {**_built(), "R": [[0.1]]}
    with pytest.raises(ValueError, match="invalid result.json"):
        write_result(tmp_path, bad)
    assert not (tmp_path / "result.json").exists()
    write_result(tmp_path, _built())
    result, state = read_result(tmp_path)
    assert state is CellState.COMPLETE and result["R"] == _built()["R"]
    assert not (tmp_path / "progress.json").exists()


def test_write_failure_records_the_error_or_says_why_it_could_not(tmp_path):
    from harness.results import write_failure

    cell = {"model": "m", "stream": "s", "method": "sft", "seed": 0}
    assert write_failure(tmp_path / "cell", cell, "boom") is None
    data = json.loads((tmp_path / "cell" / "failure.json").read_text())
    assert data["error"] == "boom" and data["cell"] == cell and data["status"] == "failed"
    (tmp_path / "file").write_text("x")
    why = write_failure(tmp_path / "file" / "cell", cell, "boom")  # a file above the folder
    assert isinstance(why, OSError) and why.strerror
