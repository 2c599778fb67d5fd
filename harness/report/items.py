"""Item-level statistics of a report: acc's seed x item interval against the reference (`item_ci`, which `comparisons` adds to its acc
rows), and item-level forgetting (`item_forgetting`: items flipped 1 -> 0 and 0 -> 1 per
cell, task and row, and exact McNemar tests against the reference, Holm over the report).
These read the cells' per-item scores (harness.scores.final_items, item_flips) rather than
the score table of seed values the other sections use, so they live apart from
analysis.py, which imports `item_ci` from here.
"""

from __future__ import annotations

from harness import statistics as S
from harness.report.collect import ReportInputs, scenario_id, skip
from harness.scores import CORRECT, final_items, item_flips


def item_ci(inputs: ReportInputs, model: str, stream: str, method: str, seeds: list[int]):
    """acc's final-row difference with seeds and items as crossed random factors
    (S.seed_item_t), or None and why not: the cells must share tasks, task data and item
    counts with the reference's, and every seed the same items (with a data seed per seed
    the items are nested in seeds and the seed interval already carries item sampling)."""
    by_method = inputs.groups[(model, stream)]
    rows, first = [], None
    for s in seeds:
        ra, rb = by_method[method][s], by_method[inputs.reference][s]
        ha, hb = ra.data.get("task_hashes"), rb.data.get("task_hashes")
        if ra.tasks != rb.tasks or (ha and hb and ha != hb):
            return None, f"seed {s}: tasks or task data differ from the reference's"
        if first is None:
            first = ha
        elif ha != first:
            return None, ("the items differ between seeds (a data seed per seed): the seed "
                          "interval already includes item sampling")
        a, why = final_items(ra.data, ra.tasks)
        if a is None:
            return None, f"{method} seed {s}: {why}"
        b, why = final_items(rb.data, rb.tasks)
        if b is None:
            return None, f"{inputs.reference} seed {s}: {why}"
        if len(a) != len(b) or (rows and len(a) != len(rows[0])):
            return None, f"seed {s}: item counts differ ({len(a)} vs {len(b)} or other seeds)"
        rows.append([x - y for x, y in zip(a, b)])
    try:
        return S.seed_item_t(rows, inputs.confidence), None
    except ValueError as exc:
        return None, str(exc)


def item_forgetting(inputs: ReportInputs) -> tuple[dict, list[dict]]:
    """Item-level forgetting: per cell, task and row, the items that flipped 1 -> 0
    (forgotten) and 0 -> 1 (learned) since the row right after the task was trained; and
    per (model, stream, method, seed, task) an exact McNemar test of the final row's items
    against the reference's on the same items, Holm over every McNemar test of the report.
    """
    flips, tests, skipped = [], [], []
    ref = inputs.reference
    for (model, stream), methods in sorted(inputs.groups.items()):
        for method, by_seed in sorted(methods.items()):
            for seed, r in sorted(by_seed.items()):
                items = r.data.get("items") or {}
                f = item_flips(items, r.tasks)
                if f is None:
                    skipped.append(skip(f"item flips of {scenario_id(model, stream)} "
                                        f"{method} seed {seed}",
                                        "no per-item scores of T+1 equal rows (items)"))
                    continue
                flips.append({"model": model, "stream": stream, "method": method,
                              "seed": seed, "forgotten": f["forgotten"],
                              "learned": f["learned"],
                              "forgotten_items": f["forgotten_items"],
                              "learned_items": f["learned_items"]})
                other = methods.get(ref, {}).get(seed)
                if method == ref or other is None or other.tasks != r.tasks:
                    continue
                theirs = other.data.get("items") or {}
                hashes = (r.data.get("task_hashes"), other.data.get("task_hashes"))
                if all(hashes) and hashes[0] != hashes[1]:
                    continue
                for task in r.tasks:
                    a, b = items.get(task), theirs.get(task)
                    if not (a and b and len(a[-1]) == len(b[-1])):
                        continue
                    n01, n10, p = S.mcnemar_exact(a[-1], b[-1])
                    tests.append({"model": model, "stream": stream, "method": method,
                                  "reference": ref, "seed": seed, "task": task,
                                  "items": len(a[-1]), "only_reference": n01,
                                  "only_method": n10, "p": p})
    for row, adj in zip(tests, S.holm([t["p"] for t in tests]) if tests else []):
        row["p_adjusted"] = float(adj)
        row["significant"] = bool(adj < inputs.alpha)
    return {"correct": f"an item is correct when its score is >= {CORRECT}",
            "since": "the row right after the task was trained",
            "test": "exact McNemar (two-sided binomial on the discordant items, "
                    "scipy.stats.binomtest), per (model, stream, method, seed, task) on the "
                    "final row; Holm over all of them",
            "flips": flips, "mcnemar": tests}, skipped
