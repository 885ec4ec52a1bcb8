"""leaderboard/signed_rank.py: each pair's Wilcoxon p-value as scipy gives that pair alone, the all-sign-flips
distribution counted instead of enumerated, and the type-I error of the chosen tests under a planted null."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from leaderboard.signed_rank import EXHAUSTIVE_MAX_N, _all_sign_flips_p, signed_rank_p


def _scipy_one_pair(column: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(sps.wilcoxon(column, zero_method="zsplit").pvalue)


def _columns(rng, n: int) -> np.ndarray:
    """Continuous differences (no ties), differences rounded to 0.1 (ties, some zeros) and small integers (many
    ties and zeros), two of each."""
    cols = [
        rng.normal(size=n),
        rng.normal(0.4, 1, size=n),
        np.round(rng.normal(size=n), 1),
        np.round(rng.normal(0.3, 1, size=n), 1),
        rng.integers(-3, 4, size=n).astype(float),
        rng.integers(-1, 4, size=n).astype(float),
    ]
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 7, 9, 12, 13, 14, 17, 25, 50, 51])
def test_each_pair_gets_what_scipy_gives_it_alone(n):
    rng = np.random.default_rng(n)
    d = _columns(rng, n)
    if 11 <= n <= EXHAUSTIVE_MAX_N:
        d = d[:, ::2]  # scipy enumerates 2^n flips per tied pair: seconds each on a busy machine
    got = signed_rank_p(d)
    want = []
    for j in range(d.shape[1]):
        if (d[:, j] == 0).all():
            want.append(math.nan)  # scipy's permutation test refuses a column of zeros (the caller's p = 1)
            assert got[j] == 1.0
            continue
        want.append(_scipy_one_pair(d[:, j]))
    ok = np.isnan(want) | np.isclose(got, want, rtol=1e-12, atol=0)
    assert ok.all(), f"n={n}: {got[~ok]} != {np.asarray(want)[~ok]}"


def test_the_batch_call_decided_for_every_pair_at_once():
    """What changed: one tie in another pair sent a tie-free pair to scipy's permutation method; it now gets the
    exact distribution, as it does alone (here the two agree; at n > 13 the batch call fell back to the normal
    approximation for every pair, and the tie-free ones now keep the exact p)."""
    rng = np.random.default_rng(3)
    clean = rng.normal(size=16)
    tied = np.round(rng.normal(size=16), 0)
    d = np.stack([clean, tied], axis=1)
    batch = sps.wilcoxon(d, zero_method="zsplit", axis=0).pvalue
    alone = [_scipy_one_pair(clean), _scipy_one_pair(tied)]
    got = signed_rank_p(d)
    assert got == pytest.approx(alone, rel=1e-12)
    assert batch[0] != pytest.approx(alone[0], rel=1e-6), "the batch call approximated the tie-free pair"


def test_the_counted_distribution_is_the_enumerated_one():
    """All 2^n sign flips enumerated by hand (R+ with the zeros' ranks split), against the counted distribution."""
    rng = np.random.default_rng(11)
    for n in range(1, 11):
        for _ in range(5):
            d = rng.integers(-2, 3, size=n).astype(float) * rng.choice([0.5, 1.0])
            ranks = sps.rankdata(np.abs(d))
            stat = lambda s: float(np.sum(ranks[s > 0]) + np.sum(ranks[s == 0]) / 2)  # noqa: E731
            observed = stat(d)
            null = [stat(d * np.array(signs)) for signs in itertools.product((1.0, -1.0), repeat=n)]
            below = np.mean([v <= observed + 1e-9 for v in null])
            above = np.mean([v >= observed - 1e-9 for v in null])
            assert _all_sign_flips_p(d) == pytest.approx(min(1.0, 2 * min(below, above)), rel=1e-12)


@pytest.mark.parametrize("n", [4, 6, 8, 10, 13, 14, 20, 30])
@pytest.mark.parametrize("kind", ["continuous", "rounded", "integers"])
def test_type_one_error_under_a_planted_null(n, kind):
    """Differences symmetric about 0 (the null): the share of p < 0.05 is at most 0.05 plus three Monte Carlo
    standard errors, at the leaderboard's sizes (suites per track), with and without ties and zeros."""
    reps, alpha = 4000, 0.05
    rng = np.random.default_rng(1000 * n + len(kind))
    x = rng.standard_t(3, size=(n, reps))  # heavy tails, symmetric
    if kind == "rounded":
        x = np.round(x, 0)
    elif kind == "integers":
        x = rng.integers(-2, 3, size=(n, reps)).astype(float)
    x = x[:, ~(x == 0).all(axis=0)]  # an all-zero pair gets p = 1 from the caller, never a rejection
    p = signed_rank_p(x)
    assert np.isfinite(p).all()
    rate = float(np.mean(p < alpha))
    assert rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / x.shape[1]), f"n={n} {kind}: {rate:.4f}"
    if n >= 10:  # and the test is not blind: a planted shift of one unit is found often
        shifted = signed_rank_p(x + 1.0)
        assert np.mean(shifted < alpha) > 0.3


def test_the_sizes_where_the_exhaustive_count_applies_match_scipy():
    assert EXHAUSTIVE_MAX_N == 13 and 2**EXHAUSTIVE_MAX_N < 9999 < 2 ** (EXHAUSTIVE_MAX_N + 1)
