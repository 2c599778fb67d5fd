"""report.md from a summary (the content of summary.json), one function per section.

Every section reads only the summary, so report.md can be re-rendered from summary.json
and says nothing summary.json does not hold.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable


def num(x, signed: bool = False) -> str:
    if x is None:
        return "-"
    if x != 0 and abs(x) < 1e-3:
        return f"{x:+.2e}" if signed else f"{x:.2e}"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def pval(p) -> str:
    if p is None:
        return "-"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def avg_ranks(ranks: dict[str, float]) -> str:
    """`method rank, ...`, best (lowest) first."""
    return ", ".join(f"{m} {r:.2f}" for m, r in sorted(ranks.items(), key=lambda kv: kv[1]))


def _md(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _seed_text(seeds: list[int]) -> str:
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def _bullets(title: str, items: list, fmt: Callable, limit: int | None = None) -> list[str]:
    """A titled bullet list with a blank line after, or nothing when there are no items;
    past `limit` items one bullet says how many more summary.json holds."""
    if not items:
        return []
    shown = items if limit is None else items[:limit]
    lines = [title, "", *(f"- {fmt(x)}" for x in shown)]
    if len(items) > len(shown):
        lines.append(f"- ... and {len(items) - len(shown)} more (summary.json lists all)")
    return lines + [""]


def render_markdown(s: dict) -> str:
    """report.md from a summary (the content of summary.json)."""
    lines = [f"# Report: {s['out']}", "",
             f"Generated {s['generated_at']} by harness {s['harness_version']}. "
             "The numbers are in `summary.json` (schema: docs/report.md).", ""]
    for section in (_cells, _seeds, _method, _per_scenario, _across_scenarios, _wins,
                    _friedman, _iqm, _items):
        lines += section(s)
    lines += _bullets("## Plots", s["plots"], lambda p: f"`{p['file']}`: {p['what']}")
    what_why = lambda x: f"{_md(x['what'])}: {_md(x['why'])}"  # noqa: E731
    lines += _bullets("## Skipped", s["skipped"], what_why)
    lines += _bullets("## Notes", s["notes"], what_why)
    return "\n".join(lines)


def _cells(s: dict) -> list[str]:
    cells = s["cells"]
    rows_done = lambda f: "?" if f["rows_done"] is None else f["rows_done"]  # noqa: E731
    return [
        "## Cells", "",
        f"{cells['folders']} cell folder(s): {cells['complete']} complete, "
        f"{len(cells['failed'])} failed, {len(cells['incomplete'])} incomplete, "
        f"{len(cells['corrupt'])} corrupt, {len(cells['empty'])} empty; "
        f"{len(cells['duplicates'])} duplicate(s); {len(cells['missing'])} expected "
        "cell(s) without a folder.", "",
        *_bullets("**Failed** (failure.json; not in any statistic):", cells["failed"],
                  lambda f: f"`{f['path']}`: {_md(f['error'])}"),
        *_bullets("**Incomplete** (progress.json, or running: a live claim.json; no result.json; "
                  "not in any statistic):",
                  cells["incomplete"],
                  lambda f: f"`{f['path']}`: rows done {rows_done(f)} ({_md(f['note'])})"),
        *_bullets("**Corrupt** (result.json unusable; not in any statistic):",
                  cells["corrupt"], lambda f: f"`{f['path']}`: {_md(f['reason'])}"),
        *_bullets("**Empty** (no result.json, failure.json or progress.json):",
                  cells["empty"], lambda f: f"`{f['path']}`"),
        *_bullets("**Duplicates** (ignored):", cells["duplicates"],
                  lambda d: f"`{d['path']}` repeats `{d['duplicate_of']}`"),
        *_bullets("**Missing** (expected from the grid of models x streams x methods x seeds "
                  "seen, but no folder):", cells["missing"],
                  lambda m: f"{m['model']} / {m['stream']} / {m['method']} / seed {m['seed']}",
                  limit=50),
    ]


def _seeds(s: dict) -> list[str]:
    seeds = s["seeds"]
    sets = {tuple(g["seeds"]) for g in seeds}
    if len(sets) == 1 and seeds:
        only = list(next(iter(sets)))
        body = [f"Every (model, stream, method) has {len(only)} complete seed(s): "
                f"{_seed_text(only)}."]
    elif seeds:
        body = _table(["model", "stream", "method", "n", "seeds"],
                      [[g["model"], g["stream"], g["method"], g["n"], _seed_text(g["seeds"])]
                       for g in seeds])
    else:
        body = ["No complete cells."]
    return ["## Seeds", "", *body, ""]


def _method(s: dict) -> list[str]:
    ref, alpha, st = s["reference"], s["alpha"], s["settings"]
    conf = int(round(st["confidence"] * 100))
    return [
        "## How these numbers were computed", "",
        f"- **Reference**: `{ref}`. Every other method is compared with it in each "
        "scenario = (model, stream, metric).",
        "- **Pairing**: by seed (seeds fix data order and sampling). A comparison uses only "
        "the seeds with a value for both methods; `n` in every row is that number.",
        f"- **Effect size**: diff = mean over the n paired seeds of (method - {ref}), with a "
        f"{conf}% t interval over the paired differences (df = n - 1; by simulation it "
        "covers 95% at 2-10 seeds, where a bootstrap over 3 seeds covered about 80%: "
        "`harness stats-check`). Fewer than 2 paired seeds: no interval, no test, no win.",
        "- **Test**: two-sided paired t-test (the interval's); where every difference is the "
        "same, the exact sign-flip p 2/2^n. A comparison marked `unreachable` could not "
        "reach p < alpha at its n whatever the data.",
        f"- **Correction**: Holm within each metric over every scenario's comparisons with "
        f"`{ref}` (one family per metric, p_adj); Benjamini-Hochberg across all "
        f"{len(s['comparisons'])} comparisons of the grid (p_bh, reported only). Across "
        "scenarios: the leaderboard's test, Holm over all pairs of the metric's methods.",
        f"- **Significance**: `sig` = p_adj < alpha = {alpha}. Directions: ↑ higher is "
        "better, ↓ lower is better; `better`/`worse` is the direction of diff.",
        f"- **Wins**: {st['tie_rule']}.",
        "- **IQM**: 25% trimmed mean of normalised scores with a stratified bootstrap CI "
        f"(seeds resampled within each scenario). Normalisation: {s['iqm']['normalisation']}.",
        "- **Friedman / Nemenyi**: per metric over (model, stream) scenarios, on seed means; "
        "average rank 1 = best; two methods differ when their average ranks differ by more "
        f"than the critical difference CD (alpha = {alpha}).",
        ""]


def _per_scenario(s: dict) -> list[str]:
    """One table per (model, stream) and metric: each method's mean and its comparison."""
    comps = defaultdict(dict)
    for c in s["comparisons"]:
        comps[c["scenario"]][c["method"]] = c
    per = defaultdict(list)
    for r in s["per_method"]:
        per[(r["model"], r["stream"])].append(r)
    lines = ["## Results per scenario", ""] if per else []
    for (model, stream), rows in per.items():
        lines += [f"### {model} / {stream}", ""]
        by_metric = defaultdict(list)
        for r in rows:
            by_metric[r["metric"]].append(r)
        for metric, mrows in by_metric.items():
            if any(r["n"] for r in mrows):
                lines += _metric_table(s, metric, mrows, comps.get(mrows[0]["scenario"], {}))
    return lines


def _metric_table(s: dict, metric: str, rows: list[dict], comps: dict) -> list[str]:
    ref, conf = s["reference"], int(round(s["settings"]["confidence"] * 100))
    table = []
    for r in sorted(rows, key=lambda r: (r["method"] != ref, r["method"])):
        ms = f"{num(r['mean'])} ± {num(r['sd'])}" if r["sd"] is not None else num(r["mean"])
        c = comps.get(r["method"])
        if r["method"] == ref:
            table.append([r["method"] + " (ref)", r["n"], ms, "-", "-", "-", "-", "-"])
        elif c is None:
            table.append([r["method"], r["n"], ms, "not compared (see Skipped)",
                          "-", "-", "-", "-"])
        else:
            table.append([r["method"], c["n"], ms,
                          f"{num(c['diff'], True)} [{num(c['ci_low'], True)}, "
                          f"{num(c['ci_high'], True)}] {c['direction']}",
                          pval(c["p"]), pval(c["p_adjusted"]), pval(c["p_bh"]),
                          "**yes**" if c["significant"] else
                          "no" if c.get("reachable", True) else "no (unreachable)"])
    lines = [f"**{metric}** ({'↑' if rows[0]['higher_is_better'] else '↓'})", "",
             *_table(["method", "n", "mean ± sd", f"diff vs {ref} [{conf}% CI]", "p",
                      "p_adj (Holm)", "p_bh", "sig"], table), ""]
    items = [comps[m] for m in sorted(comps) if comps[m].get("item_n")]
    if items:
        lines += ["Seeds and items as crossed random factors (final row; the difference "
                  "for new seeds and new items): " +
                  "; ".join(f"{c['method']} {num(c['item_diff'], True)} "
                            f"[{num(c['item_ci_low'], True)}, "
                            f"{num(c['item_ci_high'], True)}] over {c['item_n']} (seed, item) scores"
                            for c in items) + ".", ""]
    return lines


def _unreachable(row: dict, key: str) -> str:
    return "" if row.get(key, True) else " (unreachable)"


def _across_scenarios(s: dict) -> list[str]:
    if not s["across_scenarios"]:
        return []
    return ["## Across scenarios", "",
            f"Per metric, each method against `{s['reference']}` over the (model, stream) "
            "scenarios, two ways. **Wilcoxon**: a two-sided signed-rank test of the "
            "per-scenario mean differences (uncorrected; with k scenarios its smallest p is "
            "2/2^k). **Pooled**: the leaderboard's test, a two-sided paired t-test over every "
            "(scenario, seed) pair with residuals centred within each scenario, Holm over "
            "all pairs of the metric's methods (equal differences on every pair get the "
            "sign-flip p 2/2^n); `*` = significant; `(unreachable)`: that test could not "
            "reach p < alpha at its n whatever the data.", "",
            *_table(["metric", "method", "scenarios", "mean diff", "better / worse",
                     "significant (Holm)", "p (Wilcoxon)", "pairs", "pooled diff",
                     "p (pooled, Holm)"],
                    [[r["metric"], r["method"], r["n_scenarios"], num(r["mean_diff"], True),
                      f"{r['n_better']} / {r['n_worse']}", r["n_significant"],
                      pval(r["p_wilcoxon"]) + _unreachable(r, "reachable_wilcoxon"),
                      r["n_pairs"], num(r["pooled_diff"], True),
                      pval(r["p_pooled_adjusted"]) + (" *" if r["significant_pooled"] else "")
                      + _unreachable(r, "reachable_pooled")]
                     for r in s["across_scenarios"]]),
            ""]


def _wins(s: dict) -> list[str]:
    if not s["wins"]:
        return []
    metrics = list(dict.fromkeys(w["metric"] for w in s["wins"]))
    lookup = {(w["metric"], w["method"]): w for w in s["wins"]}
    cell = lambda w: f"{w['outright']} (+{w['shared']}) / {w['n']}" if w else "-"  # noqa: E731
    rows = [[m, *(cell(lookup.get((k, m))) for k in metrics)]
            for m in sorted({w["method"] for w in s["wins"]})]
    return ["## Wins", "", f"Tie rule: {s['settings']['tie_rule']}. `all` counts every "
            "(model, stream, metric) scenario.", "",
            "Cells read: outright wins (+ shared wins) / scenarios run.", "",
            *_table(["method", *metrics], rows), "",
            *(f"- {w['method']}: {w['text']}" for w in s["wins"] if w["metric"] == "all"),
            ""]


def _friedman(s: dict) -> list[str]:
    if not s["friedman"]:
        return []
    lines = ["## Friedman test and Nemenyi critical difference", ""]
    for f in s["friedman"]:
        groups = "; ".join("{" + ", ".join(g) + "}" for g in f["groups"]) or "none"
        lines.append(f"- **{f['metric']}**: {f['n_methods']} methods over {f['n_scenarios']} "
                     f"scenarios, chi2 = {f['statistic']:.2f}, p = {pval(f['p'])}; CD = "
                     f"{f['cd']:.2f}; average ranks: {avg_ranks(f['avg_ranks'])}; not "
                     f"significantly different: {groups}"
                     + (f"; left out: methods {', '.join(f['excluded_methods'])}"
                        if f["excluded_methods"] else "")
                     + (f"; left out: {len(f['excluded_scenarios'])} scenario(s) missing a "
                        "method" if f["excluded_scenarios"] else "")
                     + (f". {f['note']}" if f.get("note") else ""))
    return lines + [""]


def _iqm(s: dict) -> list[str]:
    iqm, ref = s["iqm"], s["reference"]
    if not iqm.get("rows"):
        return []
    conf = int(round(s["settings"]["confidence"] * 100))
    return ["## IQM and probability of improvement", "",
            f"Normalisation: {iqm['normalisation']}. P(> {ref}): {iqm['prob_improvement']}.",
            "",
            *_table(["metric", "method", f"IQM [{conf}% CI]", "scenarios", f"P(> {ref})"],
                    [[r["metric"], r["method"],
                      f"{num(r['iqm'])} [{num(r['ci_low'])}, {num(r['ci_high'])}]",
                      r["n_scenarios"], num(r["prob_improvement"])] for r in iqm["rows"]]),
            ""]


def _items(s: dict) -> list[str]:
    """Item-level forgetting: mean forgotten / learned items per method and scenario (final
    row, summed over tasks), and the McNemar tests that are significant."""
    items = s.get("item_forgetting") or {}
    if not items.get("flips"):
        return []
    by = defaultdict(list)
    for f in items["flips"]:
        by[(f["model"], f["stream"], f["method"])].append(f)
    rows = [[model, stream, method, len(fs),
             num(sum(f["forgotten_items"] for f in fs) / len(fs)),
             num(sum(f["learned_items"] for f in fs) / len(fs))]
            for (model, stream, method), fs in sorted(by.items())]
    tests = items.get("mcnemar") or []
    sig = [t for t in tests if t["significant"]]
    lines = ["## Item-level forgetting", "",
             f"Items right after their task was trained and wrong after the last task "
             f"(forgotten), and the reverse (learned), summed over tasks, mean over seeds "
             f"({items['correct']}). The per-task, per-row counts are in summary.json; "
             "`forgotten_items` is compared with the reference above like any metric.", "",
             *_table(["model", "stream", "method", "seeds", "forgotten", "learned"], rows), "",
             f"Exact McNemar tests of the final row's items against `{s['reference']}` "
             f"(same task, same seed): {len(tests)} tests, {len(sig)} significant after Holm "
             "over all of them.", ""]
    lines += [f"- {t['model']}/{t['stream']} {t['method']} seed {t['seed']} {t['task']}: "
              f"{t['only_method']} items only it gets right, {t['only_reference']} only "
              f"the reference; p_adj {pval(t['p_adjusted'])}" for t in sig[:50]]
    return lines + ([""] if sig else [])
