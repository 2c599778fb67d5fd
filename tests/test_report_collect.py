"""harness/report/collect.py: the score table's values, and every metric's direction from
the catalogue, the cells' probe_info or the probe registry."""

import json

from harness.cells import read_cells
from harness.report.collect import collect
from harness.scores import cell_value, probe_directions
from synthetic_cells import R_for, write_cell

SETTINGS = dict(reference="A", alpha=0.05, confidence=0.95, n_resamples=99,
                n_permutations=99, n_iqm_resamples=99, n_item_resamples=99, seed=0)


def _strip_probe_info(folder):
    data = json.loads((folder / "result.json").read_text())
    del data["probe_info"]
    (folder / "result.json").write_text(json.dumps(data))


def test_probe_directions_from_probe_info_then_registry(tmp_path):
    probes = {"drift": [0.0, 0.1, 0.2], "knowledge": [0.5] * 3, "style-leak": [0.0] * 3,
              "mine": [1.0] * 3, "lm-eval:hellaswag": [0.3] * 3}
    _strip_probe_info(write_cell(tmp_path, "m", "x", "A", 0, R_for(0.5), probes=probes))
    notes = []
    found = probe_directions([r.data for r in read_cells(tmp_path).records], notes)
    assert found == {"drift": False, "knowledge": True, "style-leak": False, "mine": True,
                     "lm-eval:hellaswag": True}
    assumed = sorted(n["what"] for n in notes)
    assert assumed == ["direction of probe lm-eval:hellaswag", "direction of probe mine"]


def test_probe_info_majority_wins_with_a_note(tmp_path):
    for seed in range(3):
        f = write_cell(tmp_path, "m", "x", "A", seed, R_for(0.5))
        if seed == 0:
            data = json.loads((f / "result.json").read_text())
            data["probe_info"]["drift"]["higher_is_better"] = True
            (f / "result.json").write_text(json.dumps(data))
    notes = []
    assert probe_directions([r.data for r in read_cells(tmp_path).records], notes)["drift"] is False
    assert "disagree" in notes[0]["why"]


def test_missing_metric_is_computed_from_R_and_noted(tmp_path):
    f = write_cell(tmp_path, "m", "x", "A", 0, R_for(0.4))
    data = json.loads((f / "result.json").read_text())
    del data["metrics"]["acc"], data["metrics"]["drift_final"]
    data["metrics"]["bwt"] = None
    (f / "result.json").write_text(json.dumps(data))
    record = read_cells(tmp_path).records[0]
    assert cell_value(record.data, "acc") == (0.4, True)
    assert cell_value(record.data, "drift_final") == (data["probes"]["drift"][-1], True)
    assert cell_value(record.data, "bwt") == (None, False)
    inputs = collect(read_cells(tmp_path), **SETTINGS)
    assert list(inputs.metrics) == ["acc", "aia", "bwt", "fwt", "forgetting", "plasticity",
                                    "drift_final", "knowledge_final", "forgotten_items",
                                    "learned_items"]
    assert inputs.metrics["forgetting"] is False and inputs.metrics["drift_final"] is False
    assert inputs.nulls[("m", "x", "bwt")] == {"A": [0]}
    assert {n["what"] for n in inputs.notes} == {"metric acc", "metric drift_final"}
