"""The benchmark card's design tables: power and cost projected from the pilot's cells.

Called by scripts/benchmark_card.py for multi-task (pilot) cells. Two questions, both
answered from what the committed cells measured, nothing assumed but the design's size:

- **Power.** For each method against SFT on the primary metric (ACC, content scoring where
  the cells have it), the sd over seeds of the paired per-seed difference splits into the
  test items' sampling noise (the variance of the per-item paired differences over the
  number of items, within each seed) and the rest (training-seed noise). At N test items a
  task the item part shrinks by n_now / N; the projected sd gives, through
  harness.power.minimum_detectable_difference, the smallest difference a design finds
  with 80% power after Holm over all pairs of a 14-method board.
- **Cost.** Per stream and method: seconds per optimiser step and per evaluated test item
  (an entry of R times the items of its task), the probes' seconds per row, and the CPU
  share of wall clock where cells record CPU seconds. A cell's cost at N items under a
  schedule is then steps x step + entries x N x item + rows x probes.
"""

from __future__ import annotations

import math
from statistics import mean, median, variance

BOARD_METHODS = 14  # the built-ins a v2 board ranks: all pairs corrected together
ITEMS_TARGET = 200


def _items(data: dict, scoring: str) -> dict:
    found = data.get("by_metric", {}).get(scoring)
    return (found or {"items": data["items"]})["items"]


def acc_items(data: dict, scoring: str) -> list[float]:
    """The final row's per-item scores, every task (ACC is their mean: tasks of equal size)."""
    items = _items(data, scoring)
    return [x for t in data["tasks"] for x in items[t][len(data["tasks"])]]


def spread_parts(cells: dict, sft: dict, scoring: str) -> dict | None:
    """sd of per-seed ACC differences (method - sft), its item part, items per cell."""
    seeds = sorted(set(cells) & set(sft))
    if len(seeds) < 2:
        return None
    diffs, item_vars, n_items = [], [], None
    for s in seeds:
        a, b = acc_items(cells[s], scoring), acc_items(sft[s], scoring)
        if len(a) != len(b) or len(a) < 2:
            return None
        d = [x - y for x, y in zip(a, b)]
        diffs.append(mean(d))
        item_vars.append(variance(d) / len(d))
        n_items = len(d)
    observed = variance(diffs)
    item_part = mean(item_vars)
    return {"seeds": len(seeds), "sd": math.sqrt(observed), "item_sd": math.sqrt(item_part),
            "seed_var": max(0.0, observed - item_part), "item_var": item_part,
            "items": n_items, "tasks": len(next(iter(cells.values()))["tasks"])}


def projected_sd(parts: dict, items_per_task: int) -> float:
    """The paired difference's sd at `items_per_task` test items a task."""
    now = parts["items"] / parts["tasks"]
    return math.sqrt(parts["seed_var"] + parts["item_var"] * now / items_per_task)


def power_lines(pilot: dict, scoring: str, designs: list[tuple[int, int]]) -> list[str]:
    """Per stream and method, the observed spread, its parts, the sd projected to 200
    items, and the minimum detectable ACC difference of each (streams, seeds) design."""
    from harness.power import minimum_detectable_difference as mdd

    pairs = BOARD_METHODS * (BOARD_METHODS - 1) // 2
    head = " | ".join(f"MDD {st}x{se}" for st, se in designs)
    lines = [f"Power on ACC ({scoring}), paired with sft by seed: the observed sd of per-seed "
             "differences, its test-item part (within-seed variance of per-item paired "
             f"differences / items), the sd projected to {ITEMS_TARGET} items a task, and the "
             "minimum detectable difference (80% power, alpha 0.05 after Holm over all "
             f"{pairs} pairs of a {BOARD_METHODS}-method board) of designs streams x seeds "
             "at that sd.", "",
             f"| stream | method | seeds | sd | item part | sd at {ITEMS_TARGET} | {head} |",
             "|---|---|---|---|---|---|" + "---|" * len(designs)]
    projected = []
    for stream, methods in pilot.items():
        sft = methods.get("sft")
        for method, cells in methods.items():
            parts = None if method == "sft" or not sft else spread_parts(cells, sft, scoring)
            if parts is None:
                continue
            sd = projected_sd(parts, ITEMS_TARGET)
            projected.append(sd)
            cols = " | ".join(f"{mdd(sd, st * se, st, pairs):.3f}" for st, se in designs)
            lines.append(f"| {stream} | {method} | {parts['seeds']} | {parts['sd']:.3f} | "
                         f"{parts['item_sd']:.3f} | {sd:.3f} | {cols} |")
    if projected:
        typical = median(projected)
        cols = " | ".join(f"{mdd(typical, st * se, st, pairs):.3f}" for st, se in designs)
        lines.append(f"| **median** | | | | | {typical:.3f} | {cols} |")
    return lines + [""]


def cost_figures(cells: dict) -> dict | None:
    """Median over a method's cells: s a step, s per evaluated item, probes s a row, CPU/wall."""
    steps, items, probes, cpu = [], [], [], []
    for data in cells.values():
        t = data.get("timings", {})
        n_steps = sum(s.get("steps", 0) for s in data.get("training", []))
        R = data["R"]
        n_test = len(data["items"][data["tasks"][0]][0])
        entries = sum(v is not None for row in R[1:] for v in row)
        if not (n_steps and entries and t.get("train_s")):
            continue
        steps.append(t["train_s"] / n_steps)
        items.append((t["eval_s"] - t.get("probes_s", 0.0)) / (entries * n_test))
        probes.append(t.get("probes_s", 0.0) / (len(R) - 1))
        if t.get("cpu_s"):
            cpu.append(t["cpu_s"] / t["total_s"])
    if not steps:
        return None
    return {"step": median(steps), "item": median(items), "probes_row": median(probes),
            "cpu_share": median(cpu) if cpu else None, "cells": len(steps)}


def cost_lines(pilot: dict) -> list[str]:
    """Per stream and method, the measured unit costs and a cell's projected seconds at 200
    items: every entry of R evaluated (`all`) or only each task after its own training and
    the final row (`own-and-final`)."""
    lines = ["Cost per cell, from the cells' own timings (median over seeds; 2 workers x 1 "
             "thread, the machine shared with other work, so an upper bound for an idle one): "
             f"seconds a step, per evaluated test item, probes per row, and a cell projected to "
             f"{ITEMS_TARGET} items a task under each evaluation schedule.", "",
             "| stream | method | cells | s/step | s/item | probes s/row | CPU/wall | "
             f"cell s, all rows | cell s, own-and-final |", "|---|---|---|---|---|---|---|---|---|"]
    for stream, methods in pilot.items():
        for method, cells in methods.items():
            f = cost_figures(cells)
            if f is None:
                continue
            some = next(iter(cells.values()))
            T = len(some["tasks"])
            n_steps = median(sum(s.get("steps", 0) for s in c.get("training", []))
                             for c in cells.values())
            train = n_steps * f["step"] + T * f["probes_row"]
            full = train + T * T * ITEMS_TARGET * f["item"]
            cheap = train + (2 * T - 1) * ITEMS_TARGET * f["item"]
            share = "-" if f["cpu_share"] is None else f"{f['cpu_share']:.2f}"
            lines.append(f"| {stream} | {method} | {f['cells']} | {f['step']:.2f} | "
                         f"{f['item']:.3f} | {f['probes_row']:.1f} | {share} | {full:.0f} | "
                         f"{cheap:.0f} |")
    return lines + [""]


def design_lines(pilot: dict, scoring: str) -> list[str]:
    designs = [(2, 6), (3, 4), (3, 6), (3, 8), (4, 6)]
    return (["### Design: power and cost projected from the pilot", ""]
            + power_lines(pilot, scoring, designs) + cost_lines(pilot))
