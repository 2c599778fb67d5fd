"""A grid whose cells ran on several machines (a run resumed in another session): `harness
run` says so, naming each processor and how many complete cells it ran."""

import json

from harness.cli import main
from harness.results import recorded_processors
from harness.runner import cpu_name
from tests.helpers import tiny_suite


def test_a_run_names_the_other_processors_its_folder_holds(tmp_path, tiny_model_dir,
                                                           monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    suite = tiny_suite(tmp_path, str(tiny_model_dir), methods={"sft": {}},
                       train={"steps": 1, "lr": 1e-3, "batch_size": 4, "max_len": 96})
    out, run = tmp_path / "out", ["run", "--suite", str(suite), "--out", str(tmp_path / "out"),
                                  "--quiet", "--threads", "1"]
    assert main(run) == 0
    assert recorded_processors(out) == {cpu_name(): 1}
    assert "NOTE" not in capsys.readouterr().out
    (result,) = out.glob("cells/*/result.json")
    recorded = json.loads(result.read_text())
    recorded["hardware"]["cpu"] = "Other CPU 9000"
    result.write_text(json.dumps(recorded))
    assert main(run) == 0  # the cell is complete: skipped, and the folder's machine named
    said = " ".join(capsys.readouterr().out.split())
    assert recorded_processors(out) == {"Other CPU 9000": 1}
    assert f"holds complete cells from other processors (1 on Other CPU 9000); this " \
           f"machine's is {cpu_name()}" in said
    # the dry run's estimates "from this OUT" were measured on that machine: it says so too
    assert main(run + ["--dry-run"]) == 0
    planned = " ".join(capsys.readouterr().out.split())
    assert f"holds complete cells from other processors (1 on Other CPU 9000); this " \
           f"machine's is {cpu_name()}" in planned
    assert main(run + ["--dry-run", "--json"]) == 0
    assert "1 on Other CPU 9000" in json.loads(capsys.readouterr().out)["machine_note"]
