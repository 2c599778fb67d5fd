"""Power and design simulation: the minimum detectable difference of a design
(`minimum_detectable_difference`, per metric `design_mdd`, what `harness run --dry-run`
prints and the leaderboard states, both from `observed_spread` where cells exist) and the simulation of whole boards (`simulate_design`, behind `harness stats-check`
and the numbers docs/report.md quotes) that chose and checks the procedure of
harness/statistics.py. They are apart because they do not analyse results: they plan a
design before anything is trained and measure the procedure's coverage, family-wise error
and power on synthetic boards, reusing its t moments and Holm correction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import stats

from harness.seeding import generator
from harness.statistics import _t_moments, holm, paired_differences, stratified_t

__all__ = ["minimum_detectable_difference", "design_mdd", "observed_spread", "simulate_design"]


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


def observed_spread(values: Mapping[str, Mapping]) -> float | None:
    """The spread a board's (or a pilot's) own cells show: the median over all method pairs
    of the sd of their paired differences around each stream's mean (the sd the
    stream-centred t-test sees; ``values``: method -> (model, stream, seed) -> value).
    None where no pair has two paired values. The median, not the mean: one erratic method
    must not set what every pair can detect."""
    methods = sorted(values)
    sds = []
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            d, strata = paired_differences(values[a], values[b])
            t = stratified_t(d, strata) if d.size else None
            if t is not None and t.se is not None:  # balanced: se = sd / sqrt(n)
                sds.append(t.se * math.sqrt(t.n))
    return float(np.median(sds)) if sds else None


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
    rng = generator(rng_seed, "statistics", kind="numpy")
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
