"""Leaderboard v2's whole publication path on a tiny grid of v2's shape (issue 32): content
primary, bf16 autocast, each seed's own items, own-and-final rows, final-only probes, a
generating method, tuning first, the grid with two one-thread workers as the real run has
them, then scripts/publish_leaderboard.py: every bundle ACCEPTED by an exact re-run."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from harness.runner import cpu_name
from tests.helpers import tiny_suite

ROOT = Path(__file__).resolve().parent.parent
V2_SHAPE = dict(
    streams={"three": ["arith", "json-extract", "classify"]},
    methods={"sft": {}, "replay": {"buffer_per_task": 2}, "sdft-rewrite": {"max_new_tokens": 8}},
    seeds=[0, 1], primary="content", precision="bf16", probes=["drift", "agreement"],
    train={"steps": 2, "lr": 1e-3, "batch_size": 4, "max_len": 96},
    data={"n_train": 4, "n_test": 4, "seed": "per-seed"},
    eval={"batch_size": 8, "max_new_tokens": 6, "rows": "own-and-final", "probe_rows": "final"},
    tune={"streams": {"val": ["json-extract", "arith"]}, "seeds": [0], "select": "acc",
          "n_test": 2})


def ran_cells(log: str) -> list[str]:
    """The cells the script's processes ran, sorted, each as often as it was run: a
    process's `[pK] [n/N] ID` line not followed by its `already complete: skipped`."""
    ran, last = [], {}
    for line in log.splitlines():
        found = re.match(r"\[(p\d)\] (?:\[\d+/\d+\] (\S+)$|  already complete: skipped)", line)
        if not found:
            continue
        proc, cell = found.groups()
        if cell is None:
            ran.remove(last.pop(proc))
        else:
            ran.append(cell)
            last[proc] = cell
    return sorted(ran)


def test_a_v2_shaped_grid_tunes_runs_and_publishes_with_every_bundle_accepted(
        tiny_model_dir, tmp_path):
    suite = str(tiny_suite(tmp_path, str(tiny_model_dir), **V2_SHAPE))
    out, env = tmp_path / "out", {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    # the tuning, then the grid by the script the real run uses: two one-thread processes
    # on the same cells, split by claims
    env["V2_SUITE"], env["PATH"] = suite, f"{Path(sys.executable).parent}:{env['PATH']}"
    ran = subprocess.run(["bash", "scripts/run_leaderboard_v2.sh", str(out),
                          str(tmp_path / "cache"), str(ROOT)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "GRID SEEDS 0 1 DONE" in ran.stdout and "GRID DONE rc=0" in ran.stdout
    assert ran_cells(ran.stdout) == sorted(p.name for p in (out / "cells").iterdir())
    # a fresh process a cell (a long-lived one grew to 9-10 GiB): every process had one cell
    counts = re.findall(r"^\[p\d\] \[\d+/(\d+)\] \S+", ran.stdout, re.M)
    assert counts and set(counts) == {"1"}
    done = subprocess.run([sys.executable, "scripts/publish_leaderboard.py", str(out), "--suite",
                           suite, "--root", str(tmp_path), "--jobs", "2"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("ACCEPTED") == 3 and "exact" in done.stdout
    board = json.loads((tmp_path / "leaderboard" / "leaderboard.json").read_text())
    assert board["primary"] == "content" and sorted(board["methods"]) == [
        "replay", "sdft-rewrite", "sft"]
    assert all(m["tuning"] is not None for m in board["methods"].values())
    assert board["grid"]["precision"] == "bf16"  # stated on the page and in the README
    for page in ("index.html", "README.md"):
        assert "(bf16 autocast, float32 weights)" in (tmp_path / "leaderboard" / page).read_text()
    acc = board["views"]["all"]["metrics"]["acc"]["methods"]
    assert all(acc[m]["vs_reference"]["n"] == 2 for m in ("replay", "sdft-rewrite"))
    cells = sorted(p.name for p in (tmp_path / "leaderboard" / "grid" / "cells").iterdir())
    assert len(cells) == 6 and all("__three__" in c for c in cells)
    assert {json.loads((tmp_path / "leaderboard" / "grid" / "cells" / c / "result.json")
                       .read_text())["precision"] for c in cells} == {"bf16"}
    # the grid's machine, and no other: a cell from another processor in OUT stops the script
    # before it runs anything (exit 2, one line), unless V2_ANY_MACHINE=1
    results = [*out.glob("cells/*/result.json"), *out.glob("tuning/*/*/cells/*/result.json")]
    for path in results:
        recorded = json.loads(path.read_text())
        recorded["hardware"]["cpu"] = "Other CPU 9000"
        path.write_text(json.dumps(recorded))
    again = subprocess.run(["bash", "scripts/run_leaderboard_v2.sh", str(out),
                            str(tmp_path / "cache"), str(ROOT)], cwd=ROOT, env=env,
                           capture_output=True, text=True)
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.strip().splitlines() == [
        "run_leaderboard_v2.sh: this machine's processor ({}) is not the one most of the "
        "grid's complete cells ran on: Other CPU 9000 ({} cells); run it on that machine (a "
        "later session may get one), or set V2_ANY_MACHINE=1 to mix machines in this "
        "grid".format(
            cpu_name(), len(results))]
