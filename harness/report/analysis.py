"""The statistics of a report, one function per summary.json section, each reading the
score table (`ReportInputs`) and returning its rows plus the items it skipped, with why.

The maths is in harness/statistics.py and harness/aggregates.py; this module only chooses
the inputs (pairing by seed, orientation, families) and names what it could not compute. The
statistics on per-item scores (acc's seed x item interval, item-level forgetting and
McNemar) are in harness/report/items.py.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import mean

from harness import aggregates as A
from harness import statistics as S
from harness.metrics import METRICS
from harness.report.collect import ReportInputs, mean_sd, scenario_id, scenario_means, skip
from harness.report.items import item_ci

NORMALISATION = ("per scenario (model, stream, metric): min-max over the methods' seed "
                 "means, oriented so that higher is better; norm(x) = (x - worst) / "
                 "(best - worst), applied to every seed's value (so single seeds may fall "
                 "outside [0, 1]); scenarios where all method means are equal are left out")
TIE_RULE = ("a method wins a scenario when its seed mean is the best; methods whose mean "
            "equals the best or lies inside (inclusive) the 95% t interval of the best "
            "method's mean (over seeds) are tied with it: every tied method gets a shared "
            "win, counted separately from outright wins; scenarios with fewer than two "
            "methods, or a method with fewer than 2 seeds, are not counted")


# --------------------------------------------------------------------------- per method

def seed_summary(inputs: ReportInputs) -> list[dict]:
    return [{"model": model, "stream": stream, "method": method, "n": len(by_seed),
             "seeds": sorted(by_seed)}
            for (model, stream), methods in sorted(inputs.groups.items())
            for method, by_seed in sorted(methods.items())]


def per_method(inputs: ReportInputs) -> list[dict]:
    """Mean and sd over seeds of every method in every scenario, with the null seeds."""
    rows = []
    for (model, stream), methods in sorted(inputs.groups.items()):
        for metric, hib in inputs.metrics.items():
            key = (model, stream, metric)
            for method in sorted(methods):
                vals = inputs.values.get(key, {}).get(method, {})
                nulls = inputs.nulls.get(key, {}).get(method, [])
                m, sd = mean_sd(list(vals.values()))
                rows.append({"scenario": scenario_id(model, stream, metric), "model": model,
                             "stream": stream, "metric": metric, "higher_is_better": hib,
                             "method": method, "n": len(vals), "seeds": sorted(vals),
                             "values": [vals[s] for s in sorted(vals)], "mean": m, "sd": sd,
                             "null_seeds": sorted(nulls)})
    return rows


# --------------------------------------------------------------------------- comparisons

def comparisons(inputs: ReportInputs) -> tuple[list[dict], list[dict]]:
    """Every method vs the reference in every scenario, paired by seed; Holm within a
    scenario, Benjamini-Hochberg across the grid."""
    ref, rows, skipped = inputs.reference, [], []
    undefined = "/".join(n for n, m in METRICS.items() if m.min_tasks > 1)
    for (model, stream), methods in sorted(inputs.groups.items()):
        group = scenario_id(model, stream)
        if ref not in methods:
            skipped.append(skip(f"comparisons in {group}",
                                f"reference {ref!r} has no complete cell there "
                                f"(methods: {', '.join(sorted(methods))})"))
            continue
        others = sorted(m for m in methods if m != ref)
        if not others:
            skipped.append(skip(f"comparisons in {group}",
                                f"only the reference {ref!r} has complete cells there"))
            continue
        for metric, hib in inputs.metrics.items():
            vals = inputs.values.get((model, stream, metric), {})
            if not vals:
                skipped.append(skip(f"comparisons in {scenario_id(model, stream, metric)}",
                                    "the metric is null in every cell (undefined, e.g. "
                                    f"{undefined} on a one-task stream, or a probe these "
                                    "cells did not run)"))
                continue
            for method in others:
                row, why = _compare(inputs, model, stream, metric, method, vals)
                if row is None:
                    skipped.append(skip(f"{method} vs {ref} on "
                                        f"{scenario_id(model, stream, metric)}", why))
                else:
                    rows.append(row)
    _adjust(rows, inputs.alpha)
    return rows, skipped


def _compare(inputs: ReportInputs, model: str, stream: str, metric: str, method: str,
             vals: dict[str, dict[int, float]]) -> tuple[dict | None, str | None]:
    """One comparison row (p values not yet adjusted), or None and why not."""
    ref, hib = inputs.reference, inputs.metrics[metric]
    mv, ref_vals = vals.get(method, {}), vals.get(ref, {})
    seeds = sorted(set(mv) & set(ref_vals))
    if len(seeds) < 2:
        return None, (f"{len(seeds)} paired seed(s); need at least 2 (seeds with a value: "
                      f"{method} {sorted(mv) or 'none'}, {ref} {sorted(ref_vals) or 'none'})")
    a, b = [mv[s] for s in seeds], [ref_vals[s] for s in seeds]
    try:
        t = S.stratified_t([x - y for x, y in zip(a, b)], None, inputs.confidence)
    except ValueError as exc:
        return None, f"statistics failed: {exc}"
    p = t.p
    diff = float(mean(x - y for x, y in zip(a, b)))
    (ma, sa), (mb, sb) = mean_sd(a), mean_sd(b)
    row = {"scenario": scenario_id(model, stream, metric), "model": model, "stream": stream,
           "metric": metric, "higher_is_better": hib, "method": method, "reference": ref,
           "n": len(seeds), "seeds": seeds, "mean": ma, "sd": sa, "ref_mean": mb,
           "ref_sd": sb, "diff": diff, "ci_low": t.ci_low, "ci_high": t.ci_high,
           "ci_method": t.method, "df": t.df, "confidence": inputs.confidence,
           "p": p, "p_adjusted": None, "p_bh": None, "significant": False,
           "min_p": min_p(t),
           "direction": "equal" if diff == 0 else "better" if (diff > 0) == hib else "worse",
           "item_diff": None, "item_ci_low": None, "item_ci_high": None,
           "item_n": None, "item_note": None}
    if metric == "acc":
        ici, why = item_ci(inputs, model, stream, method, seeds)
        if ici is not None:
            row.update(item_diff=ici.estimate, item_ci_low=ici.ci_low,
                       item_ci_high=ici.ci_high, item_n=ici.n)
        else:
            row["item_note"] = why
    return row, None


def min_p(t: S.TInterval) -> float:
    """The smallest p this comparison's test can give at its n: 0 for a t-test with
    spread (any p is reachable), the sign-flip floor 2 / 2^n where every difference is the
    same, 1 without a test (n < 2)."""
    if t.method == "none":
        return 1.0
    return min(1.0, 2.0 / 2 ** t.n) if t.method == "degenerate" else 0.0


def _adjust(rows: list[dict], alpha: float) -> None:
    """Holm within each metric over every scenario's comparisons with the reference (one
    family per metric, as a ranking is one family: -> p_adjusted, significant); BH over
    all rows (-> p_bh); `reachable`: False where a non-zero difference could not be
    called significant at this n whatever its size (every paired difference equal, so
    the exact sign-flip p 2 / 2^n, and that is >= alpha)."""
    families: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        families[row["metric"]].append(row)
    for family in families.values():
        for row, adj in zip(family, S.holm([r["p"] for r in family])):
            row["p_adjusted"] = float(adj)
            row["significant"] = bool(adj < alpha)
            row["reachable"] = bool(row["min_p"] < alpha or row["diff"] == 0)
    if rows:
        for row, adj in zip(rows, S.benjamini_hochberg([r["p"] for r in rows])):
            row["p_bh"] = float(adj)


def across_scenarios(inputs: ReportInputs, comps: list[dict]) -> tuple[list[dict], list[dict]]:
    """Per metric and method vs the reference, over the (model, stream) scenarios: a
    Wilcoxon signed-rank test of the per-scenario mean differences, and the leaderboard's
    test: the stream-centred paired t over every (scenario, seed) pair, Holm over all pairs
    of the metric's methods (harness.statistics.board: one family per ranking). A small grid
    needs the pooled one: with 2 scenarios the Wilcoxon p is never below 0.5.
    `reachable_wilcoxon` / `reachable_pooled`: False where that test could not give
    p < alpha at its n whatever the data (2 / 2^k >= alpha; no spread over the pairs and
    2 / 2^n >= alpha), as `reachable` says for a scenario's comparison."""
    by: dict[tuple, list[dict]] = defaultdict(list)
    for c in comps:
        by[(c["metric"], c["method"])].append(c)
    order = list(inputs.metrics)
    boards = {}
    for metric in order:
        table = inputs.table.by_pair(metric)
        if inputs.reference in table and len(table) >= 2:
            boards[metric] = S.board(table, inputs.metrics[metric], inputs.alpha,
                                     inputs.confidence)
    rows = []
    for (metric, method), cs in sorted(by.items(),
                                       key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        if len(cs) < 2 or metric not in boards:
            continue
        d = [c["diff"] for c in cs]
        t, q = S.pair_of(boards[metric], method, inputs.reference)
        rows.append({"metric": metric, "method": method, "reference": inputs.reference,
                     "n_scenarios": len(cs), "mean_diff": float(mean(d)),
                     "n_better": sum(c["direction"] == "better" for c in cs),
                     "n_worse": sum(c["direction"] == "worse" for c in cs),
                     "n_significant": sum(c["significant"] for c in cs),
                     "p_wilcoxon": S.wilcoxon_test(d, [0.0] * len(d)),
                     "wilcoxon_min_p": 2.0 / 2 ** len(d),
                     "reachable_wilcoxon": bool(2.0 / 2 ** len(d) < inputs.alpha),
                     "n_pairs": t.n, "pooled_diff": t.estimate,
                     "pooled_ci": [t.ci_low, t.ci_high], "pooled_df": t.df,
                     "p_pooled": t.p, "p_pooled_adjusted": q,
                     "significant_pooled": bool(q < inputs.alpha),
                     "reachable_pooled": bool(min_p(t) < inputs.alpha or t.estimate == 0),
                     "family_pairs": len(boards[metric].pairs)})
    if comps and not rows:
        return rows, [skip("tests across scenarios", "every method meets the reference "
                           "in only one (model, stream) scenario")]
    return rows, []


# --------------------------------------------------------------------------- wins

def _mean_ci(inputs: ReportInputs, values: dict[int, float]) -> tuple[float, float]:
    """t interval of one method's mean over seeds (callers ensure >= 2 seeds)."""
    t = S.stratified_t([values[s] for s in sorted(values)], None, inputs.confidence)
    return t.ci_low, t.ci_high


def _win_rows(metric: str, means: dict, cis: dict, higher_is_better: bool) -> list[dict]:
    return [{"metric": metric, "method": method, "outright": wc.outright,
             "shared": wc.shared, "n": wc.n, "text": wc.describe()}
            for method, wc in sorted(A.win_counts(means, cis, higher_is_better).items())]


def wins(inputs: ReportInputs) -> tuple[list[dict], list[dict]]:
    """Win counts per metric over (model, stream) scenarios, then over every scenario
    (`all`, each metric oriented so higher is better); ties by TIE_RULE."""
    rows, all_means, all_cis, skipped = [], {}, {}, []
    for metric, hib in inputs.metrics.items():
        means, cis = {}, {}
        for (model, stream), by_method in scenario_means(inputs, metric).items():
            if len(by_method) < 2:
                continue
            sid = scenario_id(model, stream)
            vals = inputs.values[(model, stream, metric)]
            few = sorted(m for m in by_method if len(vals[m]) < 2)
            if few:
                skipped.append(skip(f"wins in {scenario_id(model, stream, metric)}",
                                    f"{', '.join(few)} with fewer than 2 seeds: no interval, "
                                    "so no tie rule; run 2 or more seeds"))
                continue
            means[sid] = by_method
            cis[sid] = {m: _mean_ci(inputs, vals[m]) for m in by_method}
            sign = 1.0 if hib else -1.0
            full = scenario_id(model, stream, metric)
            all_means[full] = {m: sign * v for m, v in by_method.items()}
            all_cis[full] = {m: tuple(sorted((sign * lo, sign * hi)))
                             for m, (lo, hi) in cis[sid].items()}
        if means:
            rows += _win_rows(metric, means, cis, hib)
    if all_means:
        rows += _win_rows("all", all_means, all_cis, True)
    if not rows:
        return rows, skipped or [skip("win counts", "no scenario has two or more methods")]
    return rows, skipped


# --------------------------------------------------------------------------- Friedman

def cliques(ranks: dict[str, float], cd: float) -> list[list[str]]:
    """Maximal runs of methods (sorted by average rank) whose ranks differ by at most CD:
    the groups a CD diagram joins with a bar (no significant difference inside a group)."""
    order = sorted(ranks, key=lambda m: (ranks[m], m))
    groups: list[tuple[int, int]] = []
    for i in range(len(order)):
        j = i
        while j + 1 < len(order) and ranks[order[j + 1]] - ranks[order[i]] <= cd:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in groups):
            groups.append((i, j))
    return [order[a:b + 1] for a, b in groups]


def _complete_blocks(table: dict[str, dict[str, float]]) -> tuple[list, list, list, list]:
    """(methods, scenarios, methods used, scenarios used): keep every method and drop the
    scenarios missing one if that leaves >= 2 scenarios; otherwise keep the scenarios and
    drop the methods missing from any."""
    methods = sorted({m for v in table.values() for m in v})
    scenarios = sorted(table)
    full = [s for s in scenarios if all(m in table[s] for m in methods)]
    if len(full) >= 2:
        return methods, scenarios, methods, full
    return methods, scenarios, [m for m in methods if all(m in table[s] for s in scenarios)], \
        scenarios


def friedman_one(inputs: ReportInputs, label: str, table: dict[str, dict[str, float]]
                 ) -> tuple[dict | None, str | None]:
    """Friedman + Nemenyi on {scenario: {method: oriented mean}} (higher is better)."""
    methods, scenarios, use_methods, use_scen = _complete_blocks(table)
    if len(use_methods) < 3 or len(use_scen) < 2:
        return None, (f"needs >= 3 methods in >= 2 common scenarios; have {len(methods)} "
                      f"method(s) over {len(scenarios)} scenario(s)"
                      + ("" if len(methods) < 3 or len(scenarios) < 2 else
                         ", but not enough of them together"))
    scores = [[table[s][m] for m in use_methods] for s in use_scen]
    res = A.friedman(scores, higher_is_better=True)
    cd = A.nemenyi_cd(len(use_methods), len(use_scen), inputs.alpha)
    ranks = {m: float(r) for m, r in zip(use_methods, res.avg_ranks)}
    return {"metric": label, "methods": use_methods, "n_methods": len(use_methods),
            "n_scenarios": len(use_scen), "scenarios": use_scen,
            "statistic": res.statistic, "p": res.pvalue, "avg_ranks": ranks,
            "cd": cd, "alpha": inputs.alpha, "groups": cliques(ranks, cd),
            "excluded_methods": sorted(set(methods) - set(use_methods)),
            "excluded_scenarios": sorted(set(scenarios) - set(use_scen))}, None


def friedman(inputs: ReportInputs) -> tuple[list[dict], list[dict]]:
    """Friedman/Nemenyi per metric over (model, stream) scenarios on oriented seed means,
    then pooled over every (model, stream, metric) scenario (`all`)."""
    tables = {}
    for metric, hib in inputs.metrics.items():
        sign = 1.0 if hib else -1.0
        table = {scenario_id(m, s): {k: sign * v for k, v in by.items()}
                 for (m, s), by in scenario_means(inputs, metric).items()}
        if table:
            tables[metric] = table
    if tables:
        tables["all"] = {f"{sid}/{metric}": v for metric, table in tables.items()
                         for sid, v in table.items()}
    rows, skipped = [], []
    for label, table in tables.items():
        entry, why = friedman_one(inputs, label, table)
        if entry is None:
            skipped.append(skip(f"Friedman/Nemenyi ({label})", why))
            continue
        if label == "all":
            entry["note"] = ("pooled over every (model, stream, metric) scenario, each metric "
                             "oriented so higher is better; metrics of one (model, stream) are "
                             "correlated, so read this as a summary, not an independent test")
        rows.append(entry)
    return rows, skipped


# --------------------------------------------------------------------------- IQM

def _normalised(inputs: ReportInputs) -> tuple[dict, dict, int]:
    """(norm, oriented, flat): per metric (and `all`), method -> one list of seed values
    per scenario, min-max normalised by NORMALISATION (norm) or only oriented so higher is
    better (oriented, keyed by scenario); flat counts the scenarios left out of norm."""
    norm: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    oriented: dict[str, dict[str, dict[str, list]]] = defaultdict(lambda: defaultdict(dict))
    flat = 0
    for (model, stream, metric), by_method in sorted(inputs.values.items()):
        by_method = {m: v for m, v in by_method.items() if v}
        if len(by_method) < 2:
            continue
        sign = 1.0 if inputs.metrics[metric] else -1.0
        means = {m: sign * float(mean(v.values())) for m, v in by_method.items()}
        lo, hi = min(means.values()), max(means.values())
        sid = scenario_id(model, stream, metric)
        for m, v in by_method.items():
            oriented[metric][m][sid] = [sign * x for x in v.values()]
            oriented["all"][m][sid] = oriented[metric][m][sid]
        if hi - lo <= 1e-12 * max(1.0, abs(hi)):
            flat += 1
            continue
        for m, v in by_method.items():
            scaled = [(sign * x - lo) / (hi - lo) for x in v.values()]
            norm[metric][m].append(scaled)
            norm["all"][m].append(scaled)
    return norm, oriented, flat


def _prob_improvement(x: dict[str, list], y: dict[str, list]) -> tuple[float | None, int]:
    """P(method > reference) averaged over their common scenarios, and how many."""
    import numpy as np

    common = sorted(set(x) & set(y))
    if not common:
        return None, 0
    return A.probability_of_improvement([np.asarray(x[s]) for s in common],
                                        [np.asarray(y[s]) for s in common]), len(common)


def iqm(inputs: ReportInputs) -> tuple[dict, list[dict], list[dict]]:
    """IQM of normalised scores with a stratified bootstrap CI, and the probability of
    improvement over the reference, per metric and over all scenarios. Returns (section,
    skipped, notes): leaving out flat scenarios is a choice on the data, hence a note."""
    ref = inputs.reference
    norm, oriented, flat = _normalised(inputs)
    notes = [{"what": "IQM normalisation",
              "why": f"{flat} scenario(s) left out: every method has the same mean, so "
                     "min-max normalisation is undefined"}] if flat else []
    rows = []
    for metric in [*inputs.metrics, "all"]:
        for method in sorted(norm.get(metric, {})):
            groups = norm[metric][method]
            res = A.stratified_bootstrap_iqm_ci(groups, inputs.confidence,
                                                inputs.n_iqm_resamples, inputs.seed)
            pi, pi_n = None, 0
            if method != ref and ref in oriented[metric]:
                pi, pi_n = _prob_improvement(oriented[metric][method], oriented[metric][ref])
            rows.append({"metric": metric, "method": method, "iqm": res.point,
                         "ci_low": res.low, "ci_high": res.high,
                         "n_scenarios": len(groups), "n_values": sum(len(g) for g in groups),
                         "prob_improvement": pi, "pi_n_scenarios": pi_n})
    skipped = [] if rows else [skip("IQM and probability of improvement",
                                    "no scenario has two or more methods with different means")]
    return {"normalisation": NORMALISATION,
            "prob_improvement": (f"P(method > {ref}): Mann-Whitney U / (n_x n_y) of the "
                                 "method's seeds against the reference's, oriented so higher "
                                 "is better, averaged over scenarios"),
            "confidence": inputs.confidence, "n_resamples": inputs.n_iqm_resamples,
            "rows": rows}, skipped, notes
