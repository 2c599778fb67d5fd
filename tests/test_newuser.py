"""A new user's path (issue 30): the short look (--steps/--n-train/--n-test), `--set`
errors that name the key meant, one error prefix, the cache line."""

import json

import pytest

from harness.cli import main
from harness.config import load_suite
from harness.grid import expand, grid_id, plan
from harness.overrides import apply_sets, shorten
from helpers import tiny_suite


def dry_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["run", *args, "--dry-run", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_short_look_replaces_every_budget_and_marks_the_grid(tmp_path, tiny_model_dir):
    path = tiny_suite(tmp_path, str(tiny_model_dir),
                      streams={"two": {"tasks": ["arith", "json-extract"],
                                       "train": {"steps": 7, "lr": 2e-3},
                                       "methods": {"sft": {"steps": 5}}}},
                      methods={"sft": {"train": {"epochs": 2}}, "lora": {"r": 4}})
    suite = load_suite(str(path))
    short = shorten(suite, steps=2, n_train=5, n_test=3)
    for cell in expand(short):
        assert cell.method.train.steps == 2 and cell.method.train.epochs is None
        assert cell.method.train.lr == 2e-3  # the stream's other settings stay
    assert (short.data.n_train, short.data.n_test) == (5, 3)
    assert short.short_look == {"steps": 2, "n_train": 5, "n_test": 3}
    # a short look whose budget equals the suite's is still not the suite's grid or cell
    same = shorten(suite, steps=7)
    lora = lambda s: next(c for c in expand(s) if c.method.name == "lora")  # noqa: E731
    full_cell, short_cell = lora(suite), lora(same)  # the stream's 7 steps
    assert full_cell.method.train == short_cell.method.train
    assert grid_id(same) != grid_id(suite)
    assert plan(short_cell, same).config_hash != plan(full_cell, suite).config_hash
    assert shorten(suite) is suite


@pytest.mark.parametrize("value", [0, -3, True])
def test_short_look_rejects_non_positive_values(tmp_path, tiny_model_dir, value):
    from harness.errors import HarnessError

    suite = load_suite(str(tiny_suite(tmp_path, str(tiny_model_dir))))
    with pytest.raises(HarnessError, match="whole number >= 1"):
        shorten(suite, steps=value)


def test_steps_on_the_command_line_goes_to_its_own_folder(tmp_path, tiny_model_dir, capsys):
    path = str(tiny_suite(tmp_path, str(tiny_model_dir)))
    full = dry_json(capsys, "--suite", path)
    short = dry_json(capsys, "--suite", path, "--steps", "1", "--n-test", "2")
    assert full["out"].endswith("tiny") and short["out"].endswith("tiny-short")
    assert short["grid_id"] != full["grid_id"]
    assert [c["steps"] for c in short["cells"]] == [2, 2]  # two tasks, one step each
    assert [c["steps"] for c in full["cells"]] == [6, 6]
    capsys.readouterr()
    assert main(["run", "--suite", path, "--steps", "1", "--dry-run"]) == 0
    assert "SHORT LOOK (1 steps a task)" in capsys.readouterr().out


def test_a_short_cell_records_its_marker(tmp_path, tiny_model_dir, capsys):
    path = str(tiny_suite(tmp_path, str(tiny_model_dir), methods={"sft": {}}))
    out = tmp_path / "out"
    assert main(["run", "--suite", path, "--out", str(out), "--steps", "1", "--n-train", "4",
                 "--n-test", "2", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("cache ") and str(tmp_path) in lines[0]  # the test's cache
    assert "SHORT LOOK (1 steps a task, n_train 4, n_test 2)" in lines[1]
    result = json.loads(next(out.glob("cells/*/result.json")).read_text())
    assert result["short_look"] == {"steps": 1, "n_train": 4, "n_test": 2}
    assert [t["steps"] for t in result["training"]] == [1, 1]
    assert len(result["items"]["arith"][0]) == 2


@pytest.mark.parametrize("given, needles", [
    ("lora.steps=8", ["no setting steps", "did you mean --set lora.train.steps=...?"]),
    ("lora.alhpa=8", ["no setting alhpa", "did you mean --set lora.alpha=...?"]),
    ("lora.batchsize=8", ["did you mean --set lora.train.batch_size=...?"]),
    ("lora.zzz=1", ["no setting zzz", "its settings: r, alpha"]),
])
def test_set_errors_name_the_key_meant(tmp_path, tiny_model_dir, given, needles):
    from harness.errors import HarnessError

    suite = load_suite(str(tiny_suite(tmp_path, str(tiny_model_dir))))
    with pytest.raises(HarnessError) as info:
        apply_sets(suite, [given])
    for needle in needles:
        assert needle in str(info.value), str(info.value)


@pytest.mark.parametrize("argv, fix", [
    (["run", "--suite", "quickstart", "--bogus"], "see `harness run --help`"),
    (["run", "--suite", "quickstart", "--steps", "x"], "see `harness run --help`"),
    (["list", "nope"], "see `harness list --help`"),
    (["--bogus"], "see `harness --help`"),
])
def test_usage_errors_print_the_prefix_once(argv, fix, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("harness: error: ")
    assert err.count("harness:") == 1 and "harness run:" not in err, err
    assert err.endswith(fix), err


def test_cache_line_says_what_the_cache_holds(tmp_path, monkeypatch):
    from harness.storage import Cache, cache_line

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "c"))
    assert cache_line() == f"cache {tmp_path / 'c'} (HARNESS_CACHE): empty, everything is " \
                           "computed afresh"
    Cache().get_or_compute("base_rows", [1], lambda: 1)
    Cache().get_or_compute("base_rows", [2], lambda: 2)
    (tmp_path / "c" / "models" / "smollm").mkdir(parents=True)
    line = cache_line()
    assert line.endswith(": reuses what matches of base_rows 2 files, models smollm"), line
