"""Submission bundles: `submit` writes a complete, checksummed bundle; `verify` accepts it and
rejects every tampering we could think of, each with a one-line reason naming the cell."""

import json
import shutil

import pytest
import torch

from harness import bundle as B
from harness import verify as V
from harness.config import load_suite
from harness.overrides import narrow
from harness.runner import cpu_isa, cpu_name
from harness.ui import UI
from tests.helpers import edit_json, reseal, tiny_suite

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def made(tiny_model_dir, tmp_path_factory):
    """One honest bundle of sft on a tiny two-seed grid (module-wide: built once)."""
    root = tmp_path_factory.mktemp("lb")
    mp = pytest.MonkeyPatch()
    mp.setenv("HARNESS_CACHE", str(root / "cache"))
    path = tiny_suite(root, str(tiny_model_dir), seeds=[0, 1], probes=["drift"])
    suite = narrow(load_suite(str(path)), ["sft"], None)
    manifest, dest = B.submit(None, suite, root / "run", root, CPU, UI(quiet=True))
    yield load_suite(str(path)), dest, manifest
    mp.undo()


def copy(made, tmp_path):
    suite, dest, _ = made
    target = tmp_path / "bundle"
    shutil.copytree(dest, target)
    return suite, target


def test_bundle_layout_and_manifest(made):
    suite, dest, manifest = made
    assert dest.name == "sft" and dest.parent.name == "submissions"
    cells = sorted(p.name for p in (dest / "cells").iterdir())
    assert cells == manifest["cells"] and len(cells) == 2
    assert all({f.name for f in (dest / "cells" / c).iterdir()} == {"result.json", "samples.json"}
               for c in cells)
    method = manifest["method"]
    assert method["name"] == "sft" and method["builtin"] and method["class"] == "baselines.sft:SFT"
    assert method["sha256"] == B.sha256_file(dest / method["source"])
    assert manifest["suite"]["grid_id"] == B.leaderboard_grid_id(suite)
    assert manifest["suite"]["seeds"] == [0, 1]
    assert manifest["suite"]["precision"] == suite.precision == "auto"
    assert manifest["hardware"]["device_type"] == "cpu"
    assert manifest["hardware"]["threads"] == torch.get_num_threads()
    ran = json.loads((dest / "cells" / cells[0] / "result.json").read_text())["hardware"]
    assert manifest["hardware"]["processor"] == ran["cpu"] == cpu_name()  # the cells' own
    assert manifest["device_hours"] == pytest.approx(manifest["wall_clock_s"] / 3600, abs=1e-3)
    assert set(manifest["libraries"]) >= {"torch", "transformers", "peft", "lm_eval"}
    sums = B.parse_checksums((dest / B.CHECKSUMS).read_text())
    assert sums == B.file_checksums(dest) and B.MANIFEST in sums and len(sums) == 6
    for c in cells:  # each cell names the source it ran with: the bundled one
        ran = json.loads((dest / "cells" / c / "result.json").read_text())["method_source"]
        assert ran == {"name": "sft", "version": "1", "file": "sft.py",
                       "sha256": method["sha256"]}
    assert method["version"] == "1"


def test_submit_refuses_cells_run_with_another_source(made, tmp_path):
    from harness.errors import HarnessError

    suite, dest, _ = made
    run = tmp_path / "run"
    shutil.copytree(dest / "cells", run / "cells")
    edit_json(first_cell(run) / "result.json",
              lambda r: r["method_source"].__setitem__("sha256", "f" * 64))
    with pytest.raises(HarnessError, match="ran with another version of sft.py"):
        B.write_bundle(tmp_path / "b", narrow(suite, ["sft"], None), run, 1)
    assert not (tmp_path / "b").exists()


def test_honest_bundle_passes_static_checks(made):
    suite, dest, _ = made
    assert V.static_problems(dest, suite) == []


def test_leaderboard_grid_id_ignores_the_method_list_only(made, tmp_path):
    suite, _, _ = made
    import dataclasses
    assert B.leaderboard_grid_id(narrow(suite, ["sft"], None)) == B.leaderboard_grid_id(suite)
    assert B.leaderboard_grid_id(dataclasses.replace(suite, seeds=[0, 1, 2])) != B.leaderboard_grid_id(suite)


def first_cell(path):
    return sorted((path / "cells").iterdir())[0]


@pytest.mark.parametrize("tamper, expected", [
    ("edit_score", "checksum mismatch"),
    ("edit_score_resealed", "does not match its per-item scores"),
    ("edit_metric_resealed", "metric acc is"),
    ("swap_cells", "belongs to cell"),
    ("missing_cell", "missing"),
    ("extra_file", "not listed in checksums.sha256"),
    ("changed_method", "does not match its sha256"),
    ("changed_method_rehashed", "ran with another version of the method's source"),
    ("other_version_resealed", "ran as version 0, this harness's is version 1"),
    ("changed_checksum", "checksum mismatch"),
    ("no_checksums", "checksums.sha256: missing or malformed"),
    ("other_grid", "is not the current leaderboard grid"),
    ("other_settings", "settings hash"),
    ("bad_manifest", "manifest.json: invalid JSON"),
    ("other_source_resealed", "ran with another version of the method's source"),
    ("other_precision_resealed", "precision 'bf16', but the grid's cells ran at 'auto'"),
])
def test_tampered_bundles_are_rejected(made, tmp_path, tamper, expected):
    suite, path = copy(made, tmp_path)
    cell = first_cell(path)
    result = cell / "result.json"
    if tamper.startswith("edit_score"):
        edit_json(result, lambda r: r["R"][1].__setitem__(0, 1.0 - r["R"][1][0] + 0.25))
    elif tamper == "edit_metric_resealed":
        edit_json(result, lambda r: r["metrics"].__setitem__("acc", r["metrics"]["acc"] + 0.1))
    elif tamper == "swap_cells":
        other = sorted((path / "cells").iterdir())[1]
        tmp = path / "swap.json"
        shutil.move(result, tmp)
        shutil.move(other / "result.json", result)
        shutil.move(tmp, other / "result.json")
    elif tamper == "missing_cell":
        shutil.rmtree(cell)
    elif tamper == "extra_file":
        (path / "cells" / "notes.txt").write_text("hi")
    elif tamper.startswith("changed_method"):
        source = path / json.loads((path / B.MANIFEST).read_text())["method"]["source"]
        source.write_text(source.read_text() + "\n# changed\n")
        if tamper.endswith("rehashed"):
            edit_json(path / B.MANIFEST,
                      lambda m: m["method"].__setitem__("sha256", B.sha256_file(source)))
    elif tamper == "changed_checksum":
        text = (path / B.CHECKSUMS).read_text()
        (path / B.CHECKSUMS).write_text(("0" if text[0] != "0" else "1") + text[1:])
    elif tamper == "no_checksums":
        (path / B.CHECKSUMS).unlink()
    elif tamper == "other_grid":
        import dataclasses
        suite = dataclasses.replace(suite, seeds=[0, 1, 2])
    elif tamper == "other_settings":
        edit_json(path / B.MANIFEST, lambda m: m["method"]["train"].__setitem__("lr", 0.5))
    elif tamper == "other_version_resealed":
        edit_json(path / B.MANIFEST, lambda m: m["method"].__setitem__("version", "0"))
    elif tamper == "other_source_resealed":
        edit_json(result, lambda r: r["method_source"].__setitem__("sha256", "0" * 64))
    elif tamper == "bad_manifest":
        (path / B.MANIFEST).write_text("{not json")
    elif tamper == "other_precision_resealed":  # a claim the cells' grid id does not back
        edit_json(path / B.MANIFEST, lambda m: m["suite"].__setitem__("precision", "bf16"))
    if tamper.endswith("resealed") or tamper in ("swap_cells", "changed_method_rehashed",
                                                  "other_settings"):
        reseal(path)
    problems = V.static_problems(path, suite)
    assert problems, tamper
    assert any(expected in p for p in problems), problems
    assert all("\n" not in p for p in problems)
    if tamper in ("edit_score_resealed", "edit_metric_resealed", "swap_cells", "missing_cell"):
        assert any(p.startswith("cell ") for p in problems)  # names the cell


def test_rerun_matches_exactly_on_the_same_cpu(made, tmp_path):
    suite, path = copy(made, tmp_path)
    cell = first_cell(path).name
    problems, records = V.rerun_problems(path, suite, [cell], CPU, UI(quiet=True))
    assert problems == [] and records[0]["comparison"] == "exact"
    assert records[0]["max_abs_diff"] == 0.0


def test_rerun_catches_a_consistent_forgery(made, tmp_path):
    """R, items and metrics edited together and resealed pass the static checks; the re-run
    does not."""
    suite, path = copy(made, tmp_path)
    result = first_cell(path) / "result.json"
    from harness.metrics import cell_metrics

    def forge(r):
        task = r["tasks"][0]
        r["items"][task][-1] = [1.0] * len(r["items"][task][-1])
        r["R"][-1][0] = 1.0
        r["metrics"] = cell_metrics(r["R"], r["probes"])
    edit_json(result, forge)
    reseal(path)
    assert V.static_problems(path, suite) == []
    problems, _ = V.rerun_problems(path, suite, [result.parent.name], CPU, UI(quiet=True))
    assert problems and "re-run differs" in problems[0] and result.parent.name in problems[0]


def test_a_stopped_verification_resumes_mid_cell_in_its_work_folder(made, tmp_path,
                                                                     monkeypatch, capsys):
    """`verify --work`: a re-run stopped after its first task resumes from that checkpoint
    and ends exactly as an uninterrupted one; run again, the complete re-run is compared
    without training; a result of another method source there is run afresh; a forged
    bundle is still rejected from it."""
    from harness import checkpoint

    suite, path = copy(made, tmp_path)
    cell, work = first_cell(path).name, tmp_path / "work"
    saved = checkpoint.save

    def save_then_stop(folder, state):
        saved(folder, state)
        raise KeyboardInterrupt  # Ctrl-C, or the session's end, right after task 1
    monkeypatch.setattr(checkpoint, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        V.rerun_problems(path, suite, [cell], CPU, UI(quiet=True), work)
    monkeypatch.setattr(checkpoint, "save", saved)
    assert (work / "cells" / cell / "checkpoint.pt").is_file()
    assert not (work / "cells" / cell / "result.json").exists()
    capsys.readouterr()

    problems, records = V.rerun_problems(path, suite, [cell], CPU, UI(quiet=True), work)
    log = capsys.readouterr().out
    assert "resuming after task 1/2" in log and "train arith" not in log, log
    assert problems == [] and records[0]["max_abs_diff"] == 0.0
    assert not (work / "cells" / cell / "claim.json").exists()  # released

    problems, _ = V.rerun_problems(path, suite, [cell], CPU, UI(quiet=True), work)
    assert problems == [] and "already complete" in capsys.readouterr().out

    (work / "cells" / cell / V.SOURCE_STAMP).write_text("f" * 64)  # another source's
    problems, _ = V.rerun_problems(path, suite, [cell], CPU, UI(quiet=True), work)
    log = capsys.readouterr().out
    assert problems == [] and "already complete" not in log and "train arith" in log, log

    result = path / "cells" / cell / "result.json"
    edit_json(result, lambda r: r["R"][-1].__setitem__(0, 1.0 - r["R"][-1][0]))
    problems, _ = V.rerun_problems(path, suite, [cell], CPU, UI(quiet=True), work)
    assert problems and "re-run differs" in problems[0]


def test_verify_work_folder_keeps_its_pick_and_refuses_a_held_cell(tmp_path):
    import os
    import socket

    from harness.errors import HarnessError

    ids, work = [f"c{i}" for i in range(10)], tmp_path / "work"
    first = V.pick_cells(ids, 2, None, work)
    assert all(V.pick_cells(ids, 2, None, work) == first for _ in range(5))
    assert V.pick_cells(ids, 2, ["c7"], work) == ["c7"]  # named cells win
    assert len(V.pick_cells(ids, 3, None, work)) == 3  # another count: drawn again
    gone = [i for i in ids if i not in first]  # the bundle lost a drawn cell: drawn again
    assert set(V.pick_cells(gone, 2, None, work)) <= set(gone)

    (tmp_path / "a-file").write_text("x")
    with pytest.raises(HarnessError, match="--work .*a-file: cannot be made a folder"):
        V.pick_cells(ids, 2, None, tmp_path / "a-file")

    held = work / "cells" / "c1"
    held.mkdir(parents=True)
    (held / "claim.json").write_text(json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "token": "t", "since": "now"}))
    with pytest.raises(HarnessError, match="c1 is being re-run by another process"):
        with V._rerun_folder(work, "c1", {"sha256": "x"}):
            pass
    assert (held / "claim.json").is_file()  # not taken from its holder


def test_cell_hardware_from_its_record():
    assert B.cell_hardware({"device": "cuda:1", "gpu": "NVIDIA H100", "cpu": "EPYC",
                            "machine": "x86_64", "threads": 16}) == {
        "device_type": "cuda", "processor": "NVIDIA H100", "isa": None, "machine": "x86_64",
        "threads": 16}
    assert B.cell_hardware({"device": "cpu", "cpu": "AMD EPYC", "cpu_isa": "AVX2",
                            "machine": "x86_64", "threads": 1})["isa"] == "AVX2"
    old = B.cell_hardware({"device": "cpu", "threads": 1})  # written before cpu was recorded
    assert old == {"device_type": "cpu", "processor": None, "isa": None, "machine": None,
                   "threads": 1}


def test_same_cpu_name_with_another_instruction_set_is_not_exact(made, tmp_path):
    """Cloud CPUs share generic names ('AMD EPYC' with AVX2 only, and with avx512_bf16): a
    cell recorded under this CPU's name but another instruction set is not re-run exactly;
    one recorded before cpu_isa was (none) is judged by its name as before."""
    suite, path = copy(made, tmp_path)
    ids = sorted(p.name for p in (path / "cells").iterdir())
    recorded = json.loads((path / "cells" / ids[0] / "result.json").read_text())["hardware"]
    assert recorded["cpu_isa"] == cpu_isa() and V.exact_cells(path, ids, CPU) == ids
    edit_json(path / "cells" / ids[0] / "result.json",
              lambda r: r["hardware"].update(cpu_isa=cpu_isa() + "+amx_bf16x"))
    edit_json(path / "cells" / ids[1] / "result.json", lambda r: r["hardware"].pop("cpu_isa"))
    reseal(path)
    assert V.exact_cells(path, ids, CPU) == ids[1:]


def test_rerun_compares_with_the_cells_own_hardware(made, tmp_path, monkeypatch):
    """A cell recorded on another processor is re-run with the tolerance comparison, even
    where the manifest names this machine's."""
    suite, path = copy(made, tmp_path)
    result = first_cell(path) / "result.json"
    edit_json(result, lambda r: r["hardware"].update(cpu="Some Other CPU"))
    reseal(path)
    seen = []
    monkeypatch.setattr(V, "compare", lambda rec, fresh, exact: seen.append(exact) or {
        "problem": None, "max_abs_diff": 0.0})
    problems, records = V.rerun_problems(path, suite, [result.parent.name], CPU, UI(quiet=True))
    assert problems == [] and seen == [False] and records[0]["comparison"] == "tolerance"


def test_draw_is_among_the_cells_this_machine_reruns_exactly(made, tmp_path, capsys):
    """A grid run over sessions on different machines: the verifier draws among the cells
    recorded on its own processor, so the re-run is compared exactly; none there: all."""
    suite, path = copy(made, tmp_path)
    ids = sorted(p.name for p in (path / "cells").iterdir())
    assert len(ids) >= 2 and V.exact_cells(path, ids, CPU) == ids
    for other in ids[1:]:
        edit_json(path / "cells" / other / "result.json",
                  lambda r: r["hardware"].update(cpu="Some Other CPU"))
    reseal(path)
    assert V.exact_cells(path, ids, CPU) == ids[:1]
    assert all(V.draw(path, ids, 1, None, None, CPU) == ids[:1] for _ in range(5))
    assert "tolerance" not in capsys.readouterr().err
    edit_json(path / "cells" / ids[0] / "result.json",
              lambda r: r["hardware"].update(machine="riscv64"))
    assert V.exact_cells(path, ids, CPU) == []
    assert len(V.draw(path, ids, 2, None, None, CPU)) == 2
    assert "re-runs are compared within tolerance" in capsys.readouterr().err


def test_compare_tolerance_off_hardware():
    rec = {"tasks": ["a"], "items": {"a": [[1.0] * 32]}, "R": [[0.5], [0.9]],
           "probes": {"drift": [0.0, 0.10]}}
    near = {"R": [[0.5], [0.9 - 2 / 32]], "probes": {"drift": [0.0, 0.12]}}
    far = {"R": [[0.5], [0.9 - 3 / 32]], "probes": {"drift": [0.0, 0.10]}}
    assert V.compare(rec, near, exact=False)["problem"] is None
    assert V.compare(rec, near, exact=True)["problem"] is not None
    assert "R[1][0]" in V.compare(rec, far, exact=False)["problem"]


def test_pick_cells_named_or_sampled():
    ids = [f"c{i}" for i in range(10)]
    assert V.pick_cells(ids, 1, ["c3"]) == ["c3"]
    picked = V.pick_cells(ids, 3, None)
    assert len(set(picked)) == 3 and set(picked) <= set(ids)
    assert len(V.pick_cells(ids, 50, None)) == 10


def test_bad_submission_name():
    from harness.errors import HarnessError
    with pytest.raises(HarnessError, match="not a valid folder name"):
        B.check_name("../evil")


PLUGIN = '''
from harness.methods import Method, response_token_loss


class HalfSFT(Method):
    name = "half-sft"
    description = "SFT with the loss halved"
    defaults = {"scale": 0.5}

    def loss(self, model, batch, ctx):
        return self.params["scale"] * response_token_loss(model, batch)
'''


def test_file_plugin_bundle_verifies_from_its_own_copy(tiny_model_dir, tmp_path, monkeypatch):
    """A file plugin is bundled with its source; verify re-runs it from the bundle's copy,
    with the original file gone."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    plugin = tmp_path / "src" / "half.py"
    plugin.parent.mkdir()
    plugin.write_text(PLUGIN)
    path = tiny_suite(tmp_path, str(tiny_model_dir), seeds=[0], probes=["drift"],
                      streams={"one": ["arith"]})
    suite = load_suite(str(path))
    narrowed = narrow(suite, [f"{plugin}:HalfSFT"], None)
    manifest, dest = B.submit(None, narrowed, tmp_path / "run", tmp_path,
                              CPU, UI(quiet=True))
    assert dest.name == "half-sft" and manifest["method"]["name"] == "half-sft"
    assert not manifest["method"]["builtin"]
    assert manifest["method"]["class"] == "method/half.py:HalfSFT"
    assert (dest / "method" / "half.py").read_text() == PLUGIN
    assert manifest["method"]["params"] == {"scale": 0.5} or manifest["method"]["params"] == {}
    assert manifest["cells"] == [f"{tiny_model_dir.name}__one__half-sft__s0"]
    plugin.unlink()
    assert V.static_problems(dest, suite) == []
    problems, records = V.rerun_problems(dest, suite, manifest["cells"], CPU, UI(quiet=True))
    assert problems == [] and records[0]["max_abs_diff"] == 0.0


def test_submit_verify_leaderboard_from_the_command_line(tiny_model_dir, tmp_path, monkeypatch,
                                                         capsys):
    """The user's journey: submit two methods, verify one, tamper with it, rank them."""
    from harness.cli import main

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    suite = str(tiny_suite(tmp_path, str(tiny_model_dir), seeds=[0, 1], probes=["drift"]))
    common = ["--suite", suite, "--root", str(tmp_path), "--quiet"]
    assert main(["submit", "sft", *common, "--out", str(tmp_path / "r")]) == 0
    assert main(["submit", "lora", *common, "--out", str(tmp_path / "r"),
                 "--set", "lora.r=2"]) == 0
    bundle = tmp_path / "leaderboard" / "submissions" / "sft"
    lora = json.loads((tmp_path / "leaderboard/submissions/lora" / B.MANIFEST).read_text())
    assert lora["method"]["params"]["r"] == 2
    capsys.readouterr()
    work = tmp_path / "verify-work"
    assert main(["verify", str(bundle), "--suite", suite, "--work", str(work)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith(f"ACCEPTED {bundle}") and "(exact)" in out[-1]
    picked = json.loads((work / "picked.json").read_text())["cells"]
    assert (work / "cells" / picked[0] / "result.json").is_file()
    assert main(["verify", str(bundle), "--suite", suite, "--work", str(work)]) == 0
    again = capsys.readouterr().out  # the same cell, its re-run kept: compared, not re-run
    assert f"re-run: {picked[0]} (exact)" in again and "already complete" in again
    record = json.loads((bundle / B.VERIFICATION).read_text())
    assert record["checksums_sha256"] == B.sha256_file(bundle / B.CHECKSUMS)
    assert main(["leaderboard", "--root", str(tmp_path), "--suite", suite]) == 0
    board = json.loads((tmp_path / "leaderboard" / "leaderboard.json").read_text())
    assert "sft" in json.dumps(board) and "lora" in json.dumps(board)
    capsys.readouterr()  # submitting again rewrites the bundle and says it is unverified now
    assert main(["submit", "sft", *common, "--out", str(tmp_path / "r")]) == 0
    assert "replaced a verified bundle of 'sft'" in capsys.readouterr().err
    assert not (bundle / B.VERIFICATION).exists()
    edit_json(first_cell(bundle) / "result.json", lambda r: r["metrics"].update(acc=0.99))
    capsys.readouterr()
    assert main(["verify", str(bundle), "--suite", suite, "--cells", "0"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith(f"REJECTED {bundle}: ") for line in lines)
    assert main(["leaderboard", "--root", str(tmp_path), "--suite", suite]) == 2
    assert "sft" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "nope")]) == 2


def test_submit_says_why_a_plugin_cannot_run_and_runs_nothing(tiny_model_dir, tmp_path, capsys):
    """A plugin that fails to import is that error (not a bad bundle name), before any cell
    runs; an error about the method names `submit METHOD`, the option that gave it."""
    from harness.cli import main

    suite = str(tiny_suite(tmp_path, str(tiny_model_dir), seeds=[0], probes=["drift"]))
    broken = tmp_path / "broken.py"
    broken.write_text("import helper_beside_it\n")
    out = tmp_path / "r"
    assert main(["submit", f"{broken}:M", "--suite", suite, "--root", str(tmp_path),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "failed to import: ModuleNotFoundError" in err and "helper_beside_it" in err
    assert not out.exists() and not (tmp_path / "leaderboard").exists()
    clash = tmp_path / "clash.py"
    clash.write_text("from baselines.sft import SFT\n\nclass Mine(SFT):\n    pass\n")
    assert main(["submit", f"{clash}:Mine", "--suite", suite, "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: submit METHOD: method class 'Mine'") and "--methods" not in err
    assert main(["submit", "sft", "--suite", suite, "--root", str(tmp_path),
                 "--set", "lora.r=2"]) == 2
    err = capsys.readouterr().err
    assert "no method 'lora'" in err and "methods this command runs: sft" in err


def test_git_revision_is_dirty_for_code_not_for_a_rebuilt_board(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "leaderboard").mkdir()
    (tmp_path / "leaderboard" / "README.md").write_text("board\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = B.git_revision(tmp_path)
    assert len(head) == 40 and not head.endswith("-dirty")
    (tmp_path / "leaderboard" / "README.md").write_text("rebuilt\n")
    (tmp_path / "notes.txt").write_text("untracked\n")
    assert B.git_revision(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert B.git_revision(tmp_path) == head + "-dirty"
    assert B.git_revision(tmp_path / "leaderboard") == head + "-dirty"  # from a subfolder too
    empty = tmp_path.parent / f"{tmp_path.name}-not-git"
    empty.mkdir()
    assert B.git_revision(empty) is None  # not a git checkout
