"""Settings resolved once (harness/plans.py): the method is built once before any cell
runs, whatever edits the command line makes; `--jobs` workers and one-process-a-cell runs
(a Slurm array's `--cell-index`) get the resolved plan, parsing neither the command line
nor the suite file again."""

import json

import pytest

from harness import config, executors, launch, plans
from harness.cli import main
from harness.grid import expand, plan
from helpers import tiny_suite

# A plugin that notes every construction in the file named by its `log` setting's default.
COUNTED = '''from pathlib import Path
from harness.methods import Method

class Counted(Method):
    name = "counted"
    version = "1"
    defaults = {"beta": 0.5}

    def __init__(self, **params):
        super().__init__(**params)
        with open(Path(__file__).with_suffix(".log"), "a") as f:
            f.write(f"built {params}\\n")
'''


@pytest.fixture
def counted(tmp_path, tiny_model_dir):
    """(suite path, the plugin's construction log)."""
    (tmp_path / "m.py").write_text(COUNTED)
    path = tiny_suite(tmp_path, str(tiny_model_dir), methods={"sft": {}, "m.py:Counted": {"beta": 0.75}})
    return path, tmp_path / "m.log"


def builds(log) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def no_yaml(monkeypatch):
    """Reading a suite file from here on fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the suite file was read again")
    monkeypatch.setattr(config, "read_yaml", refuse)


def test_a_method_is_built_once_with_the_settings_in_force(counted, tmp_path, monkeypatch):
    path, log = counted
    tuned = tmp_path / "tuned.json"
    tuned.write_text(json.dumps({"suite": "tiny", "methods": {"counted": {"setting": {"beta": 0.25}}}}))
    ran = []
    monkeypatch.setattr(launch, "run", lambda args, suite, cells, out, device: ran.append((suite, cells)) or 0)
    assert main(["run", "--suite", str(path), "--out", str(tmp_path / "out"), "--settings", str(tuned),
                 "--set", "sft.train.lr=0.002"]) == 0
    assert builds(log) == ["built {'beta': 0.25}"]  # once, with the tuned setting in force
    suite, cells = ran[0]
    assert [(m.name, m.params) for m in suite.methods] == [("counted", {"beta": 0.25}), ("sft", {})]
    assert [c.method.train.lr for c in cells] == [1e-3, 0.002]
    log.unlink()
    assert main(["run", "--suite", str(path), "--dry-run", "--json", "--methods", "counted"]) == 0
    assert builds(log) == ["built {'beta': 0.75}"]


def test_a_bad_setting_still_stops_the_run_in_one_line(counted, capsys):
    path, log = counted
    assert main(["run", "--suite", str(path), "--dry-run", "--set", "counted.beta=text"]) == 2
    assert capsys.readouterr().err == ("harness: error: --set counted: beta must be a finite "
                                       "number, got 'text'. Fix: e.g. beta: 0.5\n")
    assert builds(log) == []  # refused by its type, before any build


def test_a_jobs_worker_runs_the_plan_without_parsing_argv_or_the_suite(counted, tmp_path, monkeypatch):
    path, log = counted
    suite = plans.Request(str(path), sets=["counted.beta=0.25"]).resolve()
    cells = expand(suite)
    plan_file = tmp_path / "out" / ".plan-1.json"
    plans.write_plan(plan_file, suite, cells, tmp_path / "out", save_model=True)
    assert builds(log) == ["built {'beta': 0.25}"]
    no_yaml(monkeypatch)
    monkeypatch.setattr("harness.cli.parse", lambda *a: pytest.fail("argv parsed again"))
    got = []

    def run(runner, todo):
        got.append((runner.suite, todo, runner.save_model, runner.claim_info))
        return [], []
    monkeypatch.setattr("harness.runner.Runner.run", run)
    monkeypatch.setenv("HARNESS_RUN_ID", "r1")
    assert executors.worker_main([str(plan_file), "2", "1", "cpu"]) == 0
    (worked, todo, save_model, claim), = got
    assert worked == suite and [c.id for c in todo] == [c.id for c in cells]
    assert [plan(c, worked).config_hash for c in todo] == [plan(c, suite).config_hash for c in cells]
    assert save_model is True and claim == {"run": "r1", "worker": 2}
    assert builds(log) == ["built {'beta': 0.25}"]  # the worker built nothing to check it


def test_jobs_start_workers_on_the_plan_file(tmp_path, monkeypatch):
    started = []

    class Proc:
        stdout = []

        def __init__(self, cmd, env, **kwargs):
            started.append((cmd, env))

        def wait(self):
            return 0
    monkeypatch.setattr(executors.subprocess, "Popen", Proc)
    workers = [{"worker": 1, "threads": 2, "gpu": None}, {"worker": 2, "threads": 2, "gpu": "1"}]
    assert executors.run_jobs(tmp_path / "p.json", "cpu", workers, print) == [0, 0]
    assert [cmd[1:] for cmd, _ in started] == [
        ["-m", "harness.executors", str(tmp_path / "p.json"), "1", "2", "cpu"],
        ["-m", "harness.executors", str(tmp_path / "p.json"), "2", "2", "cuda"]]
    assert started[1][1]["CUDA_VISIBLE_DEVICES"] == "1"


def test_one_process_a_cell_reads_the_plan_the_first_wrote(counted, tmp_path, monkeypatch):
    path, log = counted
    out = tmp_path / "out"
    request = plans.Request(str(path), sets=["counted.beta=0.25"], short={"steps": 2})
    assert plans.stored(request, out) is None
    first = request.resolve()
    plans.store(request, out, first)
    assert builds(log) == ["built {'beta': 0.25}"]
    assert len(list((out / plans.PLANS).glob("*.json"))) == 1
    with monkeypatch.context() as m:
        no_yaml(m)
        again = plans.stored(request, out)  # another array task
    assert again == first and builds(log) == ["built {'beta': 0.25}"]
    # another request, or an edited method, is not taken for it
    assert plans.stored(plans.Request(str(path), sets=["counted.beta=0.5"]), out) is None
    (tmp_path / "m.py").write_text(COUNTED + "# edited\n")
    assert plans.stored(request, out) is None


def test_cell_index_runs_through_the_plan_in_out(counted, tmp_path, monkeypatch):
    path, log = counted
    out = tmp_path / "out"
    ran = []
    monkeypatch.setattr(launch, "run", lambda args, suite, cells, out, device: ran.append(cells) or 0)
    argv = ["run", "--suite", str(path), "--out", str(out), "--set", "counted.beta=0.25"]
    assert main(argv + ["--cell-index", "0"]) == 0
    no_yaml(monkeypatch)
    assert main(argv + ["--cell-index", "1"]) == 0
    assert [c.method.name for cells in ran for c in cells] == ["counted", "sft"]
    assert builds(log) == ["built {'beta': 0.25}"]  # by the first task alone
