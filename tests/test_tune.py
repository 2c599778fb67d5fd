"""`harness tune` (issue 31 item 3): every method's declared grid of 4 settings on the
suite's validation streams, the pre-registered criterion, the table, the chosen settings
that `harness run --settings` applies, and the item-identical-to-SFT flag."""

import json
import re

import pytest

from harness.cli import main
from harness.config import PER_SEED, load_suite
from harness.errors import HarnessError
from harness.methods import METHODS
from harness.overrides import settings_sets
from harness.tune import BUDGET, edge_of, edge_note, setting_suite, settings_of, tune_plan
from helpers import tiny_suite

TUNE = {"streams": {"val": ["json-extract"]}, "seeds": [0], "select": "acc"}


def _suite(tmp_path, model, **over):
    return tiny_suite(tmp_path, model, methods={"sft": {}, "ewc": {"fisher_examples": 2}},
                      probes=[], train={"steps": 2, "lr": 1e-3, "batch_size": 4, "max_len": 96},
                      data={"n_train": 4, "n_test": 4}, tune=TUNE, **over)


def test_tune_end_to_end_on_the_tiny_model(tmp_path, tiny_model_dir, capsys, monkeypatch):
    path = _suite(tmp_path, str(tiny_model_dir))
    out = tmp_path / "tune"
    assert main(["tune", "--suite", str(path), "--out", str(out), "--dry-run"]) == 0
    assert "8 tuning cells to run (2 methods x 4 settings" in capsys.readouterr().out
    assert not out.exists()
    assert main(["tune", "--suite", str(path), "--out", str(out), "--quiet"]) == 0
    table = json.loads((out / "tuning.json").read_text())
    assert table["select"] == "acc" and table["primary"] == "strict" and table["budget"] == 4
    sft, ewc = table["methods"]["sft"], table["methods"]["ewc"]
    # sft declares no knobs: its learning rate x (0.25, 0.5, 1, 2); ewc its lambdas
    assert [r["setting"] for r in sft["settings"]] == [{"train.lr": x} for x in
                                                        (2.5e-4, 5e-4, 1e-3, 2e-3)]
    assert [r["setting"]["lambda"] for r in ewc["settings"]] == [1e4, 1e5, 1e6, 1e7]
    for entry in (sft, ewc):
        scores = [r["score"] for r in entry["settings"]]
        assert all(r["cells"] == 1 for r in entry["settings"])
        assert entry["chosen"] == scores.index(max(scores))  # the first best: ties to the first
        assert entry["complete"]
    # the tuning cells live in their own folders, on the validation stream only
    cells = sorted(p.parent.name for p in (out / "tuning").glob("*/*/cells/*/result.json"))
    assert len(cells) == 8 and all("__val__" in c for c in cells)
    # on a one-task stream EWC has no penalty yet: item for item SFT at the same rate
    assert ewc["identical_to_sft"] is True and sft["identical_to_sft"] is None
    assert "item-identical to sft" in (out / "tuning.md").read_text()
    for name, entry in (("sft", sft), ("ewc", ewc)):  # the edge note agrees with the choice
        row = next(line for line in (out / "tuning.md").read_text().splitlines()
                   if line.startswith(f"| {name} |") and "**yes**" in line)
        assert ("at the grid's edge" in row) == (entry["chosen"] in (0, 3)), row
    tuned = json.loads((out / "tuned.json").read_text())
    assert tuned["methods"]["ewc"]["setting"] == ewc["settings"][ewc["chosen"]]["setting"]
    assert "ewc: {'lambda'" in capsys.readouterr().out
    # a re-run keeps the complete cells and writes the same table
    assert main(["tune", "--suite", str(path), "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "tuning.json").read_text())["methods"] == table["methods"]
    capsys.readouterr()
    assert main(["tune", "--suite", str(path), "--out", str(out), "--dry-run"]) == 0
    assert "0 tuning cells to run" in capsys.readouterr().out

    # `harness run --settings` applies the chosen settings to the ranked grid
    suite = load_suite(str(path))
    sets = settings_sets(str(out / "tuned.json"), suite)
    lam = ewc["settings"][ewc["chosen"]]["setting"]["lambda"]
    assert f"ewc.lambda={json.dumps(lam)}" in sets
    seen = {}
    monkeypatch.setattr("harness.dryrun.dry_run", lambda suite, *a, **k: seen.update(
        {m.name: m for m in suite.methods}) or 0)
    assert main(["run", "--suite", str(path), "--out", str(tmp_path / "run"), "--dry-run",
                 "--settings", str(out / "tuned.json"), "--set", "sft.train.steps=3"]) == 0
    assert seen["ewc"].params["lambda"] == lam and seen["ewc"].params["fisher_examples"] == 2
    assert seen["sft"].train.lr == sft["settings"][sft["chosen"]]["setting"]["train.lr"]
    assert seen["sft"].train.steps == 3  # the user's own --set still applies


def test_tune_with_two_workers_writes_the_one_process_table(tmp_path, tiny_model_dir, capsys):
    """`--jobs 2 --threads 1`: the settings' cells run in two worker processes that split
    them through the claims, each cell once, and the table and chosen settings are those of
    one process at one thread (the cells are deterministic at a fixed thread count)."""
    path = _suite(tmp_path, str(tiny_model_dir))
    args = ["tune", "--suite", str(path), "--threads", "1", "--quiet", "--out"]
    assert main(args + [str(tmp_path / "two"), "--jobs", "2", "--dry-run"]) == 0
    assert re.search(r"8 tuning cells to run .* estimated [\d.]+ \w+ in one process; about "
                     r"[\d.]+ \w+ of wall clock with 2 workers \(an estimate",
                     capsys.readouterr().out)
    assert main(args + [str(tmp_path / "one"), "--jobs", "1"]) == 0
    capsys.readouterr()
    assert main(args + [str(tmp_path / "two"), "--jobs", "2"]) == 0
    log = capsys.readouterr().out
    assert "2 workers x 1 torch threads" in log
    trained = re.findall(r"^\[(w\d)\] +after json-extract:", log, re.M)  # by whom
    assert len(trained) == 8 and set(trained) == {"w1", "w2"}  # each cell once, both worked
    assert len(list((tmp_path / "two" / "tuning").glob("*/*/cells/*/result.json"))) == 8
    one, two = (json.loads((tmp_path / d / "tuning.json").read_text()) for d in ("one", "two"))
    assert two == one and all(e["complete"] for e in two["methods"].values())
    assert (tmp_path / "two" / "tuned.json").read_text() == \
        (tmp_path / "one" / "tuned.json").read_text()
    assert not list((tmp_path / "two").rglob("claim.json"))
    assert not list((tmp_path / "two" / "tuning").glob(".plan-*"))
    # a re-run with workers skips the complete cells and writes the same table
    assert main(args + [str(tmp_path / "two"), "--jobs", "2"]) == 0
    assert "after json-extract:" not in capsys.readouterr().out
    assert json.loads((tmp_path / "two" / "tuning.json").read_text()) == one


FLAKY = """
from harness.methods import Method


class Flaky(Method):
    name = "flaky"
    version = "1"
    defaults = {"k": 1}
    tune = {"k": [1, 2, 3, 4]}

    def setup(self, ctx):
        if self.params["k"] == 3:
            raise RuntimeError("k=3 breaks")
"""


def test_a_failing_cell_in_a_worker_fails_alone(tmp_path, tiny_model_dir, capsys):
    """With workers, a setting whose cell fails is marked in the table (incomplete, never
    chosen), the others are tuned, and the command says which cell failed (exit 2)."""
    (tmp_path / "flaky.py").write_text(FLAKY)
    path = _suite(tmp_path, str(tiny_model_dir))
    text = path.read_text().replace("ewc:\n    fisher_examples: 2", "flaky.py:Flaky: {}")
    path.write_text(text.replace("  sft: {}\n", ""))
    out = tmp_path / "o"
    assert main(["tune", "--suite", str(path), "--out", str(out), "--quiet", "--jobs", "2",
                 "--threads", "1"]) == 2
    assert re.search(r"1 tuning cell\(s\) failed \(first: \S+__val__flaky__s0: .*RuntimeError: "
                     "k=3 breaks", capsys.readouterr().err)
    flaky = json.loads((out / "tuning.json").read_text())["methods"]["flaky"]
    assert [r["cells"] for r in flaky["settings"]] == [1, 1, 0, 1]
    assert not flaky["complete"] and flaky["chosen"] != 2 and flaky["chosen"] is not None


def test_every_builtin_method_has_the_same_budget():
    suite_methods = load_suite("leaderboard").methods
    assert len(suite_methods) == 14
    for method in suite_methods:
        assert len(settings_of(method)) == BUDGET, method.name
    ewc = next(m for m in suite_methods if m.name == "ewc")
    assert [s["lambda"] for s in settings_of(ewc)] == [1e4, 1e5, 1e6, 1e7]


@pytest.mark.parametrize("block, problem", [
    (None, "has no `tune:` block"),
    ({"streams": {"v": ["arith", "json-extract"]}, "seeds": [0], "select": "acc"},
     "is the ranked stream 'two'"),
    ({"streams": {"two": ["facts"]}, "seeds": [0], "select": "acc"}, "is the ranked stream"),
    ({"streams": {"v": ["facts"]}, "seeds": [0, 1, 2], "select": "acc"}, "1 or 2 seeds"),
    ({"streams": {"v": ["facts"]}, "seeds": [0], "select": "accuracy"}, "select must be"),
    ({"streams": ["no-such-stream"], "seeds": [0], "select": "acc"}, "streams must name"),
    ({"streams": {"v": ["facts"]}, "seeds": [0]}, "missing key 'select'"),
    ({"streams": {"v": ["facts"]}, "seeds": [0], "select": "acc", "n_test": 0}, "n_test must be"),
    ({"streams": {"v": ["facts"]}, "seeds": [0], "select": "acc", "n_test": "64"},
     "n_test must be"),
])
def test_a_bad_tune_block_is_one_line(tmp_path, tiny_model_dir, block, problem, capsys):
    path = tiny_suite(tmp_path, str(tiny_model_dir), **({"tune": block} if block else {}))
    with pytest.raises(HarnessError, match=problem):
        tune_plan(load_suite(str(path)))
    assert main(["tune", "--suite", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "o" / "tuning").exists()


def test_settings_for_another_suite_are_refused(tmp_path, tiny_model_dir):
    path = tiny_suite(tmp_path, str(tiny_model_dir))
    tuned = tmp_path / "tuned.json"
    tuned.write_text(json.dumps({"suite": "other", "select": "acc", "methods": {}}))
    with pytest.raises(HarnessError, match="tuned for suite 'other'"):
        settings_sets(str(tuned), load_suite(str(path)))
    tuned.write_text("[]")
    assert main(["run", "--suite", str(path), "--dry-run", "--settings", str(tuned)]) == 2


def test_a_method_off_budget_is_refused(monkeypatch):
    suite = load_suite("leaderboard")
    ewc = next(m for m in suite.methods if m.name == "ewc")
    monkeypatch.setattr(METHODS["ewc"], "tune", {"lambda": [1.0, 2.0, 3.0]})  # a class's own wins
    with pytest.raises(HarnessError, match="declares 3 settings; the budget is 4"):
        settings_of(ewc)
    monkeypatch.setattr(METHODS["ewc"], "tune", {"lambda": [1.0, 2.0], "gamma": [0.5, 1.0]})
    assert settings_of(ewc)[1] == {"lambda": 1.0, "gamma": 1.0}  # 2 x 2 = 4: allowed


def test_leaderboard_v2_draft_is_a_valid_tuned_grid():
    from harness.grid import expand

    suite = load_suite("leaderboard-v2")
    plan = tune_plan(suite)
    assert suite.primary == "content" and len(suite.methods) == 14
    assert plan.streams == {"tune-val": ["json-extract", "facts", "classify"]}
    assert not set(map(tuple, plan.streams.values())) & set(map(tuple, suite.streams.values()))
    assert all(len(tasks) >= 3 for tasks in suite.streams.values())
    assert len(suite.streams) * len(suite.seeds) >= 12  # (stream, seed) pairs a method
    assert suite.data.n_test >= 200 and "knowledge-v2" in suite.probes
    assert suite.data.seed == PER_SEED  # items a random factor: drawn with each seed
    assert len(expand(suite)) == 14 * 2 * 6
    # validation cells answer fewer items (selection, not ranking), recorded in the table
    variant = setting_suite(suite, plan, suite.methods[0])
    assert variant.data.n_test == plan.n_test < suite.data.n_test
    assert variant.data.n_train == suite.data.n_train and variant.eval == suite.eval
    assert variant.probes == [] and suite.probes  # selection reads the tasks' scores only


@pytest.mark.parametrize("option", [["--jobs", "0"], ["--threads", "0"], ["--threads", "100000"]])
def test_bad_jobs_or_threads_for_tune_are_one_line(tmp_path, tiny_model_dir, capsys, option):
    path = _suite(tmp_path, str(tiny_model_dir))
    assert main(["tune", "--suite", str(path), "--dry-run", *option]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: --") and "Fix:" in err and "Traceback" not in err


def test_ctrl_c_stops_tunings_workers_cleanly_and_a_rerun_resumes(tmp_path, tiny_model_dir):
    """`harness tune --jobs 2` interrupted: exit 130, both workers gone, no claim left, no
    tuning table written as if complete; the cells stay resumable (none is complete)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    suite = tiny_suite(tmp_path, str(tiny_model_dir), methods={"sft": {}}, probes=[], tune=TUNE,
                       train={"steps": 5000, "lr": 1e-3, "batch_size": 4, "max_len": 96})
    out = tmp_path / "out"
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    parent = subprocess.Popen(  # SIGINT's default, as from a terminal (see test_executors)
        [sys.executable, "-m", "harness.cli", "tune", "--suite", str(suite), "--out", str(out),
         "--jobs", "2", "--quiet"], env=env, cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    claims = lambda: list(out.glob("tuning/*/*/cells/*/claim.json"))  # noqa: E731
    deadline = time.time() + 300
    while len(claims()) < 2 and parent.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if len(claims()) < 2:
        parent.kill()
        raise AssertionError("the two workers did not both start a cell:\n" + parent.communicate()[0])
    pids = [json.loads(p.read_text())["pid"] for p in claims()]
    parent.send_signal(signal.SIGINT)
    log = parent.communicate(timeout=180)[0]
    assert parent.returncode == 130, log
    assert "interrupted" in log
    assert not claims() and not list(out.glob("tuning/*/*/cells/*/result.json"))
    assert not (out / "tuning.json").exists() and not (out / "tuned.json").exists()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _entry(values, chosen, knob="lambda"):
    return {"settings": [{"setting": {knob: v}} for v in values], "chosen": chosen}


@pytest.mark.parametrize("chosen, edge", [(0, "lowest lambda"), (1, None), (2, None),
                                          (3, "highest lambda")])
def test_a_choice_at_the_grids_edge_is_named(chosen, edge):
    """The best at the lowest or highest value tried says the grid may be too narrow; the
    settings need not be listed in order (the edge is by value, not by position)."""
    assert edge_of(_entry([1e4, 1e5, 1e6, 1e7], chosen)) == edge
    shuffled = _entry([1e6, 1e4, 1e7, 1e5], [1, 3, 0, 2][chosen])
    assert edge_of(shuffled) == edge
    assert (edge_note(_entry([1e4, 1e5, 1e6, 1e7], chosen)) != "") == (edge is not None)


def test_no_edge_without_a_numeric_scale_or_a_choice():
    assert edge_of(_entry(["prompt", "response", "both", "none"], 0, "positions")) is None
    assert edge_of(_entry([True, False, True, False], 0, "flag")) is None
    assert edge_of(_entry([1.0, 2.0], 0)) is None  # two values: both are edges, no signal
    assert edge_of(_entry([1e4, 1e5, 1e6, 1e7], None)) is None
    two = {"settings": [{"setting": {"a": a, "b": b}} for a, b in
                        ((1, 10), (2, 20), (3, 30), (2, 40))], "chosen": 1}
    assert edge_of(two) is None  # a=2 and b=20 are inside both knobs' ranges
    two["chosen"] = 3
    assert edge_of(two) == "highest b"


def test_the_boards_tuning_table_notes_a_choice_at_the_edge():
    from harness.leaderboard.tuning import drill_text, summary_rows

    tuning = {"knobs": ["lambda"], "select": "acc", "primary": "strict",
              "higher_is_better": True, "streams": ["val"], "seeds": [0],
              "identical_to_sft": False, "chosen": 0,
              "settings": [{"setting": {"lambda": v}, "score": s}
                           for v, s in ((1e4, 0.6), (1e5, 0.5), (1e6, 0.4), (1e7, 0.3))]}
    data = {"methods": {"ewc": {"tuning": tuning}}}
    assert "at the grid's edge (lowest lambda tried)" in summary_rows(data)[0][-1]
    assert "lowest lambda" in drill_text(data["methods"]["ewc"])
    tuning["chosen"] = 1
    assert summary_rows(data)[0][-1] == "" and "edge" not in drill_text(data["methods"]["ewc"])
