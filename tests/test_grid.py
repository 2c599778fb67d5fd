"""Planning: cells, plans computed once, the shared vocabulary of cell states, the estimate."""

import json

import pytest

from harness.config import load_suite
from harness.grid import expand, grid_id, estimate, measured_seconds, plan, split, state
from harness.results import CellState, cell_id
from helpers import tiny_suite


@pytest.fixture
def suite(tmp_path, tiny_model_dir):
    return load_suite(tiny_suite(tmp_path, str(tiny_model_dir), seeds=[0, 1]))


def _result(cell, config_hash, sec_per_step=2.0):
    return {"status": "complete", "cell": cell.info, "R": [[0.1, 0.2], [0.5, 0.2], [0.4, 0.6]],
            "metrics": {"acc": 0.5}, "config_hash": config_hash,
            "training": [{"steps": 3, "sec_per_step": sec_per_step}]}


def test_cells_seed_by_seed_with_ids_from_the_one_function(suite, tiny_model_dir):
    cells = expand(suite)
    assert [(c.seed, c.method.name) for c in cells] == [(0, "lora"), (0, "sft"),
                                                         (1, "lora"), (1, "sft")]
    assert cells[1].id == cell_id(str(tiny_model_dir), "two", "sft", 0)
    assert cells[1].id == f"{tiny_model_dir.name}__two__sft__s0"
    assert cell_id("m", "s", "dir/variants.py:SDFTShort", 2) == "m__s__variants.SDFTShort__s2"


def test_plan_is_computed_once_and_keys_the_settings(suite):
    a, b = expand(suite)[:2]
    assert split("arith", suite.data) is split("arith", suite.data)  # generated once
    pa = plan(a, suite)
    assert [s.task for s in pa.splits] == ["arith", "json-extract"]
    assert pa.config_hash == plan(a, suite).config_hash
    assert pa.config_hash != plan(b, suite).config_hash  # other method, other hash
    assert len(grid_id(suite)) == 16


def test_every_cell_state(suite, tmp_path):
    cell = expand(suite)[0]
    folder = tmp_path / "cells" / cell.id
    assert state(cell, suite, folder) is CellState.NEW
    folder.mkdir(parents=True)
    assert state(cell, suite, folder) is CellState.EMPTY
    (folder / "progress.json").write_text("{}")
    assert state(cell, suite, folder) is CellState.INCOMPLETE
    (folder / "failure.json").write_text("{}")
    assert state(cell, suite, folder) is CellState.FAILED
    (folder / "result.json").write_text("[1, 2]")
    assert state(cell, suite, folder) is CellState.CORRUPT
    (folder / "result.json").write_text(json.dumps(_result(cell, "other settings")))
    assert state(cell, suite, folder) is CellState.STALE
    (folder / "result.json").write_text(json.dumps(_result(cell, plan(cell, suite).config_hash)))
    assert state(cell, suite, folder) is CellState.COMPLETE


def test_measured_figures_come_from_complete_cells_only(suite, tmp_path):
    a, b = expand(suite)[:2]
    for cell, seconds in ((a, 2.0), (b, 4.0)):
        (tmp_path / "cells" / cell.id).mkdir(parents=True)
    timed = _result(a, "h", 2.0) | {"timings": {"eval_s": 30.0}}  # 2 rows after training
    (tmp_path / "cells" / a.id / "result.json").write_text(json.dumps(timed))
    broken = _result(b, "h", 4.0) | {"status": "running"}
    (tmp_path / "cells" / b.id / "result.json").write_text(json.dumps(broken))
    measured = measured_seconds(tmp_path)
    assert measured == {"lora": {"step": 2.0, "row": 15.0}}
    e = estimate(a, suite, measured)
    assert e == {"steps": 6, "train_s": 12.0, "eval_s": 30.0, "source": "this OUT"}
    assert estimate(b, suite, measured)["source"] == "135M on 2-core CPU"
