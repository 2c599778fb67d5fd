"""Aggregates over many scenarios: Friedman and the Nemenyi critical difference over average
ranks, the interquartile mean with the one stratified bootstrap (`stratified_bootstrap`),
probability of improvement, and "best in k of n" win counts. These take one value (or one
sample of seeds) per scenario and summarise a method across the whole grid, where
harness/statistics.py owns the within-scenario procedure (paired t intervals, Holm and
Benjamini-Hochberg, the ranking board); they are apart because they answer a different
question (how a method does over the grid, not whether two methods differ in one scenario)
and share nothing with that procedure but the input check `_vector`. Pure functions of
numbers, like harness/statistics.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import stats

from harness.seeding import generator
from harness.statistics import _vector

__all__ = [
    "FriedmanResult", "IQMInterval", "WinCount",
    "friedman", "nemenyi_cd", "iqm", "stratified_bootstrap", "stratified_bootstrap_iqm_ci",
    "probability_of_improvement", "win_counts",
]

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
    few seeds, use :func:`harness.statistics.stratified_t` (a bootstrap over 3 seeds covers
    about 80%)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    groups = [_vector(v, f"groups[{i}]") for i, v in enumerate(groups)]
    if not groups:
        raise ValueError("no groups given")
    point = float(statistic(np.concatenate(groups), axis=0))
    rng = generator(seed, "statistics", kind="numpy")
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
