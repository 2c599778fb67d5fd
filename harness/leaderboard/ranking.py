"""The leaderboard's statistics, read from harness.statistics (one procedure for the board
and `harness report`): each method's mean with a stream-centred t interval, and one family
per ranking: all pairs of methods tested together (paired t over (model, stream, seed)
pairs, Holm over the k(k-1)/2 pairs), ranks and rank intervals from those decisions.

Why this procedure (docs/leaderboard.md quotes `harness stats-check`): at 3 seeds a
bootstrap interval covered about 80%, the t interval 95%; Holm within each method's 13
comparisons let 27% of simulated null 14-method boards show a false difference, Holm over
all 91 pairs about 4%. Why t and not a sign-flip permutation test: its smallest two-sided p
with n pairs is 2 / 2^n (2/64 with 6), which no correction over many pairs lets through.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import stats

from harness import statistics as S
from harness.power import minimum_detectable_difference, observed_spread

ALPHA = 0.05
CONFIDENCE = 0.95


def mean_ci(by_pair: Mapping) -> tuple[float, float | None, float | None]:
    """(mean over streams of the mean over seeds, t interval low, high) of one method;
    the stratum of a (model, stream, seed) key is (model, stream)."""
    keys = sorted(by_pair)
    t = S.stratified_t([by_pair[k] for k in keys], [k[:-1] for k in keys], CONFIDENCE)
    return t.estimate, t.ci_low, t.ci_high


def ranks(values: Mapping[str, Mapping], higher_is_better: bool, alpha: float = ALPHA
          ) -> tuple[dict[str, dict], S.Board]:
    """Per method: rank (1 + the methods significantly better, through chains of
    decisions), rank interval, the methods significantly better, and each pair's p and
    Holm p in the one family of all pairs; and the Board itself."""
    b = S.board(values, higher_is_better, alpha, CONFIDENCE)
    out = {}
    for m in b.methods:
        others = [o for o in b.methods if o != m]
        found = {o: S.pair_of(b, o, m) for o in others}
        out[m] = {"rank": b.rank[m], "rank_interval": b.rank_interval[m],
                  "better": b.better[m],
                  "p": {o: t.p for o, (t, _) in found.items()},
                  "p_holm": {o: q for o, (_, q) in found.items()}}
    return out, b


def decisions(b: S.Board, higher_is_better: bool) -> list[dict]:
    """The family's significant pairs, each once: the better method, the worse, the mean
    difference (better minus worse, in the metric's units) and the Holm p; by the better
    method's rank, then the largest difference first."""
    sign = 1.0 if higher_is_better else -1.0
    found = []
    for (a, c), q in b.p_holm.items():
        estimate = b.pairs[a, c].estimate
        if q < b.alpha and estimate != 0:
            win, lose = (a, c) if sign * estimate > 0 else (c, a)
            found.append({"better": win, "worse": lose, "p_holm": q,
                          "difference": estimate if win == a else -estimate})
    return sorted(found, key=lambda d: (b.rank[d["better"]], d["better"],
                                        -sign * d["difference"], d["worse"]))


def versus_reference(values: Mapping[str, Mapping], reference: str, higher_is_better: bool,
                     b: S.Board, alpha: float = ALPHA) -> dict[str, dict]:
    """Every method against the reference over their common pairs: wins, losses and ties
    (pairs where the method is better, worse, equal), the mean difference (method minus
    reference) with its t interval, the t-test p and its Holm p in the board's family."""
    if reference not in values:
        return {}
    sign = 1.0 if higher_is_better else -1.0
    rows = {}
    for m in sorted(values):
        if m == reference:
            continue
        keys = sorted(set(values[m]) & set(values[reference]))
        d = sign * np.array([values[m][k] - values[reference][k] for k in keys])
        t, q = S.pair_of(b, m, reference)
        tol = 1e-12
        rows[m] = {"n": int(d.size), "wins": int(np.sum(d > tol)),
                   "losses": int(np.sum(d < -tol)), "ties": int(np.sum(np.abs(d) <= tol)),
                   "diff": t.estimate if d.size else None,
                   "ci": [t.ci_low, t.ci_high] if t.ci_low is not None else None,
                   "p": t.p, "p_holm": q, "significant": bool(q < alpha),
                   "direction": ("equal" if not t.estimate else
                                 "better" if t.estimate * sign > 0 else "worse")}
    return rows


def power(n_pairs: int, n_strata: int, n_methods: int, alpha: float = ALPHA) -> dict:
    """What the rank test can detect with n_pairs pairs in n_strata streams and one Holm
    family of all n_methods (n_methods - 1) / 2 pairs: the permutation floor (why not a
    permutation test) and the t critical values at Holm's first (alpha / m) and last
    (alpha) step, also as a multiple of the sd of the per-pair differences (difference /
    sd must exceed it to be significant)."""
    m = max(1, n_methods * (n_methods - 1) // 2)
    floor = 2.0 / 2 ** n_pairs if n_pairs >= 1 else 1.0
    df = n_pairs - n_strata if n_pairs - n_strata >= 1 else n_pairs - 1
    out = {"n_pairs": n_pairs, "n_strata": n_strata, "df": df, "comparisons": m,
           "alpha": alpha, "permutation_floor_p": floor,
           "permutation_floor_holm": min(1.0, m * floor),
           "t_first": None, "t_last": None, "sd_ratio_first": None, "sd_ratio_last": None}
    if df >= 1:
        t_first = float(stats.t.ppf(1 - alpha / (2 * m), df))
        t_last = float(stats.t.ppf(1 - alpha / 2, df))
        root = math.sqrt(n_pairs)
        out.update(t_first=t_first, t_last=t_last, sd_ratio_first=t_first / root,
                   sd_ratio_last=t_last / root)
    return out


def detectable(values: Mapping[str, Mapping], n_pairs: int, n_strata: int, n_methods: int,
               alpha: float = ALPHA) -> dict:
    """What this board can detect on one metric, from its own spread
    (harness.power.observed_spread: the median over method pairs of the sd of their
    stream-centred paired differences): the smallest difference the rank test could call
    significant at Holm's first and last step, and the minimum detectable difference at
    80% power after the board-wide correction (harness.power.minimum_detectable_difference).
    None where the median pair has no spread: its differences only get the sign-flip p
    2 / 2^n, whatever their size."""
    sd = observed_spread(values)
    p = power(n_pairs, n_strata, n_methods, alpha)
    if not sd or p["sd_ratio_first"] is None:  # 0: most pairs have no spread, so no t-test
        return {"sd_median": sd, "first": None, "last": None, "mdd80": None}
    return {"sd_median": sd, "first": sd * p["sd_ratio_first"], "last": sd * p["sd_ratio_last"],
            "mdd80": minimum_detectable_difference(sd, n_pairs, n_strata, p["comparisons"],
                                                   alpha)}


def pareto_front(points: Mapping[str, tuple[float, float]]) -> list[str]:
    """Names not dominated, for x lower-is-better and y higher-is-better: no other point
    has x <= and y >= with one strict. Sorted by x."""
    front = [n for n, (x, y) in points.items()
             if not any(ox <= x and oy >= y and (ox < x or oy > y)
                        for o, (ox, oy) in points.items() if o != n)]
    return sorted(front, key=lambda n: (points[n][0], -points[n][1], n))
