"""Publish the built-in methods' leaderboard from one run of the leaderboard grid:

    harness run --suite leaderboard --out runs/leaderboard          # (hours; resumable)
    python scripts/publish_leaderboard.py runs/leaderboard [--cells 1]

For every method of the leaderboard suite whose six cells are complete in OUT: `harness
submit METHOD --out OUT` (no cell re-runs: they are complete), `harness verify` (static
checks and `--cells` re-runs), then `harness leaderboard`. Where OUT holds the tuning
(`harness tune --out OUT`), each bundle carries its method's part of OUT/tuning.json. Methods with cells missing are
listed and left out, never bundled half; a method whose bundle is verified and holds the
same cell results as OUT is kept as it is (run the script again as methods complete).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def up_to_date(bundle: Path, out: Path) -> bool:
    """Is `bundle` verified as it is, with cells whose results are byte for byte OUT's?"""
    from harness.leaderboard.entries import verification_of

    cells = sorted((bundle / "cells").glob("*/result.json"))
    return bool(cells) and verification_of(bundle)[0] and all(
        (out / "cells" / c.parent.name / "result.json").is_file()
        and c.read_bytes() == (out / "cells" / c.parent.name / "result.json").read_bytes()
        for c in cells)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the leaderboard grid's run folder")
    parser.add_argument("--cells", default="1", help="cells verify re-runs per bundle")
    parser.add_argument("--methods", help="comma-separated subset (default: the suite's)")
    parser.add_argument("--suite", default="leaderboard", help="the grid (default: leaderboard)")
    parser.add_argument("--root", default=".", help="folder holding leaderboard/ (default: .)")
    args = parser.parse_args()

    from harness.config import load_suite
    from harness.grid import expand, state
    from harness.results import CellState

    suite = load_suite(args.suite)
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
    for name in ready:
        bundle = str(Path(args.root) / "leaderboard" / "submissions" / name)
        if up_to_date(Path(bundle), Path(args.out)):
            print(f"kept: {name} (its bundle is verified and holds OUT's cells)")
            continue
        for step in (["submit", name, "--out", args.out, "--root", args.root, "--quiet", *where],
                     ["verify", bundle, "--cells", args.cells, *where]):
            if subprocess.run(harness + step).returncode != 0:
                print(f"stopped: `harness {' '.join(step)}` failed", file=sys.stderr)
                return 1
    if not ready:
        return 1
    return subprocess.run(harness + ["leaderboard", "--root", args.root, *where]).returncode


if __name__ == "__main__":
    sys.exit(main())
