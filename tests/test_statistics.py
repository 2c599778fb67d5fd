"""Statistics of harness/statistics.py, harness/aggregates.py and harness/power.py: agreement
with scipy or hand computations on fixed inputs, edge cases, and small planted-null /
planted-effect simulations (fixed RNG)."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from harness import aggregates as AG
from harness import power as PW
from harness import statistics as S

ALPHA = 0.05


def _mean_diff(x, y, axis=-1):
    return np.mean(x - y, axis=axis)


A5 = np.array([0.61, 0.55, 0.70, 0.58, 0.66])
B5 = np.array([0.52, 0.57, 0.60, 0.50, 0.61])


def test_paired_inputs_are_validated():
    with pytest.raises(ValueError, match="differ in length"):
        S.paired_permutation_test([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        S.paired_permutation_test([1, np.nan], [1, 2])
    with pytest.raises(ValueError, match="empty"):
        S.wilcoxon_test([], [])


def test_permutation_n5_all_positive_is_exact_2_over_32():
    d = np.array([0.1, 0.3, 0.2, 0.05, 0.4])
    assert S.paired_permutation_test(d, np.zeros(5)) == pytest.approx(2 / 32)
    # identical nonzero differences: same extreme pattern
    assert S.paired_permutation_test(np.ones(5), np.zeros(5)) == pytest.approx(2 / 32)


def test_permutation_matches_hand_enumeration():
    d = np.array([0.5, -0.2, 0.3, 0.1, -0.4, 0.6])
    signs = np.array(np.meshgrid(*[[-1, 1]] * 6)).reshape(6, -1).T
    null = (signs * d).mean(axis=1)
    p_hand = np.mean(np.abs(null) >= abs(d.mean()) - 1e-12)
    assert S.paired_permutation_test(d, np.zeros(6)) == pytest.approx(p_hand)


def test_permutation_edge_cases():
    assert S.paired_permutation_test([0.9], [0.1]) == 1.0  # exact: null is {d, -d}
    assert S.paired_permutation_test([0.4] * 5, [0.4] * 5) == 1.0


def test_wilcoxon_matches_scipy_and_handles_zeros():
    a = np.array([0.61, 0.55, 0.70, 0.58, 0.66, 0.71, 0.49])
    b = np.array([0.52, 0.57, 0.60, 0.50, 0.61, 0.62, 0.52])
    assert S.wilcoxon_test(a, b) == pytest.approx(stats.wilcoxon(a - b).pvalue)
    # n = 5, all differences positive: smallest two-sided p is 2/32, above 0.05
    assert S.wilcoxon_test([1, 2, 3, 4, 5], [0] * 5) == pytest.approx(0.0625)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert S.wilcoxon_test([0.3] * 5, [0.3] * 5) == 1.0


# --------------------------------------------------------------------------- corrections

def test_holm_by_hand():
    # sorted: 0.005 (x4) = 0.02, 0.01 (x3) = 0.03, 0.03 (x2) = 0.06, 0.04 (x1) = 0.04 -> 0.06
    # (running max); back in input order [0.01, 0.04, 0.03, 0.005]:
    assert S.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_handles_ties_and_empty():
    assert S.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # 2 x 0.5 = 1.0, then max
    assert S.holm([0.01, 0.01, 0.2]) == pytest.approx([0.03, 0.03, 0.2])
    assert S.holm([0.04]) == pytest.approx([0.04])
    assert S.holm([]).size == 0
    with pytest.raises(ValueError):
        S.holm([0.1, 1.5])


def test_holm_is_monotone_and_never_below_raw():
    p = np.random.default_rng(1).random(12) ** 3
    adj = S.holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= 0)
    assert np.all(adj >= p) and np.all(adj <= 1)


def test_benjamini_hochberg_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4/1, x4/2, x4/3, x4/4 = 0.02, 0.02, 0.04, 0.04
    # (running min from the top); back in input order:
    assert S.benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx(
        [0.02, 0.04, 0.04, 0.02])
    assert S.benjamini_hochberg([0.02, 0.5]) == pytest.approx([0.04, 0.5])


# --------------------------------------------------------------------------- Friedman, Nemenyi

def test_friedman_by_hand_and_matches_scipy():
    scores = np.array([[1, 2, 3], [2, 1, 3], [1, 2, 3], [3, 2, 1]], dtype=float)
    res = AG.friedman(scores)
    # ranks (1 = highest): [3,2,1], [2,3,1], [3,2,1], [1,2,3] -> sums 9, 9, 6
    assert res.avg_ranks == pytest.approx([2.25, 2.25, 1.5])
    # chi2 = 12 / (N k (k+1)) * sum R_j^2 - 3 N (k+1) = 0.25 * 198 - 48 = 1.5
    assert res.statistic == pytest.approx(1.5)
    assert res.pvalue == pytest.approx(math.exp(-0.75))  # chi2 sf with 2 df
    ref = stats.friedmanchisquare(*scores.T)
    assert (res.statistic, res.pvalue) == pytest.approx((ref.statistic, ref.pvalue))
    assert (res.n_scenarios, res.n_methods) == (4, 3)


def test_friedman_ties_and_lower_is_better():
    scores = np.array([[0.5, 0.5, 0.1, 0.2], [0.3, 0.9, 0.9, 0.1], [0.8, 0.7, 0.6, 0.6]])
    res = AG.friedman(scores)
    ref = stats.friedmanchisquare(*scores.T)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.avg_ranks == pytest.approx(
        stats.rankdata(-scores, axis=1).mean(axis=0))
    assert res.avg_ranks[0] == pytest.approx((1.5 + 3 + 1) / 3)
    low = AG.friedman(scores, higher_is_better=False)
    assert low.avg_ranks == pytest.approx(5 - res.avg_ranks)
    assert low.statistic == pytest.approx(res.statistic)


def test_friedman_needs_three_methods_and_complete_blocks():
    with pytest.raises(ValueError, match="at least 3 methods"):
        AG.friedman([[0.1, 0.2], [0.3, 0.4], [0.5, 0.4]])
    with pytest.raises(ValueError, match="complete blocks"):
        AG.friedman([[0.1, 0.2, np.nan], [0.3, 0.4, 0.5]])
    all_tied = AG.friedman(np.ones((4, 3)))
    assert (all_tied.statistic, all_tied.pvalue) == (0.0, 1.0)
    assert all_tied.avg_ranks == pytest.approx([2, 2, 2])


DEMSAR_Q = {  # Demsar (2006), Table 5(a): Nemenyi q_alpha for k = 2..10
    0.05: [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164],
    0.10: [1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920],
}


@pytest.mark.parametrize("alpha", [0.05, 0.10])
def test_nemenyi_q_matches_demsar_table(alpha):
    for k, q_table in zip(range(2, 11), DEMSAR_Q[alpha]):
        n = 7
        q = AG.nemenyi_cd(k, n, alpha) / math.sqrt(k * (k + 1) / (6 * n))
        assert q == pytest.approx(q_table, abs=0.01), k


def test_nemenyi_cd_formula():
    # Demsar's worked example: k = 4 methods, N = 14 data sets -> CD = 2.569 sqrt(20/84)
    assert AG.nemenyi_cd(4, 14) == pytest.approx(2.569 * math.sqrt(20 / 84), abs=0.005)
    assert AG.nemenyi_cd(4, 56) == pytest.approx(AG.nemenyi_cd(4, 14) / 2)
    with pytest.raises(ValueError):
        AG.nemenyi_cd(1, 10)


# --------------------------------------------------------------------------- aggregation

def test_iqm_known_arrays():
    assert AG.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # keeps 3, 4, 5, 6
    assert AG.iqm([1, 2, 3, 4, 100]) == pytest.approx(3.0)  # drops int(1.25) = 1 each end
    v = np.random.default_rng(2).normal(size=37)
    assert AG.iqm(v) == pytest.approx(stats.trim_mean(v, 0.25))


def test_stratified_bootstrap_iqm_ci():
    rng = np.random.default_rng(4)
    groups = [rng.normal(loc=m, size=5) for m in (0.0, 0.5, 1.0, 2.0)]
    res = AG.stratified_bootstrap_iqm_ci(groups, n_resamples=500, seed=0)
    assert res.point == pytest.approx(AG.iqm(np.concatenate(groups)))
    assert res.low < res.point < res.high
    point, low, high = AG.stratified_bootstrap_iqm_ci(groups, n_resamples=500, seed=0)
    assert (point, low, high) == tuple(res)  # reproducible, unpacks as a triple


def test_stratified_bootstrap_keeps_scenario_sizes():
    # Constant within each scenario: stratified resampling reproduces the pool exactly,
    # so the interval has zero width (an unstratified bootstrap would not).
    res = AG.stratified_bootstrap_iqm_ci([[0.0] * 4, [1.0] * 4, [2.0] * 4, [3.0] * 4],
                                        n_resamples=200)
    assert res.point == res.low == res.high == pytest.approx(1.5)


def test_probability_of_improvement():
    x = [[0.9, 0.8, 0.95], [0.7, 0.75]]
    y = [[0.1, 0.2, 0.3], [0.5, 0.6]]
    assert AG.probability_of_improvement(x, y) == 1.0
    assert AG.probability_of_improvement(y, x) == 0.0
    assert AG.probability_of_improvement(x, x) == 0.5
    # hand: x=[1, 2] vs y=[1.5, 2]: 2>1.5 counts 1, 2=2 counts 1/2 -> 1.5/4; second 1.0
    assert AG.probability_of_improvement([[1, 2], [3]], [[1.5, 2], [0]]) == pytest.approx(
        (0.375 + 1.0) / 2)
    mapped = AG.probability_of_improvement({"s1": [1, 2], "s2": [3]},
                                          {"s2": [0], "s1": [1.5, 2]})
    assert mapped == pytest.approx((0.375 + 1.0) / 2)


def test_win_counts_ties_and_cis():
    means = {
        "s1": {"A": 0.90, "B": 0.85, "C": 0.10},
        "s2": {"A": 0.50, "B": 0.60, "C": 0.20},
        "s3": {"A": 0.40, "B": 0.40, "C": 0.30},   # exact tie A/B
        "s4": {"A": 0.70, "B": 0.10, "C": None},   # C missing here
    }
    plain = AG.win_counts(means)
    assert plain["A"] == AG.WinCount(outright=2, shared=1, n=4)
    assert plain["B"] == AG.WinCount(outright=1, shared=1, n=4)
    assert plain["C"] == AG.WinCount(outright=0, shared=0, n=3)
    assert plain["A"].describe().startswith("best in 2 of 4 scenarios (+1 shared")

    cis = {"s1": {"A": (0.80, 0.95)}, "s2": {"B": (0.55, 0.65)},
           "s3": {"A": (0.35, 0.45), "B": (0.28, 0.50)}, "s4": {"A": (0.6, 0.8)}}
    with_ci = AG.win_counts(means, cis)
    assert with_ci["A"] == AG.WinCount(outright=1, shared=2, n=4)  # s1 now shared with B
    assert with_ci["B"] == AG.WinCount(outright=1, shared=2, n=4)
    assert with_ci["C"] == AG.WinCount(outright=0, shared=1, n=3)  # in B's CI in s3

    lower = AG.win_counts({"s": {"A": 0.2, "B": 0.1}}, higher_is_better=False)
    assert lower["B"].outright == 1 and lower["A"].outright == 0
    with pytest.raises(ValueError, match="no CI"):
        AG.win_counts(means, {"s1": {"B": (0, 1)}})


# --------------------------------------------------------------------------- simulations

SIMS = 200


def _pair(rng, n, shift=0.0):
    """A paired (a, b) with a shared per-seed effect; differences have sd 1."""
    seed_effect = rng.normal(size=n)
    a = seed_effect + shift + rng.normal(scale=math.sqrt(0.5), size=n)
    b = seed_effect + rng.normal(scale=math.sqrt(0.5), size=n)
    return a, b


@pytest.fixture(scope="module")
def null_grids():
    """p-values of 4 method-vs-reference comparisons per grid, n = 10 seeds, no effect."""
    rng = np.random.default_rng(12345)
    return np.array([[S.paired_permutation_test(*_pair(rng, 10)) for _ in range(4)]
                     for _ in range(SIMS)])


def test_null_rejection_rate_at_most_alpha(null_grids):
    # every comparison is an independent null scenario: 4 x SIMS of them
    rate = np.mean(null_grids <= ALPHA)
    mcse = math.sqrt(ALPHA * (1 - ALPHA) / null_grids.size)
    assert rate <= ALPHA + 3 * mcse
    assert rate >= ALPHA - 3 * mcse  # and the test is not dead


def test_null_with_5_seeds_never_rejects_per_scenario():
    rng = np.random.default_rng(5)
    ps = np.array([S.paired_permutation_test(*_pair(rng, 5)) for _ in range(SIMS)])
    assert ps.min() >= 2 / 32 - 1e-12  # the exact floor; rejection rate at 0.05 is 0


def test_holm_and_bh_control_familywise_error_under_null(null_grids):
    mcse = math.sqrt(ALPHA * (1 - ALPHA) / SIMS)
    unadjusted = np.mean((null_grids <= ALPHA).any(axis=1))
    fwer_holm = np.mean([(S.holm(p) <= ALPHA).any() for p in null_grids])
    fdr_bh = np.mean([(S.benjamini_hochberg(p) <= ALPHA).any() for p in null_grids])
    assert fwer_holm <= ALPHA + 3 * mcse
    assert fdr_bh <= ALPHA + 3 * mcse  # under the global null, FDR = FWER
    assert unadjusted > ALPHA + 3 * mcse  # the family needs the correction


def test_power_rises_with_seeds_under_planted_effect():
    rng = np.random.default_rng(7)
    power = {}
    for n in (4, 8, 16):
        ps = [S.paired_permutation_test(*_pair(rng, n, shift=1.0), n_resamples=999, seed=i)
              for i in range(SIMS)]
        power[n] = np.mean(np.array(ps) <= ALPHA)
    assert power[4] == 0.0  # exact floor 2/16 = 0.125 > alpha
    assert power[4] < power[8] < power[16]
    assert power[16] >= 0.8


# --------------------------------------------------------------------------- the procedure

def test_stratified_t_one_stratum_is_scipys_one_sample_t():
    d = A5 - B5
    t = S.stratified_t(d)
    ref = stats.ttest_1samp(d, 0.0)
    low, high = stats.t.interval(0.95, 4, loc=d.mean(), scale=stats.sem(d))
    assert (t.method, t.df, t.n, t.strata) == ("t", 4, 5, 1)
    assert t.p == pytest.approx(ref.pvalue) and t.estimate == pytest.approx(d.mean())
    assert (t.ci_low, t.ci_high) == pytest.approx((low, high))


def test_stratified_t_centres_residuals_within_strata():
    # stream 'b' favours the method by 1.0: a stratum effect, not noise
    d = np.array([0.1, 0.2, 0.3, 1.1, 1.2, 1.3])
    strata = ["a", "a", "a", "b", "b", "b"]
    t = S.stratified_t(d, strata)
    resid = np.array([-0.1, 0, 0.1, -0.1, 0, 0.1])
    se = math.sqrt(np.sum(resid ** 2) / 4 / 6)
    assert (t.df, t.strata, t.method) == (4, 2, "t")
    assert t.estimate == pytest.approx(0.7) and t.se == pytest.approx(se)
    assert t.p == pytest.approx(2 * stats.t.sf(0.7 / se, 4))
    assert t.ci_high - t.ci_low < S.stratified_t(d).ci_high - S.stratified_t(d).ci_low
    # one value per stratum: the strata are the replicates (df = n - 1)
    pooled = S.stratified_t([0.1, 0.3, 0.2], ["a", "b", "c"])
    assert (pooled.method, pooled.df) == ("t-pooled", 2)
    assert pooled.p == pytest.approx(stats.ttest_1samp([0.1, 0.3, 0.2], 0).pvalue)


def test_stratified_t_refuses_one_value_and_handles_no_spread():
    one = S.stratified_t([0.3])
    assert (one.method, one.ci_low, one.ci_high, one.p) == ("none", None, None, 1.0)
    same = S.stratified_t([0.1, 0.1, 0.1])
    assert same.method == "degenerate" and same.p == 0.25 == S.paired_t_p([0.2] * 3, [0.1] * 3)
    assert S.stratified_t([0.0, 0.0]).p == 1.0


def test_holm_on_rows_equals_holm_per_row():
    p = np.random.default_rng(0).random((5, 7))
    assert np.allclose(S.holm(p), np.stack([S.holm(row) for row in p]))


@pytest.mark.parametrize("seeds", [3, 6])
def test_t_intervals_cover_95_percent_by_simulation(seeds):
    r = PW.simulate_design(seeds=seeds, streams=2, methods=14, items=32, reps=800, rng_seed=1)
    assert 0.93 <= r["coverage"] <= 0.97
    if seeds == 3:  # what the old percentile bootstrap delivered at this design
        assert r["coverage_bootstrap"] < 0.88


def test_one_holm_family_over_all_pairs_holds_the_family_wise_error():
    r = PW.simulate_design(seeds=3, streams=2, methods=14, items=32, reps=1500, rng_seed=2)
    assert r["fwe"] <= 0.05 + 2 * r["fwe_se"]
    assert r["fwe_per_method"] > 0.15  # the old per-method families did not


def test_intervals_and_holm_hold_at_leaderboard_v2s_own_design():
    """The design the v2 board runs, read from its suite (seeds, streams, methods, test
    items a task): the t intervals cover 95% and the one Holm family over all pairs keeps
    the family-wise error at 5%, where a per-method family would not."""
    from harness.config import load_suite

    suite = load_suite("leaderboard-v2")
    design = {"seeds": len(suite.seeds), "streams": len(suite.streams),
              "methods": len(suite.methods), "items": suite.data.n_test}
    assert design == {"seeds": 6, "streams": 2, "methods": 14, "items": 200}
    r = PW.simulate_design(**design, reps=1500, rng_seed=5)
    assert abs(r["coverage"] - 0.95) <= 3 * r["coverage_se"]
    assert r["fwe"] <= 0.05 + 2 * r["fwe_se"] and r["fwe_per_method"] > 0.15


def test_power_rises_with_seeds_under_a_planted_effect():
    low = PW.simulate_design(seeds=3, streams=2, methods=6, reps=300, effect=1.0, rng_seed=3)
    high = PW.simulate_design(seeds=10, streams=2, methods=6, reps=300, effect=1.0, rng_seed=3)
    assert low["power"] < high["power"] and high["power"] > 0.8
    assert high["fwe"] <= 0.05 + 3 * high["fwe_se"]


def test_board_ranks_and_rank_intervals_follow_the_decisions():
    rng = np.random.default_rng(4)
    keys = [(s, k) for s in ("x", "y") for k in range(5)]
    base = {key: rng.normal() for key in keys}
    means = {"a": 1.0, "b": 1.0, "c": 0.0, "d": -1.0}
    values = {m: {key: base[key] + mu + 0.05 * rng.normal() for key in keys}
              for m, mu in means.items()}
    b = S.board(values, higher_is_better=True)
    assert b.rank == {"a": 1, "b": 1, "c": 3, "d": 4}
    assert b.rank_interval == {"a": [1, 2], "b": [1, 2], "c": [3, 3], "d": [4, 4]}
    assert b.significant_pairs == 5 and len(b.pairs) == 6
    low = S.board(values, higher_is_better=False)
    assert low.rank == {"a": 3, "b": 3, "c": 2, "d": 1}


def test_mcnemar_exact_matches_a_binomial_by_hand():
    a = [1] * 10 + [0] * 2 + [1] * 5 + [0] * 3
    b = [0] * 10 + [1] * 2 + [1] * 5 + [0] * 3
    b01, b10, p = S.mcnemar_exact(a, b)
    assert (b01, b10) == (2, 10)
    # two-sided exact binomial: 2 * P(X <= 2), X ~ Bin(12, 1/2)
    assert p == pytest.approx(2 * sum(math.comb(12, i) for i in range(3)) / 2 ** 12)
    assert S.mcnemar_exact([1, 0], [1, 0]) == (0, 0, 1.0)


def test_mcnemar_exact_agrees_with_statsmodels():
    mcnemar = pytest.importorskip("statsmodels.stats.contingency_tables").mcnemar
    rng = np.random.default_rng(5)
    for _ in range(5):
        a, b = rng.random(60) < 0.6, rng.random(60) < 0.5
        b01, b10, p = S.mcnemar_exact(a, b)
        table = [[np.sum(a & b), b10], [b01, np.sum(~a & ~b)]]
        assert p == pytest.approx(mcnemar(table, exact=True).pvalue)


def test_minimum_detectable_difference():
    # one-sample t, n = 30, alpha 0.05, 80% power: d = 0.529 (Cohen's tables, G*Power)
    assert PW.minimum_detectable_difference(1.0, 30) == pytest.approx(0.5292, abs=1e-3)
    assert PW.minimum_detectable_difference(2.0, 30) == pytest.approx(2 * 0.5292, abs=2e-3)
    # a board-wide correction asks for a larger difference; one pair per stratum: df n - 1
    assert (PW.minimum_detectable_difference(1.0, 6, 2, 91)
            > PW.minimum_detectable_difference(1.0, 6, 2))
    assert PW.minimum_detectable_difference(1.0, 1) is None
    power = pytest.importorskip("statsmodels.stats.power")
    assert PW.minimum_detectable_difference(1.0, 12) == pytest.approx(
        power.TTestPower().solve_power(nobs=12, alpha=0.05, power=0.8), abs=1e-3)


def test_seed_item_t_is_a_two_way_anova_by_hand():
    rng = np.random.default_rng(6)
    d = rng.normal(0.1, 0.3, size=(3, 8)) + rng.normal(0, 0.2, size=(1, 8))
    t = S.seed_item_t(d)
    S_, I_ = d.shape
    ms_seed = I_ * d.mean(axis=1).var(ddof=1)
    ms_item = S_ * d.mean(axis=0).var(ddof=1)
    resid = d - d.mean(axis=1, keepdims=True) - d.mean(axis=0, keepdims=True) + d.mean()
    ms_res = (resid ** 2).sum() / ((S_ - 1) * (I_ - 1))
    var = max(ms_seed + ms_item - ms_res, ms_seed) / (S_ * I_)
    assert t.estimate == pytest.approx(d.mean()) and t.se == pytest.approx(math.sqrt(var))
    assert t.method == "t-seeds-items" and t.n == 24
    with pytest.raises(ValueError):
        S.seed_item_t([[0.1, 0.2]])


def test_seed_item_t_covers_when_items_differ_in_effect_and_seed_only_does_not():
    # the same 32 items in every seed, the method's gain varies by item (sd 0.3): the
    # quantity is the gain on the task (new items); a seed-only t interval sees one sample
    rng = np.random.default_rng(7)
    reps, seeds, items, delta = 2000, 3, 32, 0.05
    d = (rng.normal(delta, 0.3, size=(reps, 1, items)) + rng.normal(0, 0.03, (reps, seeds, 1))
         + rng.normal(0, 0.3, size=(reps, seeds, items)))
    est, var, df = S._crossed_moments(d)
    low, high, _ = S._t_moments(est, var, df, 0.95)
    crossed = np.mean((low <= delta) & (delta <= high))
    m = d.mean(axis=-1)
    half = stats.t.ppf(0.975, seeds - 1) * m.std(axis=-1, ddof=1) / math.sqrt(seeds)
    seed_only = np.mean(np.abs(m.mean(axis=-1) - delta) <= half)
    assert 0.93 <= crossed <= 0.98 and seed_only < 0.9


def test_design_mdd_per_metric_shrinks_with_seeds_and_grows_with_the_board():
    spread = {"acc": 0.06, "drift_final": 0.02}
    small = PW.design_mdd(spread, seeds=3, streams=2, methods=14)
    assert small["acc"] == pytest.approx(
        PW.minimum_detectable_difference(0.06, 6, 2, 91))
    assert small["drift_final"] == pytest.approx(small["acc"] / 3)
    assert PW.design_mdd(spread, 10, 2, 14)["acc"] < small["acc"]
    assert PW.design_mdd(spread, 3, 2, 3)["acc"] < small["acc"]
    # simulated power at that difference on a normal design is about 80%
    rng = np.random.default_rng(8)
    d = rng.normal(small["acc"], 0.06, size=(4000, 2, 3))
    resid = d - d.mean(axis=-1, keepdims=True)
    se = np.sqrt((resid ** 2).sum(axis=(-2, -1)) / 4 / 6)
    p = 2 * stats.t.sf(np.abs(d.mean(axis=(-2, -1))) / se, 4)
    assert np.mean(p < 0.05 / 91) == pytest.approx(0.8, abs=0.03)
