"""Cell claims: two runs on one output folder split the grid; a dead claim never blocks."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness import claims
from tests.helpers import tiny_suite


def test_a_claim_is_exclusive_until_released(tmp_path):
    first = claims.acquire(tmp_path / "cell")
    assert first is not None and (tmp_path / "cell" / claims.CLAIM).exists()
    assert claims.acquire(tmp_path / "cell") is None
    assert claims.holder(tmp_path / "cell")["pid"] == os.getpid()
    first.release()
    assert not (tmp_path / "cell" / claims.CLAIM).exists()
    again = claims.acquire(tmp_path / "cell")
    assert again is not None
    again.release()


def _write_claim(folder: Path, age_s: float, **info):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / claims.CLAIM
    path.write_text(json.dumps({"token": "x", **info}))
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))


def test_claim_of_a_dead_process_is_taken_over(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _write_claim(tmp_path / "c", 1, host=socket.gethostname(), pid=gone.pid)
    assert claims.holder(tmp_path / "c") is None
    taken = claims.acquire(tmp_path / "c")
    assert taken is not None and claims.holder(tmp_path / "c")["pid"] == os.getpid()
    taken.release()


def test_other_hosts_claims_live_until_their_heartbeat_is_stale(tmp_path):
    _write_claim(tmp_path / "fresh", 5, host="elsewhere", pid=1)
    _write_claim(tmp_path / "stale", claims.STALE_S + 5, host="elsewhere", pid=1)
    assert claims.acquire(tmp_path / "fresh") is None
    taken = claims.acquire(tmp_path / "stale")
    assert taken is not None
    taken.release()


def test_a_stopped_runs_claims_are_cleared_and_no_others(tmp_path):
    """After Ctrl-C the `--jobs` parent clears what its dead workers left (a worker can be
    interrupted between creating its claim and holding it): only that run's claims whose
    process is gone on this host; a live one, another run's, another host's and a claim
    still being written stay."""
    from harness import executors

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here = socket.gethostname()
    _write_claim(tmp_path / "cells" / "dead", 1, run="r1", host=here, pid=gone.pid)
    _write_claim(tmp_path / "cells" / "live", 1, run="r1", host=here, pid=os.getpid())
    _write_claim(tmp_path / "cells" / "other-run", 1, run="r2", host=here, pid=gone.pid)
    _write_claim(tmp_path / "cells" / "other-host", 1, run="r1", host="elsewhere", pid=gone.pid)
    (tmp_path / "cells" / "writing").mkdir()
    (tmp_path / "cells" / "writing" / claims.CLAIM).write_text("")
    ids = ["dead", "live", "other-run", "other-host", "writing", "never-claimed"]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"parts": [{"out": str(tmp_path), "cells": ids}]}))
    executors._clear_claims(plan, "r1")
    left = sorted(p.parent.name for p in (tmp_path / "cells").glob("*/" + claims.CLAIM))
    assert left == ["live", "other-host", "other-run", "writing"]
    assert claims.clear_stopped(tmp_path / "cells" / "live", "r1") is False


def test_a_claim_being_written_counts_as_held(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / claims.CLAIM).write_text("")
    assert claims.holder(tmp_path / "c") == {}
    assert claims.acquire(tmp_path / "c") is None


def test_heartbeat_keeps_a_claim_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "HEARTBEAT_S", 0.05)
    claim = claims.acquire(tmp_path / "c")
    path = tmp_path / "c" / claims.CLAIM
    os.utime(path, (time.time() - 100, time.time() - 100))
    time.sleep(0.3)
    assert time.time() - path.stat().st_mtime < 5
    claim.release()


def _run(suite, out, env):
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "--suite", str(suite),
                             "--out", str(out), "--quiet"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=Path(__file__).parent.parent)


def _env(tmp_path):
    return {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


def test_two_runs_split_one_grid(tmp_path, tiny_model_dir):
    suite = tiny_suite(tmp_path, str(tiny_model_dir), seeds=[0, 1, 2], probes=["drift"],
                       methods={"sft": {}})
    out, env = tmp_path / "out", _env(tmp_path)
    first, second = _run(suite, out, env), _run(suite, out, env)
    logs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], logs
    ran = [log.count("after json-extract:") for log in logs]
    assert sum(ran) == 3, logs  # every cell ran exactly once between the two
    assert sorted(p.name for p in (out / "cells").iterdir()) == sorted(
        f"{tiny_model_dir.name}__two__sft__s{s}" for s in range(3))
    assert all((p / "result.json").exists() and not (p / claims.CLAIM).exists()
               for p in (out / "cells").iterdir())


def test_kill_9_mid_cell_loses_nothing(tmp_path, tiny_model_dir):
    suite = tiny_suite(tmp_path, str(tiny_model_dir), seeds=[0, 1], probes=["drift"],
                       methods={"sft": {}}, train={"steps": 40, "lr": 1e-3, "batch_size": 4,
                                                   "max_len": 96})
    out, env = tmp_path / "out", _env(tmp_path)
    victim = _run(suite, out, env)
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob("cells/*/claim.json")):
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert list(out.glob("cells/*/claim.json")), "the killed run left its claim"
    again = _run(suite, out, env)
    log = again.communicate(timeout=600)[0]
    assert again.returncode == 0, log
    assert "claimed by another run" not in log
    assert len(list(out.glob("cells/*/result.json"))) == 2
    assert not list(out.glob("cells/*/claim.json"))
