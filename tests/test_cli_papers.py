"""The command line around the paper suites and GPU planning: `fetch`, the dry run's
downloads and memory verdicts (offline: nothing is downloaded to plan), `list tasks`."""

import json

from harness.cli import main


def test_fetch_dry_run_lists_models_and_datasets(capsys):
    assert main(["fetch", "--suite", "sdft-onpolicy-2026", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "model Qwen/Qwen2.5-7B-Instruct" in out and "total ~" in out


def test_dry_run_of_a_paper_suite_offline_plans_without_downloading(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert main(["run", "--suite", "sdft-onpolicy-2026", "--dry-run", "--gpu", "H200"]) == 0
    out = capsys.readouterr().out
    assert "downloads (" in out and "model Qwen/Qwen2.5-7B-Instruct" in out
    assert "peak GPU memory per cell" in out and "H200" in out
    assert "36 of 36 cells to run" in out


def test_dry_run_gpu_verdicts_for_the_embedded_model(capsys):
    assert main(["run", "--suite", "quickstart", "--dry-run", "--gpu", "24"]) == 0
    out = capsys.readouterr().out
    assert "every cell fits on 24 GiB" in out and "sft__s0: 4.4 GiB" in out


def test_bad_gpu_name_is_one_line(capsys):
    assert main(["run", "--suite", "quickstart", "--dry-run", "--gpu", "H900"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("harness: error:")


def test_list_tasks_shows_generated_and_paper_tasks(capsys):
    assert main(["list", "tasks", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["arith"]["data"] == "generated"
    assert rows["gsm8k"]["data"] != "generated"
