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
    assert scores.final_items({"items": items}, tasks) == ([0, 1, 1, 1, 1, 0, 1], None)
    assert scores.final_items({"items": {"t1": [[1]]}}, tasks)[1] == \
        "items[t1] is not a list of T+1 rows"


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


def _grid(root):
    """Cells of 3 methods x 2 streams x 2 seeds with distinct values, one null bwt, item
    scores and probes of both directions."""
    from tests.synthetic_cells import R_for, write_cell

    items = {"t1": [[0, 0, 1], [1, 1, 1], [0, 1, 0]], "t2": [[0, 0, 0], [0, 0, 1], [1, 1, 0]]}
    for i, method in enumerate(["sft", "A", "B"]):
        for stream in ("s1", "s2"):
            for seed in (0, 1):
                acc = 0.3 + 0.1 * i + 0.03 * seed + (0.01 if stream == "s2" else 0.0)
                write_cell(root, "m", stream, method, seed, R_for(acc), items=items,
                           tasks=["t1", "t2"],
                           probes={"drift": [0.0, 0.1 * i, 0.2 + seed / 10],
                                   "knowledge": [0.5, 0.4, 0.3 + i / 10]},
                           metrics={"bwt": None} if (method, seed) == ("B", 1) else None)


def test_report_and_leaderboard_give_the_same_values_and_directions(tmp_path):
    # the same cells through `harness report`'s collect and the leaderboard's table: every
    # metric both show has the same direction and, per method and (stream, seed), the
    # same value; the leaderboard's own metrics (task_gain, probe changes) follow the rule
    from harness.cells import read_cells
    from harness.leaderboard.board import leaderboard_data
    from harness.leaderboard.entries import Entry, metric_catalogue, score_table
    from harness.report.collect import collect

    _grid(tmp_path)
    records = read_cells(tmp_path).records
    report = collect(read_cells(tmp_path), reference="sft", alpha=0.05, confidence=0.95,
                     n_resamples=9, n_permutations=9, n_iqm_resamples=9, n_item_resamples=9,
                     seed=0)
    entries = [Entry(m, {"suite": {"probes": ["drift", "knowledge"]}},
                     {r.data["cell_id"]: r.data for r in records if r.method == m}, False)
               for m in ("A", "B", "sft")]
    catalogue = {c["key"]: c["higher_is_better"] for c in metric_catalogue(entries)}
    board = score_table(entries, list(catalogue))
    published = leaderboard_data(entries, {})
    shared = set(catalogue) & set(report.metrics)
    assert shared == {"acc", "bwt", "forgetting", "plasticity", "forgotten_items",
                      "drift_final", "knowledge_final"}
    assert {c["key"]: c["higher_is_better"] for c in published["metrics"]} == catalogue
    for metric in shared:
        assert catalogue[metric] == report.metrics[metric] == scores.higher_is_better(
            metric, report.probes)
        by_pair = board.by_pair(metric)
        from_report = {m: {(model, stream, seed): v for (model, stream, k), by in
                           report.values.items() if k == metric
                           for seed, v in by.get(m, {}).items()} for m in ("A", "B", "sft")}
        assert by_pair == from_report
        assert sum(map(len, by_pair.values())) == (10 if metric == "bwt" else 12)
        for m, cells in published["methods"].items():
            for cell in cells["cells"].values():
                key = (cell["model"], cell["stream"], cell["seed"])
                assert cell["values"][metric] == (round(from_report[m][key], 6)
                                                  if key in from_report[m] else None)
    assert report.nulls[("m", "s1", "bwt")] == report.nulls[("m", "s2", "bwt")] == {"B": [1]}
    assert not catalogue["drift_final"] and not catalogue["drift_delta"]
    assert catalogue["knowledge_delta"] and not catalogue["forgotten_items"]
    assert by_pair_value(board, "forgotten_items", "A") == 2.0


def by_pair_value(table, metric, method):
    (value, *_), = [set(table.by_pair(metric)[method].values())]
    return value


def test_the_direction_rule_has_one_definition():
    # grep: no module but harness/scores.py defines a direction rule, reads a metric's or a
    # probe's declared direction (the definitions in metrics.py and probes.py; results.py
    # records the probes' into probe_info; `harness list probes` lists them) or spells a
    # metric -> direction table of its own
    import ast
    import re
    from pathlib import Path

    from harness.metrics import METRICS

    root = Path(scores.__file__).parent
    allowed = {"scores.py", "metrics.py", "probes.py", "results.py", "listing.py"}
    names = set(METRICS) | set(scores.ITEM_METRICS) | {"task_gain"}
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (isinstance(node, ast.FunctionDef) and rel != "scores.py"
                    and node.name in {"higher_is_better", "directions", "probe_directions"}):
                found.append(f"{rel}: defines {node.name}")
            if (isinstance(node, ast.Attribute) and node.attr == "higher_is_better"
                    and rel not in allowed):
                found.append(f"{rel}:{node.lineno}: reads .higher_is_better")
            if isinstance(node, ast.Dict) and rel != "scores.py" and any(
                    isinstance(k, ast.Constant) and k.value in names
                    and isinstance(v, ast.Constant) and isinstance(v.value, bool)
                    for k, v in zip(node.keys, node.values)):
                found.append(f"{rel}:{node.lineno}: a metric -> bool table")
        if rel != "scores.py" and re.search(r"LOWER_IS_BETTER|HIGHER_IS_BETTER", path.read_text()):
            found.append(f"{rel}: a direction set")
    assert found == []
    # and the check can fail: the rule's own module trips it
    assert "def higher_is_better" in (root / "scores.py").read_text()
