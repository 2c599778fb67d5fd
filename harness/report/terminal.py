"""The rich tables `harness report` prints, from a summary (the content of summary.json):
the cells left out, one table per (model, stream), the pooled test over all scenarios, the
wins and the Friedman test.
report.md holds the full detail; these are the overview."""

from __future__ import annotations

from collections import defaultdict

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from harness.metrics import label, legend
from harness.report.markdown import avg_ranks, num, pval


def terminal_tables(s: dict) -> list:
    """Rich renderables for the terminal: cells, per-(model, stream) results, wins."""
    cells = s["cells"]
    out = [Text(f"{cells['complete']} complete cell(s) of {cells['folders']}; "
                f"reference {s['reference']}, alpha {s['alpha']}, "
                "t intervals; Holm per metric over the grid, BH across the grid")]
    broken = _broken_cells(cells)
    if broken.row_count:
        out.append(broken)
    if cells["missing"]:
        out.append(Text(f"{len(cells['missing'])} expected cell(s) have no folder "
                        "(listed in report.md)"))
    comps = {(c["scenario"], c["method"]): c for c in s["comparisons"]}
    per = defaultdict(list)
    for r in s["per_method"]:
        per[(r["model"], r["stream"])].append(r)
    out += [_scenario_table(model, stream, rows, comps, s["reference"])
            for (model, stream), rows in per.items()]
    if s["across_scenarios"]:
        out.append(_pooled_table(s))
    out.append(Text("legend: " + legend([m["name"] for m in s["metrics"]])))
    wins = [w for w in s["wins"] if w["metric"] == "all"]
    if wins:
        out.append(_wins_table(wins))
    out += [Text(f"Friedman (all scenarios): p = {pval(f['p'])}, CD = {f['cd']:.2f}; "
                 "average ranks " + avg_ranks(f["avg_ranks"]))
            for f in s["friedman"] if f["metric"] == "all"]
    few = sum("paired seed(s); need at least 2" in x["why"] for x in s["skipped"])
    if few:
        out.append(Text(f"{few} comparison(s) refused: fewer than 2 paired seeds, so no "
                        "interval, no test and no win (report.md, section Skipped)"))
    unreachable = [c for c in s["comparisons"] if not c.get("reachable", True)]
    if unreachable:
        out.append(Text(f"{len(unreachable)} comparison(s) could not reach p < {s['alpha']} "
                        "at their n (every paired difference equal: the smallest p is 2/2^n)"))
    pooled = [r for r in s["across_scenarios"] if not r.get("reachable_pooled", True)]
    wilcoxon = [r for r in s["across_scenarios"] if not r.get("reachable_wilcoxon", True)]
    if pooled or wilcoxon:
        out.append(Text(f"across scenarios, {len(pooled)} pooled test(s) and {len(wilcoxon)} "
                        f"Wilcoxon test(s) could not reach p < {s['alpha']} at their n "
                        "(report.md marks them unreachable)"))
    if s["skipped"]:
        out.append(Text(f"{len(s['skipped'])} item(s) skipped with a reason (report.md, "
                        "section Skipped)"))
    return out


def _broken_cells(cells: dict) -> Table:
    broken = Table(title="Cells not in the statistics", title_justify="left")
    for col in ("cell", "state", "why"):
        broken.add_column(col)
    for f in cells["failed"]:
        broken.add_row(escape(f["path"]), "failed", escape(str(f["error"])))
    for f in cells["incomplete"]:
        why = f"rows done {f['rows_done']}"
        if f.get("running"):  # a live claim: who runs it
            why = escape(f["note"]) + (f"; {why}" if f["rows_done"] is not None else "")
        broken.add_row(escape(f["path"]), f.get("state", "incomplete"), why)
    for f in cells["corrupt"]:
        broken.add_row(escape(f["path"]), "[red]corrupt[/red]", escape(f["reason"]))
    for f in cells["empty"]:
        broken.add_row(escape(f["path"]), "empty", "no result/failure/progress file")
    for d in cells["duplicates"]:
        broken.add_row(escape(d["path"]), "duplicate", f"repeats {escape(d['duplicate_of'])}")
    return broken


def _scenario_table(model: str, stream: str, rows: list[dict], comps: dict,
                    ref: str) -> Table:
    """Methods x metrics of one (model, stream): the seed mean and, below it, the diff vs
    the reference (green/red when significant, dim otherwise)."""
    metrics = [m for m in dict.fromkeys(r["metric"] for r in rows)
               if any(r["n"] for r in rows if r["metric"] == m)]
    t = Table(title=escape(f"{model} / {stream}: mean over seeds; diff vs {ref} "
                           "(* = significant after Holm over the metric's grid)"), title_justify="left")
    t.add_column("method")
    t.add_column("n")
    for m in metrics:
        hib = next(r["higher_is_better"] for r in rows if r["metric"] == m)
        t.add_column(escape(f"{label(m)} {'↑' if hib else '↓'}"), justify="right",
                     overflow="fold")  # a narrow terminal wraps a number, never cuts it
    look = {(r["method"], r["metric"]): r for r in rows}
    for method in sorted({r["method"] for r in rows}, key=lambda m: (m != ref, m)):
        cols = []
        for m in metrics:
            r = look[(method, m)]
            text = num(r["mean"])
            c = comps.get((r["scenario"], method))
            if c is not None:
                mark = "*" if c["significant"] else ""
                color = ("green" if c["direction"] == "better" else "red") \
                    if c["significant"] else "dim"
                text += f"\n[{color}]{num(c['diff'], True)}{mark}[/{color}]"
            cols.append(text)
        n = max((look[(method, m)]["n"] for m in metrics), default=0)
        t.add_row(escape(method) + (" (ref)" if method == ref else ""), str(n), *cols)
    return t


def _pooled_table(s: dict) -> Table:
    """Methods x metrics over every (scenario, seed) pair: the mean difference vs the
    reference, * where the pooled t-test is significant after Holm (report.md: Across
    scenarios)."""
    rows = s["across_scenarios"]
    hib = {m["name"]: m["higher_is_better"] for m in s["metrics"]}
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    look = {(r["method"], r["metric"]): r for r in rows}
    t = Table(title=escape(f"All scenarios pooled: diff vs {s['reference']} over the "
                           "(scenario, seed) pairs (* = paired t-test significant after "
                           "Holm over all pairs of methods)"), title_justify="left")
    t.add_column("method")
    t.add_column("pairs")
    for m in metrics:
        t.add_column(escape(f"{label(m)} {'↑' if hib[m] else '↓'}"), justify="right", overflow="fold")
    for method in sorted({r["method"] for r in rows}):
        cols = []
        for m in metrics:
            r = look.get((method, m))
            if r is None:
                cols.append("-")
                continue
            better = (r["pooled_diff"] > 0) == hib[m]
            color = ("green" if better else "red") if r["significant_pooled"] else "dim"
            mark = "*" if r["significant_pooled"] else ""
            cols.append(f"[{color}]{num(r['pooled_diff'], True)}{mark}[/{color}]")
        n = max(r["n_pairs"] for r in rows if r["method"] == method)
        t.add_row(escape(method), str(n), *cols)
    return t


def _wins_table(wins: list[dict]) -> Table:
    t = Table(title="Wins over all scenarios (outright; shared = within the best's CI)",
              title_justify="left")
    for col in ("method", "outright", "shared", "scenarios"):
        t.add_column(col)
    for w in sorted(wins, key=lambda w: (-w["outright"], -w["shared"], w["method"])):
        t.add_row(escape(w["method"]), str(w["outright"]), str(w["shared"]), str(w["n"]))
    return t
