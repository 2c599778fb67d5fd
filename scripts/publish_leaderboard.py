"""Publish the built-in methods' leaderboard from one run of the live board's grid
(harness.bundle.LIVE_SUITE):

    harness tune --suite SUITE --out OUT                            # (hours; resumable)
    harness run --suite SUITE --settings OUT/tuned.json --out OUT   # (hours; resumable)
    python scripts/publish_leaderboard.py OUT --suite SUITE [--archive v1] [--cells 1]

First, with --archive NAME, the board now in leaderboard/ moves to
leaderboard/archive/NAME/ as it was (harness.leaderboard.archive_board), and --notes PATH
becomes the new board's leaderboard/notes.yaml. OUT's complete
cells are copied into leaderboard/grid/cells/ and its complete tuning cells and tables
into leaderboard/grid/tuning/ (checkpoints and claims left out). Then, for every method
whose cells are all complete in OUT under the settings it ran with (OUT/tuned.json where
there is one): `harness submit METHOD --out OUT` (no cell re-runs: they are complete),
`harness verify` (static checks and `--cells` re-runs; --jobs N at once, each at its cells'
thread count, so a re-run is exact; the re-runs kept in OUT/verify/METHOD, so that a
publication stopped mid-re-run resumes there when run again), then `harness leaderboard`. Where OUT holds the tuning, each bundle carries its method's part of
OUT/tuning.json. Methods with cells missing are listed and left out, never bundled half;
a method whose bundle is verified and holds the same cell results as OUT is kept as it is
(run the script again as methods complete). A publication stopped part way (Ctrl-C, the
end of a session) goes on when the same command is run again: --archive NAME is done
already while no new board has been built, and the re-runs resume in OUT/verify/.
It stops first (exit 2) on a machine none of OUT's cells ran on: every re-run there would
be compared within tolerance only (--any-machine accepts that).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

LEFT_OUT = ("checkpoint.pt", "claim.json")  # a run's working files, not results


def up_to_date(bundle: Path, out: Path) -> bool:
    """Is `bundle` verified as it is, with cells whose results are byte for byte OUT's?"""
    from harness.leaderboard.entries import verification_of

    cells = sorted((bundle / "cells").glob("*/result.json"))
    return bool(cells) and verification_of(bundle)[0] and all(
        (out / "cells" / c.parent.name / "result.json").is_file()
        and c.read_bytes() == (out / "cells" / c.parent.name / "result.json").read_bytes()
        for c in cells)


def copy_cells(out: Path, grid: Path) -> int:
    """OUT's complete cells (cells/ID and tuning/METHOD/SETTING/cells/ID: a result.json)
    into `grid`, with the tuning tables; returns how many cells were new there."""
    new = 0
    for result in [*out.glob("cells/*/result.json"), *out.glob("tuning/*/*/cells/*/result.json")]:
        dest = grid / result.parent.relative_to(out)
        if not dest.exists():
            shutil.copytree(result.parent, dest, ignore=shutil.ignore_patterns(*LEFT_OUT))
            new += 1
    for name in ("tuning.json", "tuning.md", "tuned.json"):
        if (out / name).is_file():
            (grid / "tuning").mkdir(parents=True, exist_ok=True)
            shutil.copy(out / name, grid / "tuning" / name)
    return new


def this_machine_ran_cells(out: Path) -> bool:
    """Did any of OUT's complete cells run on this machine's processor (or has OUT none)?
    Else every verification would re-run on other hardware: within tolerance only, and
    for a bf16 grid on a CPU without native bf16 about 20x slower (docs/performance.md)."""
    from harness.results import recorded_processors
    from harness.runner import cpu_name

    found, here = recorded_processors(out), cpu_name()
    if found and here not in found:
        listed = ", ".join(f"{p} ({n} cells)" for p, n in sorted(found.items()))
        print(f"error: no cell of {out} ran on this machine's processor ({here}): {listed}; "
              "publish on that machine, where `harness verify` re-runs a cell exactly (or "
              "pass --any-machine to accept re-runs within tolerance)", file=sys.stderr)
        return False
    return True


def archive(root: Path, name: str) -> bool:
    """Move the board in ROOT/leaderboard/ to leaderboard/archive/NAME/; True when done or
    done already by this publication (archived, and no new board built since: the
    verification's re-runs take hours, and a stopped publication goes on when run again)."""
    from harness.errors import HarnessError
    from harness.leaderboard import archive_board

    archived = root / "leaderboard" / "archive" / name
    if archived.is_dir() and not (root / "leaderboard" / "index.html").exists():
        print(f"archived already: {archived}; going on with the new board")
        return True
    try:
        print(f"archived: the previous board, now in {archive_board(root, name)}")
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the leaderboard grid's run folder")
    parser.add_argument("--cells", default="1", help="cells verify re-runs per bundle")
    parser.add_argument("--methods", help="comma-separated subset (default: the suite's)")
    parser.add_argument("--suite", help="the grid (default: the live board's, "
                        "harness.bundle.LIVE_SUITE)")
    parser.add_argument("--root", default=".", help="folder holding leaderboard/ (default: .)")
    parser.add_argument("--archive", metavar="NAME", help="first move the board in leaderboard/ "
                        "to leaderboard/archive/NAME/ (publishing a new grid)")
    parser.add_argument("--jobs", type=int, default=1, help="bundles verified at once, each "
                        "in its own process at its cells' thread count (default 1)")
    parser.add_argument("--notes", metavar="PATH", help="the maintainers' notes for the new "
                        "board, copied to leaderboard/notes.yaml (after --archive)")
    parser.add_argument("--any-machine", action="store_true", help="verify even where no "
                        "cell of OUT ran on this machine's processor (re-runs compared "
                        "within tolerance, not exactly)")
    args = parser.parse_args()
    if not args.any_machine and not this_machine_ran_cells(Path(args.out)):
        return 2

    from harness.bundle import LIVE_SUITE
    from harness.grid import expand, state
    from harness.plans import Request
    from harness.results import CellState

    args.suite = args.suite or LIVE_SUITE
    if args.suite != LIVE_SUITE:  # the committed board's suite must be it (CI checks)
        print(f"note: harness submit, verify and leaderboard default to {LIVE_SUITE} "
              f"(harness.bundle.LIVE_SUITE); this board is {args.suite}'s")
    tuned = Path(args.out) / "tuned.json"  # the settings the run was made with (--settings)
    suite = Request(args.suite, settings=str(tuned) if tuned.is_file() else None).resolve()
    if args.archive and not archive(Path(args.root), args.archive):
        return 2
    if args.notes:
        (Path(args.root) / "leaderboard").mkdir(parents=True, exist_ok=True)
        shutil.copy(args.notes, Path(args.root) / "leaderboard" / "notes.yaml")
    new = copy_cells(Path(args.out), Path(args.root) / "leaderboard" / "grid")
    print(f"copied: {new} new complete cell(s) into {Path(args.root) / 'leaderboard' / 'grid'}")
    wanted = args.methods.split(",") if args.methods else [m.name for m in suite.methods]
    cells = expand(suite)
    ready, waiting = [], {}
    for name in wanted:
        mine = [c for c in cells if c.method.name == name]
        left = [c.id for c in mine
                if state(c, suite, Path(args.out) / "cells" / c.id) is not CellState.COMPLETE]
        (waiting.__setitem__(name, left) if left else ready.append(name))
    for name, left in waiting.items():
        total = sum(c.method.name == name for c in cells)
        print(f"not bundled: {name} ({len(left)} of {total} cells not complete)")
    harness = [sys.executable, "-m", "harness.cli"]
    where = ["--suite", args.suite]
    verifying = []
    for name in ready:
        bundle = str(Path(args.root) / "leaderboard" / "submissions" / name)
        if up_to_date(Path(bundle), Path(args.out)):
            print(f"kept: {name} (its bundle is verified and holds OUT's cells)")
            continue
        step = ["submit", name, "--out", args.out, "--root", args.root, "--quiet", *where]
        if subprocess.run(harness + step).returncode != 0:
            print(f"stopped: `harness {' '.join(step)}` failed", file=sys.stderr)
            return 1
        work = str(Path(args.out) / "verify" / name)  # `harness verify --work`: resumable
        verifying.append(["verify", bundle, "--cells", args.cells, "--work", work, *where])
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:  # each a process of its own
        runs = list(pool.map(lambda step: subprocess.run(harness + step, capture_output=True,
                                                         text=True), verifying))
    for step, run in zip(verifying, runs):
        print(run.stdout, end="")
        print(run.stderr, end="", file=sys.stderr)
        if run.returncode != 0:
            print(f"stopped: `harness {' '.join(step)}` failed", file=sys.stderr)
            return 1
    if not ready:
        return 1
    return subprocess.run(harness + ["leaderboard", "--root", args.root, *where]).returncode


if __name__ == "__main__":
    sys.exit(main())
