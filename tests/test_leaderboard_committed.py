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
    found = build(tmp_path)
    assert found["rejected"] == {}
    for name in ("index.html", "README.md", "leaderboard.json"):
        assert (tmp_path / "leaderboard" / name).read_bytes() == \
            (ROOT / "leaderboard" / name).read_bytes(), name
