"""Issue 32's "How it will be checked", run on the committed cells and board:

    python scripts/check_leaderboard.py [--cells leaderboard/grid/cells] [--board leaderboard]

From the cells: streams of >= 3 tasks (>= 2 wanted), test items a task (>= 200), complete
(stream, seed) pairs a method (>= 12 each), SFT's mean BWT per stream on the ranking scoring
(<= -0.15 on >= 2 streams), how alike ewc's and sft's items are (not identical), each
generating method's truncated share (<= 10%, or flagged on the board). From the board's
leaderboard.json, where there is one for these cells: significant pairs on ACC (>= 15),
every bundle verified. Prints one line a check; exit 0 when every check passes, 1 when one
fails or cannot be read yet (a grid still running). The page's browser check is
tests/test_leaderboard_browser.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.leaderboard.board import in_force  # noqa: E402
from harness.leaderboard.cellfacts import FLAG_SHARE, method_truncation  # noqa: E402


def scoring(result: dict) -> dict:
    """The ranking scoring's R, items and metrics (the cell's primary; older cells: top level)."""
    return (result.get("by_metric") or {}).get(result.get("primary")) or result


def read_cells(folder: Path) -> list[dict]:
    found = []
    for path in sorted(folder.glob("*/result.json")):
        result = json.loads(path.read_text())
        if result.get("status", "complete") == "complete":
            found.append(result)
    return found


def items_alike(a: dict, b: dict) -> tuple[int, int]:
    """(equal item scores, item scores compared) between two cells' ranking items."""
    same = total = 0
    ia, ib = scoring(a)["items"], scoring(b)["items"]
    for task in ia:
        for ra, rb in zip(ia[task], ib.get(task, [])):
            if ra is None or rb is None:
                continue
            same += sum(x == y for x, y in zip(ra, rb))
            total += len(ra)
    return same, total


def provisional_pairs(by_method: dict) -> str:
    """What the board's test (harness.statistics.board: paired t over common (model,
    stream, seed) pairs, Holm over all pairs) says of the cells so far: a look at a grid
    still running, never the check itself (fewer methods make a smaller Holm family)."""
    from harness.statistics import board

    values = {m: {(r["cell"]["model"], s, n): scoring(r)["metrics"]["acc"]
                  for (s, n), r in found.items()} for m, found in by_method.items()
              if len(found) >= 2}
    if len(values) < 2:
        return "provisional: fewer than 2 methods with 2 (stream, seed) pairs"
    b = board(values)
    fewest = min(len(v) for v in values.values())
    return (f"provisional, from the cells so far: {b.significant_pairs} of {len(b.pairs)} "
            f"pairs of {len(values)} methods (Holm over those; fewest pairs a method: {fewest})")


def checks(cells: list[dict], board: dict | None) -> list[tuple[str, bool | None, str]]:
    """(check, passed (None: not measurable yet), evidence) for every check."""
    if not cells:
        return [("complete cells", None, "none yet")]
    out = []
    by_method = defaultdict(dict)
    streams = {}
    for r in cells:
        c = r["cell"]
        by_method[c["method"]][(c["stream"], c["seed"])] = r
        streams[c["stream"]] = r["tasks"]
    long = {s: len(t) for s, t in streams.items() if len(t) >= 3}
    out.append(("streams of >= 3 tasks: >= 2", len(long) >= 2,
                ", ".join(f"{s} ({n} tasks)" for s, n in sorted(streams.items()) for n in
                          [len(streams[s])]) or "no cells"))
    n_items = {t: len(rows[-1]) for r in cells for t, rows in scoring(r)["items"].items()
               if rows and rows[-1] is not None}
    fewest = min(n_items.values(), default=0)
    out.append(("test items a task: >= 200", bool(n_items) and fewest >= 200,
                f"fewest {fewest} ({min(n_items, key=n_items.get) if n_items else '-'})"))
    pairs = {m: len(v) for m, v in by_method.items()}
    out.append(("(stream, seed) pairs a method: >= 12", bool(pairs) and min(pairs.values()) >= 12,
                ", ".join(f"{m} {n}" for m, n in sorted(pairs.items())) or "no cells"))
    sft = by_method.get("sft", {})
    bwt = {s: mean(v) for s in streams if (v := [scoring(r)["metrics"]["bwt"]
                                                   for (st, _), r in sft.items() if st == s
                                                   and scoring(r)["metrics"].get("bwt") is not None])}
    out.append(("SFT mean BWT <= -0.15 on >= 2 streams",
                sum(b <= -0.15 for b in bwt.values()) >= 2 if bwt else None,
                ", ".join(f"{s} {b:+.3f} ({sum(k[0] == s for k in sft)} seeds)"
                          for s, b in sorted(bwt.items())) or "no sft cells"))
    ewc = by_method.get("ewc", {})
    common = sorted(set(ewc) & set(sft))
    if common:
        alike = [items_alike(ewc[k], sft[k]) for k in common]
        same, total = map(sum, zip(*alike))
        identical = sum(a == b for a, b in alike)
        out.append(("ewc not item-identical to sft", same < total,
                    f"{same} of {total} item scores alike ({same / total:.1%}) over {len(common)} "
                    f"pairs; {identical} pair(s) identical"))
    else:
        out.append(("ewc not item-identical to sft", None, "no (stream, seed) pair with both"))
    flagged = {m: (board or {}).get("methods", {}).get(m, {}).get("truncation") or {}
               for m in by_method}
    for method, found in sorted(by_method.items()):
        # the registered defaults name the budget where the cells give only what they set
        t = method_truncation(list(found.values()), in_force({"name": method, "builtin": True}))
        if t is None:
            continue
        on_page = flagged[method].get("flagged")
        ok = t["share"] <= FLAG_SHARE or bool(on_page)
        out.append((f"{method} truncated share <= {FLAG_SHARE:.0%} or flagged", ok,
                    f"{t['share']:.1%} over {t['cells']} cells (highest {t['max']:.1%}; "
                    f"{t['budget']}); flagged on the board: "
                    f"{'yes' if on_page else 'no' if board else 'no board yet'}"))
    if board is None:
        out += [("significant pairs on ACC: >= 15", None, "no board for these cells yet; "
                 + provisional_pairs(by_method)),
                ("every bundle verified", None, "no board for these cells yet")]
    else:
        sig = board.get("significant_pairs")
        out.append(("significant pairs on ACC: >= 15", sig is not None and sig >= 15,
                    f"{sig} of {board['views']['all']['metrics']['acc']['pairs']}"))
        unverified = sorted(m for m, v in board["methods"].items() if not v.get("verified"))
        missing = sorted(set(by_method) - set(board["methods"]))
        out.append(("every bundle verified", not unverified and not missing,
                    f"{len(board['methods'])} bundles; not verified: "
                    f"{', '.join(unverified) or 'none'}; cells without a bundle: "
                    f"{', '.join(missing) or 'none'}"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default=str(ROOT / "leaderboard" / "grid" / "cells"))
    parser.add_argument("--board", default=str(ROOT / "leaderboard"),
                        help="the folder of the board's leaderboard.json (read only when its "
                        "grid is the cells')")
    args = parser.parse_args()
    cells = read_cells(Path(args.cells))
    board_file = Path(args.board) / "leaderboard.json"
    board = json.loads(board_file.read_text()) if board_file.is_file() else None
    if board and (not cells or board["grid"]["name"] != cells[0].get("suite")):
        board = None  # another grid's board (e.g. v1's while v2 runs)
    print(f"{len(cells)} complete cells in {args.cells}; board: "
          f"{board_file if board else 'none for these cells'}")
    results = checks(cells, board)
    for name, ok, evidence in results:
        print(f"{'PASS' if ok else 'NOT YET' if ok is None else 'FAIL':8} {name} -> {evidence}")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
