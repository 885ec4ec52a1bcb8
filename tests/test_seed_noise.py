"""The seed-noise rules auto uses in multi-seed pools (strategies/seed_noise.py), against hand-computed
numbers and a simulation with a planted truth."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from strategies.seed_noise import leader_is_uncertain, pooled_within_variance, posterior_means


def test_pooled_within_variance_by_hand():
    # (1, 3): ss 2, dof 1; (2, 2, 5): mean 3, ss 1 + 1 + 4 = 6, dof 2; (7,): no dof -> 8 / 3
    assert np.isclose(pooled_within_variance([[1.0, 3.0], [2.0, 2.0, 5.0], [7.0]]), 8 / 3)
    assert pooled_within_variance([[1.0], [2.0]]) is None
    assert pooled_within_variance([[1.0, 1.0], [4.0]]) == 0.0


def test_posterior_means_are_the_observed_ones_without_measured_noise():
    m = np.array([0.1, 0.5, 0.3])
    for within in (None, 0.0):
        post, var = posterior_means(m, np.ones(3), within)
        assert np.array_equal(post, m) and not var.any()


def test_shrinkage_beats_raw_means_on_a_planted_truth():
    """θ ~ N(0, 1), one to four runs with noise sd 2: the posterior means' squared error is smaller than the
    raw means' (James-Stein), in a simulation of 300 tables of 12 candidates."""
    rng = np.random.default_rng(0)
    raw, shrunk = [], []
    for _ in range(300):
        theta = rng.normal(size=12)
        k = rng.integers(1, 5, 12)
        means = np.array([theta[i] + 2 * rng.normal(size=k[i]).mean() for i in range(12)])
        post, _ = posterior_means(means, k, 4.0)
        raw.append(((means - theta) ** 2).mean())
        shrunk.append(((post - theta) ** 2).mean())
    assert np.mean(shrunk) < 0.7 * np.mean(raw)


def test_a_single_run_is_shrunk_more_than_a_replicated_one():
    means, k = np.array([2.0, 2.0, 0.0, 0.0, 0.0]), np.array([1, 4, 1, 1, 1])
    post, var = posterior_means(means, k, 1.0)
    assert post[1] > post[0] > 0 and var[1] < var[0]


def test_leader_is_uncertain_matches_the_normal_probability():
    # P(leader > runner-up) = Φ(gap / sqrt(v1 + v2)): Φ(1) = 0.84 is sure at 0.8, Φ(0.5) = 0.69 is not
    assert norm.cdf(1.0) > 0.8 > norm.cdf(0.5)
    assert not leader_is_uncertain(np.array([1.0, 0.0, -1.0]), np.array([0.5, 0.5, 0.5]))
    assert leader_is_uncertain(np.array([0.5, 0.0, -1.0]), np.array([0.5, 0.5, 0.5]))
    assert not leader_is_uncertain(np.array([0.5, 0.0]), np.zeros(2))
