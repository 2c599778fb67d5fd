"""Build the benchmark card's calibration tables from a `calibration` suite run.

    harness run --suite calibration --out runs/calibration
    python scripts/benchmark_card.py runs/calibration > docs/benchmark-card-tables.md

Criteria checked per task: not already solved (base <= 0.5) and learnable within the
quickstart budget (mean gain >= 0.3 over seeds). Per probe: its base value, its value after
SFT on each task (mean ± sd over seeds; the sd is the seed-to-seed noise) and the change.
Cells are read through harness.results (complete, valid result.json files only).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from statistics import mean, stdev

from harness.results import read_cells

MAX_BASE, MIN_GAIN = 0.5, 0.3


def _ms(values: list[float]) -> str:
    sd = stdev(values) if len(values) > 1 else 0.0
    return f"{mean(values):.3f} ± {sd:.3f}"


def load(out: Path) -> dict[str, list[dict]]:
    """task -> the result.json of every complete single-task sft cell on it."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    for record in read_cells(out).records:
        if record.T == 1 and record.method == "sft":
            by_task[record.tasks[0]].append(record.data)
    return dict(sorted(by_task.items()))


def tables(by_task: dict[str, list[dict]]) -> str:
    lines = ["| task | seeds | base | after SFT (mean ± sd) | gain | base <= 0.5 | gain >= 0.3 |",
             "|---|---|---|---|---|---|---|"]
    for task, results in by_task.items():
        base = results[0]["R"][0][0]
        after = [r["R"][1][0] for r in results]
        gain = mean(after) - base
        lines.append(f"| {task} | {len(results)} | {base:.3f} | {_ms(after)} | {gain:+.3f} | "
                     f"{'yes' if base <= MAX_BASE else 'NO'} | {'yes' if gain >= MIN_GAIN else 'NO'} |")
    probes = sorted({p for rs in by_task.values() for r in rs for p in r["probes"]})
    lines += ["", "| probe (direction) | base | " + " | ".join(f"after SFT on {t}" for t in by_task) + " |",
              "|---|---|" + "---|" * len(by_task)]
    for probe in probes:
        some = next(r for rs in by_task.values() for r in rs if probe in r["probes"])
        arrow = "↑" if some["probe_info"][probe]["higher_is_better"] else "↓"
        base = some["probes"][probe][0]
        cells = [_ms([r["probes"][probe][1] for r in rs]) for rs in by_task.values()]
        lines.append(f"| {probe} ({arrow}) | {base:.3f} | " + " | ".join(cells) + " |")
    seconds = [r["training"][0]["sec_per_step"] for rs in by_task.values() for r in rs]
    hardware = next(iter(by_task.values()))[0]["hardware"]
    lines += ["", f"Cells: {sum(len(rs) for rs in by_task.values())}; mean training step "
              f"{mean(seconds):.2f} s on {hardware['platform']} ({hardware['cpu_count']} CPUs, "
              f"device {hardware['device']})."]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python scripts/benchmark_card.py RUN_DIR (a `harness run --suite calibration` output)",
              file=sys.stderr)
        return 2
    by_task = load(Path(argv[0]))
    if not by_task:
        print(f"no single-task sft results under {argv[0]}/cells", file=sys.stderr)
        return 2
    print(tables(by_task))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
