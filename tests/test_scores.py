"""harness/scores.py (item flips, the direction rule) and `harness stats-check`."""

import json

from harness import scores
from harness.cli import main


def test_item_flips_count_forgotten_and_learned_items_by_hand():
    tasks = ["t1", "t2"]
    items = {"t1": [[0, 0, 0, 1], [1, 1, 0, 1], [0, 1, 1, 1]],  # trained at row 1
             "t2": [[0, 0, 1], [0, 1, 1], [1, 0, 1]]}  # trained at row 2 (the last)
    flips = scores.item_flips(items, tasks)
    assert flips["forgotten"] == {"t1": [None, None, 1], "t2": [None, None, None]}
    assert flips["learned"] == {"t1": [None, None, 1], "t2": [None, None, None]}
    assert (flips["forgotten_items"], flips["learned_items"]) == (1, 1)
    assert scores.item_flips({"t1": [[1], [1]]}, tasks) is None  # rows missing
    assert scores.final_correct(items, tasks) == [False, True, True, True, True, False, True]


def test_one_direction_rule():
    assert scores.higher_is_better("acc") and not scores.higher_is_better("forgetting")
    assert not scores.higher_is_better("forgotten_items")
    assert scores.higher_is_better("learned_items")
    assert not scores.higher_is_better("drift_final", {"drift": False})
    assert not scores.higher_is_better("drift_delta", {"drift": False})
    assert scores.higher_is_better("knowledge_final", {})


def test_stats_check_prints_coverage_and_family_wise_error(capsys):
    assert main(["stats-check", "--seeds", "3", "--streams", "2", "--methods", "14",
                 "--items", "32", "--reps", "300"]) == 0
    out = capsys.readouterr().out
    assert "coverage of the 95% t intervals" in out and "Holm over all 91 pairs" in out
    assert main(["stats-check", "--seeds", "3", "--reps", "200", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert 0.9 < r["coverage"] < 1.0 and r["reps"] == 200
    assert main(["stats-check", "--seeds", "1"]) == 2
    assert "at least 2 seeds" in capsys.readouterr().err


def test_report_and_leaderboard_read_a_cell_by_one_rule(tmp_path):
    from harness.cells import read_cells
    from harness.leaderboard.entries import cell_values
    from harness.report.collect import metric_value
    from tests.synthetic_cells import R_for, write_cell

    items = {"t1": [[0, 0], [1, 1], [0, 1]], "t2": [[0, 0], [0, 0], [1, 1]]}
    write_cell(tmp_path, "m", "x", "A", 0, R_for(0.5), items=items, tasks=["t1", "t2"],
               probes={"drift": [0.0, 0.1, 0.2]})
    record = read_cells(tmp_path).records[0]
    keys = ["acc", "bwt", "task_gain", "forgotten_items", "drift_final"]
    board = cell_values(record.data, keys)
    for key in keys:
        assert metric_value(record, key)[0] == board[key] == scores.cell_value(record.data, key)[0]
    assert board["forgotten_items"] == 1.0
    R = record.data["R"]
    assert board["task_gain"] == sum(R[-1]) / 2 - sum(R[0]) / 2
