"""A grid whose cells ran on several machines (a run resumed in another session): `harness
run` says so, naming each processor and how many complete cells it ran."""

import json

from harness.cli import main
from harness.results import recorded_processors
from harness.runner import cpu_isa, cpu_name
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
    # the v2 run script's check (harness.launch.grid_machine_problem): most cells elsewhere
    from harness import precision
    from harness.launch import grid_machine_problem
    assert grid_machine_problem(out, "fp32") == (
        f"this machine's processor ({cpu_name()}) is not the one most of the grid's complete "
        "cells ran on: Other CPU 9000 (1 cells); run it on that machine (a later session may "
        "get one)")
    recorded["hardware"]["cpu"] = cpu_name()
    recorded["hardware"]["cpu_isa"] = "AVX512+other"  # the same name on another generation
    result.write_text(json.dumps(recorded))
    assert grid_machine_problem(out, "fp32").startswith(
        f"this machine's instruction set ({cpu_isa()}) is not the one most of the grid's "
        "complete cells ran on: AVX512+other (1 cells)")
    recorded["hardware"].pop("cpu_isa")  # recorded before cpu_isa was: judged by its name
    result.write_text(json.dumps(recorded))
    # on the grid's processor, a bf16 grid needs native bf16 (a generic cloud CPU name
    # covers CPUs with and without it); an fp32 grid does not, nor a grid not yet begun
    for suite_at, native, expected in [("bf16", False, "the grid runs at bf16 (1 complete "
                                        "cells) and this CPU"), ("bf16", True, None),
                                       ("fp32", False, None), ("bf16-weights", False, "the")]:
        monkeypatch.setattr(precision, "cpu_has_bf16", lambda native=native: native)
        said = grid_machine_problem(out, suite_at)
        assert said == expected if expected is None else said.startswith(expected), said
    assert grid_machine_problem(tmp_path / "new", "bf16") is None
