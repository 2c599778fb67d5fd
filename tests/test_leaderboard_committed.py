"""Every committed board (the live one in leaderboard/, the earlier ones in
leaderboard/archive/NAME/) is what `harness leaderboard` makes from its committed bundles,
byte for byte, and every committed bundle passes `harness verify`'s static checks against
its board's suite; the live board is the live suite's (harness.bundle.LIVE_SUITE)."""

import json
import shutil
from math import comb
from pathlib import Path

import pytest

from harness.config import load_suite
from harness.leaderboard import archived_text, build
from harness.verify import static_problems

ROOT = Path(__file__).resolve().parent.parent
LIVE = ROOT / "leaderboard"
SUBMISSIONS = LIVE / "submissions"
ARCHIVED = sorted(p.parent for p in (LIVE / "archive").glob("*/leaderboard.json"))
BOARDS = [b for b in [LIVE, *ARCHIVED] if (b / "submissions").is_dir()]
BOARD_IDS = [b.name if b != LIVE else "live" for b in BOARDS]
BUNDLES = sorted(p for p in SUBMISSIONS.glob("*") if p.is_dir()) if SUBMISSIONS.is_dir() else []
needs_bundles = pytest.mark.skipif(not BUNDLES, reason="no bundle committed in "
                                   "leaderboard/submissions yet (the leaderboard grid is running)")
each_board = pytest.mark.parametrize("board", BOARDS, ids=BOARD_IDS)


def board_json(board: Path) -> dict:
    return json.loads((board / "leaderboard.json").read_text())


def suite_of(board: Path):
    return load_suite(board_json(board)["grid"]["name"])


def design(board: Path) -> tuple[int, int, int]:
    """(stream, seed) pairs a method, streams, method pairs: the board's test design."""
    grid = board_json(board)["grid"]
    return (len(grid["streams"]) * len(grid["seeds"]), len(grid["streams"]),
            comb(len(board_json(board)["methods"]), 2))


ALL_BUNDLES = [(b, p) for b in BOARDS for p in sorted(q for q in (b / "submissions").iterdir()
                                                       if q.is_dir())]


@pytest.mark.skipif(not ALL_BUNDLES, reason="no bundle committed yet")
@pytest.mark.parametrize("board,bundle", ALL_BUNDLES,
                         ids=[f"{'live' if b == LIVE else b.name}-{p.name}" for b, p in ALL_BUNDLES])
def test_committed_bundle_passes_static_checks(board, bundle):
    assert static_problems(bundle, suite_of(board)) == []


@needs_bundles
def test_the_live_board_is_the_live_suites():
    from harness.bundle import LIVE_SUITE

    assert board_json(LIVE)["grid"]["name"] == LIVE_SUITE


@each_board
def test_committed_board_regenerates_byte_for_byte(board, tmp_path):
    shutil.copytree(board / "submissions", tmp_path / "leaderboard" / "submissions")
    if (board / "notes.yaml").exists():  # the maintainers' notes, if any
        shutil.copy(board / "notes.yaml", tmp_path / "leaderboard")
    # the boards archived before this one, which its page links
    for older in (ARCHIVED if board == LIVE else [a for a in ARCHIVED if a.name < board.name]):
        (tmp_path / "leaderboard" / "archive" / older.name).mkdir(parents=True)
        (tmp_path / "leaderboard" / "archive" / older.name / "index.html").write_text("")
    found = build(tmp_path, suite_of(board))
    assert found["rejected"] == {}
    for name in ("index.html", "README.md", "leaderboard.json"):
        made = (tmp_path / "leaderboard" / name).read_text()
        made = made if board == LIVE or name.endswith(".json") else archived_text(made)
        assert made == (board / name).read_text(), name


@each_board
def test_report_pooled_test_agrees_with_the_boards_comparison_with_sft(board, tmp_path):
    # `harness report` on the board's own cells pools the same (stream, seed) pairs with the
    # same test and the same Holm family (all pairs of methods on a metric) as the board's
    # "p vs sft" column: one rule, two views
    from harness.report import build_report

    if not (board / "grid" / "cells").is_dir():
        pytest.skip(f"{board}: the grid's cells are not committed")
    shutil.copytree(board / "grid" / "cells", tmp_path / "cells")
    summary = build_report(tmp_path, reference="sft", plots=False, n_resamples=99,
                           n_permutations=99, n_iqm_resamples=99, n_item_resamples=99)
    data = board_json(board)
    views = data["views"]["all"]["metrics"]
    n_pairs = design(board)[0]
    compared, metrics = 0, set()
    for row in summary["across_scenarios"]:
        ref = views.get(row["metric"], {}).get("methods", {}).get(row["method"])
        if ref is None:
            continue
        on_board = ref["vs_reference"]
        assert row["n_pairs"] == on_board["n"] == n_pairs
        assert row["pooled_diff"] == pytest.approx(on_board["diff"], abs=1e-6)
        assert row["p_pooled_adjusted"] == pytest.approx(on_board["p_holm"], abs=1e-6)
        assert row["significant_pooled"] == on_board["significant"]
        compared += 1
        metrics.add(row["metric"])
    # every method but the reference on every metric both views have: acc, bwt, forgetting,
    # plasticity, forgotten items and the probes' finals at least
    assert len(metrics) >= 5 and compared == (len(data["methods"]) - 1) * len(metrics)


@each_board
def test_committed_board_has_rank_intervals_significant_pairs_and_forgotten_items(board):
    readme = (board / "README.md").read_text()
    board = board_json(board)
    acc = board["views"]["all"]["metrics"]["acc"]
    assert board["significant_pairs"] == acc["significant_pairs"] <= acc["pairs"] == comb(
        len(board["methods"]), 2)
    for m, row in acc["methods"].items():
        low, high = row["rank_interval"]
        assert low == row["rank"] <= high <= len(acc["methods"])
        assert row["ci"][0] <= row["mean"] <= row["ci"][1]
    forgotten = board["views"]["all"]["metrics"]["forgotten_items"]["methods"]
    assert set(forgotten) == set(acc["methods"])
    assert all(r["ci"] is None or r["ci"][0] <= r["mean"] <= r["ci"][1]
               for r in forgotten.values())
    assert "forgotten items" in readme


@each_board
def test_committed_board_states_each_metrics_mdd_recomputed_from_its_own_spread(board):
    # the MDD per ranking metric on the page, in README.md and leaderboard.json is what
    # harness.power gives for the board's design (v1: 6 pairs in 2 streams, Holm over 91
    # pairs) from the board's own spread, recomputed here from the cells' published values
    import statistics

    import numpy as np

    from harness.power import minimum_detectable_difference

    readme = (board / "README.md").read_text()
    page = (board / "index.html").read_text()
    n_pairs, n_streams, method_pairs = design(board)
    board = board_json(board)
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
        mdd = minimum_detectable_difference(sd, n_pairs, n_streams, method_pairs)
        assert stated == pytest.approx(mdd, abs=2e-5), key  # values published to 6 places
        row = f"| {metric['label']} | {'higher' if metric['higher_is_better'] else 'lower'} | "
        assert f"{row}{sd:.4f} |" in readme and f"| {stated:.4f} |" in readme
        assert f"<td>{metric['label']}</td>" in page and f"<td>{stated:.4f}</td>" in page


@each_board
def test_committed_bundles_from_before_tuning_are_marked_untuned(board):
    # v1 bundles carry no tuning table: still valid, shown as untuned (issue 31 item 3)
    data = board_json(board)
    untuned = [m for m, meta in data["methods"].items() if meta["tuning"] is None]
    readme = (board / "README.md").read_text()
    for name in untuned:
        assert f"| {name} (untuned) |" in readme
    assert 'id="tuning"' in (board / "index.html").read_text()
    assert len(untuned) == len([p for p in (board / "submissions").iterdir()
                                if not (p / "tuning.json").exists()])


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


@needs_bundles
def test_archiving_the_live_board_moves_it_whole_and_the_next_board_links_it(tmp_path):
    """harness.leaderboard.archive_board (scripts/publish_leaderboard.py --archive NAME):
    the board's files, bundles and notes move to leaderboard/archive/NAME/ with every number
    as it was; its link to docs/ still resolves from there; its bundles still verify against
    the suite their manifests name; refused without a board, over an archive, or a bad name."""
    from harness.errors import HarnessError
    from harness.leaderboard import archive_board
    from harness.leaderboard.explain import SUBMITTING
    from harness.verify import suite_named

    board = tmp_path / "leaderboard"
    shutil.copytree(SUBMISSIONS, board / "submissions")
    (board / "notes.yaml").write_text("sft: the reference.\n")
    build(tmp_path, suite_of(LIVE))
    numbers = (board / "leaderboard.json").read_bytes()
    dest = archive_board(tmp_path, "v1")
    assert dest == board / "archive" / "v1"
    assert sorted(p.name for p in board.iterdir()) == ["archive"]
    assert sorted(p.name for p in dest.iterdir()) == [
        "README.md", "index.html", "leaderboard.json", "notes.yaml", "submissions"]
    assert (dest / "leaderboard.json").read_bytes() == numbers
    page, readme = (dest / "index.html").read_text(), (dest / "README.md").read_text()
    assert f'href="../../{SUBMITTING}"' in page and f"(../../{SUBMITTING})" in readme
    assert (dest / f"../../{SUBMITTING}").resolve() == (board / SUBMITTING).resolve()
    sft = dest / "submissions" / "sft"
    assert static_problems(sft, load_suite(suite_named(sft))) == []
    for root, name, problem in [(tmp_path, "v1", "already exists"),
                                (tmp_path / "empty", "v2", "no board to archive"),
                                (tmp_path, "../up", "not a valid folder name")]:
        (board / "index.html").write_text("") if root == tmp_path else None
        with pytest.raises(HarnessError, match=problem):
            archive_board(root, name)
    (board / "index.html").unlink()
    shutil.copytree(SUBMISSIONS, board / "submissions")  # the next board
    data = build(tmp_path, suite_of(LIVE))["data"]
    assert data["archives"] == [{"name": "v1", "href": "archive/v1/index.html"}]


def test_verify_defaults_to_the_suite_a_bundle_names_else_the_live_one(tmp_path):
    from harness.bundle import LIVE_SUITE
    from harness.verify import suite_named

    for manifest, expected in [({"suite": {"name": "leaderboard-v2"}}, "leaderboard-v2"),
                               ({"suite": {"name": "my-own"}}, LIVE_SUITE),
                               ({"suite": {"name": ["x"]}}, LIVE_SUITE), ([], LIVE_SUITE)]:
        (tmp_path / "manifest.json").write_text(json.dumps(manifest))
        assert suite_named(tmp_path) == expected
    (tmp_path / "manifest.json").write_text("{")
    assert suite_named(tmp_path) == LIVE_SUITE
