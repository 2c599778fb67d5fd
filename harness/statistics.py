"""Significance statistics over per-seed cell metrics (see METRICS.md): the one statistics
package `harness report`, the leaderboard and `harness stats-check` read.

A *scenario* is (model, stream, metric). Within a scenario every method has one value per
seed, and seeds fix data order and sampling, so methods are **paired by seed**. Everything
here is a pure function of numbers; reading result files is the caller's job.

The procedure, chosen by simulation (`harness.power.simulate_design`; docs/report.md quotes
it): a t interval and test over paired differences, residuals centred within streams
(`stratified_t`; seeds x items crossed: `seed_item_t`); one Holm family over all pairs
of a ranking (`board`), ranks and rank intervals from its decisions; exact McNemar on
paired items. Aggregates over many scenarios (Friedman/Nemenyi, IQM with the one stratified
bootstrap, probability of improvement, win counts) are in harness/aggregates.py; power and
the design simulation in harness/power.py. Reports must state the number of seeds, the
pairing, the test, the correction family and alpha; the result objects carry ``n`` for that
reason.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

from harness.seeding import generator

__all__ = [
    "TInterval", "Board",
    "stratified_t", "seed_item_t", "paired_permutation_test",
    "paired_t_p", "wilcoxon_test", "mcnemar_exact", "board",
    "holm", "benjamini_hochberg",
]

# --------------------------------------------------------------------------- helpers

def _rng_kwargs(func, seed) -> dict:
    """scipy >= 1.15 takes ``rng=``; older releases only ``random_state=``."""
    gen = generator(seed, "statistics", kind="numpy")
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
    simulations of :func:`harness.power.simulate_design` adjust thousands of boards at once).
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


# --------------------------------------------------------------------------- the procedure
# Every interval, test and rank of `harness report` and the leaderboard comes from here:
# a t interval over paired differences, centred within strata (streams), one Holm family
# per ranking. `harness.power.simulate_design` (and `harness stats-check`) checks its coverage and
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
