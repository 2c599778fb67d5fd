"""`eval.probe_rows: final` (harness/eval_rows.py): the probes run on the base model and
after the last task only. R, items, answers and the probes' final values equal a full run's
bit for bit; the rows between hold null probe values (and null general-prompt answers);
validation, metrics, resume, report, terminal table and benchmark card take the nulls; the
hash moves only off the default; the dry run's estimate counts one probed row after
training instead of T.
"""

from __future__ import annotations

import json

import pytest
from test_eval_rows import STREAM, SUITE

from harness.cli import main
from harness.config import load_suite
from harness.eval_rows import probed_rows, probes_run
from harness.evaluation import GENERAL_PROMPTS_KEY
from harness.results import check_result
from helpers import cell_files, run_each, tiny_suite

PROBES = ["drift", "agreement"]  # agreement asks for the general prompts' answers
FINAL = "final"


def suite_for(folder, model, probe_rows: str | None):
    folder.mkdir(parents=True, exist_ok=True)
    evaluation = dict(SUITE["eval"], **({"probe_rows": probe_rows} if probe_rows else {}))
    return tiny_suite(folder, str(model), **{**SUITE, "probes": PROBES, "eval": evaluation})


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory):
    """The same sft cell under both probe schedules: {probe_rows: (result, samples, out)}."""
    return run_each(tmp_path_factory.mktemp("probe-rows"), tiny_model_dir, ("all", FINAL),
                    suite_for)


def test_schedule():
    assert [probes_run(FINAL, i, 3) for i in range(4)] == [True, False, False, True]
    assert [probes_run("all", i, 3) for i in range(4)] == [True] * 4
    assert [probed_rows(FINAL, T) for T in (1, 2, 4)] == [1, 1, 1]
    assert [probed_rows("all", T) for T in (1, 2, 4)] == [1, 2, 4]


def test_the_tasks_and_final_probes_equal_the_full_schedule(runs):
    full, fs, _ = runs["all"]
    cheap, cs, _ = runs[FINAL]
    T = len(STREAM)
    for scoring in ("strict", "content"):
        a, b = full["by_metric"][scoring], cheap["by_metric"][scoring]
        assert a["R"] == b["R"] and a["items"] == b["items"]
        assert a["metrics"] == b["metrics"]
    for task in STREAM:
        assert cs[task] == fs[task]
    assert cheap["metrics"] == full["metrics"]
    assert {f"{p}_{k}" for p in PROBES for k in ("final", "delta")} <= set(cheap["metrics"])
    for name in PROBES:
        a, b = full["probes"][name], cheap["probes"][name]
        assert b[0] == a[0] and b[T] == a[T] is not None
        assert b[1:T] == [None] * (T - 1) and None not in a
    general_full, general = fs[GENERAL_PROMPTS_KEY]["outputs"], cs[GENERAL_PROMPTS_KEY]["outputs"]
    assert general[0] == general_full[0] and general[T] == general_full[T]
    assert general[1:T] == [None] * (T - 1) and None not in general_full
    # rows 1..T-1 spend no time on probes
    assert cheap["timings"]["probes_s"] < full["timings"]["probes_s"]
    assert check_result(cheap) is None and check_result(full) is None
    assert full["eval_settings"] == {"batch_size": 4, "max_new_tokens": 4}
    assert cheap["eval_settings"]["probe_rows"] == FINAL
    assert full["config_hash"] != cheap["config_hash"]


def test_validation_puts_the_nulls_where_the_schedule_does(runs):
    cheap = runs[FINAL][0]
    for where, i in (("the last row", 3), ("row 0", 0)):
        holed = json.loads(json.dumps(cheap))
        holed["probes"]["drift"][i] = None
        assert check_result(holed) == f"probes.drift[{i}] is null in a row that runs the probes", where
    full = json.loads(json.dumps(cheap))
    full["eval_settings"].pop("probe_rows")  # the default: a null reads as not measured
    assert check_result(full) is None  # as lenient as before the setting existed
    wrong = {**cheap, "eval_settings": {"probe_rows": "some"}}
    assert "eval_settings.probe_rows is not one of all, final" in check_result(wrong)


def test_a_killed_cell_resumes_to_the_uninterrupted_result(runs, tiny_model_dir, tmp_path,
                                                          monkeypatch):
    from harness.runner import Runner
    from test_resume import _comparable

    out = tmp_path / "out"
    argv = ["run", "--suite", str(suite_for(tmp_path, tiny_model_dir, FINAL)), "--out",
            str(out), "--quiet", "--threads", "1"]
    train_one = Runner._train_one

    def stop_at_third(self, cell, method, model, ctx, task, split, index):
        if index == 2:
            raise RuntimeError("killed")
        return train_one(self, cell, method, model, ctx, task, split, index)

    monkeypatch.setattr(Runner, "_train_one", stop_at_third)
    assert main(argv) != 0
    monkeypatch.setattr(Runner, "_train_one", train_one)
    assert main(argv) == 0
    result, samples = cell_files(out)
    reference, reference_samples, _ = runs[FINAL]
    assert result["timings"]["resumed_after"] == [2]
    assert _comparable(result) == _comparable(reference)
    assert samples == reference_samples


def test_readers_take_the_nulls(runs):
    """The report (probe curves drawn over the rows that ran them), the terminal table and
    the benchmark card's probe deltas read a `final` cell as they read a full one."""
    from rich.console import Console

    from harness.ui import summary_table
    from helpers import load_script

    full, cheap, out = runs["all"][0], runs[FINAL][0], runs[FINAL][2]
    assert main(["report", str(out)]) == 0
    assert any(p.name.startswith("curves") for p in (out / "plots").iterdir())
    console = Console(width=200, record=True)
    console.print(summary_table([cheap]))
    assert f"{cheap['metrics']['drift_final']:.3f}" in console.export_text()
    card = load_script("benchmark_card")
    assert card.metric(cheap, "strict", "acc") == card.metric(full, "strict", "acc")
    lines = card.forgetting_lines({0: cheap}, PROBES, ["strict"])
    assert lines == card.forgetting_lines({0: full}, PROBES, ["strict"])


def test_cell_hash_moves_only_off_the_default(tmp_path, tiny_model_dir):
    from harness.grid import expand, plan
    from harness.runner import base_row_key

    def planned(probe_rows):
        suite = load_suite(str(suite_for(tmp_path / str(probe_rows), tiny_model_dir, probe_rows)))
        return plan(expand(suite)[0], suite)

    unset, default, cheap = planned(None), planned("all"), planned(FINAL)
    assert unset.config_hash == default.config_hash != cheap.config_hash
    assert "probe_rows" not in default.parts["eval"]
    assert cheap.parts["eval"]["probe_rows"] == FINAL
    assert base_row_key(unset) == base_row_key(cheap)  # row 0 is shared


def test_dry_run_estimate_counts_the_probed_rows(tmp_path, tiny_model_dir, runs, capsys):
    """Probes are paid in T rows after training under `all`, in 1 under `final`; measured
    from a `final` cell, a probed row's seconds are its probes_s over its one probed row."""
    from harness.grid import CPU_135M_ITEM_S, CPU_135M_PROBE_S, estimate, expand, \
        measured_seconds

    suites = {r: load_suite(str(suite_for(tmp_path / r, tiny_model_dir, r)))
              for r in ("all", FINAL)}
    cell = {r: expand(s)[0] for r, s in suites.items()}
    probe_s = sum(CPU_135M_PROBE_S[p] for p in PROBES)
    for r, probed in (("all", 3), (FINAL, 1)):
        e = estimate(cell[r], suites[r], {})
        assert e["eval_s"] == pytest.approx(probed * probe_s + 9 * 6 * CPU_135M_ITEM_S)
    measured = {"sft": {"step": 1.0, "item": 0.5, "probes_row": 6.0}}
    e = estimate(cell[FINAL], suites[FINAL], measured)
    assert e["eval_s"] == pytest.approx(1 * 6.0 + 9 * 6 * 0.5) and e["probes_s"] == 6.0
    cheap = runs[FINAL][0]
    assert measured_seconds(runs[FINAL][2])["sft"]["probes_row"] == pytest.approx(
        cheap["timings"]["probes_s"])  # one probed row after training
    assert main(["run", "--suite", str(tmp_path / FINAL / "suite.yaml"), "--out",
                 str(tmp_path / "out"), "--dry-run"]) == 0
    assert "eval.probe_rows final" in capsys.readouterr().out.replace("\n", " ")
