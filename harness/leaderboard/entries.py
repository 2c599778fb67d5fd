"""The leaderboard's inputs: every submitted bundle, checked (`harness verify`'s static
checks) and read into one score table.

A bundle that fails a check is never ranked: a number that cannot be traced to its bundle
would make the whole page untrustworthy. Verification is read, not re-done: a bundle counts
as verified only while its verification.json names the sha256 of its current checksum file
(an edit after verification makes it self-reported again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness import bundle as B
from harness import verify
from harness.config import Suite
from harness.results import read_json
from harness.scores import ScoreTable, directions, probe_directions
from harness.scores import score_table as scores_table

REFERENCE = "sft"  # the baseline every method is compared with (win counts, significance)

# The metrics of R shown and rankable, in page order (task_gain is ours: ACC minus the base
# model's ACC, which the grid shares, so it ranks like ACC but reads as an improvement).
R_METRICS = ("acc", "format_acc", "task_gain", "bwt", "forgetting", "plasticity",
             "forgotten_items", "learned_from_base")
LABELS = {"acc": "ACC", "format_acc": "format", "task_gain": "task gain", "bwt": "BWT",
          "forgetting": "forgetting", "plasticity": "plasticity",
          "forgotten_items": "forgotten items", "learned_from_base": "learned items"}
DESCRIPTIONS = {
    "acc": "final average score over the stream's tasks: mean_j R[T][j]",
    "task_gain": "ACC minus the base model's: mean_j R[T][j] - R[0][j]",
    "bwt": "backward transfer: mean_{j<T} R[T][j] - R[j][j] (negative = forgetting)",
    "forgetting": "mean drop from a task's best trained score to its final score",
    "plasticity": "mean gain on each task right after training on it",
    "forgotten_items": "test items right after their task was trained and wrong after the "
                       "last task, summed over the stream's tasks",
    "learned_from_base": "test items the base model got wrong and the model after the last "
                         "task gets right, summed over the stream's tasks",
    "format_acc": "ACC under the strict scoring: the answer counts only in the task's own "
                  "format (the board ranks on content: the answer whatever its wrapper)",
}


@dataclass
class Entry:
    """One accepted bundle: its name (the submission folder), manifest, cell results and
    whether a verifier's record still covers it."""

    name: str
    manifest: dict
    results: dict[str, dict]
    verified: bool
    verification: dict | None = field(default=None)
    tuning: dict | None = field(default=None)  # the bundle's tuning.json (None: untuned)


def submissions(root: Path) -> Path:
    return Path(root) / B.SUBMISSIONS


def bundle_folders(root: Path) -> list[Path]:
    """Submission folders, sorted; hidden ones (a bundle being written) are skipped."""
    folder = submissions(root)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def verification_of(path: Path) -> tuple[bool, dict | None]:
    """(verified, the record): verified iff verification.json exists and its
    checksums_sha256 is the sha256 of the bundle's current checksums.sha256."""
    record, problem = read_json(path / B.VERIFICATION)
    if problem or not isinstance(record, dict) or not (path / B.CHECKSUMS).is_file():
        return False, None
    ok = record.get("checksums_sha256") == B.sha256_file(path / B.CHECKSUMS)
    return ok, record if ok else None


def read_entries(root: Path, suite: Suite) -> tuple[list[Entry], dict[str, list[str]]]:
    """(accepted entries, {bundle name: its problems}) for every bundle under root."""
    entries, rejected = [], {}
    for path in bundle_folders(root):
        problems = verify.static_problems(path, suite)
        if problems:
            rejected[path.name] = list(problems)
            continue
        bundle = B.read_bundle(path)
        verified, record = verification_of(path)
        entries.append(Entry(path.name, bundle.manifest, bundle.results, verified, record,
                             bundle.tuning))
    return entries, rejected


def probe_order(entries: list[Entry]) -> list[str]:
    """The probes in the suite's order, then any others by name."""
    listed = [p for e in entries for p in e.manifest.get("suite", {}).get("probes") or []]
    present = {p for e in entries for r in e.results.values() for p in (r.get("probes") or {})}
    order = list(dict.fromkeys(p for p in listed if p in present))
    return order + sorted(present - set(order))


def cells_of(entries: list[Entry]) -> list[tuple[str, dict]]:
    """(bundle name, result.json) of every cell, bundles and cell ids in order."""
    return [(e.name, e.results[c]) for e in entries for c in sorted(e.results)]


def primary_of(entries: list[Entry]) -> str:
    """The scoring the cells rank on (result.json `primary`; cells from before it: strict)."""
    found = sorted({r.get("primary", "strict") for _, r in cells_of(entries)})
    return "content" if "content" in found else "strict"


def metric_catalogue(entries: list[Entry]) -> list[dict]:
    """Every shown metric: key, label, direction, description, in page order. ACC is
    labelled with its scoring when that is not strict; the format column exists only then."""
    probes = probe_order(entries)
    primary = primary_of(entries)
    r_metrics = [k for k in R_METRICS if k != "format_acc" or primary != "strict"]
    keys = [*r_metrics, *(f"{p}{end}" for p in probes for end in ("_final", "_delta"))]
    hib = directions(keys, probe_directions([r for _, r in cells_of(entries)]))
    label = dict(LABELS, acc=f"ACC ({primary})" if primary != "strict" else "ACC")
    out = [{"key": k, "label": label[k], "higher_is_better": hib[k],
            "description": DESCRIPTIONS[k]} for k in r_metrics]
    for probe in probes:
        better = "higher" if hib[f"{probe}_final"] else "lower"
        out.append({"key": f"{probe}_final", "label": f"{probe}",
                    "higher_is_better": hib[f"{probe}_final"],
                    "description": f"the {probe} probe after the last task ({better} is better)"})
        out.append({"key": f"{probe}_delta", "label": f"{probe} change",
                    "higher_is_better": hib[f"{probe}_delta"],
                    "description": f"the {probe} probe's change from the base model "
                                   f"({better} is better)"})
    return out


def score_table(entries: list[Entry], keys: list[str]) -> ScoreTable:
    """The bundles' cells in harness.scores' one score table (the table `harness report`
    reads), methods named by their bundle."""
    cells = cells_of(entries)
    return scores_table(cells, keys, probe_directions([r for _, r in cells]))
