"""scripts/publish_leaderboard.py: bundles, verifies and ranks the methods whose cells are
complete, and leaves out (naming them) the methods whose cells are not."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import tiny_suite

ROOT = Path(__file__).resolve().parent.parent


def test_publish_bundles_complete_methods_only(tmp_path, tiny_model_dir):
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    suite = str(tiny_suite(tmp_path, str(tiny_model_dir), seeds=[0, 1], probes=["drift"]))
    out = tmp_path / "out"
    run = [sys.executable, "-m", "harness.cli", "run", "--suite", suite, "--out", str(out),
           "--quiet"]
    assert subprocess.run(run + ["--methods", "sft"], env=env, cwd=ROOT,
                          capture_output=True).returncode == 0
    (out / "cells" / "not-complete").mkdir()  # a cell still running: no result.json yet
    first = next(out.glob("cells/*/result.json")).parent
    (first / "checkpoint.pt").write_bytes(b"x")
    done = subprocess.run([sys.executable, "scripts/publish_leaderboard.py", str(out),
                           "--suite", suite, "--root", str(tmp_path)], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not bundled: lora (2 of 2 cells not complete)" in done.stdout
    assert "ACCEPTED" in done.stdout
    board = tmp_path / "leaderboard"
    assert sorted(p.name for p in (board / "submissions").iterdir()) == ["sft"]
    # every complete cell is committed beside the bundles, without a run's working files
    assert "copied: 2 new complete cell(s)" in done.stdout
    assert sorted(p.name for p in (board / "grid" / "cells").iterdir()) == sorted(
        p.parent.name for p in (out / "cells").glob("*/result.json"))
    assert not list((board / "grid").rglob("checkpoint.pt"))
    assert (board / "submissions" / "sft" / "verification.json").exists()
    reran = json.loads((out / "verify" / "sft" / "picked.json").read_text())["cells"]
    assert (out / "verify" / "sft" / "cells" / reran[0] / "result.json").is_file()  # kept
    data = json.loads((board / "leaderboard.json").read_text())
    assert sorted(data["methods"]) == ["sft"] and data["pending"] == ["lora"]
    # run again: the verified bundle is kept (no second re-run), not rebuilt
    record = (board / "submissions" / "sft" / "verification.json").read_bytes()
    again = subprocess.run([sys.executable, "scripts/publish_leaderboard.py", str(out),
                            "--suite", suite, "--root", str(tmp_path)], env=env, cwd=ROOT,
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "kept: sft" in again.stdout and "ACCEPTED" not in again.stdout
    assert "copied: 0 new complete cell(s)" in again.stdout
    assert (board / "submissions" / "sft" / "verification.json").read_bytes() == record

    # publishing the next board: the old one moves to archive/v1 whole, the new one links it
    # and shows the notes given; archiving twice under one name is refused (exit 2)
    (tmp_path / "notes.yaml").write_text("sft: the reference.\n")
    nxt = [sys.executable, "scripts/publish_leaderboard.py", str(out), "--suite", suite,
           "--root", str(tmp_path), "--archive", "v1", "--notes", str(tmp_path / "notes.yaml")]
    moved = subprocess.run(nxt, env=env, cwd=ROOT, capture_output=True, text=True)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    old = board / "archive" / "v1"
    assert (old / "submissions" / "sft" / "verification.json").read_bytes() == record
    assert json.loads((old / "leaderboard.json").read_text()) == data
    assert "copied: 2 new complete cell(s)" in moved.stdout  # the grid moved with the board
    data = json.loads((board / "leaderboard.json").read_text())
    assert data["archives"] == [{"name": "v1", "href": "archive/v1/index.html"}]
    assert data["methods"]["sft"]["note"] == "the reference."
    again = subprocess.run(nxt, env=env, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 2 and "already exists" in again.stderr
    # stopped after archiving, before the new board was built: the same command goes on
    for name in ("index.html", "README.md", "leaderboard.json"):
        (board / name).unlink()
    (board / "submissions" / "sft" / "verification.json").unlink()
    again = subprocess.run(nxt, env=env, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "archived already" in again.stdout and "ACCEPTED" in again.stdout
    assert "already complete" in again.stdout  # its re-run, kept in OUT/verify: compared
    assert json.loads((board / "leaderboard.json").read_text())["archives"] == [
        {"name": "v1", "href": "archive/v1/index.html"}]


def test_publish_stops_on_a_machine_none_of_the_cells_ran_on(tmp_path, tiny_model_dir):
    """Every verification would re-run on other hardware (tolerance only, and hours for a
    bf16 grid on a CPU without native bf16): one line, exit 2, nothing written."""
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    suite = str(tiny_suite(tmp_path, str(tiny_model_dir), methods={"sft": {}}))
    out = tmp_path / "out"
    assert subprocess.run([sys.executable, "-m", "harness.cli", "run", "--suite", suite,
                           "--out", str(out), "--quiet"], env=env, cwd=ROOT,
                          capture_output=True).returncode == 0
    (result,) = out.glob("cells/*/result.json")
    recorded = json.loads(result.read_text())
    recorded["hardware"]["cpu"] = "Other CPU 9000"
    result.write_text(json.dumps(recorded))
    publish = [sys.executable, "scripts/publish_leaderboard.py", str(out), "--suite", suite,
               "--root", str(tmp_path / "root")]
    done = subprocess.run(publish, env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == "" and not (tmp_path / "root").exists()
    assert done.stderr.startswith(f"error: no cell of {out} ran on this machine's processor")
    assert "Other CPU 9000 (1 cells)" in done.stderr and len(done.stderr.splitlines()) == 1
    forced = subprocess.run(publish + ["--any-machine"], env=env, cwd=ROOT,
                            capture_output=True, text=True)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "(tolerance)" in forced.stdout and "ACCEPTED" in forced.stdout
