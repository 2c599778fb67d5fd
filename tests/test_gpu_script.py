"""scripts/gpu_run.sh and scripts/gpu_payload.py, the one command for a GPU lease: its dry
mode runs the whole flow on the CPU (parts staged one call at a time, joined, wheels
installed, gpu tests, both suites on the tiny model at --jobs, results and archive), so GPU
minutes are never spent on a typo; and its pieces: the split and join, the time limit,
the resume archive."""

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from helpers import load_script

ROOT = Path(__file__).resolve().parent.parent
gpu_run = load_script("gpu_run")
payload = load_script("gpu_payload")


def test_parts_staged_one_call_at_a_time_join_to_the_payload(tmp_path):
    carry, state = tmp_path / "carry", tmp_path / "state"
    manifest = payload.prepare(carry, part_mib=0.5, dry=True, dry_model_mib=1.2)
    assert manifest["parts"] == 3 == len(list(carry.iterdir()))
    assert all((carry / str(k) / f"payload.part{k}").stat().st_size <= 0.5 * payload.MIB
               for k in (1, 2, 3))
    lines = []
    assert payload.stage([carry / "2"], state, lines.append)[1] == [1, 3]
    assert payload.stage([carry / "3"], state, lines.append)[1] == [1]
    assert not (state / "payload").exists()
    got, missing = payload.stage([carry / "1"], state, lines.append)
    assert missing == [] and got["payload_sha256"] == manifest["payload_sha256"]
    model = state / "payload" / "model" / "dry-model.bin"
    assert model.stat().st_size == int(1.2 * payload.MIB)
    assert (state / "payload" / "wheels" / f"{payload.DRY_PROBE}-0.0.0-py3-none-any.whl").exists()
    # a damaged part is refused before it is staged
    part = carry / "2" / "payload.part2"
    part.write_bytes(b"x" + part.read_bytes()[1:])
    with pytest.raises(payload.Stop, match="damaged"):
        payload.stage([carry / "2"], tmp_path / "other", lines.append)


def test_a_command_past_its_limit_is_stopped(tmp_path):
    lines = []
    started = time.monotonic()
    ran = gpu_run.run_limited([sys.executable, "-c", "import time; print('started', flush=True);"
                               " time.sleep(60)"], dict(os.environ), 2.0, lines.append, 5.0)
    assert ran["timed_out"] and ran["exit_code"] != 0 and time.monotonic() - started < 20
    assert "started" in lines and any("time limit 2 s reached" in x for x in lines)
    quick = gpu_run.run_limited([sys.executable, "-c", "print('ok')"], dict(os.environ), 30.0,
                                lines.append)
    assert quick["exit_code"] == 0 and not quick["timed_out"]


def test_the_packed_state_resumes_a_fresh_state_folder(tmp_path):
    state = tmp_path / "state"
    cell = state / "runs" / "grid" / "cells" / "m__s__sft__s0"
    cell.mkdir(parents=True)
    (cell / "result.json").write_text('{"status": "complete"}')
    (cell / "claim.json").write_text("{}")
    (cell / "checkpoint.pt").write_bytes(b"weights")  # hundreds of MiB for a real cell
    (state / "gpu-check").mkdir()
    (state / "gpu-check" / "summary.json").write_text('{"exit_code": 0}')
    (state / "invocations.json").write_text("[]")
    names = gpu_run.pack(state, tmp_path / "gpu-state.tar.gz")
    assert "runs/grid/cells/m__s__sft__s0/result.json" in names
    assert not any(n.endswith(("claim.json", "checkpoint.pt")) for n in names)
    fresh = tmp_path / "fresh"
    gpu_run.resume(fresh, tmp_path / "gpu-state.tar.gz", print)
    assert (fresh / "runs/grid/cells/m__s__sft__s0/result.json").read_text() == \
        '{"status": "complete"}'
    assert json.loads((fresh / "gpu-check" / "summary.json").read_text())["exit_code"] == 0


def dry(tmp_path, out: str, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_run.sh"), "--dry", "--state",
                           str(tmp_path / "state"), "--out", str(tmp_path / out), *extra],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads((tmp_path / out / "gpu-results.json").read_text())


def test_dry_mode_runs_the_whole_script_and_a_second_invocation_reruns_nothing(tmp_path):
    docs = ROOT / "docs" / "gpu-results.json"
    kept = docs.read_bytes() if docs.exists() else None
    proc, r = dry(tmp_path, "out1")
    out = tmp_path / "out1"
    assert sorted(p.name for p in out.iterdir()) == [
        "gpu-check.md", "gpu-results.json", "gpu-state.tar.gz", "gpu_run.log"]  # <= 8 files
    log = (out / "gpu_run.log").read_text()
    assert "waiting for part(s) 2, 3 of 3" in log and "joined 3 parts" in log

    assert r["dry"] is True and r["schema"] == "gpu-results/1"
    assert set(r["device"]) >= {"gpu", "torch", "cuda", "gpu_memory_gib", "cpu_count"}
    assert r["install"]["wheels"] == [f"{payload.DRY_PROBE}-0.0.0-py3-none-any.whl"]
    t = r["gpu_tests"]
    n_gpu_tests = len(t["tests"])
    assert n_gpu_tests >= 12 and t["skipped"] == n_gpu_tests  # no CUDA here: each says why
    assert t["passed"] == t["failed"] == t["error"] == 0 and t["exit_code"] == 0
    assert all(x["reason"].startswith("no CUDA device") for x in t["tests"])

    sdft_methods = len(yaml.safe_load((ROOT / gpu_run.SDFT_LONG).read_text())["methods"])
    for key, n in (("grid", 2), ("sdft_long", sdft_methods)):
        s = r[key]
        assert s["cells"] == s["complete"] == s["completed_now"] == n, key
        assert s["failed"] == s["not_finished"] == 0 and not s["timed_out"]
        assert s["jobs"] == s["cells_per_gpu"] == min(n, os.cpu_count())
        assert s["wall_clock_s_all_invocations"] == s["seconds"] > 0
        for c in s["cell_results"]:
            assert c["state"] == "complete" and c["estimate_gib"] > 0
            assert c["peak_gib"] is None  # measured on CUDA only
            assert len(c["R"]) == 3 and all(len(row) == 2 for row in c["R"])
    assert {c["method"] for c in r["grid"]["cell_results"]} == {"sft", "lora"}

    with tarfile.open(out / "gpu-state.tar.gz") as tar:
        names = set(tar.getnames())
    for key, folder in (("grid", "grid"), ("sdft_long", "sdft-long")):
        for c in r[key]["cell_results"]:
            assert f"runs/{folder}/cells/{c['id']}/result.json" in names
    assert {"gpu-check/summary.json", "gpu-check/junit.xml", "invocations.json"} <= names
    assert not any(n.endswith("claim.json") for n in names)

    # the same state (a warm machine): nothing left to do; sdft-long left out of --phases
    proc, again = dry(tmp_path, "out2", "--phases", "tests,grid")
    assert "passed in an earlier invocation, not re-run" in proc.stdout
    assert "leaderboard grid: 0 of 2 cells to run" in proc.stdout
    assert "sdft-long: not in --phases (0 cells not complete)" in proc.stdout
    assert again["grid"]["completed_now"] == again["sdft_long"]["completed_now"] == 0
    assert again["grid"]["complete"] == 2 == again["sdft_long"]["complete"]
    assert len(again["invocations"]) == 2
    assert again["gpu_tests"]["rerun"] is False and len(again["gpu_tests"]["tests"]) == n_gpu_tests
    assert (docs.read_bytes() if docs.exists() else None) == kept  # --dry leaves docs/ alone
