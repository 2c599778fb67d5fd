"""What the leaderboard says about a method beside its scores, read from its cells' result.json:
the share of generations that hit their token budget (`truncated_share`) and the cold-cache
cost (from harness.results.cold_cpu_s). The one reader of each; docs/leaderboard.md states the conventions.

Truncated share, the convention: a generating method records `truncated_share` (0 to 1: the
share of its generations that hit the token budget without finishing) in method_stats,
per task or under "cell", with `rollouts` (how many generations it is a share of) where it
knows it; its budget is the setting named in BUDGETS. Two older forms are read too: sdft-rewrite's per-task `rewrite_truncated`, and
sa-sft's filter counts (`self_candidates`, `dropped user ...`, `dropped answer unfinished`).
"""

from __future__ import annotations

from collections.abc import Mapping
from statistics import mean

from harness.results import cold_cpu_s, finite

FLAG_SHARE = 0.10  # a generating method above this share is flagged on the page
# the settings that are a generation's token budget (sa-sft has one per turn kind)
BUDGETS = ("max_new_tokens", "user_tokens", "answer_tokens")


def _groups(result: Mapping) -> list[Mapping]:
    stats = result.get("method_stats") or {}
    return [g for _, g in sorted(stats.items()) if isinstance(g, Mapping)]


def truncation(result: Mapping, params: Mapping | None = None) -> dict | None:
    """{"share", "generations" (None: not recorded), "budget"} of one cell, or None for a
    cell that recorded no generation (a method that does not generate). `params`: the
    method's settings in force (the bundle's, defaults included); the cell's own
    method_params (the settings as given) override them."""
    groups = _groups(result)
    params = {**(params or {}), **(result.get("method_params") or {})}
    shares = [(s, finite(g.get("rollouts"))) for g in groups
              if (s := finite(g.get("truncated_share", g.get("rewrite_truncated")))) is not None]
    if shares:
        n = [w for _, w in shares]
        if all(w for w in n):  # weighted by the generations each share is of
            share = sum(s * w for s, w in shares) / sum(n)
        else:
            share = mean(s for s, _ in shares)
        out = {"share": share, "generations": int(sum(n)) if all(n) else None}
    else:
        out = _sa_sft_counts(groups, params)
        if out is None:
            return None
    out["budget"] = ", ".join(f"{k} {params[k]}" for k in BUDGETS
                              if finite(params.get(k)) is not None) or None
    return out


def _sa_sft_counts(groups: list[Mapping], params: Mapping) -> dict | None:
    """sa-sft's filter counts: every candidate's user turn was sampled, and an answer to
    each user turn that passed; the unfinished ones of either hit the budget. Exact for
    one-turn dialogues only (the counts do not say how many later turns were sampled)."""
    found = [g for g in groups if finite(g.get("self_candidates")) is not None]
    if not found or params.get("turns", 1) != 1:
        return None
    candidates = sum(g["self_candidates"] for g in found)
    dropped_users = sum(v for g in found for k, v in g.items() if k.startswith("dropped user "))
    unfinished = sum(g.get("dropped user unfinished", 0) + g.get("dropped answer unfinished", 0)
                     for g in found)
    generations = 2 * candidates - dropped_users
    return {"share": unfinished / generations if generations else 0.0,
            "generations": int(generations)}


def method_truncation(results: list[Mapping], params: Mapping | None = None) -> dict | None:
    """A method's truncated share: the mean over its cells (as the scores are), the highest
    cell's, the budget, and whether it is flagged (mean above FLAG_SHARE)."""
    found = [t for r in results if (t := truncation(r, params)) is not None]
    if not found:
        return None
    share = mean(t["share"] for t in found)
    budgets = sorted({t["budget"] for t in found if t["budget"]})
    return {"share": share, "max": max(t["share"] for t in found), "cells": len(found),
            "budget": "; ".join(budgets) or None, "flagged": share > FLAG_SHARE}


def method_cost(results: list[Mapping], device_hours: float | None) -> dict:
    """A method's cost over its cells: CPU-hours from cold_cpu_s when every cell has one
    (`lower_bound` where a cell lacks cache_cpu_s), else the bundle's device-hours (wall
    clock of the cells on the device they ran on)."""
    found = [cold_cpu_s(r) for r in results]
    if found and all(s is not None for s, _ in found):
        return {"basis": "cpu_hours", "hours": sum(s for s, _ in found) / 3600,
                "lower_bound": not all(c for _, c in found)}
    return {"basis": "device_hours", "hours": device_hours, "lower_bound": False}
