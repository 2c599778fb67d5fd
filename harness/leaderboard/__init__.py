"""`harness leaderboard`: rank the submitted bundles and write the leaderboard
(docs/leaderboard.md).

    root/leaderboard/leaderboard.json   the numbers (versioned: LEADERBOARD_VERSION)
    root/leaderboard/README.md          the same ranking as markdown tables
    root/leaderboard/index.html         one self-contained page (no network request)

Regenerating from the same bundles gives the same bytes, so the committed page can be
checked against the committed bundles. A bundle that fails `harness verify`'s static checks
is rejected: by default nothing is written (the CLI exits 2 naming every problem), so a
leaderboard never silently drops an entry; with skip_invalid the others are ranked and the
page lists the excluded bundles with their reasons.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.bundle import LIVE_SUITE
from harness.config import Suite
from harness.errors import HarnessError
from harness.leaderboard.board import LEADERBOARD_VERSION, leaderboard_data
from harness.leaderboard.entries import read_entries, submissions
from harness.leaderboard.page import render_page
from harness.leaderboard.readme import render_readme
from harness.storage import atomic_write_text

__all__ = ["LEADERBOARD_VERSION", "archive_board", "build", "rejection_lines", "leaderboard_data"]

FILES = ("leaderboard.json", "README.md", "index.html")


def rejection_lines(rejected: dict[str, list[str]]) -> list[str]:
    """One line per problem: `<bundle>: <problem>`."""
    return [f"{name}: {problem}" for name in sorted(rejected) for problem in rejected[name]]


def render(data: dict) -> dict[str, str]:
    """The three files' text from leaderboard data."""
    return {"leaderboard.json": json.dumps(data, sort_keys=True, indent=1, ensure_ascii=True) + "\n",
            "README.md": render_readme(data), "index.html": render_page(data)}


def build(root: Path, suite: Suite | None = None, skip_invalid: bool = False) -> dict:
    """Check and rank every bundle in root/leaderboard/submissions/*/ against `suite` (the
    live board's suite by default) and write the three files into root/leaderboard/.

    Returns {"written": [paths], "rejected": {bundle: [problems]}, "ranked": [names],
    "data": leaderboard data}. With a rejected bundle and not skip_invalid, nothing is
    written ("written" is empty): the caller exits 2 with rejection_lines(). Raises
    HarnessError when no bundle can be ranked."""
    from harness.config import load_suite

    root = Path(root)
    suite = suite if suite is not None else load_suite(LIVE_SUITE)
    entries, rejected = read_entries(root, suite)
    if not entries:
        first = rejection_lines(rejected)[:1]
        raise HarnessError(
            f"no bundle to rank in {submissions(root)}"
            + (f" ({len(rejected)} rejected; first: {first[0]})" if first else ""),
            "write one with `harness submit METHOD` (docs/leaderboard.md)")
    result = {"written": [], "rejected": rejected, "ranked": sorted(e.name for e in entries),
              "data": None}
    if rejected and not skip_invalid:
        return result
    ranked = {e.manifest.get("method", {}).get("name", e.name) for e in entries}
    pending = [m.name for m in suite.methods if m.name not in ranked]  # no bundle yet
    data = leaderboard_data(entries, rejected, pending, read_notes(root, ranked))
    earlier = archives(root)
    if earlier:
        data["archives"] = earlier
    out = root / "leaderboard"
    for name, text in render(data).items():
        atomic_write_text(out / name, text)
        result["written"].append(out / name)
    result["data"] = data
    return result


NOTES = "notes.yaml"


def read_notes(root: Path, ranked: set[str]) -> dict[str, str]:
    """root/leaderboard/notes.yaml: the maintainers' evidence about a method on this grid
    (method name -> one paragraph, e.g. why it cannot work on the embedded model), shown
    beside its row. Optional; a note for a method without a bundle is an error, so no note
    outlives its row unseen."""
    from harness.yamlio import read_yaml

    path = Path(root) / "leaderboard" / NOTES
    if not path.exists():
        return {}
    where = str(path)
    found = read_yaml(path, where)
    if found is None:
        return {}
    fix = "write one `METHOD: text` line per note (docs/leaderboard.md)"
    if not isinstance(found, dict):
        raise HarnessError(f"{where}: is not a mapping of method names to notes", fix)
    for name, text in found.items():
        if not isinstance(text, str) or not text.strip():
            raise HarnessError(f"{where}: the note for '{name}' is not a non-empty text", fix)
        if name not in ranked:
            raise HarnessError(f"{where}: names '{name}', which has no bundle on this board",
                               "remove the note or submit the method")
    return {str(k): " ".join(v.split()) for k, v in found.items()}


def archives(root: Path) -> list[dict]:
    """Earlier boards kept under root/leaderboard/archive/NAME/ (each with its own
    index.html), linked from the page and README, oldest name first."""
    found = sorted(p.parent.name for p in (Path(root) / "leaderboard" / "archive").glob(
        "*/index.html"))
    return [{"name": n, "href": f"archive/{n}/index.html"} for n in found]


# what a board is made of, all moved together into its archive
BOARD_PARTS = (*FILES, "submissions", "grid", NOTES)


def archive_board(root: Path, name: str) -> Path:
    """Move the live board (its three files, bundles, grid cells and notes) into
    root/leaderboard/archive/NAME/ as it was, before a new board is published there; the
    next build links it. Its links out of the board (docs/submitting.md, a note's) are
    rebased to the new depth; every number stays as it was (archived_text)."""
    from harness.bundle import check_name

    board = Path(root) / "leaderboard"
    dest = board / "archive" / check_name(name)
    if not (board / "index.html").is_file():
        raise HarnessError(f"no board to archive: {board / 'index.html'} does not exist",
                           "archive before publishing a new board, from the repository root")
    if dest.exists():
        raise HarnessError(f"{dest} already exists", "choose another archive name")
    dest.mkdir(parents=True)
    for part in BOARD_PARTS:
        if (board / part).exists():
            (board / part).rename(dest / part)
    for page in ("index.html", "README.md"):
        (dest / page).write_text(archived_text((dest / page).read_text()))
    return dest


def archived_text(text: str) -> str:
    """A live board's page or README as it reads two folders deeper (archive/NAME/): every
    relative link out of the board (`../docs/submitting.md`, a note's `../docs/...`) two
    more levels up, and a link to an earlier archived board (`archive/OLD/...`) beside it;
    links into the board's own parts (submissions/, grid/) moved with it and stay."""
    import re

    def rebased(found: re.Match) -> str:
        start, target = found.group(1), found.group(2)
        return start + ("../../../" if target == "../" else "../")
    return re.sub(r'(\]\(|href="|src=")(\.\./|archive/)', rebased, text)