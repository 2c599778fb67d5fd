"""A method's one identity is its `name`: file plugins are named by their class's `name`
(cells, rows, config), suite paths resolve beside the suite, `--methods` finds the suite's
settings by name, `--set` overrides settings; built-in cells keep their ids and hashes."""

import json
import re

from harness.config import load_suite
from harness.grid import expand, grid_id, plan

# Computed with the code before method identity changed (commit 2a40761): the cells of the
# running leaderboard grid must stay complete under this code, byte for byte.
LEADERBOARD_GRID_ID = "d253f81a9d5c1733"
LEADERBOARD_PINS = {
    "smollm2-135m-instruct__arith-json__sft__s0": "0c9460832a7fd74d",
    "smollm2-135m-instruct__arith-json__lora__s0": "b0cdc7930a1738ce",
    "smollm2-135m-instruct__json-arith__sdft__s0": "0172d43f00d10263",
}


def test_builtin_cells_keep_their_ids_and_config_hashes():
    suite = load_suite("leaderboard")
    cells = {cell.id: cell for cell in expand(suite)}
    assert len(cells) == 84 and grid_id(suite) == LEADERBOARD_GRID_ID
    for cell_id, config_hash in LEADERBOARD_PINS.items():
        assert plan(cells[cell_id], suite).config_hash == config_hash, cell_id


# ------------------------------------------------------------------ file plugins by name

import os  # noqa: E402
import shutil  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

from harness.cli import main  # noqa: E402
from harness.overrides import apply_sets, narrow  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.methods import METHODS, make_method  # noqa: E402
from helpers import tiny_suite  # noqa: E402

PLUGIN = ("from harness.methods import Method\n\n"
          "class Mine(Method):\n    name = {name!r}\n    description = 'a test plugin'\n"
          "    defaults = {{'beta': 0.5}}\n")


def plugin(folder, name="mine", file="m.py", code=PLUGIN):
    path = folder / file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(code.format(name=name))
    return path


@pytest.fixture
def beside(tmp_path, tiny_model_dir, monkeypatch):
    """A suite in sub/ listing sub/m.py as `m.py:Mine` (beside it), read from tmp_path."""
    plugin(tmp_path / "sub")
    (tmp_path / "sub").mkdir(exist_ok=True)
    path = tiny_suite(tmp_path / "sub", str(tiny_model_dir), streams={"one": ["arith"]},
                      methods={"sft": {}, "m.py:Mine": {"beta": 0.3, "train": {"lr": 1e-2}}})
    monkeypatch.chdir(tmp_path)
    return path


def test_a_file_plugin_is_named_by_its_class_name(beside, tiny_model_dir, tmp_path):
    suite = load_suite(str(beside))  # (yaml.safe_dump sorted the keys: m.py:Mine first)
    mine, sft = suite.methods
    assert (mine.name, mine.params, mine.train.lr) == ("mine", {"beta": 0.3}, 1e-2)
    assert mine.source == f"{os.path.realpath(tmp_path / 'sub' / 'm.py')}:Mine"
    cell = expand(suite)[0]
    assert cell.id == f"{tiny_model_dir.name}__one__mine__s0" and cell.info["method"] == "mine"
    config = plan(cell, suite).config
    assert config["method"] == "mine" and "m.py" not in str(config)
    assert make_method("mine", mine.params).params == {"beta": 0.3}  # as the runner makes it
    # another checkout: the same plugin in another folder pairs with this one
    other = tmp_path / "checkout2"
    shutil.copytree(tmp_path / "sub", other)
    suite2 = load_suite(str(other / "suite.yaml"))
    assert suite2.methods[0].source != mine.source
    assert plan(expand(suite2)[0], suite2).config_hash == plan(cell, suite).config_hash


def test_suite_paths_fall_back_to_the_working_directory():
    suite = load_suite("benchmarks/diagnostics/sdft.yaml")  # paths written from the repo root
    names = [m.name for m in suite.methods]
    assert "sdft-short" in names and "sdft-skip0-short" in names
    assert all(".py" not in cell.id for cell in expand(suite))


@pytest.mark.parametrize("spelling", ["mine", "sub/m.py:Mine", "./sub/../sub/m.py:Mine",
                                      "ABS", "m.py:Mine"])
def test_methods_finds_the_suites_settings_under_any_spelling(beside, tmp_path, spelling):
    spelling = f"{tmp_path / 'sub' / 'm.py'}:Mine" if spelling == "ABS" else spelling
    suite = narrow(load_suite(str(beside)), ["sft", spelling], None)
    assert [(m.name, m.params) for m in suite.methods] == [("sft", {}), ("mine", {"beta": 0.3})]
    assert suite.methods[1].train.lr == 1e-2


def test_two_methods_with_one_name_are_an_error(beside, tmp_path):
    plugin(tmp_path / "other")
    with pytest.raises(HarnessError, match="named 'mine', as the suite's method from .*sub/m.py"):
        narrow(load_suite(str(beside)), ["other/m.py:Mine"], None)
    plugin(tmp_path, file="tmp.py")
    with pytest.raises(HarnessError, match="--methods: two different methods are named 'mine'"):
        narrow(load_suite("quickstart"), ["other/m.py:Mine", "tmp.py:Mine"], None)
    suite = yaml.safe_load(beside.read_text())
    suite["methods"] = {"m.py:Mine": {}, "../other/m.py:Mine": {}}
    beside.write_text(yaml.safe_dump(suite))
    with pytest.raises(HarnessError, match="two different methods are named 'mine'"):
        load_suite(str(beside))
    suite["methods"] = {"m.py:Mine": {}, f"{tmp_path}/sub/m.py:Mine": {}}
    beside.write_text(yaml.safe_dump(suite))
    with pytest.raises(HarnessError, match="methods repeat: 'mine' is listed twice"):
        load_suite(str(beside))


def test_a_plugin_needs_a_name_of_its_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plugin(tmp_path, name="")
    plugin(tmp_path, file="sub.py",
           code="from baselines.sft import SFT\n\nclass Sub(SFT):\n    pass\n")
    plugin(tmp_path, file="same.py", code="from baselines.sft import SFT\n")
    with pytest.raises(HarnessError) as info:
        narrow(load_suite("quickstart"), ["m.py:Mine"], None)
    assert info.value.problem == "--methods: method class 'Mine' in m.py has no name"
    assert 'name = "mine"' in info.value.fix
    with pytest.raises(HarnessError, match="'Sub' in sub.py is named 'sft', as the registered"):
        narrow(load_suite("quickstart"), ["sub.py:Sub"], None)
    # a file that imports the built-in class names the built-in method: the same one
    assert narrow(load_suite("quickstart"), ["same.py:SFT"], None).methods[0].name == "sft"


def test_a_missing_class_has_its_own_error(tmp_path, capsys):
    path = plugin(tmp_path, code=PLUGIN + "\nclass Other(Mine):\n    name = 'other'\n")
    assert main(["list", "methods", f"{path}:Missing"]) == 2
    err = capsys.readouterr().err
    assert "has no class 'Missing'" in err and "classes: Mine, Other" in err
    assert "not a harness Method subclass" not in err
    with pytest.raises(HarnessError, match="has no class 'Mien' \\(did you mean 'Mine'\\?\\)"):
        METHODS[f"{path}:Mien"]


def test_list_methods_shows_one_plugin(tmp_path, capsys):
    path = plugin(tmp_path)
    assert main(["list", "methods", f"{path}:Mine", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["name"], row["description"]) == ("mine", "a test plugin")
    assert row["defaults"] == {"beta": 0.5} and row["source"].endswith("m.py:Mine")
    assert main(["list", "methods", f"{path}:Mine"]) == 0
    out = capsys.readouterr().out
    assert "mine" in out and "beta=0.5" in out and "a test plugin" in out


def test_set_overrides_settings_and_train_settings(beside):
    suite = load_suite(str(beside))
    sets = ["mine.beta=0.1", "mine.train.lr=2e-3", "sft.train.steps=5"]
    mine, sft = apply_sets(suite, sets).methods
    assert (mine.params, mine.train.lr, mine.train.steps) == ({"beta": 0.1}, 2e-3, 3)
    assert (sft.train.steps, sft.train.lr) == (5, suite.train.lr)
    assert apply_sets(suite, []) == suite


@pytest.mark.parametrize("assignment, needle", [
    ("mine.gamma=1", "--set mine: method 'mine' has no setting gamma"),
    ("mine.beta=lots", "beta must be a finite number, got 'lots'"),
    ("mine.train.lrr=1", "--set mine.train: unknown key 'lrr'"),
    ("mine.train.lr=5", "lr must be <= 1"),
    ("nope.beta=1", "no method 'nope' in this run"),
    ("sub/m.py:Mine.beta=1", "names a method by its name, not its file"),
    ("mine", "expected METHOD.KEY=VALUE"),
    ("mine.a.b=1", "'a.b' is not a setting name"),
])
def test_bad_set_is_one_line_and_exit_2(beside, capsys, assignment, needle):
    code = main(["run", "--suite", str(beside), "--dry-run", "--set", assignment])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("harness: error:") and "Fix:" in err and needle in err, err


def test_dry_run_shows_the_settings_in_force(beside, capsys, tmp_path):
    assert main(["run", "--suite", str(beside), "--dry-run", "--out", str(tmp_path / "o"),
                 "--set", "mine.beta=0.2", "--set", "sft.train.lr=1e-4"]) == 0
    out = capsys.readouterr().out
    lines = out[out.index("settings in force"):].splitlines()[1:]
    assert lines[0].split()[:4] == ["mine", "beta=0.2;", "train:", "lr=0.01"]
    assert "sub/m.py:Mine" in lines[0]
    assert lines[1].split() == ["sft", "(none);", "train:", "lr=0.0001"]


def test_list_settings_take_lists_of_their_defaults_items(tmp_path):
    code = ("from harness.methods import Method\n\nclass Lists(Method):\n    name = {name!r}\n"
            "    defaults = {{'layers': [0, 1], 'mods': ['q_proj'], 'any': []}}\n")
    path = plugin(tmp_path, name="lists", code=code)
    suite = tiny_suite(tmp_path, "unused", methods={f"{path}:Lists": {}})
    (spec,) = apply_sets(load_suite(str(suite)),
                         ["lists.layers=[2, 3.0]", "lists.mods=[k_proj]", "lists.any=[1, a]"]).methods
    assert spec.params == {"layers": [2, 3], "mods": ["k_proj"], "any": [1, "a"]}
    assert isinstance(spec.params["layers"][1], int)
    for bad, needle in [("lists.layers=[0.5]", "layers must be a list like its default [0, 1], got [0.5]"),
                        ("lists.layers=3", "layers must be a list like its default [0, 1], got 3"),
                        ("lists.mods=[1]", "mods must be a list like its default [\"q_proj\"]")]:
        with pytest.raises(HarnessError, match=re.escape(needle)):
            apply_sets(load_suite(str(suite)), [bad])
