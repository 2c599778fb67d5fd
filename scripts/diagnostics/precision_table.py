"""Tables of the precision check (scripts/diagnostics/precision.sh): per run folder and
seed, the final task scores, probes and the cell's time, then bf16 - fp32 paired by seed.

    python -m scripts.diagnostics.precision_table runs
"""

from __future__ import annotations

import sys
from pathlib import Path
from statistics import mean, stdev

from harness.cells import read_cells

RUNS = ("precision-old", "precision-fp32", "precision-bf16", "precision-old-again")
FIELDS = ("acc", "bwt", "drift", "knowledge", "train_s", "eval_s", "total_s")


def rows(folder: Path) -> dict[int, dict]:
    """seed -> the figures of FIELDS for the folder's one method."""
    out = {}
    for record in read_cells(folder).records:
        d = record.data
        out[record.seed] = {"acc": d["metrics"]["acc"], "bwt": d["metrics"]["bwt"],
                            "drift": d["probes"]["drift"][-1],
                            "knowledge": d["probes"]["knowledge"][-1],
                            **{k: d["timings"][k] for k in ("train_s", "eval_s", "total_s")}}
    return out


def _fmt(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}" if values else "-"
    return f"{mean(values):.3f} ± {stdev(values):.3f}"


def main(root: Path) -> None:
    found = {name: rows(root / name) for name in RUNS if (root / name / "cells").is_dir()}
    print("| run | seeds | " + " | ".join(FIELDS) + " |")
    print("|---|---|" + "---|" * len(FIELDS))
    for name, by_seed in found.items():
        cells = [by_seed[s] for s in sorted(by_seed)]
        print(f"| {name} | {sorted(by_seed)} | "
              + " | ".join(_fmt([c[f] for c in cells]) for f in FIELDS) + " |")
    fp32, bf16 = found.get("precision-fp32", {}), found.get("precision-bf16", {})
    seeds = sorted(set(fp32) & set(bf16))
    if seeds:
        print(f"\nbf16 - fp32, paired by seed ({seeds}):")
        for f in FIELDS:
            diffs = [bf16[s][f] - fp32[s][f] for s in seeds]
            print(f"  {f}: " + ", ".join(f"{d:+.3f}" for d in diffs))
        ratio = [fp32[s]["train_s"] / bf16[s]["train_s"] for s in seeds]
        print("  training speed-up fp32/bf16: " + ", ".join(f"{r:.2f}x" for r in ratio))
    for name in ("precision-old", "precision-old-again"):
        old = found.get(name, {})
        for s in sorted(set(old) & set(fp32)):
            print(f"\n{name} seed {s} / new code fp32: total "
                  f"{old[s]['total_s'] / fp32[s]['total_s']:.2f}x, training "
                  f"{old[s]['train_s'] / fp32[s]['train_s']:.2f}x, evaluation "
                  f"{old[s]['eval_s'] / fp32[s]['eval_s']:.2f}x")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs"))
