"""scripts/commit_leaderboard_v2.sh: complete cells only, never a checkpoint or a claim,
with the tuning table; a second pass commits nothing new."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def test_it_commits_complete_cells_without_checkpoints(tmp_path):
    repo, out = tmp_path / "repo", tmp_path / "out"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "commit_leaderboard_v2.sh", repo / "scripts")
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
        "-m", "start")
    done = out / "tuning" / "sft" / "train.lr=1e-4" / "cells" / "m__val__sft__s0"
    grid, running = out / "cells" / "m__a__sft__s0", out / "cells" / "m__a__ewc__s0"
    for folder in (done, grid, running):
        folder.mkdir(parents=True)
        (folder / "checkpoint.pt").write_bytes(b"x")
        (folder / "claim.json").write_text("{}")
    for folder in (done, grid):
        (folder / "result.json").write_text("{}")
        (folder / "samples.json").write_text("{}")
    (out / "tuned.json").write_text("{}")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
    run = subprocess.run(["bash", str(repo / "scripts" / "commit_leaderboard_v2.sh"), str(out)],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert "committed 2 new cell(s): 1 tuning, 1 grid" in run.stdout
    files = sorted(git(repo, "ls-files").split())
    assert files == ["leaderboard/v2/cells/m__a__sft__s0/result.json",
                     "leaderboard/v2/cells/m__a__sft__s0/samples.json",
                     "leaderboard/v2/tuned.json",
                     "leaderboard/v2/tuning/sft/train.lr=1e-4/cells/m__val__sft__s0/result.json",
                     "leaderboard/v2/tuning/sft/train.lr=1e-4/cells/m__val__sft__s0/samples.json"]
    assert "leaderboard v2: 1 of 56 tuning cells, 1 of 168 grid cells complete" in git(
        repo, "log", "-1", "--format=%s")
    again = subprocess.run(["bash", str(repo / "scripts" / "commit_leaderboard_v2.sh"), str(out)],
                           capture_output=True, text=True, env=env)
    assert again.returncode == 0 and again.stdout == ""


def test_the_run_script_stops_at_once_without_harness_on_path(tmp_path):
    """Started outside the environment, it says so in one line and runs nothing (it once
    went on, every step failing, and logged a traceback per seed pair)."""
    run = subprocess.run(["bash", str(ROOT / "scripts" / "run_leaderboard_v2.sh"),
                          str(tmp_path / "out"), str(tmp_path / "cache"), str(ROOT)],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert run.returncode == 2 and run.stdout == ""
    assert "'harness' is not on PATH" in run.stderr and len(run.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()
