"""The scripts that read results (scripts/method_evidence.py, scripts/benchmark_card.py):
their tables from synthetic cells read through harness.results."""

import json
from pathlib import Path

from helpers import load_script
from synthetic_cells import write_cell


EVIDENCE = load_script("method_evidence")
CARD = load_script("benchmark_card")


def test_evidence_tables_from_results(tmp_path, capsys):
    load, tables = EVIDENCE.load, EVIDENCE.tables

    def cell(method, seed, r11, drift, sec, stats=None):
        folder = tmp_path / "cells" / f"{method}{seed}"
        folder.mkdir(parents=True)
        folder.joinpath("result.json").write_text(json.dumps({
            "status": "complete", "cell": {"model": "m", "stream": "s", "method": method,
                                           "seed": seed}, "tasks": ["a", "b"],
            "R": [[0.1, 0.0], [r11, 0.0], [0.5, 0.9]], "metrics": {"acc": 0.7, "bwt": 0.5 - r11},
            "probes": {"drift": [0.0, drift / 2, drift]},
            "probe_info": {"drift": {"higher_is_better": False}},
            "training": [{"steps": 2, "sec_per_step": sec}, {"steps": 2, "sec_per_step": sec}],
            "timings": {"setup_s": 1.0, "train_s": 4 * sec}, "method_stats": stats or {},
            "hardware": {"platform": "x", "cpu_count": 2, "device": "cpu"}}))

    for seed in (0, 1):
        cell("sft", seed, 0.9, 0.2 + seed / 10, 2.0)
        cell("sdft", seed, 0.7, 0.1, 5.0, {"a": {"rate": 0.25 + seed / 2}})
    text = tables(load(tmp_path))
    rows = {}
    for line in text.splitlines():  # the first table's row of each method
        if line.startswith("| "):
            rows.setdefault(line.split(" | ")[0].strip("| "), line)
    # task gain = mean(R[1][0]-R[0][0], R[2][1]-R[0][1]) = ((0.9-0.1) + 0.9) / 2 = 0.85 for sft
    assert "| sft | 2 | 0.850 ± 0.000 | 0.700 ± 0.000 |" in rows["sft"]
    assert "0.250 ± 0.071" in rows["sft"]  # final drift 0.2, 0.3
    assert "2.50 ± 0.00x" in text and "rate (a): 0.5" in text  # 5 s / 2 s; mean of 0.25, 0.75
    assert "KL @" not in text  # no method recorded divergences per position
    assert EVIDENCE.main([str(tmp_path), "--methods", "sdft"]) == 0
    printed = capsys.readouterr().out
    assert "| sdft | 2 |" in printed and "| sft |" not in printed


def test_evidence_position_table_and_plugin_names():
    position_table, shown = EVIDENCE.position_table, EVIDENCE.shown

    stats = lambda kl, cut: {"a": {"kl_by_position": kl, "truncated_share": cut}}
    cells = {"x/v.py:SDFTSkip0": {0: {"method_stats": stats({"0": 0.2, "1": 0.1}, 0.5)},
                                  1: {"method_stats": stats({"0": 0.4, "1": 0.3}, 0.25)}}}
    text = position_table(cells)
    assert "| SDFTSkip0 | a | 2 | 0.38 ± 0.18 | 0.3000 ± 0.1414 | 0.2000 ± 0.1414 |" in text
    assert shown("sft") == "sft" and shown("a/b.py:C") == "C"


def test_evidence_names_old_path_named_cells_by_the_class_name(tmp_path, monkeypatch):
    """Cells from before methods were named by `name` recorded path.py:Class: they group
    with the new cells of that method; a file that no longer loads: the class name."""
    plugin = tmp_path / "variants.py"
    plugin.write_text("from harness.methods import Method\n\n\nclass Mine(Method):\n"
                      "    name = 'my-method'\n")
    monkeypatch.chdir(tmp_path)
    assert EVIDENCE.identity("variants.py:Mine") == "my-method"
    assert EVIDENCE.identity("gone.py:Other") == "Other"
    assert EVIDENCE.identity("sft") == "sft"


def test_evidence_skips_invalid_cells(tmp_path):
    write_cell(tmp_path, "m", "s", "sft", 0, [[0.1, 0.1], [0.5, 0.1], [0.5, 0.6]])
    bad = tmp_path / "cells" / "bad"
    bad.mkdir()
    (bad / "result.json").write_text(json.dumps({"status": "complete", "cell": {"method": "x"}}))
    assert list(EVIDENCE.load(tmp_path)) == ["sft"]
    assert EVIDENCE.gain(EVIDENCE.load(tmp_path)["sft"][0]) == 0.45


def test_card_tables_from_single_task_sft_cells(tmp_path, capsys):
    for seed, after in ((0, 0.6), (1, 0.8)):
        folder = write_cell(tmp_path, "m", "arith", "sft", seed, [[0.1], [after]],
                            tasks=["arith"])
        data = json.loads((folder / "result.json").read_text())
        data["training"] = [{"sec_per_step": 2.0}]
        data["hardware"] = {"platform": "x", "cpu_count": 2, "device": "cpu"}
        (folder / "result.json").write_text(json.dumps(data))
    write_cell(tmp_path, "m", "two", "sft", 0, [[0.1, 0.1], [0.5, 0.1], [0.5, 0.6]])
    assert list(CARD.load(tmp_path)) == ["arith"]
    assert CARD.main([str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "| arith | 2 | 0.100 | 0.700 ± 0.141 | +0.600 | yes | yes |" in text
    assert "| drift (↓) | 0.000 | 0.100 ± 0.000 |" in text
