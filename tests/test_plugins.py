"""Outside methods: discovered by file path and by entry point, run end to end on the tiny
model; failures are isolated per cell and name the plugin and the hook."""

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.methods import METHODS
from helpers import tiny_suite

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "base_kl_sft.py"


@pytest.fixture
def suite_file(tmp_path, tiny_model_dir):
    return tiny_suite(tmp_path, str(tiny_model_dir), methods=["sft"],
                      streams={"one": ["arith"]}, probes=["drift"])


def results(out):
    return {json.loads(p.read_text())["cell"]["method"]: json.loads(p.read_text())
            for p in (out / "cells").glob("*/result.json")}


def test_method_file_runs_end_to_end(tmp_path, suite_file):
    out = tmp_path / "out"
    spec = f"{EXAMPLE}:BaseKLSFT"
    assert main(["run", "--suite", str(suite_file), "--out", str(out), "--quiet",
                 "--methods", f"sft,{spec}"]) == 0
    found = results(out)
    assert set(found) == {"sft", "base-kl-sft"}  # named by its class's `name`, not its path
    assert sorted(p.name.split("__")[2] for p in (out / "cells").iterdir()) == ["base-kl-sft", "sft"]
    mine = found["base-kl-sft"]
    assert len(mine["R"]) == 2 and mine["training"][0]["steps"] == 3
    # the KL pull keeps the model nearer the base than plain SFT does
    assert mine["probes"]["drift"][-1] < found["sft"]["probes"]["drift"][-1]


def test_entry_point_plugin_is_discovered_and_runs(tmp_path, suite_file, monkeypatch):
    site = tmp_path / "site"
    dist = site / "my_cl_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    shutil.copy(EXAMPLE, site / "my_cl_plugin.py")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-cl-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[harness.methods]\nbase-kl-sft = my_cl_plugin:BaseKLSFT\n")
    monkeypatch.syspath_prepend(str(site))
    assert METHODS.targets()["base-kl-sft"] == "my_cl_plugin:BaseKLSFT"
    assert METHODS["base-kl-sft"].name == "base-kl-sft"
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite_file), "--out", str(out), "--quiet",
                 "--methods", "base-kl-sft"]) == 0
    assert set(results(out)) == {"base-kl-sft"}


def test_plugin_that_fails_to_import_fails_its_cells_only(tmp_path, suite_file):
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_real_module_xyz\n")
    out = tmp_path / "out"
    code = main(["run", "--suite", str(suite_file), "--out", str(out), "--quiet",
                 "--methods", f"{broken}:Nope,sft"])
    assert code == 1
    assert set(results(out)) == {"sft"}
    failure = json.loads(next((out / "cells").glob("*broken*/failure.json")).read_text())
    assert f"method plugin '{broken}:Nope' failed to import" in failure["error"]
    assert "ModuleNotFoundError" in failure["error"]


def test_hook_error_names_the_method_and_the_hook(tmp_path, suite_file):
    plugin = tmp_path / "bad_loss.py"
    plugin.write_text(
        "from harness.methods import Method\n\n"
        "class BadLoss(Method):\n"
        "    name = 'bad-loss'\n"
        "    def loss(self, model, batch, ctx):\n"
        "        raise ValueError('no loss today')\n")
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite_file), "--out", str(out), "--quiet",
                 "--methods", f"{plugin}:BadLoss"]) == 1
    failure = json.loads(next((out / "cells").glob("*/failure.json")).read_text())
    assert failure["error"] == "method 'bad-loss' failed in its loss hook: ValueError: no loss today"
    # a re-run retries the failed cell (and fails again, recorded again)
    assert main(["run", "--suite", str(suite_file), "--out", str(out), "--quiet",
                 "--methods", f"{plugin}:BadLoss"]) == 1


def test_class_that_is_not_a_method(tmp_path, capsys, suite_file):
    plugin = tmp_path / "plain.py"
    plugin.write_text("class Plain:\n    pass\n")
    assert main(["run", "--suite", str(suite_file), "--methods", f"{plugin}:Plain"]) == 2
    assert "is not a harness Method subclass" in capsys.readouterr().err
