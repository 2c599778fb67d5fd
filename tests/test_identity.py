"""What a result's identity is (harness/identity.py): methods by declared version, results by
RESULTS_VERSION, the parts printed by `--dry-run --json`; the committed leaderboard keeps its
hashes (tests/test_method_identity.py pins them) and keeps verifying."""

import json
import shutil
from pathlib import Path

from harness import identity
from harness.cli import main
from harness.config import load_suite
from harness.grid import expand, plan, state
from harness.results import CellState
from harness.storage import sha256_file
from helpers import tiny_suite

ROOT = Path(__file__).resolve().parent.parent
SFT_BUNDLE = ROOT / "leaderboard" / "submissions" / "sft"

PLUGIN = ("from harness.methods import Method\n\n"
          "class Mine(Method):\n    name = 'mine'\n{version}    defaults = {{'beta': 0.5}}\n")


def suite_with(folder, model, code):
    (folder / "m.py").write_text(code)
    return load_suite(str(tiny_suite(folder, str(model), methods={"m.py:Mine": {}})))


def test_a_declared_version_makes_a_comment_harmless_and_a_bump_stale(tmp_path, tiny_model_dir):
    code = PLUGIN.format(version="    version = '1'\n")
    suite = suite_with(tmp_path, tiny_model_dir, code)
    before = plan(expand(suite)[0], suite)
    assert before.parts["method_version"] == "1" and "method_version" not in before.config
    suite = suite_with(tmp_path, tiny_model_dir, code + "# a comment\n")
    assert plan(expand(suite)[0], suite).config_hash == before.config_hash
    suite = suite_with(tmp_path, tiny_model_dir, code.replace("'1'", "'2'"))
    after = plan(expand(suite)[0], suite)
    assert after.config["method_version"] == "2" and after.config_hash != before.config_hash


def test_a_plugin_without_a_version_is_versioned_by_its_source_with_one_warning(
        tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setattr(identity, "_warned", set())
    code = PLUGIN.format(version="")
    suite = suite_with(tmp_path, tiny_model_dir, code)
    first = plan(expand(suite)[0], suite)
    plan(expand(suite)[0], suite)
    warned = [line for line in capsys.readouterr().err.splitlines() if "declares no" in line]
    assert warned == [f"warning: method 'mine' declares no `version`: its source hash "
                      f"({first.parts['method_version']}) stands in, so any edit to m.py makes "
                      "its results stale; declare one, e.g. version = \"1\""]
    assert first.parts["method_version"] == f"src-{sha256_file(tmp_path / 'm.py')[:16]}"
    suite = suite_with(tmp_path, tiny_model_dir, code + "# a comment\n")
    assert plan(expand(suite)[0], suite).config_hash != first.config_hash


def test_a_subclass_does_not_inherit_its_parents_version(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(identity, "_warned", set())
    code = ("from baselines.sft import SFT\n\nclass Mine(SFT):\n    name = 'mine'\n"
            "    defaults = {'beta': 0.5}\n")
    suite = suite_with(tmp_path, tiny_model_dir, code)
    assert plan(expand(suite)[0], suite).parts["method_version"].startswith("src-")


def test_every_builtin_declares_a_version_and_the_list_shows_it(capsys):
    from harness.methods import METHODS, shipped

    assert main(["list", "methods", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(shipped()) == 14 and {r["name"] for r in rows} >= set(shipped())
    for row in (r for r in rows if r["name"] in shipped()):
        assert row["version"] == identity.declared_version(METHODS[row["name"]]) == "1", row


def test_a_comment_in_a_builtin_leaves_its_committed_bundle_verifiable():
    from harness.verify import static_problems

    manifest = json.loads((SFT_BUNDLE / "manifest.json").read_text())
    # the committed bundle ran with bytes of baselines/sft.py other than today's (its version
    # line came later): its version, not its bytes, decides
    assert manifest["method"]["sha256"] != sha256_file(ROOT / "baselines" / "sft.py")
    assert static_problems(SFT_BUNDLE, load_suite("leaderboard")) == []


def test_a_cell_of_another_results_version_is_stale(tmp_path, monkeypatch):
    from harness import results
    from harness.verify import _cell_problem, static_problems

    suite = load_suite("leaderboard")
    cell = next(c for c in expand(suite) if c.method.name == "sft")
    shutil.copytree(SFT_BUNDLE / "cells" / cell.id, tmp_path / cell.id)
    assert state(cell, suite, tmp_path / cell.id) is CellState.COMPLETE
    assert _cell_problem(tmp_path / cell.id, cell, suite, None) is None
    monkeypatch.setattr(results, "RESULTS_VERSION", 2)
    assert plan(cell, suite).config["results_version"] == 2  # hashed once it moves
    assert state(cell, suite, tmp_path / cell.id) is CellState.STALE
    assert _cell_problem(tmp_path / cell.id, cell, suite, None) == (
        "measured under results version 1, this harness's is 2: stale, run it again")
    # the leaderboard grid is another one (its id hashes the results version)
    assert "is not the current leaderboard grid" in static_problems(SFT_BUNDLE, suite)[0]


def test_dry_run_json_prints_each_cells_identity(tmp_path, tiny_model_dir, capsys):
    path = tiny_suite(tmp_path, str(tiny_model_dir))
    assert main(["run", "--suite", str(path), "--out", str(tmp_path / "out"), "--dry-run",
                 "--json"]) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    suite = load_suite(str(path))
    for row, cell in zip(cells, expand(suite)):
        parts = row["identity"]
        assert set(parts) == {"model", "tasks", "method", "method_version", "params", "train",
                              "seed", "data", "eval", "probes", "schema", "precision", "primary",
                              "results_version"}
        assert parts["method"] == cell.method.name and parts["method_version"] == "1"
        assert parts["results_version"] == 1
        assert row["config_hash"] == identity.config_hash(parts) == plan(cell, suite).config_hash


def test_result_records_method_version_source_and_results_version(tmp_path, tiny_model_dir):
    import torch

    from harness.runner import Runner
    from harness.ui import UI

    path = tiny_suite(tmp_path, str(tiny_model_dir), methods={"sft": {}}, probes=[],
                      streams={"one": ["arith"]}, train={"steps": 1, "batch_size": 4,
                                                         "max_len": 64})
    suite = load_suite(str(path))
    result = Runner(suite, tmp_path / "out", torch.device("cpu"), UI(quiet=True)).run_cell(
        expand(suite)[0])
    assert result["results_version"] == 1
    assert result["method_source"] == {
        "name": "sft", "version": "1", "file": "sft.py",
        "sha256": sha256_file(ROOT / "baselines" / "sft.py")}


# ------------------------------------------------------------------ models by content

def test_a_model_folder_is_identified_by_its_content(tmp_path, tiny_model_dir, monkeypatch):
    import os

    import torch
    from transformers import AutoModelForCausalLM

    from harness import storage
    from harness.identity import model_identity

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, folder)
    copy = tmp_path / "elsewhere" / "tiny"
    shutil.copytree(tiny_model_dir, copy)
    first = model_identity(str(folder), str(folder))
    assert first == model_identity(str(copy), str(copy))  # the same bytes: the same model
    hashed = []
    monkeypatch.setattr(storage, "sha256_file", lambda p: hashed.append(p) or sha256_file(p))
    weights = folder / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert model_identity(str(folder), str(folder)) == first and hashed == [weights]
    hashed.clear()
    assert model_identity(str(folder), str(folder)) == first and hashed == []  # cached
    # fine-tuned weights of the same shapes saved into the same folder: another model
    model = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        model.model.norm.weight.add_(0.5)
    model.save_pretrained(folder)
    assert model_identity(str(folder), str(folder)) != first


def test_resaved_weights_are_not_taken_for_the_complete_cell_of_the_old(tmp_path,
                                                                         tiny_model_dir):
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, folder)
    path = tiny_suite(tmp_path, str(folder), methods={"sft": {}}, probes=[])
    suite = load_suite(str(path))
    cell = expand(suite)[0]
    before = plan(cell, suite, str(folder)).config_hash
    AutoModelForCausalLM.from_pretrained(folder).save_pretrained(folder)  # same tensors
    assert plan(cell, suite, str(folder)).config_hash == before  # same bytes, same identity
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.model.norm.weight.data.mul_(2.0)
    model.save_pretrained(folder)
    assert plan(cell, suite, str(folder)).config_hash != before


def test_a_report_leaves_out_cells_of_another_results_version(tmp_path, monkeypatch):
    from harness import cells, results

    cell = "smollm2-135m-instruct__arith-json__sft__s0"
    shutil.copytree(SFT_BUNDLE / "cells" / cell, tmp_path / "cells" / cell)
    assert [r.data["cell_id"] for r in cells.read_cells(tmp_path).records] == [cell]
    monkeypatch.setattr(results, "RESULTS_VERSION", 2)
    found = cells.read_cells(tmp_path)
    assert found.records == [] and found.corrupt == [{
        "path": f"cells/{cell}/result.json", "cell_id": cell,
        "reason": "stale: measured under results version 1, this harness's is 2 (never mixed: "
                  "re-run it)"}]
