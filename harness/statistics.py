"""Significance and aggregation statistics over per-seed cell metrics (see METRICS.md): the
one statistics package `harness report`, the leaderboard and `harness stats-check` read.

A *scenario* is (model, stream, metric). Within a scenario every method has one value per
seed, and seeds fix data order and sampling, so methods are **paired by seed**. Everything
here is a pure function of numbers; reading result files is the caller's job.

The procedure, chosen by simulation (`simulate_design`; docs/report.md quotes it): a t
interval and test over paired differences, residuals centred within streams
(`stratified_t`; seeds x items crossed: `seed_item_t`); one Holm family over all pairs
of a ranking (`board`), ranks and rank intervals from its decisions; exact McNemar on
paired items; one stratified bootstrap (`stratified_bootstrap`) for aggregates over many
scenarios (IQM). Reports must state the number of seeds, the pairing, the test, the
correction family and alpha; the result objects carry ``n`` for that reason.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = [
    "TInterval", "FriedmanResult", "IQMInterval", "WinCount", "Board",
    "stratified_t", "seed_item_t", "paired_permutation_test",
    "paired_t_p", "wilcoxon_test", "mcnemar_exact", "board", "minimum_detectable_difference",
    "design_mdd",
    "simulate_design", "stratified_bootstrap",
    "holm", "benjamini_hochberg", "friedman", "nemenyi_cd", "iqm",
    "stratified_bootstrap_iqm_ci", "probability_of_improvement", "win_counts",
]

# --------------------------------------------------------------------------- helpers

def _rng_kwargs(func, seed) -> dict:
    """scipy >= 1.15 takes ``rng=``; older releases only ``random_state=``."""
    gen = np.random.default_rng(seed)
    params = inspect.signature(func).parameters
    return {"rng": gen} if "rng" in params else {"random_state": gen}


def _vector(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; drop the seed from both methods "
                         "(pairing needs both values) before calling")
    return arr


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = _vector(a, "a"), _vector(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"paired inputs differ in length: {a.size} vs {b.size} "
                         "(one value per seed for each method, same seed order)")
    return a, b


def _all_equal(d: np.ndarray) -> bool:
    """Identical up to float noise (0.3 - 0.2 and 0.1 - 0.0 count as equal)."""
    scale = max(1.0, float(np.max(np.abs(d))))
    return float(np.ptp(d)) <= 1e-12 * scale


def _mean_diff(x, y, axis=-1):
    return np.mean(x - y, axis=axis)


# --------------------------------------------------------------------------- effect sizes

# --------------------------------------------------------------------------- tests

def paired_permutation_test(a, b, n_resamples: int = 9999, seed: int | None = 0) -> float:
    """Two-sided paired sign-flip permutation test of mean(a - b) = 0; returns p.

    Under the null each seed's difference is equally likely to have either sign, so the
    null distribution is the mean difference (normaliser: n seeds) over sign flips.
    ``scipy.stats.permutation_test(permutation_type='samples')`` enumerates all 2^n flips
    exactly when 2^n <= n_resamples (n <= 13 at the default), else samples them.
    The smallest exact two-sided p is 2 / 2^n: 0.0625 for n = 5, so with 5 seeds no
    single scenario can reach p < 0.05. n = 1 returns p = 1.0, the exact value (the null
    distribution is {d, -d}, both as extreme as d), not a placeholder; all-zero
    differences also give p = 1.0.
    """
    a, b = _paired(a, b)
    if a.size == 1:  # scipy needs n >= 2; the exact answer is known: {d, -d} -> p = 1
        return 1.0
    res = stats.permutation_test((a, b), _mean_diff, permutation_type="samples",
                                 vectorized=True, n_resamples=n_resamples,
                                 alternative="two-sided",
                                 **_rng_kwargs(stats.permutation_test, seed))
    return float(min(1.0, res.pvalue))


def paired_t_p(a, b) -> float:
    """Two-sided paired t-test p of mean(a - b) = 0 (``scipy.stats.ttest_rel``): for few
    pairs under a correction, where a sign-flip test cannot go below m x 2 / 2^n. Fewer
    than 2 pairs: 1.0. Equal differences (no noise estimate): 1.0 if zero, else 2 / 2^n."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = a - b
    if d.size < 2:
        return 1.0
    if _all_equal(d):
        zero = abs(float(np.mean(d))) <= 1e-12 * max(1.0, float(np.max(np.abs(d))))
        return 1.0 if zero else min(1.0, 2.0 / 2 ** d.size)
    return float(stats.ttest_rel(a, b).pvalue)


def wilcoxon_test(a, b) -> float:
    """Two-sided Wilcoxon signed-rank test on the paired differences; returns p.

    Wraps ``scipy.stats.wilcoxon`` (zero differences dropped, ``zero_method='wilcox'``).
    All-zero differences return p = 1.0 (no evidence of a difference; scipy would warn).
    Note: with n = 5 the smallest two-sided p is 2 / 2^5 = 0.0625, so a per-scenario
    Wilcoxon over 5 seeds cannot reach 0.05; use it across scenarios.
    """
    a, b = _paired(a, b)
    d = a - b
    if np.all(d == 0):
        return 1.0
    return float(stats.wilcoxon(d, alternative="two-sided").pvalue)


# --------------------------------------------------------------------------- corrections

def _pvalues(pvalues) -> np.ndarray:
    p = np.asarray(pvalues, dtype=float).reshape(-1)
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must be finite and in [0, 1]")
    return p


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values, in input order (controls the family-wise error).

    For the i-th smallest of m p-values (i = 1..m) the adjusted value is
    max_{j <= i} min(1, (m - j + 1) p_(j)): monotone in the sorted order and capped at 1.
    Reject where adjusted p < alpha. A 2-D input is many families, one per row (the
    simulations of :func:`simulate_design` adjust thousands of boards at once).
    """
    p = np.asarray(pvalues, dtype=float)
    rows = p.reshape(-1, p.shape[-1]) if p.ndim > 1 else _pvalues(p)[None, :]
    if p.ndim > 1:
        _pvalues(rows)
    m = rows.shape[-1]
    if m == 0:
        return p.astype(float)
    order = np.argsort(rows, axis=-1, kind="stable")
    scaled = (m - np.arange(m)) * np.take_along_axis(rows, order, axis=-1)
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate(scaled, axis=-1))
    out = np.empty_like(rows)
    np.put_along_axis(out, order, adjusted_sorted, axis=-1)
    return out.reshape(p.shape) if p.ndim > 1 else out[0]


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (controls the false discovery rate), input order.

    Use across the whole scenario grid. ``scipy.stats.false_discovery_control(method='bh')``:
    adjusted p_(i) = min_{j >= i} min(1, m p_(j) / j).
    """
    p = _pvalues(pvalues)
    if p.size == 0:
        return p
    return np.asarray(stats.false_discovery_control(p, method="bh"), dtype=float)


# --------------------------------------------------------------------------- many methods

@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over scenarios; ``avg_ranks[j]`` is method j's rank averaged over the
    N scenarios (rank 1 = best, ties share the average rank)."""

    statistic: float
    pvalue: float
    avg_ranks: np.ndarray
    n_scenarios: int
    n_methods: int


def friedman(scores, higher_is_better: bool = True) -> FriedmanResult:
    """Friedman test that k >= 3 methods rank alike across N scenarios, plus average ranks.

    ``scores`` is [n_scenarios, n_methods] (one value per method per scenario, usually the
    seed mean); scenarios are the blocks, so every method needs every scenario. Uses
    ``scipy.stats.friedmanchisquare`` (tie-corrected chi-square). Average ranks
    (normaliser: N scenarios) feed the Nemenyi CD diagram. If every scenario ties all
    methods, there is no evidence of a difference: statistic 0, p 1.
    """
    x = np.asarray(scores, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"scores must be 2-D [n_scenarios, n_methods], got shape {x.shape}")
    n, k = x.shape
    if k < 3:
        raise ValueError(f"Friedman needs at least 3 methods, got {k}; for two methods use "
                         "paired_permutation_test or wilcoxon_test across scenarios")
    if n < 2:
        raise ValueError(f"Friedman needs at least 2 scenarios, got {n}")
    if not np.all(np.isfinite(x)):
        raise ValueError("scores contain NaN or inf; Friedman needs every method in every "
                         "scenario (complete blocks)")
    ranks = stats.rankdata(-x if higher_is_better else x, axis=1, method="average")
    avg_ranks = ranks.mean(axis=0)
    if np.all(np.ptp(x, axis=1) == 0):
        return FriedmanResult(0.0, 1.0, avg_ranks, n, k)
    res = stats.friedmanchisquare(*x.T)
    return FriedmanResult(float(res.statistic), float(res.pvalue), avg_ranks, n, k)


def nemenyi_cd(n_methods: int, n_scenarios: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference: average ranks further apart than CD differ at ``alpha``.

    CD = q_alpha sqrt(k (k + 1) / (6 N)), q_alpha = studentized range quantile (1 - alpha,
    k groups, infinite df) / sqrt(2) (Demsar 2006, Table 5a; k = 3: 2.343).
    """
    k, n = int(n_methods), int(n_scenarios)
    if k < 2:
        raise ValueError(f"need at least 2 methods, got {k}")
    if n < 1:
        raise ValueError(f"need at least 1 scenario, got {n}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    try:
        q = stats.studentized_range.ppf(1 - alpha, k, np.inf)
    except (ValueError, OverflowError):  # older scipy without df = inf
        q = float("nan")
    if not np.isfinite(q):
        q = stats.studentized_range.ppf(1 - alpha, k, 1e6)
    return float(q / math.sqrt(2) * math.sqrt(k * (k + 1) / (6.0 * n)))


# --------------------------------------------------------------------------- aggregation

def iqm(values) -> float:
    """Interquartile mean, ``scipy.stats.trim_mean(values, 0.25)``: int(0.25 n) values cut
    from each end (normaliser: the n - 2 int(0.25 n) kept); robust to a few outlying runs.
    Values must be normalised to a common scale across scenarios (the caller says how)."""
    v = _vector(values, "values")
    return float(stats.trim_mean(v, 0.25))


class IQMInterval(NamedTuple):
    point: float
    low: float
    high: float


def stratified_bootstrap(groups, statistic, confidence: float = 0.95,
                         n_resamples: int = 2000, seed: int | None = 0
                         ) -> tuple[float, float, float]:
    """The one stratified bootstrap: (point, low, high) of ``statistic`` over the pooled
    values, with a percentile interval from resampling values with replacement *within*
    each group (every group keeps its weight). ``statistic(x, axis)`` must reduce along
    ``axis``. Use it for aggregates over many scenarios (IQM); within a scenario, with
    few seeds, use :func:`stratified_t` (a bootstrap over 3 seeds covers about 80%)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    groups = [_vector(v, f"groups[{i}]") for i, v in enumerate(groups)]
    if not groups:
        raise ValueError("no groups given")
    point = float(statistic(np.concatenate(groups), axis=0))
    rng = np.random.default_rng(seed)
    pooled = np.concatenate(
        [g[rng.integers(0, g.size, size=(n_resamples, g.size))] for g in groups], axis=1)
    boot = statistic(pooled, axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    return point, float(low), float(high)


def stratified_bootstrap_iqm_ci(per_scenario_values, confidence: float = 0.95,
                                n_resamples: int = 2000,
                                seed: int | None = 0) -> IQMInterval:
    """IQM over all (scenario, seed) normalised scores with a stratified bootstrap CI.

    ``per_scenario_values[s]`` holds scenario s's per-seed scores, already normalised
    (say by what, e.g. (x - SFT) / (upper bound - SFT)). Each resample draws seeds with
    replacement *within* each scenario (so every scenario keeps its weight), pools, and
    takes the IQM; the interval is the percentile interval of those IQMs.
    """
    if not per_scenario_values:
        raise ValueError("no scenarios given")
    groups = [_vector(v, f"per_scenario_values[{i}]")
              for i, v in enumerate(per_scenario_values)]
    return IQMInterval(*stratified_bootstrap(
        groups, lambda x, axis: stats.trim_mean(x, 0.25, axis=axis), confidence,
        n_resamples, seed))


def _scenario_list(x, name: str) -> tuple[list, list]:
    if isinstance(x, Mapping):
        return list(x.keys()), list(x.values())
    if isinstance(x, Sequence) or isinstance(x, np.ndarray):
        return list(range(len(x))), list(x)
    raise TypeError(f"{name} must be a sequence or mapping of per-scenario samples")


def probability_of_improvement(x_by_scenario, y_by_scenario) -> float:
    """P(X > Y): chance a run of method X beats a run of method Y, averaged over scenarios.

    Per scenario: Mann-Whitney U of x against y divided by n_x n_y (ties count 1/2);
    then the unweighted mean over the S scenarios (normaliser: S). Inputs are sequences
    (or mappings with the same keys) of per-seed values, one entry per scenario; higher is
    better. 0.5 means no difference.
    """
    kx, xs = _scenario_list(x_by_scenario, "x_by_scenario")
    ky, ys = _scenario_list(y_by_scenario, "y_by_scenario")
    if isinstance(x_by_scenario, Mapping) or isinstance(y_by_scenario, Mapping):
        if set(kx) != set(ky):
            raise ValueError("x and y cover different scenarios")
        ymap = dict(zip(ky, ys))
        ys = [ymap[k] for k in kx]
    elif len(xs) != len(ys):
        raise ValueError(f"x has {len(xs)} scenarios, y {len(ys)}")
    if not xs:
        raise ValueError("no scenarios given")
    probs = []
    for key, x, y in zip(kx, xs, ys):
        x, y = _vector(x, f"x[{key!r}]"), _vector(y, f"y[{key!r}]")
        u = stats.mannwhitneyu(x, y, alternative="two-sided").statistic
        probs.append(float(u) / (x.size * y.size))
    return float(np.mean(probs))


@dataclass(frozen=True)
class WinCount:
    """``outright``: scenarios where the method alone is best; ``shared``: scenarios where
    it is best or within the best's CI together with others; ``n``: scenarios it ran in."""

    outright: int
    shared: int
    n: int

    def describe(self) -> str:
        return (f"best in {self.outright} of {self.n} scenarios"
                f" (+{self.shared} shared: tied with the best or within its CI)")


def win_counts(means: Mapping, cis: Mapping | None = None,
               higher_is_better: bool = True) -> dict[str, WinCount]:
    """"Best in k of n scenarios, ties stated": per method, outright and shared wins.

    ``means`` is {scenario: {method: mean over seeds}}. In each scenario the best mean wins.
    Tie rule: methods whose mean equals the best are tied; with ``cis``
    ({scenario: {method: (low, high)}}) every method whose mean lies inside (inclusive)
    the CI of a best method is tied too. A scenario with a single best and nobody tied is an
    outright win; otherwise every tied method gets a shared win, counted separately and
    never added to the outright count. Methods with a missing/NaN mean in a scenario do
    not compete there and that scenario is not in their n.
    """
    outright, shared, total = {}, {}, {}
    for scenario, by_method in means.items():
        vals = {m: float(v) for m, v in by_method.items()
                if v is not None and np.isfinite(float(v))}
        for m in vals:
            total[m] = total.get(m, 0) + 1
            outright.setdefault(m, 0)
            shared.setdefault(m, 0)
        if not vals:
            continue
        best = max(vals.values()) if higher_is_better else min(vals.values())
        tied = {m for m, v in vals.items() if v == best}
        if cis is not None:
            scenario_cis = cis.get(scenario, {})
            for b in list(tied):
                if b not in scenario_cis:
                    raise ValueError(f"cis given but no CI for best method {b!r} in "
                                     f"scenario {scenario!r}")
                low, high = scenario_cis[b]
                tied |= {m for m, v in vals.items() if low <= v <= high}
        if len(tied) == 1:
            outright[next(iter(tied))] += 1
        else:
            for m in tied:
                shared[m] += 1
    return {m: WinCount(outright[m], shared[m], total[m]) for m in total}


# --------------------------------------------------------------------------- the procedure
# Every interval, test and rank of `harness report` and the leaderboard comes from here:
# a t interval over paired differences, centred within strata (streams), one Holm family
# per ranking. `simulate_design` (and `harness stats-check`) checks its coverage and
# family-wise error at a design; docs/report.md quotes the numbers.

@dataclass(frozen=True)
class TInterval:
    """Mean difference with its t interval and two-sided t-test p.

    ``estimate`` = mean over strata of each stratum's mean (streams weigh equally).
    ``method``: ``"t"`` (stream-centred: residuals from each stratum's mean, df = n - k),
    ``"t-pooled"`` (one value per stratum: strata treated as exchangeable, df = n - 1),
    ``"degenerate"`` (every residual 0: the interval is the point; p = 1 for a zero
    difference, else the exact sign-flip floor 2 / 2^n), or ``"none"`` (n < 2: no
    spread is observable, so no interval and no test; ``ci_low``/``ci_high`` are None and
    p is 1.0). ``df`` is the t distribution's degrees of freedom.
    """

    estimate: float
    ci_low: float | None
    ci_high: float | None
    p: float
    se: float | None
    df: int
    n: int
    strata: int
    method: str
    confidence: float


def _t_moments(est, var, df, confidence: float):
    """(low, high, p) of t intervals/tests, vectorised over arrays of estimates."""
    se = np.sqrt(var)
    crit = stats.t.ppf(0.5 + confidence / 2, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(est) / se
    p = 2 * stats.t.sf(t, df)
    return est - crit * se, est + crit * se, p


def stratified_t(d, strata=None, confidence: float = 0.95) -> TInterval:
    """t interval and test for the mean of paired differences ``d`` (one per (stream, seed)).

    Why t and not a bootstrap: with 3 seeds a percentile or BCa bootstrap covered about 80%
    (it cannot see spread it has not sampled); this interval covers 95% at 2-10 seeds
    (`harness stats-check`). ``strata`` labels each difference's stream; the estimate
    weighs streams equally and the variance comes from residuals around each stream's
    mean (a stream that favours one method is not mistaken for noise):
    var = s^2 sum_k (1 / n_k) / k^2, s^2 = sum of squared residuals / (n - k).
    Works for one method's mean too (pass its values).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    d = _vector(d, "d")
    labels = np.zeros(d.size, dtype=int) if strata is None else \
        np.unique(np.asarray([str(s) for s in strata]), return_inverse=True)[1]
    if labels.size != d.size:
        raise ValueError(f"{d.size} differences but {labels.size} stratum labels")
    n, k = d.size, int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=k)
    means = np.bincount(labels, weights=d, minlength=k) / sizes
    est = float(means.mean())
    if n < 2:
        return TInterval(est, None, None, 1.0, None, 0, n, k, "none", confidence)
    method, df = "t", n - k
    resid = d - means[labels]
    factor = float(np.sum(1.0 / sizes)) / k ** 2
    if df < 1:  # one value per stratum: the strata themselves are the replicates
        method, df, resid, factor = "t-pooled", n - 1, d - d.mean(), 1.0 / n
    s2 = float(np.sum(resid ** 2)) / df
    if s2 <= (1e-12 * max(1.0, float(np.max(np.abs(d))))) ** 2:
        zero = abs(est) <= 1e-12 * max(1.0, float(np.max(np.abs(d))))
        return TInterval(est, est, est, 1.0 if zero else min(1.0, 2.0 / 2 ** n), 0.0, df, n,
                         k, "degenerate", confidence)
    low, high, p = _t_moments(est, s2 * factor, df, confidence)
    return TInterval(est, float(low), float(high), float(p), math.sqrt(s2 * factor), df, n,
                     k, method, confidence)


def _crossed_moments(d: np.ndarray):
    """(estimate, variance, df) of the grand mean of d[..., seed, item] with seeds and
    items crossed random factors (two-way ANOVA, vectorised over leading axes)."""
    S_, I_ = d.shape[-2], d.shape[-1]
    est = d.mean(axis=(-2, -1))
    rows, cols = d.mean(axis=-1), d.mean(axis=-2)
    ms_a = I_ * rows.var(axis=-1, ddof=1)
    ms_b = S_ * cols.var(axis=-1, ddof=1)
    resid = d - rows[..., :, None] - cols[..., None, :] + est[..., None, None]
    df_a, df_b, df_e = S_ - 1, I_ - 1, (S_ - 1) * (I_ - 1)
    ms_e = (resid ** 2).sum(axis=(-2, -1)) / df_e
    num = ms_a + ms_b - ms_e
    with np.errstate(divide="ignore", invalid="ignore"):
        df = num ** 2 / (ms_a ** 2 / df_a + ms_b ** 2 / df_b + ms_e ** 2 / df_e)
    floor = num <= ms_a  # no item variance left once the noise is taken out
    var = np.where(floor, ms_a, num) / (S_ * I_)
    df = np.where(floor, df_a, np.maximum(df, 1.0))
    return est, var, df


def seed_item_t(d, confidence: float = 0.95) -> TInterval:
    """t interval for the mean difference when every seed scores the same items: seeds and
    items are crossed random factors, so the interval speaks for new seeds *and* new
    items of the task (what a seed-only interval on one fixed item sample cannot).

    ``d[s][i]`` = method minus reference on item i under seed s. Variance of the grand
    mean from a two-way ANOVA, (MS_seed + MS_item - MS_resid) / (S I) (floored at
    MS_seed / (S I): item variance estimated at zero), df by Satterthwaite. Items that
    differ between seeds (data seed per seed) are nested, not crossed: use
    :func:`stratified_t` on the seed means, which already carries item sampling.
    """
    d = np.asarray(d, dtype=float)
    if d.ndim != 2 or d.shape[0] < 2 or d.shape[1] < 2 or not np.all(np.isfinite(d)):
        raise ValueError("seed_item_t needs a finite [seeds >= 2, items >= 2] matrix")
    est, var, df = _crossed_moments(d)
    est, var, df = float(est), float(var), float(df)
    if var <= 0:
        return TInterval(est, est, est, 1.0 if est == 0 else min(1.0, 2.0 / 2 ** d.size),
                         0.0, int(round(df)), d.size, 1, "degenerate", confidence)
    low, high, p = _t_moments(est, var, df, confidence)
    return TInterval(est, float(low), float(high), float(p), math.sqrt(var),
                     int(round(df)), d.size, 1, "t-seeds-items", confidence)


def mcnemar_exact(a, b) -> tuple[int, int, float]:
    """Exact McNemar test on paired binary items: (b01, b10, p).

    ``a[i]``, ``b[i]``: item i correct (1) or not (0) for two methods on the same items.
    b01 = items only b gets right, b10 = items only a gets right; under the null each
    discordant item is a fair coin, so p = two-sided binomial p of b10 in b01 + b10
    (``scipy.stats.binomtest``); no discordant item: p = 1.
    """
    a, b = np.asarray(a) >= 0.5, np.asarray(b) >= 0.5
    if a.shape != b.shape:
        raise ValueError(f"paired items differ in number: {a.size} vs {b.size}")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return only_b, only_a, 1.0
    return only_b, only_a, float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


# --------------------------------------------------------------------------- one board

@dataclass(frozen=True)
class Board:
    """All pairwise comparisons of one ranking, corrected together.

    ``pairs[(a, b)]`` (a < b by name): the TInterval of a - b and its Holm-adjusted p over
    all k(k-1)/2 pairs; ``better[m]``: the methods significantly better than m, directly or
    through a chain of significant decisions (so a method significantly better than
    another always ranks strictly above it); ``rank[m]`` = 1 + len(better[m]);
    ``rank_interval[m]`` = [rank, k - the methods m is (transitively) better than]: when
    every decision of the family is right, which Holm guarantees with probability
    >= 1 - alpha, every method's true rank lies in its interval at once.
    """

    methods: list
    pairs: dict
    p_holm: dict
    better: dict
    rank: dict
    rank_interval: dict
    significant_pairs: int
    alpha: float


def paired_differences(x: Mapping, y: Mapping) -> tuple[np.ndarray, list]:
    """(x - y on their common keys, each key's stratum = the key without its seed)."""
    keys = sorted(set(x) & set(y))
    return np.array([x[k] - y[k] for k in keys], dtype=float), [k[:-1] for k in keys]


def board(values: Mapping[str, Mapping], higher_is_better: bool = True, alpha: float = 0.05,
          confidence: float = 0.95) -> Board:
    """The ranking family: ``values`` is method -> (stratum..., seed) -> value; two methods
    are paired on their common keys, the stratum is the key without its last element.
    Every pair gets :func:`stratified_t`; Holm runs over all pairs together (a per-method
    family let 32% of simulated null 14-method boards show a false win)."""
    methods = sorted(values)
    sign = 1.0 if higher_is_better else -1.0
    pairs, names = {}, []
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            d, strata = paired_differences(values[a], values[b])
            pairs[a, b] = stratified_t(d, strata, confidence) if d.size else \
                TInterval(0.0, None, None, 1.0, None, 0, 0, 0, "none", confidence)
            names.append((a, b))
    adjusted = holm([pairs[n].p for n in names]) if names else []
    p_holm = {n: float(q) for n, q in zip(names, adjusted)}
    index = {m: i for i, m in enumerate(methods)}
    beats = np.zeros((len(methods), len(methods)), dtype=bool)  # beats[i, j]: i > j
    for (a, b), q in p_holm.items():
        if q < alpha and pairs[a, b].estimate != 0:
            win, lose = (a, b) if sign * pairs[a, b].estimate > 0 else (b, a)
            beats[index[win], index[lose]] = True
    for j in range(len(methods)):  # Warshall: chains of significant decisions
        beats |= beats[:, [j]] & beats[[j], :]
    k = len(methods)
    better = {m: [o for o in methods if beats[index[o], index[m]]] for m in methods}
    rank = {m: 1 + len(better[m]) for m in methods}
    interval = {m: [rank[m], k - int(beats[index[m]].sum())] for m in methods}
    return Board(methods, pairs, p_holm, better, rank, interval,
                 int(sum(q < alpha for q in p_holm.values())), alpha)


def pair_of(b: Board, method: str, other: str) -> tuple[TInterval, float]:
    """(method - other as a TInterval, its Holm p in the board family)."""
    if (method, other) in b.pairs:
        return b.pairs[method, other], b.p_holm[method, other]
    t = b.pairs[other, method]
    flipped = TInterval(-t.estimate, None if t.ci_high is None else -t.ci_high,
                        None if t.ci_low is None else -t.ci_low, t.p, t.se, t.df, t.n,
                        t.strata, t.method, t.confidence)
    return flipped, b.p_holm[other, method]


# --------------------------------------------------------------------------- power

def minimum_detectable_difference(sd: float, n: int, strata: int = 1, comparisons: int = 1,
                                  alpha: float = 0.05, power: float = 0.8) -> float | None:
    """The smallest true mean difference the design's t-test finds with probability
    ``power``, after the board-wide correction (Holm's first step, alpha / comparisons: the
    bound for the hardest pair). ``sd``: the spread of per-(stream, seed) differences (from
    a pilot, or stated); ``n`` pairs in ``strata`` streams. None where no test exists
    (df < 1). Solved exactly on the noncentral t distribution."""
    from scipy.optimize import brentq

    df = n - strata if n - strata >= 1 else n - 1
    if df < 1 or sd <= 0:
        return None if df < 1 else 0.0
    crit = stats.t.ppf(1 - alpha / (2 * max(1, comparisons)), df)

    def shortfall(nc):  # the far tail (a significant difference of the wrong sign) is ~0
        return stats.nct.sf(crit, df, nc) - power

    high = crit + 1.0
    while shortfall(high) < 0:
        high *= 2
    nc = brentq(shortfall, 0.0, high)
    return float(nc * sd / math.sqrt(n))


def design_mdd(spread: Mapping[str, float], seeds: int, streams: int, methods: int,
               alpha: float = 0.05, power: float = 0.8) -> dict[str, float | None]:
    """Per metric, the minimum detectable difference of a design (seeds per stream x
    streams, a board of ``methods``: all pairs corrected together), from each metric's
    stated or pilot sd of per-(stream, seed) paired differences. What `--dry-run` can
    print before anything is trained."""
    pairs = max(1, methods * (methods - 1) // 2)
    return {metric: minimum_detectable_difference(sd, seeds * streams, streams, pairs,
                                                  alpha, power)
            for metric, sd in spread.items()}


# --------------------------------------------------------------------------- simulation

def simulate_design(seeds: int = 3, streams: int = 2, methods: int = 14, items: int = 32,
                    reps: int = 2000, effect: float = 0.0, seed_sd: float = 0.4,
                    alpha: float = 0.05, confidence: float = 0.95,
                    rng_seed: int = 0) -> dict:
    """Simulate boards of a design and measure the procedure (vectorised numpy).

    Each method's score on (stream, seed) is its accuracy over ``items`` binary items:
    item k of a stream has a fixed logit difficulty ~ N(1, 1.5), every (method, stream,
    seed) run shifts all its logits by ~ N(0, seed_sd) (training noise), and answers are
    Bernoulli. Method 0 is the reference; method 1 gets ``effect`` added to its logits
    (0: a null board, every method identical in distribution). Returns ``coverage`` (share
    of the null methods' t intervals vs the reference that contain 0;
    ``coverage_bootstrap``: the same for the stratified percentile bootstrap the harness
    used before, 400 resamples), ``fwe`` (share of
    boards with a false significant pair under one Holm family over all pairs),
    ``fwe_per_method`` (the same with Holm per method, the old family), ``power`` (share of
    boards where method 1 vs the reference is significant; None for a null board) and their
    Monte Carlo standard errors.
    """
    if seeds < 2 or streams < 1 or methods < 2 or items < 1 or reps < 1:
        raise ValueError("need seeds >= 2, streams >= 1, methods >= 2, items >= 1, reps >= 1")
    rng = np.random.default_rng(rng_seed)
    k, s, m = streams, seeds, methods
    iu, ju = np.triu_indices(m, 1)
    covered, covered_boot, boards_fwe, boards_old, found = 0, 0, 0, 0, 0
    planted = ((iu == 1) | (ju == 1)) & (effect != 0)  # pairs with a true difference
    null_pairs, vs_ref = ~planted, (iu == 0) & ~planted
    for start in range(0, reps, 200):
        r = min(200, reps - start)
        difficulty = rng.normal(1.0, 1.5, size=(r, 1, k, 1, items))
        shift = rng.normal(0.0, seed_sd, size=(r, m, k, s, 1))
        shift[:, 1] += effect
        prob = 1.0 / (1.0 + np.exp(-(difficulty + shift)))
        scores = (rng.random((r, m, k, s, items)) < prob).mean(axis=-1)  # (r, m, k, s)
        d = scores[:, iu] - scores[:, ju]  # (r, pairs, k, s)
        est = d.mean(axis=(-2, -1))
        df = k * (s - 1)
        s2 = ((d - d.mean(axis=-1, keepdims=True)) ** 2).sum(axis=(-2, -1)) / df
        var = s2 / (k * s)
        low, high, p = _t_moments(est, var, df, confidence)
        p = np.where(var > 0, p, np.where(est == 0, 1.0, min(1.0, 2.0 / 2 ** (k * s))))
        covered += int(np.sum((low[:, vs_ref] <= 0) & (high[:, vs_ref] >= 0)
                              | (var[:, vs_ref] == 0) & (est[:, vs_ref] == 0)))
        # the old interval: stratified percentile bootstrap (seeds resampled within streams)
        dr = d[:, vs_ref]  # (r, c, k, s)
        pick = rng.integers(0, s, size=(400, k, s))
        boot = np.stack([dr[:, :, j, pick[:, j]].mean(-1) for j in range(k)], -1).mean(-1)
        blo, bhi = np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2], axis=-1)
        covered_boot += int(np.sum((blo <= 0) & (bhi >= 0)))
        adjusted = holm(p)
        boards_fwe += int(np.sum(np.any((adjusted < alpha) & null_pairs, axis=1)))
        old = np.zeros(r, dtype=bool)
        for method in range(m):
            family = (iu == method) | (ju == method)
            old |= np.any((holm(p[:, family]) < alpha) & null_pairs[family], axis=1)
        boards_old += int(old.sum())
        if effect != 0:
            found += int(np.sum(adjusted[:, (iu == 0) & (ju == 1)] < alpha))
    n_cov = reps * int(vs_ref.sum())
    out = {"seeds": seeds, "streams": streams, "methods": methods, "items": items,
           "reps": reps, "effect": effect, "alpha": alpha, "confidence": confidence,
           "coverage": covered / n_cov, "coverage_bootstrap": covered_boot / n_cov,
           "fwe": boards_fwe / reps,
           "fwe_per_method": boards_old / reps,
           "power": found / reps if effect != 0 else None}
    out["coverage_se"] = math.sqrt(out["coverage"] * (1 - out["coverage"]) / reps)
    out["fwe_se"] = math.sqrt(max(out["fwe"], alpha) * (1 - max(out["fwe"], alpha)) / reps)
    return out
