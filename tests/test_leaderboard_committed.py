"""The committed leaderboard is what `harness leaderboard` makes from the committed bundles,
byte for byte, and every committed bundle passes `harness verify`'s static checks."""

import shutil
from pathlib import Path

import pytest

from harness.config import load_suite
from harness.leaderboard import build
from harness.verify import static_problems

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "leaderboard" / "submissions"
BUNDLES = sorted(p for p in SUBMISSIONS.glob("*") if p.is_dir()) if SUBMISSIONS.is_dir() else []
needs_bundles = pytest.mark.skipif(not BUNDLES, reason="no bundle committed in "
                                   "leaderboard/submissions yet (the leaderboard grid is running)")


@needs_bundles
@pytest.mark.parametrize("bundle", BUNDLES, ids=[p.name for p in BUNDLES])
def test_committed_bundle_passes_static_checks(bundle):
    assert static_problems(bundle, load_suite("leaderboard")) == []


@needs_bundles
def test_committed_leaderboard_regenerates_byte_for_byte(tmp_path):
    shutil.copytree(SUBMISSIONS, tmp_path / "leaderboard" / "submissions")
    if (ROOT / "leaderboard" / "notes.yaml").exists():  # the maintainers' notes, if any
        shutil.copy(ROOT / "leaderboard" / "notes.yaml", tmp_path / "leaderboard")
    found = build(tmp_path)
    assert found["rejected"] == {}
    for name in ("index.html", "README.md", "leaderboard.json"):
        assert (tmp_path / "leaderboard" / name).read_bytes() == \
            (ROOT / "leaderboard" / name).read_bytes(), name


GRID_CELLS = ROOT / "leaderboard" / "grid" / "cells"


@pytest.mark.skipif(not GRID_CELLS.is_dir(), reason="the leaderboard grid's cells are not committed")
def test_report_pooled_test_agrees_with_the_boards_comparison_with_sft(tmp_path):
    # `harness report` on the board's own cells pools the same (stream, seed) pairs with the
    # same test and the same Holm family (all pairs of methods on a metric) as the board's
    # "p vs sft" column: one rule, two views
    import json

    from harness.report import build_report

    shutil.copytree(GRID_CELLS, tmp_path / "cells")
    summary = build_report(tmp_path, reference="sft", plots=False, n_resamples=99,
                           n_permutations=99, n_iqm_resamples=99, n_item_resamples=99)
    board = json.loads((ROOT / "leaderboard" / "leaderboard.json").read_text())
    views = board["views"]["all"]["metrics"]
    compared = 0
    for row in summary["across_scenarios"]:
        ref = views.get(row["metric"], {}).get("methods", {}).get(row["method"])
        if ref is None:
            continue
        on_board = ref["vs_reference"]
        assert row["n_pairs"] == on_board["n"] == 6
        assert row["pooled_diff"] == pytest.approx(on_board["diff"], abs=1e-6)
        assert row["p_pooled_adjusted"] == pytest.approx(on_board["p_holm"], abs=1e-6)
        assert row["significant_pooled"] == on_board["significant"]
        compared += 1
    assert compared == 13 * 9  # acc, bwt, forgetting, plasticity, forgotten items, 4 probe finals


@needs_bundles
def test_committed_board_has_rank_intervals_significant_pairs_and_forgotten_items():
    import json

    board = json.loads((ROOT / "leaderboard" / "leaderboard.json").read_text())
    acc = board["views"]["all"]["metrics"]["acc"]
    assert board["significant_pairs"] == acc["significant_pairs"] <= acc["pairs"] == 91
    for m, row in acc["methods"].items():
        low, high = row["rank_interval"]
        assert low == row["rank"] <= high <= len(acc["methods"])
        assert row["ci"][0] <= row["mean"] <= row["ci"][1]
    forgotten = board["views"]["all"]["metrics"]["forgotten_items"]["methods"]
    assert set(forgotten) == set(acc["methods"])
    assert all(r["ci"] is None or r["ci"][0] <= r["mean"] <= r["ci"][1]
               for r in forgotten.values())
    assert "forgotten items" in (ROOT / "leaderboard" / "README.md").read_text()


@needs_bundles
def test_committed_board_states_each_metrics_mdd_recomputed_from_its_own_spread():
    # the MDD per ranking metric on the page, in README.md and leaderboard.json is what
    # harness.power gives for the board's design (6 pairs in 2 streams, Holm over 91 pairs)
    # from the board's own spread, recomputed here from the cells' published values
    import json
    import statistics

    import numpy as np

    from harness.power import minimum_detectable_difference

    board = json.loads((ROOT / "leaderboard" / "leaderboard.json").read_text())
    readme = (ROOT / "leaderboard" / "README.md").read_text()
    page = (ROOT / "leaderboard" / "index.html").read_text()
    assert "harness.power.observed_spread" in board["settings"]["detectable"]
    assert set(board["minimum_detectable_difference"]) == {m["key"] for m in board["metrics"]}
    for metric in board["metrics"]:
        key = metric["key"]
        values = {name: {(c["stream"], c["seed"]): c["values"][key]
                         for c in meta["cells"].values() if c["values"][key] is not None}
                  for name, meta in board["methods"].items()}
        sds = []
        names = sorted(values)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                common = sorted(set(values[a]) & set(values[b]))
                resid = []
                for stream in {s for s, _ in common}:
                    d = [values[a][k] - values[b][k] for k in common if k[0] == stream]
                    resid += [x - statistics.mean(d) for x in d]
                sds.append((sum(r * r for r in resid) / (len(common) - 2)) ** 0.5)
        sd = float(np.median(sds))
        stated = board["minimum_detectable_difference"][key]
        if sd < 1e-9:  # no spread: no t-test, no MDD
            assert stated is None
            continue
        mdd = minimum_detectable_difference(sd, 6, 2, 91)
        assert stated == pytest.approx(mdd, abs=2e-5), key  # values published to 6 places
        row = f"| {metric['label']} | {'higher' if metric['higher_is_better'] else 'lower'} | "
        assert f"{row}{sd:.4f} |" in readme and f"| {stated:.4f} |" in readme
        assert f"<td>{metric['label']}</td>" in page and f"<td>{stated:.4f}</td>" in page


@needs_bundles
def test_committed_bundles_from_before_tuning_are_marked_untuned():
    # v1 bundles carry no tuning table: still valid, shown as untuned (issue 31 item 3)
    import json

    board = json.loads((ROOT / "leaderboard" / "leaderboard.json").read_text())
    untuned = [m for m, meta in board["methods"].items() if meta["tuning"] is None]
    readme = (ROOT / "leaderboard" / "README.md").read_text()
    for name in untuned:
        assert f"| {name} (untuned) |" in readme
    assert 'id="tuning"' in (ROOT / "leaderboard" / "index.html").read_text()
    assert len(untuned) == len([p for p in BUNDLES if not (p / "tuning.json").exists()])


@needs_bundles
def test_a_maintainers_note_shows_beside_its_row_and_a_stray_one_is_refused(tmp_path):
    """leaderboard/notes.yaml: the note reaches leaderboard.json, the page (a badge on the
    row and the text under the table, no hover) and the README; a note naming a method
    without a bundle, or one that is not text, is one line of error and nothing is written."""
    from harness.errors import HarnessError

    shutil.copytree(SUBMISSIONS, tmp_path / "leaderboard" / "submissions")
    notes = tmp_path / "leaderboard" / "notes.yaml"
    notes.write_text("sdft: >\n  Its teacher scores 0 on arith\n  (diagnostics/teacher-check.txt).\n")
    data = build(tmp_path)["data"]
    assert data["methods"]["sdft"]["note"] == "Its teacher scores 0 on arith (diagnostics/teacher-check.txt)."
    assert "note" not in data["methods"]["sft"]
    page = (tmp_path / "leaderboard" / "index.html").read_text()
    assert 'id="notes"' in page and "sdft: Its teacher scores 0 on arith" in page
    # the row's badge is drawn by the page's script from the embedded data's "note"
    assert page.count('"note":') == 1 and "see note" in page
    assert "sdft: Its teacher scores 0" in (tmp_path / "leaderboard" / "README.md").read_text()
    for bad, problem in [("nosuch: text\n", "names 'nosuch', which has no bundle"),
                         ("sdft: [1, 2]\n", "the note for 'sdft' is not a non-empty text"),
                         ("- sdft\n", "is not a mapping of method names to notes")]:
        notes.write_text(bad)
        (tmp_path / "leaderboard" / "index.html").unlink(missing_ok=True)
        with pytest.raises(HarnessError, match=problem):
            build(tmp_path)
        assert not (tmp_path / "leaderboard" / "index.html").exists()


@needs_bundles
def test_an_archived_board_is_linked_from_the_page_and_readme(tmp_path):
    """leaderboard/archive/NAME/index.html (an earlier board, kept as it was) gets a
    relative link in the page header and the README; without an archive there is none."""
    shutil.copytree(SUBMISSIONS, tmp_path / "leaderboard" / "submissions")
    build(tmp_path)
    assert 'id="archives"' not in (tmp_path / "leaderboard" / "index.html").read_text()
    old = tmp_path / "leaderboard" / "archive" / "v1"
    old.mkdir(parents=True)
    (old / "index.html").write_text("<html></html>")
    data = build(tmp_path)["data"]
    assert data["archives"] == [{"name": "v1", "href": "archive/v1/index.html"}]
    page = (tmp_path / "leaderboard" / "index.html").read_text()
    assert 'id="archives"' in page and 'href="archive/v1/index.html">v1</a>' in page
    assert "[v1](archive/v1/README.md)" in (tmp_path / "leaderboard" / "README.md").read_text()
