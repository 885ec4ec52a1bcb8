"""The leaderboard's inferential rules: what a reviewer accepts as evidence that A beats B.

- **Suites are the unit of evidence** across problems: the study seeds of one suite are repeated measures of one
  problem, so a test across problems counts suites (Demšar's N), and an interval over problems resamples suites,
  then seeds within each (`hierarchical_bootstrap`).
- **Within one suite**, A beats B when the paired differences over the study seeds both ran are significant
  after Holm's correction over the comparisons made on that suite (`sign_flip_test`, `holm`).
- **Minimum detectable difference** (`mdd`): the true paired difference a two-sided paired t-test at α = 0.05
  detects with 80% power with n seeds and the paired sd measured (non-central t, no normal approximation).
- **Intervals of a mean over seeds** (`t_interval`): Student's t, which covers its nominal level under normal
  noise at any n (a percentile bootstrap over 8 seeds covers about 90% of the time when it says 95%).

Everything is deterministic: random resampling draws from a generator seeded from the cell's name.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import functools
import math
from typing import Any

import numpy as np
from scipy import optimize
from scipy import stats as sps

from leaderboard.signed_rank import signed_rank_p

ALPHA = 0.05
POWER = 0.8
LEVEL = 0.95
EXACT_FLIPS_MAX_N = 16  # up to 2^16 sign patterns enumerated; beyond, a seeded Monte Carlo sample
FLIP_RESAMPLES = 10000
BOOTSTRAP_RESAMPLES = 2000
ZERO = 1e-12


def seed_of(*parts: Any) -> int:
    return int.from_bytes(
        hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()[:8], "little"
    )


def _finite(x) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    return a[np.isfinite(a)]


# -- one mean over seeds --------------------------------------------------------------------------------
def t_interval(values, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high): Student's t interval of the mean; one value or identical values give a point."""
    x = _finite(values)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if x.size == 1:
        return m, m, m
    se = float(x.std(ddof=1) / math.sqrt(x.size))
    if se <= ZERO * max(1.0, abs(m)):
        return m, m, m
    h = _t_quantile(0.5 + level / 2, x.size - 1) * se
    return m, m - h, m + h


@functools.lru_cache(maxsize=1024)
def _t_quantile(q: float, df: int) -> float:
    """Student's t quantile, remembered: a render asks it ~14,000 times for a few dozen (q, df), and scipy's
    `ppf` costs ~0.2 ms a call (the same number each time: a pure function)."""
    return float(sps.t.ppf(q, df))


def paired_t(d, level: float = LEVEL) -> dict[str, float]:
    """Paired t-test of mean(d) = 0 (two-sided) with its t-interval; p = 1 when every difference is 0, and
    p = 0 when every difference is the same non-zero value (no variance: the sign is certain)."""
    x = _finite(d)
    n = int(x.size)
    m, lo, hi = t_interval(x, level)
    out = {"n": n, "mean": m, "lo": lo, "hi": hi, "sd": float(x.std(ddof=1)) if n >= 2 else math.nan, "p": math.nan}
    if n < 2:
        return out
    if out["sd"] <= ZERO * max(1.0, abs(m)):
        out["p"] = 1.0 if abs(m) <= ZERO else 0.0
        return out
    t = m / (out["sd"] / math.sqrt(n))
    out["p"] = float(2 * sps.t.sf(abs(t), n - 1))  # = scipy.stats.ttest_1samp(x, 0).pvalue, without its overhead
    return out


def sign_flip_test(d, *key: Any, resamples: int = FLIP_RESAMPLES) -> float:
    """Two-sided permutation p-value of mean(d) = 0 by flipping the signs of the paired differences: exact (all
    2^n patterns) for n <= EXACT_FLIPS_MAX_N, else a seeded Monte Carlo sample with p = (1 + hits)/(1 + draws),
    which is a valid p-value. Every difference 0: p = 1."""
    x = _finite(d)
    n = x.size
    if n == 0:
        return math.nan
    observed = abs(x.sum())
    if observed <= ZERO:
        return 1.0
    tol = 1e-9 * max(1.0, float(np.abs(x).sum()))
    if n <= EXACT_FLIPS_MAX_N:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1)
        stats = np.abs(signs @ x)
        return float((stats >= observed - tol).mean())
    rng = np.random.default_rng(seed_of("flip", *key))
    signs = rng.integers(0, 2, size=(resamples, n)).astype(float) * 2 - 1
    hits = int((np.abs(signs @ x) >= observed - tol).sum())
    return (1 + hits) / (1 + resamples)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count as a comparison)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


# -- power -------------------------------------------------------------------------------------------------
def _power(effect: float, n: int, alpha: float) -> float:
    """Power of the two-sided paired t-test at `alpha` with n pairs for a true difference of `effect` sds."""
    df = n - 1
    crit = sps.t.ppf(1 - alpha / 2, df)
    nc = effect * math.sqrt(n)
    p = float(sps.nct.sf(crit, df, nc) + sps.nct.cdf(-crit, df, nc))
    if not math.isfinite(p):  # scipy's non-central t gives NaN far in its tail, where the power is 1
        return 1.0 if nc > crit else 0.0
    return min(1.0, p)


def mdd(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true paired difference a two-sided paired t-test at `alpha` detects with `power`, given n
    pairs and the sd of one paired difference (non-central t)."""
    if not (math.isfinite(sd) and n >= 2):
        return math.nan
    if sd <= 0:
        return 0.0
    hi = 1.0
    while _power(hi, n, alpha) < power:
        hi *= 2
    return sd * float(optimize.brentq(lambda e: _power(e, n, alpha) - power, 0.0, hi, xtol=1e-10))


def seeds_needed(sd: float, delta: float, alpha: float = ALPHA, power: float = POWER, most: int = 100000) -> int | None:
    """The fewest paired seeds for which a true difference `delta` is detected with `power` (None beyond `most`)."""
    if not (math.isfinite(sd) and delta > 0):
        return None
    if sd <= 0:
        return 2
    lo, hi = 2, 2
    while _power(delta / sd, hi, alpha) < power:
        lo, hi = hi, hi * 2
        if hi > most:
            return None
    while lo < hi:
        mid = (lo + hi) // 2
        if _power(delta / sd, mid, alpha) >= power:
            hi = mid
        else:
            lo = mid + 1
    return int(lo)


# -- across suites -------------------------------------------------------------------------------------------
def rank_rows(values: np.ndarray) -> np.ndarray:
    """Ranks within each row (last axis), 1 = highest value, ties sharing the average rank."""
    return sps.rankdata(-np.asarray(values, dtype=float), axis=-1, method="average")


def friedman_p(per_suite: np.ndarray) -> float:
    """Friedman's test over suites (rows) of k strategies (columns): scipy's chi-square; NaN when undefined."""
    m = np.asarray(per_suite, dtype=float)
    if m.ndim != 2 or m.shape[0] < 2 or m.shape[1] < 3 or np.ptp(m, axis=1).max() <= 0:
        return math.nan
    return float(sps.friedmanchisquare(*m.T).pvalue)


def nemenyi_cd(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi's critical difference of average ranks for k strategies over n data sets (Demšar 2006):
    q_α(k)·√(k(k+1)/(6n)), q_α the studentized range quantile over √2."""
    if k < 2 or n < 1:
        return math.nan
    q = float(sps.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q * math.sqrt(k * (k + 1) / (6.0 * n))


def wilcoxon_holm(per_suite: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    """Every pair of strategies: Wilcoxon's signed-rank test over suites of the difference of their per-suite
    values, each pair as scipy tests it alone (leaderboard/signed_rank.py: exact for small N, the exact
    sign-flip distribution with ties or zeros), Holm-adjusted over all pairs. A pair whose differences are all 0
    gets p = 1."""
    m = np.asarray(per_suite, dtype=float)
    pairs = list(itertools.combinations(range(len(names)), 2))
    rows = [{"a": names[i], "b": names[j], "n": int(m.shape[0]), "p": math.nan} for i, j in pairs]
    if pairs and m.shape[0] >= 1 and np.isfinite(m).all():
        d = np.stack([m[:, i] - m[:, j] for i, j in pairs], axis=1)  # suites x pairs: one vectorised call
        zero = np.all(np.abs(d) <= ZERO, axis=0)
        p = np.ones(len(pairs))
        if (~zero).any():
            p[~zero] = signed_rank_p(d[:, ~zero])
        for r, v in zip(rows, p):
            r["p"] = float(v)
    for r, q in zip(rows, holm([r["p"] for r in rows])):
        r["p_holm"] = float(q)
    return rows


def hierarchical_bootstrap(
    blocks: list[tuple[np.ndarray, np.ndarray]],
    *key: Any,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = LEVEL,
    widen_few: bool = True,
) -> dict[str, np.ndarray]:
    """CIs of the mean rank and the mean regret over suites, resampling suites, then seeds within each.

    `blocks`: per suite, (oriented scores, normalised regrets), each seeds × strategies (the same strategies, in
    the same order, in every block; a row is one study seed every strategy ran). Per resample: N suites drawn
    with replacement, each one's seeds drawn with replacement (independently for a suite drawn twice), the
    strategies ranked within each suite by their mean over those seeds, then averaged over the N suites.
    Returns the point estimates (rank, regret) and the bounds of each (arrays over strategies): the percentile
    bounds, widened where Student's t over the per-suite values is wider (`widen_few`, see below)."""
    rng = np.random.default_rng(seed_of("hierarchical", *key))
    n_suites = len(blocks)
    k = blocks[0][0].shape[1]
    point_rank = np.mean([rank_rows(b[0].mean(axis=0)) for b in blocks], axis=0)
    point_regret = np.mean([b[1].mean(axis=0) for b in blocks], axis=0)
    picks = rng.integers(0, n_suites, size=(resamples, n_suites))
    ranks = np.zeros((resamples, k))
    regrets = np.zeros((resamples, k))
    for j in range(n_suites):  # the j-th draw of every resample
        score_means = np.empty((resamples, k))
        regret_means = np.empty((resamples, k))
        for s, (score, regret) in enumerate(blocks):
            rows = np.flatnonzero(picks[:, j] == s)
            if rows.size == 0:
                continue
            idx = rng.integers(0, score.shape[0], size=(rows.size, score.shape[0]))
            score_means[rows] = score[idx].mean(axis=1)
            regret_means[rows] = regret[idx].mean(axis=1)
        ranks += rank_rows(score_means)
        regrets += regret_means
    ranks /= n_suites
    regrets /= n_suites
    a = (1 - level) / 2
    out = {
        "rank": point_rank,
        "rank_lo": np.quantile(ranks, a, axis=0),
        "rank_hi": np.quantile(ranks, 1 - a, axis=0),
        "regret": point_regret,
        "regret_lo": np.quantile(regrets, a, axis=0),
        "regret_hi": np.quantile(regrets, 1 - a, axis=0),
    }
    if widen_few and n_suites >= 2:
        # With few suites a percentile bootstrap cannot see how far the next suite may fall (measured coverage of a
        # 95% interval: about 0.78 with 3 suites, 0.92 with 10): widen each interval to Student's t over the
        # per-suite values (N - 1 degrees of freedom) where that is wider. Ranks stay within 1..k.
        per_rank = np.array([rank_rows(b[0].mean(axis=0)) for b in blocks])
        per_regret = np.array([b[1].mean(axis=0) for b in blocks])
        for name, per in (("rank", per_rank), ("regret", per_regret)):
            t = [t_interval(per[:, j], level) for j in range(k)]
            out[f"{name}_lo"] = np.minimum(out[f"{name}_lo"], [x[1] for x in t])
            out[f"{name}_hi"] = np.maximum(out[f"{name}_hi"], [x[2] for x in t])
        out["rank_lo"], out["rank_hi"] = np.clip(out["rank_lo"], 1, k), np.clip(out["rank_hi"], 1, k)
    return out


def spearman_interval(
    a_seeds: np.ndarray, b_seeds: np.ndarray, *key: Any, resamples: int = BOOTSTRAP_RESAMPLES, level: float = LEVEL
) -> tuple[float, float, float]:
    """Spearman's ρ between two suites' strategy means, with a bootstrap interval that resamples the
    strategies (pairs) and, within each suite, the study seeds. `a_seeds`, `b_seeds`: seeds × strategies
    (NaN-free, the same strategies in the same order)."""
    k = a_seeds.shape[1]
    rho = float(sps.spearmanr(a_seeds.mean(axis=0), b_seeds.mean(axis=0)).statistic)
    rng = np.random.default_rng(seed_of("spearman", *key))
    strat = rng.integers(0, k, size=(resamples, k))
    ma = a_seeds[rng.integers(0, a_seeds.shape[0], size=(resamples, a_seeds.shape[0]))].mean(axis=1)
    mb = b_seeds[rng.integers(0, b_seeds.shape[0], size=(resamples, b_seeds.shape[0]))].mean(axis=1)
    ra = rank_rows(np.take_along_axis(ma, strat, axis=1))
    rb = rank_rows(np.take_along_axis(mb, strat, axis=1))
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    ok = den > 0
    if ok.sum() < resamples // 2:
        return rho, math.nan, math.nan
    r = (ra * rb).sum(axis=1)[ok] / den[ok]
    a = (1 - level) / 2
    lo, hi = np.quantile(r, [a, 1 - a])
    return rho, float(lo), float(hi)
