"""The tuning travels with a submission (issue 31 item 3, issue 32 item 2): `harness submit`
bundles the method's rows of the tuning table and applies their chosen setting, `harness
verify` checks them as data, the leaderboard shows them; a contradicting `--set` is refused
before anything runs, and a bundle without tuning is shown as untuned."""

import json
import shutil
from html import escape

import pytest

from harness import bundle as B
from harness.cli import main
from tests.helpers import edit_json, reseal, tiny_suite

TUNE = {"streams": {"val": ["json-extract"]}, "seeds": [0], "select": "acc"}


@pytest.fixture(scope="module")
def tuned(tiny_model_dir, tmp_path_factory):
    """`harness tune`, then `harness run --settings tuned.json` on a one-stream tiny grid,
    then sft and ewc submitted from that run folder (its tuning.json taken by default)."""
    root = tmp_path_factory.mktemp("tb")
    mp = pytest.MonkeyPatch()
    mp.setenv("HARNESS_CACHE", str(root / "cache"))
    suite = str(tiny_suite(root, str(tiny_model_dir), methods={"sft": {}, "ewc": {
        "fisher_examples": 2}}, probes=[], train={"steps": 2, "lr": 1e-3, "batch_size": 4,
        "max_len": 96}, data={"n_train": 4, "n_test": 4}, tune=TUNE))
    out = root / "grid"
    assert main(["tune", "--suite", suite, "--out", str(out), "--quiet"]) == 0
    assert main(["run", "--suite", suite, "--out", str(out), "--quiet",
                 "--settings", str(out / "tuned.json")]) == 0
    ran = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*/result.json")}
    for method in ("sft", "ewc"):
        assert main(["submit", method, "--suite", suite, "--out", str(out), "--root",
                     str(root), "--quiet"]) == 0
    assert ran == {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*/result.json")}
    yield suite, out, root
    mp.undo()


def bundle_of(root, name):
    return root / "leaderboard" / "submissions" / name


def copy_board(tuned, tmp_path, names=("sft", "ewc")):
    suite, out, root = tuned
    for name in names:
        shutil.copytree(bundle_of(root, name), bundle_of(tmp_path, name))
    return suite


def test_submit_bundles_the_methods_tuning_at_its_chosen_setting(tuned):
    suite, out, root = tuned
    table = json.loads((out / "tuning.json").read_text())
    ewc = bundle_of(root, "ewc")
    part = json.loads((ewc / "tuning.json").read_text())
    entry = table["methods"]["ewc"]
    # the method's rows of the table, with the table's criterion, streams and seeds
    assert part["method"] == "ewc" and part["select"] == "acc" and part["budget"] == 4
    assert part["streams"] == {"val": ["json-extract"]} and part["seeds"] == [0]
    assert part["settings"] == entry["settings"] and part["chosen"] == entry["chosen"]
    assert part["identical_to_sft"] is True  # one-task validation stream: no penalty yet
    row = part["settings"][0]
    assert [(c["stream"], c["seed"]) for c in row["per_cell"]] == [("val", 0)]
    assert row["score"] == row["per_cell"][0]["value"]
    manifest = json.loads((ewc / B.MANIFEST).read_text())
    assert manifest["tuning"] == "tuning.json"
    assert "tuning.json" in B.parse_checksums((ewc / B.CHECKSUMS).read_text())
    chosen = part["settings"][part["chosen"]]["setting"]
    assert manifest["method"]["params"]["lambda"] == chosen["lambda"]
    assert manifest["method"]["params"]["fisher_examples"] == 2  # the suite's own, kept
    sft = json.loads((bundle_of(root, "sft") / "tuning.json").read_text())
    lr = sft["settings"][sft["chosen"]]["setting"]["train.lr"]
    assert json.loads((bundle_of(root, "sft") / B.MANIFEST).read_text())["method"]["train"][
        "lr"] == lr and sft["identical_to_sft"] is None


def test_verify_accepts_it_and_the_board_shows_it(tuned, tmp_path, capsys):
    suite = copy_board(tuned, tmp_path)
    ewc = bundle_of(tmp_path, "ewc")
    # a bundle from before tuning (no `tuning` in its manifest) stays valid, shown untuned
    old = bundle_of(tmp_path, "sft-old")
    shutil.copytree(bundle_of(tmp_path, "sft"), old)
    (old / "tuning.json").unlink()
    edit_json(old / B.MANIFEST, lambda m: m.pop("tuning"))
    reseal(old)
    for bundle in (ewc, old):
        assert main(["verify", str(bundle), "--suite", suite, "--cells", "0"]) == 0
        assert capsys.readouterr().out.startswith(f"ACCEPTED {bundle}")
    assert main(["leaderboard", "--root", str(tmp_path), "--suite", suite]) == 0
    board = json.loads((tmp_path / "leaderboard" / "leaderboard.json").read_text())
    part = json.loads((ewc / "tuning.json").read_text())
    t = board["methods"]["ewc"]["tuning"]
    assert t["knobs"] == ["lambda"] and t["chosen"] == part["chosen"]
    assert t["identical_to_sft"] is True and board["methods"]["sft-old"]["tuning"] is None
    assert [r["setting"] for r in t["settings"]] == [{"lambda": x} for x in (1e4, 1e5, 1e6, 1e7)]
    assert [r["values"] for r in t["settings"]] == [
        [{"stream": "val", "seed": 0, "value": c["value"]} for c in r["per_cell"]]
        for r in part["settings"]]
    chosen = part["settings"][part["chosen"]]
    page = (tmp_path / "leaderboard" / "index.html").read_text()
    readme = (tmp_path / "leaderboard" / "README.md").read_text()
    lam = format(chosen["setting"]["lambda"], "g")
    # the flag, and where the choice is the lowest or highest lambda tried, the edge note
    edge = part["chosen"] in (0, 3)
    note = "identical to SFT" + (
        f"; at the grid's edge ({'lowest' if part['chosen'] == 0 else 'highest'} lambda "
        "tried): a better setting may lie beyond" if edge else "")
    # summary row: method, knobs, every setting tried, the chosen one, its value, the note
    row = (f"<tr><td>ewc</td><td>lambda</td><td>lambda=10000; lambda=100000; lambda=1e+06; "
           f"lambda=1e+07</td><td>lambda={lam}</td><td>acc {chosen['score']:.3f}</td>"
           f"<td>{escape(note)}</td></tr>")
    assert row in page and "<tr><td>sft-old</td><td>-</td>" in page
    assert "<details><summary>ewc: every setting (acc of the strict scoring" in page
    assert f"| ewc | lambda | lambda=10000; lambda=100000; lambda=1e+06; lambda=1e+07 | " \
           f"lambda={lam} | acc {chosen['score']:.3f} | {note} |" in readme
    assert "| ewc (identical to SFT) |" in readme and "| sft-old (untuned) |" in readme
    assert "| setting | val s0 | mean acc | chosen |" in readme


@pytest.mark.parametrize("tamper, expected", [
    ("chosen-setting", "tuning.json: checksum mismatch"),
    ("chosen-setting+reseal", "tuning.json: the manifest's settings are lambda="),
    ("chosen-index+reseal", "tuning.json: chosen is setting"),
    ("score+reseal", "tuning.json: setting 0: score "),
    ("dropped+reseal", "tuning.json: 3 settings; the budget is 4"),
    ("unnamed+reseal", "tuning.json: present, but the manifest names no tuning"),
])
def test_a_tampered_tuning_is_rejected(tuned, tmp_path, capsys, tamper, expected):
    """`bundle-tuning-tampered`: verify rejects, one line naming tuning.json; the
    leaderboard rejects the bundle."""
    suite = copy_board(tuned, tmp_path, names=("ewc",))
    ewc = bundle_of(tmp_path, "ewc")
    part = json.loads((ewc / "tuning.json").read_text())
    chosen = part["chosen"]
    if tamper.startswith("chosen-setting"):
        other = 1e7 if part["settings"][chosen]["setting"]["lambda"] != 1e7 else 1e4
        edit_json(ewc / "tuning.json",
                  lambda p: p["settings"][chosen]["setting"].update(**{"lambda": other}))
    elif tamper.startswith("chosen-index"):
        edit_json(ewc / "tuning.json", lambda p: p.update(chosen=(chosen + 1) % 4))
    elif tamper.startswith("score"):
        edit_json(ewc / "tuning.json", lambda p: p["settings"][0].update(
            score=p["settings"][0]["score"] + 0.5))
    elif tamper.startswith("dropped"):
        edit_json(ewc / "tuning.json", lambda p: p["settings"].pop())
    elif tamper.startswith("unnamed"):
        edit_json(ewc / B.MANIFEST, lambda m: m.update(tuning=None))
    if tamper.endswith("+reseal"):
        reseal(ewc)
    assert main(["verify", str(ewc), "--suite", suite, "--cells", "0"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"REJECTED {ewc}: {expected}") for line in lines), lines
    assert main(["leaderboard", "--root", str(tmp_path), "--suite", suite]) == 2


def test_submit_refuses_settings_other_than_the_tunings_choice(tuned, tmp_path, capsys):
    """`tuning-mismatch`, `tuning-not-tuned`, `tuning-missing`, `tuning-incomplete`,
    `tuning-other-suite`: one line, exit 2, before any cell runs."""
    suite, out, root = tuned
    table = json.loads((out / "tuning.json").read_text())
    ewc = table["methods"]["ewc"]
    lam = ewc["settings"][ewc["chosen"]]["setting"]["lambda"]
    other = 1e7 if lam != 1e7 else 1e4
    fresh = tmp_path / "fresh"

    def refused(*argv, needle):
        capsys.readouterr()
        assert main(["submit", *argv, "--suite", suite, "--root", str(tmp_path), "--out",
                     str(fresh), "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0] and ". Fix: " in err[0], err
        assert not fresh.exists() and not (tmp_path / "leaderboard").exists()
        return err[0]

    line = refused("ewc", "--tuning", str(out), "--set", f"ewc.lambda={other}",
                   needle=f"runs with lambda={format(other)} vs the chosen lambda={lam}")
    assert "--tuning none" in line
    refused("ewc", "--tuning", str(out), "--set", f"ewc.lambda={other}", "--dry-run",
            needle="vs the chosen")  # a plan is refused too
    refused("lora", "--tuning", str(out / "tuning.json"), needle="method 'lora' was not tuned")
    refused("ewc", "--tuning", str(tmp_path / "nope.json"), needle="no tuning table at")
    for name, edit, needle in [("incomplete", lambda t: t["methods"]["ewc"].update(
            complete=False), "the tuning of 'ewc' is incomplete"),
            ("other", lambda t: t.update(suite="other"), "tuned for suite 'other'")]:
        path = tmp_path / f"{name}.json"
        path.write_text((out / "tuning.json").read_text())
        edit_json(path, edit)
        refused("ewc", "--tuning", str(path), needle=needle)
    # the same setting given by hand is no contradiction; `--tuning none` submits untuned
    capsys.readouterr()
    assert main(["submit", "ewc", "--suite", suite, "--root", str(tmp_path), "--out",
                 str(out), "--dry-run", "--set", f"ewc.lambda={lam}"]) == 0
    assert f"tuning: the chosen setting of {out / 'tuning.json'}" in capsys.readouterr().out
    assert main(["submit", "ewc", "--suite", suite, "--root", str(tmp_path), "--out",
                 str(out), "--dry-run", "--tuning", "none"]) == 0
    assert "tuning: none (untuned)" in capsys.readouterr().out


def test_catalogue_lists_every_tuning_case():
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text()
    cases = ["tuning-mismatch", "tuning-not-tuned", "tuning-missing", "tuning-incomplete",
             "tuning-other-suite", "bundle-tuning-tampered"]
    assert [c for c in cases if f"`{c}`" not in doc] == []


def test_publish_script_sees_a_tuned_runs_cells_as_complete_and_bundles_their_tuning(
        tuned, tmp_path):
    """scripts/publish_leaderboard.py on a run made with --settings OUT/tuned.json: the cells
    are complete under the settings in force (not the suite file's), so every method is
    bundled with its tuning, verified (two at a time with --jobs 2) and ranked."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    suite, out, _ = tuned
    env = {**os.environ, "HARNESS_CACHE": str(out.parent / "cache"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "scripts/publish_leaderboard.py", str(out),
                           "--suite", suite, "--root", str(tmp_path), "--jobs", "2"],
                          cwd=Path(__file__).resolve().parent.parent, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not bundled" not in done.stdout and done.stdout.count("ACCEPTED") == 2
    board = json.loads((tmp_path / "leaderboard" / "leaderboard.json").read_text())
    assert sorted(board["methods"]) == ["ewc", "sft"]
    assert all(board["methods"][m]["tuning"] is not None for m in ("ewc", "sft"))
    assert (tmp_path / "leaderboard" / "grid" / "tuning" / "tuned.json").is_file()
