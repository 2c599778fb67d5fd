"""`eval.rows: own-and-final` (harness/eval_rows.py): each task evaluated right after its own
training, every task after the last. What it evaluates equals a full schedule's run bit for
bit (answers, R, items, ACC, BWT, plasticity, item flips); what it skips is null, and the
metrics that need it are null with the reason; report, leaderboard, verify, resume and the
dry run's estimate handle it; the cell hash moves only when the setting is not the default.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import cell_files, run_each, tiny_suite

from harness.cli import main
from harness.config import load_suite
from harness.eval_rows import evaluated_entries, row_tasks
from harness.metrics import cell_metrics, not_evaluated
from harness.results import check_result
from harness.scores import item_flips

STREAM = ["arith", "json-extract", "classify"]
SUITE = dict(streams={"three": STREAM}, methods={"sft": {}}, probes=["drift"],
             train={"steps": 2, "lr": 1e-3, "batch_size": 4, "max_len": 64},
             data={"n_train": 8, "n_test": 6},
             # one generation budget for every task: lm-eval batches their items together
             eval={"batch_size": 4, "max_new_tokens": 4})
CHEAP = "own-and-final"


def suite_for(folder: Path, model, rows: str | None, **more) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    evaluation = dict(SUITE["eval"], **({"rows": rows} if rows else {}))
    return tiny_suite(folder, str(model), **{**SUITE, "eval": evaluation, **more})


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory):
    """The same sft cell run under both schedules: {rows: (result, samples, out)}."""
    return run_each(tmp_path_factory.mktemp("eval-rows"), tiny_model_dir, ("all", CHEAP),
                    suite_for)


def test_schedule():
    assert [list(row_tasks(CHEAP, i, 3)) for i in range(4)] == [[0, 1, 2], [0], [1], [0, 1, 2]]
    assert [list(row_tasks("all", i, 3)) for i in range(4)] == [[0, 1, 2]] * 4
    assert [evaluated_entries(CHEAP, T) for T in (1, 2, 3, 4)] == [1, 3, 5, 7]
    assert [evaluated_entries("all", T) for T in (1, 2, 3, 4)] == [1, 4, 9, 16]


def test_what_it_evaluates_equals_the_full_schedule(runs):
    full, fs, _ = runs["all"]
    cheap, cs, _ = runs[CHEAP]
    T = len(STREAM)
    for scoring in ("strict", "content"):
        a, b = full["by_metric"][scoring], cheap["by_metric"][scoring]
        for i in range(T + 1):
            for j, task in enumerate(STREAM):
                if j in row_tasks(CHEAP, i, T):  # row 0, the diagonal, the final row
                    assert b["R"][i][j] == a["R"][i][j] and b["items"][task][i] == \
                        a["items"][task][i], (scoring, i, j)
                else:  # null, never 0
                    assert b["R"][i][j] is None and b["items"][task][i] is None
                    assert a["R"][i][j] is not None
    for i in range(T + 1):  # the answers themselves, item for item
        for j, task in enumerate(STREAM):
            assert cs[task]["outputs"][i] == (fs[task]["outputs"][i]
                                              if j in row_tasks(CHEAP, i, T) else None)
    for name in ("acc", "bwt", "plasticity"):
        assert cheap["metrics"][name] == full["metrics"][name] is not None
    assert cheap["probes"] == full["probes"]
    assert [cheap["metrics"][n] for n in ("aia", "fwt", "forgetting")] == [None] * 3
    assert None not in [full["metrics"][n] for n in ("aia", "fwt", "forgetting")]
    assert set(cheap["metrics_not_evaluated"]) == {"aia", "fwt", "forgetting"}
    assert "metrics_not_evaluated" not in full
    fa, fb = item_flips(full["items"], STREAM), item_flips(cheap["items"], STREAM)
    assert (fb["forgotten_items"], fb["learned_items"]) == (fa["forgotten_items"],
                                                          fa["learned_items"])
    assert all(fb[k][t][-1] == fa[k][t][-1] for k in ("forgotten", "learned") for t in STREAM)
    assert check_result(cheap) is None
    # evaluated entries of R after training: 5 of 9 (quoted in docs/suites.md)
    entries = [sum(x is not None for row in r["R"][1:] for x in row) for r in (full, cheap)]
    assert entries == [9, 5]
    # the setting is hashed only where it is not the default
    assert full["eval_settings"] == {"batch_size": 4, "max_new_tokens": 4}
    assert cheap["eval_settings"]["rows"] == CHEAP
    assert full["config_hash"] != cheap["config_hash"]


def test_skipped_batches_are_whole_batches_of_a_full_row(tiny, monkeypatch):
    """Every batch a partial row generates is one a full row generates (the same items, so
    the same padding and answers); the batches it skips hold no item of a wanted task."""
    from lm_eval.models.huggingface import HFLM

    from harness.config import EvalSettings
    from harness.evaluation import Evaluator
    from harness.tasks import get_task

    model, tok = tiny
    batches: list[tuple] = []
    original = HFLM._model_generate

    def recording(self, context, **kwargs):
        mask = kwargs["attention_mask"].tolist()
        batches.append(tuple(tuple(int(t) for t, m in zip(row, keep) if m)
                             for row, keep in zip(context.tolist(), mask)))
        return original(self, context, **kwargs)

    monkeypatch.setattr(HFLM, "_model_generate", recording)
    tasks = [get_task(t) for t in STREAM]
    evaluator = Evaluator(tasks, [t.split(4, 6, 0) for t in tasks], [],
                          EvalSettings(batch_size=4, max_new_tokens=4), tok)
    full_row = evaluator.evaluate(model)
    full, batches[:] = list(batches), []
    part = evaluator.evaluate(model, range(1, 2))
    assert set(batches) <= set(full) and len(batches) < len(full)
    generated = sum(map(len, batches))
    assert generated > 6  # a kept batch holds items of the skipped tasks too
    assert part.outputs["json-extract"] == full_row.outputs["json-extract"]
    assert part.items["json-extract"] == full_row.items["json-extract"]
    assert part.scores["arith"] is part.items["classify"] is part.outputs["arith"] is None


def test_metrics_of_a_partial_R_by_hand():
    """A hand-made R: ACC, BWT and plasticity from the diagonal and final row alone equal
    those of the full R; AIA, FWT and forgetting need the rest and are null, with why."""
    full = [[0.1, 0.2, 0.0], [0.8, 0.3, 0.1], [0.5, 0.9, 0.2], [0.4, 0.6, 0.7]]
    part = [[0.1, 0.2, 0.0], [0.8, None, None], [None, 0.9, None], [0.4, 0.6, 0.7]]
    a, b = cell_metrics(full), cell_metrics(part)
    assert b["acc"] == a["acc"] == pytest.approx((0.4 + 0.6 + 0.7) / 3)
    assert b["bwt"] == a["bwt"] == pytest.approx(((0.4 - 0.8) + (0.6 - 0.9)) / 2)
    assert b["plasticity"] == a["plasticity"] == pytest.approx((0.7 + 0.7 + 0.7) / 3)
    assert a["forgetting"] == pytest.approx(((0.8 - 0.4) + (0.9 - 0.6)) / 2)
    assert b["aia"] is b["fwt"] is b["forgetting"] is None
    assert "R[l][j] for every row l in 1..T-1" in not_evaluated(part)["forgetting"]
    assert not_evaluated(full) == {}
    base = {"status": "complete", "cell": {"model": "m", "stream": "s", "method": "x",
                                           "seed": 0}, "metrics": b,
            "eval_settings": {"rows": CHEAP}}
    assert check_result({**base, "R": part}) is None
    assert "R[1][1] is not a finite" in check_result({**base, "eval_settings": {}, "R": part})
    for i, j in ((0, 1), (3, 1), (2, 1)):  # row 0, the final row, the diagonal: evaluated
        holed = [list(r) for r in part]
        holed[i][j] = None
        assert f"R[{i}][{j}] is not a finite number" in check_result({**base, "R": holed})


def test_a_killed_cell_resumes_to_the_uninterrupted_result(runs, tiny_model_dir, tmp_path,
                                                          monkeypatch):
    """A cell that stops after its second task (checkpoint written) and is run again goes on
    from the checkpoint and ends with the uninterrupted run's result and answers."""
    from harness.runner import Runner
    from test_resume import _comparable

    suite, out = suite_for(tmp_path, tiny_model_dir, CHEAP), tmp_path / "out"
    argv = ["run", "--suite", str(suite), "--out", str(out), "--quiet", "--threads", "1"]
    train_one = Runner._train_one

    def stop_at_third(self, cell, method, model, ctx, task, split, index):
        if index == 2:
            raise RuntimeError("killed")
        return train_one(self, cell, method, model, ctx, task, split, index)

    monkeypatch.setattr(Runner, "_train_one", stop_at_third)
    assert main(argv) != 0
    (folder,) = (out / "cells").iterdir()
    assert (folder / "checkpoint.pt").exists()
    monkeypatch.setattr(Runner, "_train_one", train_one)
    assert main(argv) == 0
    result, samples = cell_files(out)
    reference, reference_samples, _ = runs[CHEAP]
    assert result["timings"]["resumed_after"] == [2]
    assert _comparable(result) == _comparable(reference)
    assert samples == reference_samples


def test_report_renders_and_says_why_metrics_are_null(runs, capsys):
    out = runs[CHEAP][2]
    assert main(["report", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "metric fwt: null in 1 cell(s): needs R[j-1][j]" in report
    assert "eval.rows: own-and-final does not evaluate" in report
    assert {p.name.split("_")[0] for p in (out / "plots").iterdir()} >= {"curves", "r"}


def test_leaderboard_renders_cells_with_null_entries(tmp_path, monkeypatch):
    """The synthetic board of tests/test_leaderboard.py with the intermediate entries of
    every cell nulled as `own-and-final` leaves them: the same ranking, and the page shows
    them as not evaluated."""
    import test_leaderboard as L

    from harness import bundle as B

    monkeypatch.setattr(L.V, "static_problems", L.checksum_only)
    L.make_board(tmp_path)
    _, before = L.built(tmp_path)
    subs = tmp_path / "leaderboard" / "submissions"
    for path in subs.glob("*/cells/*/result.json"):
        data = json.loads(path.read_text())
        T = len(data["R"][0])
        for i in range(1, T):
            for j, task in enumerate(data["tasks"]):
                if j not in row_tasks(CHEAP, i, T):
                    data["R"][i][j] = data["items"][task][i] = None
        data["eval_settings"] = {"rows": CHEAP}  # else the nulls make the cell invalid
        data["metrics"] = cell_metrics(data["R"], data["probes"])
        data["metrics_not_evaluated"] = not_evaluated(data["R"])
        path.write_text(json.dumps(data))
    for bundle in subs.iterdir():
        (bundle / B.CHECKSUMS).write_text(B.format_checksums(B.file_checksums(bundle)))
    _, after = L.built(tmp_path)
    for metric in ("acc", "bwt"):  # read from the diagonal and the final row: unchanged
        a, b = (d["views"]["all"]["metrics"][metric] for d in (before, after))
        assert a["order"] == b["order"] and a["methods"] == b["methods"]
    page = (tmp_path / "leaderboard" / "index.html").read_text()
    assert "(&#8211;: not evaluated, eval.rows: own-and-final)" in page
    assert re.search(r"<th>after t1</th><td>[0-9.]+</td><td>&#8211;</td>", page)  # R[1][2]


def test_cell_hash_moves_only_off_the_default(tmp_path, tiny_model_dir):
    from harness.grid import expand, plan
    from harness.runner import base_row_key

    def planned(rows):
        suite = load_suite(str(suite_for(tmp_path / str(rows), tiny_model_dir, rows)))
        return plan(expand(suite)[0], suite)

    unset, default, cheap = planned(None), planned("all"), planned(CHEAP)
    assert unset.config_hash == default.config_hash != cheap.config_hash
    assert "rows" not in default.parts["eval"] and cheap.parts["eval"]["rows"] == CHEAP
    assert base_row_key(unset) == base_row_key(cheap)  # row 0 is shared


def test_dry_run_estimate_counts_the_entries(tmp_path, tiny_model_dir, runs, capsys):
    """The test items answered grow with the entries evaluated (5 of 9) and the items a
    task; the probes are paid in every row; a cheap cell's answered items are counted from
    its non-null entries, so its timings give the seconds an item."""
    from harness.cost import cell_seconds
    from harness.grid import CPU_135M_ITEM_S, CPU_135M_PROBE_S, answered_items, estimate, expand
    from harness.memory import architecture

    suites = {rows: load_suite(str(suite_for(tmp_path / rows, tiny_model_dir, rows)))
              for rows in ("all", CHEAP)}
    cell = {rows: expand(s)[0] for rows, s in suites.items()}
    full, cheap = (estimate(cell[r], suites[r], {}) for r in ("all", CHEAP))
    for e, entries in ((full, 9), (cheap, 5)):  # 6 test items a task
        assert e["eval_s"] == pytest.approx(3 * CPU_135M_PROBE_S["drift"]  # its one probe
                                            + entries * 6 * CPU_135M_ITEM_S)
    measured = {"sft": {"step": 1.0, "item": 0.5, "probes_row": 6.0}}
    assert estimate(cell[CHEAP], suites[CHEAP], measured)["eval_s"] == pytest.approx(
        3 * 6.0 + 5 * 6 * 0.5)
    assert estimate(cell[CHEAP], suites[CHEAP], measured)["row_s"] == pytest.approx(6.0 + 3 * 6 * 0.5)
    assert answered_items(runs[CHEAP][0]) == 5 * 6 and answered_items(runs["all"][0]) == 9 * 6
    arch = architecture(str(tiny_model_dir))
    gpu = {r: cell_seconds(cell[r], suites[r], arch, "H100") for r in ("all", CHEAP)}
    assert gpu[CHEAP]["base_row"] == gpu["all"]["base_row"]
    trained = {r: gpu[r]["evaluate"] - gpu[r]["base_row"] for r in gpu}
    assert trained[CHEAP] == pytest.approx(trained["all"] * 5 / 9)  # one budget for all tasks
    assert main(["run", "--suite", str(tmp_path / CHEAP / "suite.yaml"), "--out",
                 str(tmp_path / "out"), "--dry-run"]) == 0
    assert "eval.rows own-and-final" in capsys.readouterr().out.replace("\n", " ")


def test_other_readers_take_the_nulls(runs):
    """The benchmark card's per-item terms and metrics, the run's terminal table and the
    verifier's re-run comparison read a cheap cell as they read a full one."""
    from rich.console import Console

    from harness.ui import summary_table
    from harness.verify import compare
    from helpers import load_script

    full, cheap = runs["all"][0], runs[CHEAP][0]
    card = load_script("benchmark_card")
    for name in ("acc", "bwt", "plasticity"):
        for scoring in ("strict", "content"):
            assert card.metric(cheap, scoring, name) == card.metric(full, scoring, name)
            assert card.item_values(cheap, scoring, name) == card.item_values(full, scoring, name)
    console = Console(width=200, record=True)
    console.print(summary_table([cheap]))
    assert f"{cheap['metrics']['acc']:.3f}" in console.export_text()
    assert compare(cheap, cheap, exact=True) == {"max_abs_diff": 0.0, "problem": None}
    filled = json.loads(json.dumps(cheap))
    filled["R"][1][1] = 0.0  # an entry the schedule skips, filled in: a difference
    assert compare(cheap, filled, exact=False)["problem"] == "R[1][1] is None in the bundle, 0.0 re-run"


def test_verifier_checks_the_nulls_against_the_schedule(runs, tmp_path):
    """A bundled cheap cell passes the static check; one whose null pattern is not its
    schedule's (an entry filled in, or a diagonal entry dropped) is refused."""
    import shutil

    from harness.grid import expand
    from harness.verify import _cell_problem

    out = runs[CHEAP][2]
    suite = load_suite(str(out.parent / "suite.yaml"))
    (cell,) = expand(suite)
    folder = tmp_path / cell.id
    shutil.copytree(out / "cells" / cell.id, folder)
    data = json.loads((folder / "result.json").read_text())
    sha256 = data["method_source"]["sha256"]
    assert _cell_problem(folder, cell, suite, sha256) is None
    for (i, j, value), why in (((1, 1, 0.0), "R[1][1] (json-extract) is evaluated where "
                                               "eval.rows skips it"),
                               ((2, 1, None), "R[2][1] is not a finite number")):
        changed = json.loads(json.dumps(data))
        changed["R"][i][j] = value
        changed["items"][STREAM[j]][i] = None if value is None else [value] * 6
        (folder / "result.json").write_text(json.dumps(changed))
        assert why in _cell_problem(folder, cell, suite, sha256)
