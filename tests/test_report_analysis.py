"""harness/report/analysis.py through `build_report` on synthetic cells: planted effects
found, planted nulls not, numbers equal to an independent computation, pairing by seed,
directions, and every skipped comparison named with its reason."""

import numpy as np
import pytest
from scipy import stats

from harness.report import build_report
from harness.report.analysis import cliques
from synthetic_cells import FAST, R_for, planted_grid, write_cell


def comparisons(summary, metric="acc", method="B"):
    return [c for c in summary["comparisons"] if c["metric"] == metric and c["method"] == method]


def test_planted_effect_is_found(tmp_path):
    planted_grid(tmp_path, effect=0.2)
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    rows = comparisons(s)
    assert len(rows) == 3
    for c in rows:
        assert c["n"] == 8 and c["seeds"] == list(range(8))
        assert c["diff"] == pytest.approx(0.2, abs=0.03)
        assert c["ci_low"] <= c["diff"] <= c["ci_high"]
        assert c["ci_low"] <= 0.2 <= c["ci_high"] or abs(c["diff"] - 0.2) < 0.02
        assert c["significant"] and c["direction"] == "better"
        assert c["p_adjusted"] < 0.05 and c["p_bh"] < 0.05
    wins = {(w["metric"], w["method"]): w for w in s["wins"]}
    assert wins[("acc", "B")]["outright"] == 3 and wins[("acc", "A")]["outright"] == 0
    assert set(s["comparisons"][0]) >= {"scenario", "method", "reference", "metric", "diff",
                                        "ci_low", "ci_high", "p", "p_adjusted", "significant"}


def test_planted_null_is_not_found(tmp_path):
    planted_grid(tmp_path, effect=0.0, methods=("A", "B", "C"))
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    acc = [c for c in s["comparisons"] if c["metric"] == "acc"]
    assert len(acc) == 6
    assert not any(c["significant"] for c in acc)
    for c in acc:
        assert c["ci_low"] <= 0.0 <= c["ci_high"] or c["p"] > 0.01


def test_numbers_agree_with_independent_computation(tmp_path):
    accs = planted_grid(tmp_path, effect=0.03, methods=("A", "B", "C"), n_seeds=6)
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    family = [c for c in s["comparisons"] if c["metric"] == "acc"]  # one family per metric
    assert [(c["scenario"], c["method"]) for c in family][:2] == [("m/s1/acc", "B"),
                                                                 ("m/s1/acc", "C")]
    ps = []
    for c in family[:2]:
        a = np.array([accs[("s1", c["method"], k)] for k in range(6)])
        b = np.array([accs[("s1", "A", k)] for k in range(6)])
        assert c["diff"] == pytest.approx(np.mean(a - b), abs=1e-12)
        assert c["mean"] == pytest.approx(a.mean()) and c["ref_mean"] == pytest.approx(b.mean())
        assert c["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
        low, high = stats.t.interval(0.95, 5, loc=np.mean(a - b), scale=stats.sem(a - b))
        assert (c["ci_low"], c["ci_high"]) == pytest.approx((low, high))
        assert c["ci_method"] == "t" and c["df"] == 5 and c["reachable"]
    # Holm over the metric's family (every scenario's comparisons) equals a hand computation
    p = np.array([c["p"] for c in family])
    order = np.argsort(p)
    by_hand = np.minimum(1, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    assert np.array([c["p_adjusted"] for c in family])[order] == pytest.approx(by_hand)
    # BH across the grid equals scipy's on all p-values in order
    allp = [c["p"] for c in s["comparisons"]]
    bh = stats.false_discovery_control(allp, method="bh")
    assert [c["p_bh"] for c in s["comparisons"]] == pytest.approx(list(bh))
    # per-method mean/sd equal numpy's
    row = next(r for r in s["per_method"] if r["scenario"] == "m/s2/acc" and r["method"] == "C")
    v = np.array([accs[("s2", "C", k)] for k in range(6)])
    assert row["mean"] == pytest.approx(v.mean()) and row["sd"] == pytest.approx(v.std(ddof=1))


def test_direction_pairing_and_skips(tmp_path):
    # forgetting: lower is better; seeds 0..3 for A, 1..4 for B -> 3 paired seeds;
    # a one-task stream has null bwt/forgetting -> skipped with a reason.
    for s in range(4):
        write_cell(tmp_path, "m", "two", "A", s, R_for(0.5), metrics={"forgetting": 0.3 + 0.01 * s})
    for s in range(1, 5):
        write_cell(tmp_path, "m", "two", "B", s, R_for(0.5), metrics={"forgetting": 0.1 + 0.01 * s})
    for s in range(3):
        for m in ("A", "B"):
            write_cell(tmp_path, "m", "one", m, s, R_for(0.5, T=1))
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    c = next(c for c in s["comparisons"] if c["scenario"] == "m/two/forgetting")
    assert c["n"] == 3 and c["seeds"] == [1, 2, 3]
    assert c["diff"] == pytest.approx(-0.2) and c["direction"] == "better"
    assert not c["higher_is_better"]
    assert any(x["what"] == "comparisons in m/one/bwt" and "null" in x["why"]
               for x in s["skipped"])
    drift = next(m for m in s["metrics"] if m["name"] == "drift_final")
    assert drift["higher_is_better"] is False


def test_too_few_paired_seeds_is_skipped_with_reason(tmp_path):
    write_cell(tmp_path, "m", "x", "A", 0, R_for(0.5))
    write_cell(tmp_path, "m", "x", "A", 1, R_for(0.5))
    write_cell(tmp_path, "m", "x", "B", 1, R_for(0.6))
    write_cell(tmp_path, "m", "x", "B", 2, R_for(0.6))
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    assert s["comparisons"] == []
    assert any("B vs A on m/x/acc" == x["what"] and "1 paired seed" in x["why"]
               for x in s["skipped"])


def test_cliques_are_maximal_runs_within_cd():
    ranks = {"a": 1.0, "b": 1.5, "c": 2.4, "d": 4.0}
    assert cliques(ranks, 1.0) == [["a", "b"], ["b", "c"]]
    assert cliques(ranks, 0.1) == []
    assert cliques(ranks, 5.0) == [["a", "b", "c", "d"]]


def test_pooled_test_across_scenarios_finds_what_wilcoxon_cannot(tmp_path):
    # 2 scenarios x 3 seeds, B above A by 0.1 (+ noise) on every pair: the Wilcoxon test
    # over 2 scenario means cannot go below p = 0.5, the pooled t-test of the 6 pairs finds
    # it; C differs from A by noise only
    accs = planted_grid(tmp_path, effect=0.1, n_seeds=3, scenarios=("s1", "s2"),
                        methods=("A", "B", "C"))
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    rows = {r["method"]: r for r in s["across_scenarios"] if r["metric"] == "acc"}
    b, c = rows["B"], rows["C"]
    assert b["n_scenarios"] == 2 and b["n_pairs"] == 6 and b["p_wilcoxon"] == pytest.approx(0.5)
    pairs = [(st, k) for st in ("s1", "s2") for k in range(3)]
    for row in (b, c):
        x = np.array([accs[(st, row["method"], k)] for st, k in pairs])
        y = np.array([accs[(st, "A", k)] for st, k in pairs])
        assert row["pooled_diff"] == pytest.approx(np.mean(x - y), abs=1e-12)
        d = (x - y).reshape(2, 3)  # stream-centred t: residuals around each stream's mean
        se = np.sqrt(((d - d.mean(axis=1, keepdims=True)) ** 2).sum() / 4 / 6)
        assert row["p_pooled"] == pytest.approx(2 * stats.t.sf(abs(d.mean()) / se, 4))
        assert row["pooled_df"] == 4 and row["family_pairs"] == 3
    assert b["p_pooled"] < 0.001
    # Holm over all three pairs of A, B, C (the leaderboard's family): B vs A's p is the
    # smallest of the three or the second
    assert b["p_pooled_adjusted"] in (pytest.approx(3 * b["p_pooled"]),
                                      pytest.approx(max(2 * b["p_pooled"],
                                                        b["p_pooled_adjusted"])))
    assert b["p_pooled_adjusted"] >= 2 * b["p_pooled"]
    assert b["significant_pooled"] and not c["significant_pooled"]


def test_item_forgetting_counts_and_mcnemar(tmp_path):
    # 2 tasks x 10 items: B forgets 6 of t1's items that A keeps; exact McNemar per task
    from scipy.stats import binomtest

    ones, six_lost = [1.0] * 10, [0.0] * 6 + [1.0] * 4
    for seed in range(3):
        for method, final in (("A", ones), ("B", six_lost)):
            items = {"t1": [[0.0] * 10, ones, final], "t2": [[0.0] * 10, [0.0] * 10, ones]}
            write_cell(tmp_path, "m", "x", method, seed, R_for(0.5), items=items,
                       tasks=["t1", "t2"])
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    flips = {(f["method"], f["seed"]): f for f in s["item_forgetting"]["flips"]}
    assert flips[("B", 0)]["forgotten"]["t1"] == [None, None, 6]
    assert flips[("B", 0)]["forgotten_items"] == 6 and flips[("A", 0)]["forgotten_items"] == 0
    assert flips[("B", 0)]["learned"]["t2"] == [None, None, None]
    tests = [t for t in s["item_forgetting"]["mcnemar"] if t["task"] == "t1"]
    assert len(tests) == 3
    for t in tests:
        assert (t["only_reference"], t["only_method"]) == (6, 0)
        assert t["p"] == pytest.approx(binomtest(0, 6, 0.5).pvalue)
    # the count is a metric: compared with the reference like acc (lower is better)
    c = next(c for c in s["comparisons"] if c["metric"] == "forgotten_items")
    assert c["diff"] == 6 and c["direction"] == "worse" and not c["higher_is_better"]
    assert c["ci_method"] == "degenerate" and c["p"] == 0.25 and not c["reachable"]
    assert "unreachable" in (tmp_path / "report.md").read_text()
    assert "## Item-level forgetting" in (tmp_path / "report.md").read_text()


def test_wins_refuse_a_method_with_one_seed(tmp_path):
    for seed in range(3):
        write_cell(tmp_path, "m", "x", "A", seed, R_for(0.5 + 0.01 * seed))
    write_cell(tmp_path, "m", "x", "B", 0, R_for(0.7))
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    assert not any(w["metric"] == "acc" for w in s["wins"])
    why = next(x for x in s["skipped"] if x["what"] == "wins in m/x/acc")["why"]
    assert why.startswith("B with fewer than 2 seeds") and "\n" not in why


def test_terminal_says_refused_and_unreachable_comparisons(tmp_path):
    from rich.console import Console

    from harness.report import terminal_tables

    for seed in range(2):  # B: the same +0.1 on both seeds: smallest p 2/2^2 = 0.5
        write_cell(tmp_path, "m", "x", "A", seed, R_for(0.5 + 0.1 * seed))
        write_cell(tmp_path, "m", "x", "B", seed, R_for(0.6 + 0.1 * seed))
    write_cell(tmp_path, "m", "x", "C", 0, R_for(0.9))
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    console = Console(record=True, width=200)
    for table in terminal_tables(s):
        console.print(table)
    text = console.export_text()
    assert "comparison(s) refused: fewer than 2 paired seeds" in text
    assert "could not reach p < 0.05 at their n" in text


def test_across_scenarios_says_which_tests_could_not_reach_alpha(tmp_path):
    # B = A + 0.1 on every (stream, seed): 2 streams x 2 seeds give the pooled test n = 4
    # equal differences (smallest p 2/2^4 = 0.125) and Wilcoxon 2 scenarios (2/2^2 = 0.5):
    # neither can reach 0.05; with 6 seeds and spread the pooled test can (Wilcoxon not)
    from rich.console import Console

    from harness.report import terminal_tables

    for stream in ("s1", "s2"):
        for seed in range(2):
            write_cell(tmp_path, "m", stream, "A", seed, R_for(0.5 + 0.05 * seed))
            write_cell(tmp_path, "m", stream, "B", seed, R_for(0.6 + 0.05 * seed))
    s = build_report(tmp_path, reference="A", plots=False, **FAST)
    row = next(r for r in s["across_scenarios"] if r["metric"] == "acc")
    assert row["n_pairs"] == 4 and row["p_pooled"] == pytest.approx(0.125)
    assert not row["reachable_pooled"] and not row["reachable_wilcoxon"]
    assert "0.125 (unreachable)" in (tmp_path / "report.md").read_text()
    console = Console(record=True, width=200)
    for table in terminal_tables(s):
        console.print(table)
    assert "pooled test(s) and" in console.export_text()
    rng = np.random.default_rng(0)
    for stream in ("s1", "s2"):
        for seed in range(2, 6):
            write_cell(tmp_path, "m", stream, "A", seed, R_for(0.5))
            write_cell(tmp_path, "m", stream, "B", seed, R_for(0.6 + rng.uniform(-0.05, 0.05)))
    row = next(r for r in build_report(tmp_path, reference="A", plots=False,
                                       **FAST)["across_scenarios"] if r["metric"] == "acc")
    assert row["n_pairs"] == 12 and row["reachable_pooled"] and not row["reachable_wilcoxon"]
