"""The bench tools of issue 26's fourth round: the seed-noise figures and oracle bounds of a multi-seed pool
(tests/benchmarks/pool_noise_bound.py), and `auto` at a git revision registered under another name
(tests/benchmarks/auto_before.py). Expected values come from planted tables and hand computations."""

from __future__ import annotations

import numpy as np
import pytest

import strategies.registry as registry
from harness.mixture import MixtureSpace
from harness.spec import Budget
from tests.benchmarks.auto_before import register_before
from tests.benchmarks.auto_report import PoolTable, run_study
from tests.benchmarks.pool_noise_bound import noise_figures, oracle_regret, random_perfect_pick


def planted(noise: float, seeds: int = 8, m: int = 12, seed: int = 0) -> PoolTable:
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(4), m)
    truth = np.linspace(0.0, 1.0, m)
    return PoolTable("planted", W, [t + noise * rng.normal(size=seeds) for t in truth])


def test_noise_figures_are_the_one_way_anova_estimates():
    t = planted(0.5)
    f = noise_figures(t)
    # equal group sizes: the pooled within variance is the mean of the groups' sample variances
    s2 = np.mean([np.var(v, ddof=1) for v in t.values])
    assert f["sigma"] == pytest.approx(np.sqrt(s2))
    assert f["tau"] == pytest.approx(np.sqrt(np.var(t.means, ddof=1) - s2 / 8))
    assert f["bmm_sigma"] == pytest.approx((t.means.max() - np.median(t.means)) / np.sqrt(s2))


def test_oracles_pick_the_best_without_noise_and_can_miss_with_it():
    quiet = planted(0.0)
    for k in (2, 4, 8):
        assert oracle_regret(quiet, k, 16, seed=3) == 0.0
    # two candidates 0.09 apart (the spread of 12 equally spaced means on [0, 1]) under seed sd 5: one run
    # each picks the wrong one of the top two in some of 40 studies
    loud = planted(5.0, seeds=8)
    assert max(oracle_regret(loud, 2, 2, seed=s) for s in range(40)) > 0.0
    # all 8 recorded seeds of each of the top two: their recorded means, so the right pick
    assert all(oracle_regret(loud, 2, 16, seed=s) == 0.0 for s in range(5))


def test_random_perfect_pick_is_never_worse_than_randoms_pick():
    t = planted(1.0)
    for s in range(5):
        assert random_perfect_pick(t, 6, s) <= run_study(t, "random", [6], s)[6][0] + 1e-12


@pytest.fixture
def scratch_registry(monkeypatch):
    """Names registered by the test are gone after it (the suite iterates over the registry elsewhere)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_auto_at_a_revision_is_registered_under_another_name(scratch_registry):
    register_before("HEAD", name="auto-at-head")
    cls = registry.get("auto-at-head")
    space = MixtureSpace(("a", "b", "c"), candidates=[(1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.5, 0)])
    assert space.check_candidate(cls(space, seed=0).propose((), Budget(2))) in space.candidate_mixtures()
    with pytest.raises(ValueError, match="no-such-revision"):
        register_before("no-such-revision", name="auto-nowhere")
