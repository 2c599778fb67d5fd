"""Tables comparing methods within each stream: task gain, retention and cost.

    harness run --suite methods --out runs/methods
    python scripts/method_evidence.py runs/methods [--reference sft] [--methods a,b] > tables.md

Per method, mean ± sd over seeds of: task gain (score right after learning a task minus
the base score, averaged over tasks), final ACC and BWT, every probe's final value, and the
training step time, also as a ratio to the reference method's (paired by seed and task).
A run of several streams (or models) gets one set of tables each, under its name: a
method's seeds are paired within one stream, never mixed across streams.
Method statistics recorded in result.json (`method_stats`) are averaged per key; SDFT's
divergence per completion position (`kl_by_position`) gets a table of its own. A method
given as a file plugin is shown by its `name` (cells recorded under path.py:Class before
methods were named so are resolved to it). Cells are read through harness.cells
(complete, valid result.json files only). For paired significance tests use
`harness report`.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from statistics import mean, stdev

from harness.cells import read_cells
from harness.metrics import METRICS


def _ms(values: list[float], digits: int = 3) -> str:
    if not values:
        return "-"
    sd = stdev(values) if len(values) > 1 else 0.0
    return f"{mean(values):.{digits}f} ± {sd:.{digits}f}"


def load(out: Path) -> dict[str, dict[str, dict[int, dict]]]:
    """stream -> method -> seed -> result.json (complete cells only), by the method's name;
    the stream is named "model / stream" where the run has several models."""
    records = read_cells(out).records
    several = len({r.model for r in records}) > 1
    found: dict[str, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for record in records:
        where = f"{record.model} / {record.stream}" if several else record.stream
        found[where][identity(record.method)][record.seed] = record.data
    return {k: dict(v) for k, v in sorted(found.items())}


def identity(method: str) -> str:
    """A method's one identity, its `name`. Cells written before methods were named by
    their class's `name` recorded a file plugin as path.py:Class: resolved here (from the
    working directory) to that class's name, so old and new cells of a method pair up;
    where the file no longer loads, its class name."""
    if ".py:" not in method:
        return method
    from harness.methods import METHODS

    try:
        return METHODS[method].name or shown(method)
    except Exception:
        return shown(method)


def gain(result: dict) -> float:
    """Task gain: the score right after learning each task minus the base score, averaged
    over tasks (the `plasticity` metric)."""
    return METRICS["plasticity"].fn(result["R"])


def step_seconds(result: dict) -> list[float]:
    return [t["sec_per_step"] for t in result["training"] if t.get("steps")]


def shown(method: str) -> str:
    """A file plugin (path/to/file.py:Class) is shown by its class name."""
    return method.rsplit(":", 1)[1] if ".py:" in method else method


def position_table(cells: dict[str, dict[int, dict]]) -> str:
    """Mean divergence per completion position and truncated share, per method and task
    (mean over seeds), for methods that record `kl_by_position`."""
    rows, buckets = [], []
    for method in sorted(cells):
        per_task: dict[str, list[dict]] = defaultdict(list)
        for r in cells[method].values():
            for task, values in r.get("method_stats", {}).items():
                if isinstance(values.get("kl_by_position"), dict):
                    per_task[task].append(values)
        for task, found in per_task.items():
            for stat in found:
                buckets += [b for b in stat["kl_by_position"] if b not in buckets]
            rows.append((method, task, found))
    if not rows:
        return ""
    lines = ["| method | task | seeds | truncated | " + " | ".join(f"KL @{b}" for b in buckets)
             + " |", "|" + "---|" * (4 + len(buckets))]
    for method, task, found in rows:
        kl = [_ms([s["kl_by_position"][b] for s in found if b in s["kl_by_position"]], 4)
              for b in buckets]
        lines.append(f"| {shown(method)} | {task} | {len(found)} | "
                     f"{_ms([s.get('truncated_share', 0.0) for s in found], 2)} | "
                     + " | ".join(kl) + " |")
    return "\n".join(lines)


def tables(cells: dict[str, dict[int, dict]], reference: str = "sft") -> str:
    some = next(iter(next(iter(cells.values())).values()))
    probes = list(some["probes"])
    arrows = {p: "↑" if some["probe_info"][p]["higher_is_better"] else "↓" for p in probes}
    head = ["method", "seeds", "task gain ↑", "ACC ↑", "BWT ↑"] + [f"{p} {arrows[p]}" for p in probes]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             "| base | - | - | " + " | ".join(f"{x:.3f}" for x in [mean(some['R'][0])])
             + " | - | " + " | ".join(f"{some['probes'][p][0]:.3f}" for p in probes) + " |"]
    order = [reference] + sorted(m for m in cells if m != reference) if reference in cells else sorted(cells)
    for method in order:
        rs = list(cells[method].values())
        row = [shown(method), str(len(rs)), _ms([gain(r) for r in rs]),
               _ms([r["metrics"]["acc"] for r in rs]), _ms([r["metrics"]["bwt"] for r in rs])]
        row += [_ms([r["probes"][p][-1] for r in rs]) for p in probes]
        lines.append("| " + " | ".join(row) + " |")

    lines += ["", "| method | s per step | vs " + reference + " (paired) | setup s (generation) "
              "| train s per cell | method_stats |", "|---|---|---|---|---|---|"]
    ref = cells.get(reference, {})
    for method in order:
        rs = cells[method]
        per_step = [s for r in rs.values() for s in step_seconds(r)]
        ratios = [mean(step_seconds(r)) / mean(step_seconds(ref[seed]))
                  for seed, r in rs.items() if seed in ref and step_seconds(r) and step_seconds(ref[seed])]
        stats: dict[str, list[float]] = defaultdict(list)
        for r in rs.values():
            for where, values in r.get("method_stats", {}).items():
                for key, value in values.items():
                    if isinstance(value, (int, float)):
                        stats[f"{key} ({where})"].append(value)
        stat_text = "; ".join(f"{k}: {mean(v):.3g}" for k, v in sorted(stats.items())) or "-"
        lines.append(f"| {shown(method)} | {_ms(per_step, 2)} | {_ms(ratios, 2)}x | "
                     f"{_ms([r['timings']['setup_s'] for r in rs.values()], 0)} | "
                     f"{_ms([r['timings']['train_s'] for r in rs.values()], 0)} | {stat_text} |")
    positions = position_table(cells)
    if positions:
        lines += ["", positions]
    hardware = some["hardware"]
    lines += ["", f"Hardware: {hardware['platform']}, {hardware['cpu_count']} CPUs, device "
              f"{hardware['device']}. Stream: {' -> '.join(some['tasks'])}."]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python scripts/method_evidence.py")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--reference", default="sft")
    parser.add_argument("--methods", help="only these methods (names as shown), comma-separated")
    args = parser.parse_args(argv)
    if not (args.run_dir / "cells").is_dir():
        print(f"no folder {args.run_dir}/cells: give the run's --out folder (the one holding "
              "cells/)", file=sys.stderr)
        return 2
    streams = load(args.run_dir)
    if args.methods:
        keep = set(args.methods.split(","))
        streams = {s: {m: c for m, c in cells.items() if shown(m) in keep}
                   for s, cells in streams.items()}
    streams = {s: cells for s, cells in streams.items() if cells}
    if not streams:
        print(f"no complete cells under {args.run_dir}/cells", file=sys.stderr)
        return 2
    print("\n\n".join((f"## {s}\n\n" if len(streams) > 1 else "") + tables(cells, args.reference)
                      for s, cells in streams.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
