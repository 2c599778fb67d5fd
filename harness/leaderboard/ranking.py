"""The leaderboard's statistics: an aggregate with a stratified-bootstrap CI, tie-aware ranks
from paired tests, and comparisons with the reference (SFT). Pure functions of numbers.

Why a paired t-test for ranks: the grid pairs methods on (model, stream, seed), and there
are few pairs (2 streams x 3 seeds = 6). An exact sign-flip permutation test's smallest
two-sided p with n pairs is 2 / 2^n (2/64 = 0.031 for 6), and Holm multiplies the smallest
p by the number of comparisons, so with more than one comparison nothing could ever be
significant: ranks would all be 1 by construction. The t-test assumes roughly normal
per-pair differences and in exchange can detect a consistent difference with 6 pairs.
`power` states what that buys: the smallest difference that can be called significant.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import numpy as np
from scipy import stats

from harness import statistics as S

ALPHA = 0.05
CONFIDENCE = 0.95
N_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
EXACT_LIMIT = 200_000  # enumerate the bootstrap up to this many resamples


def stratified_mean_ci(groups: list, confidence: float = CONFIDENCE,
                       n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED
                       ) -> tuple[float, float, float]:
    """(point, low, high): the mean over strata of each stratum's mean, with a percentile
    CI from resampling values with replacement *within* each stratum (the scheme of
    harness.statistics.stratified_bootstrap_iqm_ci, for a mean). Strata are streams, values
    seeds; every stratum keeps its weight.

    Where the strata allow at most EXACT_LIMIT resamples (prod n_s^n_s: 729 for 2 streams
    x 3 seeds) every resample is enumerated: the exact bootstrap distribution, with no
    Monte Carlo error and no random numbers (the same bytes with any numpy). Otherwise
    n_resamples draws with a fixed seed, the same for every method (common random numbers:
    one method's interval never depends on which others are ranked)."""
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not groups:
        raise ValueError("no values")
    point = float(np.mean([g.mean() for g in groups]))
    if math.prod(g.size ** g.size for g in groups) <= EXACT_LIMIT:
        boot = np.zeros(1)
        for g in groups:  # every combination of every stratum's resample means
            means = g[np.array(list(itertools.product(range(g.size), repeat=g.size)))].mean(axis=1)
            boot = (boot[:, None] + means[None, :]).ravel()
        boot = boot / len(groups)
    else:
        rng = np.random.default_rng(seed)
        boot = np.mean([g[rng.integers(0, g.size, size=(n_resamples, g.size))].mean(axis=1)
                        for g in groups], axis=0)
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    return point, float(low), float(high)


def _paired(x: Mapping, y: Mapping) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(x) & set(y))
    return np.array([x[k] for k in keys], dtype=float), np.array([y[k] for k in keys], dtype=float)


def ranks(values: Mapping[str, Mapping], higher_is_better: bool, alpha: float = ALPHA
          ) -> dict[str, dict]:
    """Tie-aware ranks: rank(m) = 1 + the number of methods significantly better than m.

    `values` is method -> pair -> value. "o significantly better than m": the paired t-test
    of o against m over their common pairs, Holm-adjusted within m's family (m against every
    other method), has adjusted p < alpha and o's mean difference is better. Returns per
    method its rank, the methods better than it, and each comparison's p and adjusted p."""
    methods = sorted(values)
    sign = 1.0 if higher_is_better else -1.0
    p, better_by = {}, {}
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            xa, xb = _paired(values[a], values[b])
            p[a, b] = p[b, a] = S.paired_t_p(xa, xb)
            d = sign * float(np.mean(xa - xb)) if xa.size else 0.0
            better_by[a, b], better_by[b, a] = d, -d
    out = {}
    for m in methods:
        others = [o for o in methods if o != m]
        adjusted = S.holm([p[o, m] for o in others]) if others else []
        better = [o for o, q in zip(others, adjusted) if q < alpha and better_by[o, m] > 0]
        out[m] = {"rank": 1 + len(better), "better": better,
                  "p": {o: p[o, m] for o in others},
                  "p_holm": {o: float(q) for o, q in zip(others, adjusted)}}
    return out


def versus_reference(values: Mapping[str, Mapping], reference: str, higher_is_better: bool,
                     alpha: float = ALPHA) -> dict[str, dict]:
    """Every method against the reference over their common pairs: wins, losses and ties
    (pairs where the method is better, worse, equal), the mean difference (method minus
    reference), the paired t-test p, and p Holm-adjusted over all methods' comparisons."""
    if reference not in values:
        return {}
    sign = 1.0 if higher_is_better else -1.0
    rows = {}
    for m in sorted(values):
        if m == reference:
            continue
        xa, xb = _paired(values[m], values[reference])
        d = sign * (xa - xb)
        tol = 1e-12
        rows[m] = {"n": int(d.size), "wins": int(np.sum(d > tol)),
                   "losses": int(np.sum(d < -tol)), "ties": int(np.sum(np.abs(d) <= tol)),
                   "diff": float(np.mean(xa - xb)) if d.size else None,
                   "p": S.paired_t_p(xa, xb)}
    for m, q in zip(rows, S.holm([r["p"] for r in rows.values()]) if rows else []):
        better = (rows[m]["diff"] or 0.0) * sign > 0
        rows[m]["p_holm"] = float(q)
        rows[m]["significant"] = bool(q < alpha)
        rows[m]["direction"] = ("equal" if not rows[m]["diff"] else
                                "better" if better else "worse")
    return rows


def power(n_pairs: int, n_methods: int, alpha: float = ALPHA) -> dict:
    """What the rank test can detect with n_pairs pairs and n_methods - 1 comparisons per
    family: the permutation floor (why not a permutation test) and the t critical values
    at Holm's first (alpha / m) and last (alpha) step, also as a multiple of the sd of
    the per-pair differences (difference / sd must exceed it to be significant)."""
    m = max(1, n_methods - 1)
    floor = 2.0 / 2 ** n_pairs if n_pairs >= 1 else 1.0
    out = {"n_pairs": n_pairs, "comparisons": n_methods - 1, "alpha": alpha,
           "permutation_floor_p": floor, "permutation_floor_holm": min(1.0, m * floor),
           "t_first": None, "t_last": None, "sd_ratio_first": None, "sd_ratio_last": None}
    if n_pairs >= 2:
        df = n_pairs - 1
        t_first = float(stats.t.ppf(1 - alpha / (2 * m), df))
        t_last = float(stats.t.ppf(1 - alpha / 2, df))
        root = math.sqrt(n_pairs)
        out.update(t_first=t_first, t_last=t_last, sd_ratio_first=t_first / root,
                   sd_ratio_last=t_last / root)
    return out


def detectable(values: Mapping[str, Mapping], n_pairs: int, n_methods: int,
               alpha: float = ALPHA) -> dict:
    """The smallest difference the rank test could call significant on this metric, given
    the median (over all method pairs) sd of the per-pair differences."""
    methods = sorted(values)
    sds = []
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            xa, xb = _paired(values[a], values[b])
            if xa.size >= 2:
                sds.append(float(np.std(xa - xb, ddof=1)))
    p = power(n_pairs, n_methods, alpha)
    if not sds or p["sd_ratio_first"] is None:
        return {"sd_median": None, "first": None, "last": None}
    sd = float(np.median(sds))
    return {"sd_median": sd, "first": sd * p["sd_ratio_first"], "last": sd * p["sd_ratio_last"]}


def pareto_front(points: Mapping[str, tuple[float, float]]) -> list[str]:
    """Names not dominated, for x lower-is-better and y higher-is-better: no other point
    has x <= and y >= with one strict. Sorted by x."""
    front = [n for n, (x, y) in points.items()
             if not any(ox <= x and oy >= y and (ox < x or oy > y)
                        for o, (ox, oy) in points.items() if o != n)]
    return sorted(front, key=lambda n: (points[n][0], -points[n][1], n))
