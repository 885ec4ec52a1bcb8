"""Wilcoxon's signed-rank test (two-sided, zeros split) for many pairs at once, each pair decided on its own.

`sps.wilcoxon(d, axis=0)` over a matrix of pairs chooses one method for the whole batch: one tied or zero
difference in any pair sends every pair to the permutation method when there are at most 13 suites, or to
the normal approximation above that, so a pair's p-value depended on the other pairs in the table. Here each
pair gets what `sps.wilcoxon` (method "auto") gives that pair alone, which is what a reader recomputing one
pair gets:

- no ties and no zeros, n <= 50: the exact null distribution (scipy's `method="exact"`);
- ties or zeros, n <= 13: the exact conditional null distribution given the |differences|, i.e. all 2^n sign
  flips (scipy's permutation test enumerates them, as 2^13 < its 9,999 resamples). It is computed here by
  counting the sums of the doubled ranks (average ranks are multiples of 1/2) instead of enumerating: the same
  distribution and the same p-values (tests/test_signed_rank.py checks them against scipy's), in microseconds
  instead of scipy's 2^n evaluations of the statistic per pair;
- otherwise (ties or zeros with n > 13, or n > 50): the normal approximation with scipy's tie correction
  (scipy's `method="asymptotic"`, no continuity correction, as "auto" does).

Both exact branches are exact tests (their type-I error is at most alpha); the approximation's at the
leaderboard's sizes is checked by simulation in the tests.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

EXHAUSTIVE_MAX_N = 13  # scipy's "auto": with ties or zeros, the permutation test up to here (2^13 < 9,999)
EXACT_MAX_N = 50  # scipy's "auto": the exact distribution up to here, the normal approximation above


def signed_rank_p(d: np.ndarray) -> np.ndarray:
    """Two-sided p-values of Wilcoxon's signed-rank test (zero_method "zsplit") of each column of `d`
    (n suites x pairs, finite), each as `scipy.stats.wilcoxon(column, zero_method="zsplit")` gives it."""
    d = np.asarray(d, dtype=float)
    if d.ndim != 2:
        raise ValueError(f"expected a matrix of differences (suites x pairs), got shape {d.shape}")
    n, k = d.shape
    p = np.full(k, np.nan)
    if n == 0 or k == 0:
        return p
    a = np.sort(np.abs(d), axis=0)
    tied = (d == 0).any(axis=0)
    if n > 1:
        tied |= (np.diff(a, axis=0) == 0).any(axis=0)
    exact = ~tied & (n <= EXACT_MAX_N)
    flips = tied & (n <= EXHAUSTIVE_MAX_N)
    approx = ~exact & ~flips
    if exact.any():
        p[exact] = sps.wilcoxon(d[:, exact], zero_method="zsplit", method="exact", axis=0).pvalue
    if approx.any():
        p[approx] = sps.wilcoxon(d[:, approx], zero_method="zsplit", method="asymptotic", axis=0).pvalue
    for j in np.flatnonzero(flips):
        p[j] = _all_sign_flips_p(d[:, j])
    return p


def _all_sign_flips_p(d: np.ndarray) -> float:
    """The two-sided p-value of R+ (zeros' ranks split in half) over all 2^n sign flips of `d`: 2 min(P(R+ <= r),
    P(R+ >= r)), at most 1. A flip leaves a zero as it is, so the zeros add a constant; each other difference
    adds its rank or not, with probability 1/2 each: the distribution of the sum is counted over the doubled
    ranks (integers), one difference at a time."""
    doubled = np.rint(2.0 * sps.rankdata(np.abs(d))).astype(np.int64)
    moving = doubled[d != 0]
    observed = int(doubled[d > 0].sum())  # R+ without the zeros' constant half, doubled
    counts = np.zeros(int(moving.sum()) + 1, dtype=np.int64)
    counts[0] = 1
    top = 0
    for r in moving.tolist():
        counts[r : top + r + 1] += counts[: top + 1].copy()
        top += r
    total = float(2 ** len(moving))
    below = counts[: observed + 1].sum() / total
    above = counts[observed:].sum() / total
    return float(min(1.0, 2.0 * min(below, above)))
