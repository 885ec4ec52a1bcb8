"""Each named method behaves as its authors' code (issue 23): hand-computed updates from the reference
formulas, simulated step signals with a planted answer, and RegMix's prior against the reference generator.

Expected values never come from the code under test: they are computed here from the published formulas
with explicit numbers, or from an independent loop re-implementation of the reference's sampler.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import strategies
from harness.mixture import MixtureSpace
from harness.online_signals import DomainSignal, StepSignals
from harness.spec import Budget, Observation
from tests.online_conformance import simulate

SPACE5 = MixtureSpace(("a", "b", "c", "d", "e"))


def pool_space(cands):
    return SPACE5.restricted(candidates=[tuple(float(x) for x in c / c.sum()) for c in cands])


def step(t, per_domain, space, weights=None, group=1):
    """StepSignals from {domain: (prompts, mean_reward, mean_abs_advantage)}; the others not drawn."""
    doms = {
        d: (
            DomainSignal(per_domain[d][0], per_domain[d][1], per_domain[d][2], 0.1, 0.0)
            if d in per_domain
            else DomainSignal(0)
        )
        for d in space.datasets
    }
    return StepSignals(t, doms, (weights or space.uniform()).as_dict(), group)


# -- DUMP ----------------------------------------------------------------------------------------------------
def test_dump_counts_completions_with_plus_one_smoothing_by_hand():
    space = MixtureSpace(("a", "b"))
    s = strategies.get("dump")(space, seed=0, window=10)
    s.update(step(1, {"a": (2, 1.0, 0.5), "b": (1, 1.0, 0.2)}, space, group=4))
    m = s.update(step(2, {"a": (1, 1.0, 0.8)}, space, group=4))
    # completions: a 8 + 4 = 12 (window 10 keeps 6 of the 0.5s and the 4 of 0.8), b 4; N = 16
    mu_a, mu_b = (6 * 0.5 + 4 * 0.8) / 10, 0.2
    ucb_a = mu_a + math.sqrt(2 * math.log(17) / 13)
    ucb_b = mu_b + math.sqrt(2 * math.log(17) / 5)
    ea, eb = math.exp(ucb_a / 0.1), math.exp(ucb_b / 0.1)
    assert m["a"] == pytest.approx(ea / (ea + eb), rel=1e-9)
    # counting prompts instead (the earlier reading): N = 4, n_a = 3, n_b = 1, window holds 3 values
    p = strategies.get("dump")(space, seed=0, window=10, count_unit="prompts")
    p.update(step(1, {"a": (2, 1.0, 0.5), "b": (1, 1.0, 0.2)}, space, group=4))
    sc = p.update and p.scores()
    assert sc[1] == pytest.approx(0.2 + math.sqrt(2 * math.log(4) / 2))


def test_dump_never_drawn_domain_has_mu_zero_and_a_finite_bonus():
    space = MixtureSpace(("a", "b"))
    s = strategies.get("dump")(space, seed=0)
    s.update(step(1, {"a": (2, 1.0, 0.9)}, space, group=8))
    sc = s.scores()  # a: 0.9 + sqrt(2 ln 17 / 17); b: 0 + sqrt(2 ln 17 / 1)
    assert sc[0] == pytest.approx(0.9 + math.sqrt(2 * math.log(17) / 17))
    assert sc[1] == pytest.approx(math.sqrt(2 * math.log(17)))


# -- ODM -------------------------------------------------------------------------------------------------------
def test_odm_released_update_by_hand():
    space = MixtureSpace(("a", "b", "c"))
    s = strategies.get("odm")(space, seed=0, warmup_steps=9, smoothing=0.9)
    for t in range(1, 10):  # warm-up: no update, the start weights
        assert s.update(step(t, {"a": (1, 1.0, 0.5)}, space)) == space.uniform()
    m = s.update(step(10, {"a": (1, 1.0, 0.5), "b": (1, 1.0, 0.2)}, space))
    eps_prev, eps = 1 / 3, min(1 / 3, math.sqrt(math.log(3) / (3 * 10)))
    R = np.array([0.1 * math.exp(0.5), 0.1 * math.exp(0.2), 0.0])
    raw = R * eps_prev * (1 - 3 * eps) / (R * eps_prev).sum() + eps
    assert np.allclose(space.to_vector(m), raw / raw.sum(), atol=1e-12)


def test_odm_exp3_paper_update_by_hand():
    space = MixtureSpace(("a", "b", "c"))
    s = strategies.get("odm-exp3")(space, seed=0, smoothing=0.9, signal_scale=10.0)
    drawn = space.mixture({"a": 0.5, "b": 0.25, "c": 0.25})
    m = s.update(step(20, {"a": (1, 1.0, 0.5), "c": (1, 1.0, 0.1)}, space, weights=drawn))
    R = np.array([0.1 * 5.0 / 0.5, 0.0, 0.1 * 1.0 / 0.25])
    eps = min(1 / 3, math.sqrt(math.log(3) / 60))
    z = np.exp((1 / 3) * R)
    expected = (1 - 3 * eps) * z / z.sum() + eps
    assert np.allclose(space.to_vector(m), expected / expected.sum(), atol=1e-12)


@pytest.mark.parametrize("name", ["odm", "odm-exp3", "dump"])
def test_bandits_stay_uniform_when_no_domain_differs_and_respond_when_they_do(name):
    same = [
        simulate(
            strategies.get(name)(SPACE5, seed=s),
            SPACE5,
            300,
            learn=np.zeros((5, 5)),
            drift=0.001,
            start_skill=0.3,
            seed=s,
        )[-100:].mean(0)
        for s in range(6)
    ]
    assert np.abs(np.mean(same, 0) - 0.2).max() < 0.02
    # one domain still learnable ('c'), the others solved (|advantage| 0): every rule here moves towards it
    one = [
        simulate(
            strategies.get(name)(SPACE5, seed=s),
            SPACE5,
            300,
            learn=np.diag([0, 0, 0.02, 0, 0]),
            start_skill=[1, 1, 0.3, 1, 1],
            seed=s,
        )[-100:].mean(0)
        for s in range(6)
    ]
    w = np.mean(one, 0)
    assert w.argmax() == 2 and w[2] > 0.23


def test_odm_no_longer_freezes_at_uniform_on_differing_domains():
    for name in ("odm", "odm-exp3"):
        s = strategies.get(name)(SPACE5, seed=0)
        m = None
        for t in range(1, 201):  # fixed, different |advantage|: 'a' 0.2 ... 'e' 0.6
            m = s.update(
                step(t, {d: (1, 1.0, 0.2 + 0.1 * i) for i, d in enumerate(SPACE5.datasets)}, SPACE5, weights=m)
            )
        v = SPACE5.to_vector(m)
        assert np.all(np.diff(v) > 0) and v[4] - v[0] > 0.05, (name, v)


# -- Aioli -----------------------------------------------------------------------------------------------------
def test_aioli_probe_order_is_a_fresh_permutation_each_round_and_seeded():
    s = strategies.get("aioli")(SPACE5, seed=1)
    orders = [s.order(r) for r in range(4)]
    for o in orders:
        assert sorted(o[:5]) == list(range(5)) and sorted(o[5:]) == list(range(5))  # lp_rounds = 2 sweeps
    assert len({tuple(o) for o in orders}) > 1
    assert np.array_equal(strategies.get("aioli")(SPACE5, seed=1).order(2), orders[2])
    probe = s.vector_of(("probe", 0, 0))
    assert probe.max() == pytest.approx(0.75) and np.allclose(np.sort(probe)[:4], 0.0625)


def test_aioli_one_round_by_hand():
    """Two domains, one sweep of one-step probes: the law's matrix from least squares on the round's rewards,
    normalised (shift by the minimum, divide by the sum), then weights exp(eta * column sums)."""
    space = MixtureSpace(("a", "b"))
    s = strategies.get("aioli")(space, seed=0, lp_rounds=1, lp_steps=1, update_steps=10, eta=1.0, ema=0.1, ridge=0.0)
    s.start()
    # step 1: 3 a + 1 b; step 2: 1 a + 3 b; step 3 (measurement): 1 a + 1 b
    counts = [(3, 1), (1, 3), (1, 1)]
    r_a, r_b = [1.0, 1.3, 1.35], [0.5, 0.52, 0.6]
    for t in range(1, 4):
        s.update(step(t, {"a": (counts[t - 1][0], r_a[t - 1], 0.5), "b": (counts[t - 1][1], r_b[t - 1], 0.5)}, space))
    P = 10 / 3  # prompts trained in the round (10) over its 3 blocks
    N = np.array([[0, 0], [3, 1], [4, 4]]) / P  # prompts trained before each step, in probes
    X = np.column_stack([np.ones(3), N])
    A = np.array([np.linalg.solve(X, r_a)[1:], np.linalg.solve(X, r_b)[1:]])
    A = A - min(A.min(), 0)
    A = A / A.sum()
    w = np.exp(A.sum(axis=0))
    assert np.allclose(s.graphs[0], A, atol=1e-9)
    assert np.allclose(s.p, w / w.sum(), atol=1e-9)


def test_aioli_no_difference_keeps_uniform_even_when_rewards_rise():
    """The old fixed probe order credited a round's rise to the last probe (0.33 against 0.11 after 400 steps)."""
    finals = [
        simulate(
            strategies.get("aioli")(SPACE5, seed=s),
            SPACE5,
            400,
            learn=np.zeros((5, 5)),
            drift=0.002,
            start_skill=0.2,
            noise=0.05,
            seed=s,
        )[-100:].mean(0)
        for s in range(16)
    ]
    assert np.abs(np.mean(finals, 0) - 0.2).max() < 0.02


def test_aioli_moves_towards_the_domain_whose_training_raises_its_reward():
    finals = [
        simulate(
            strategies.get("aioli")(SPACE5, seed=s),
            SPACE5,
            400,
            learn=np.diag([0, 0, 0.02, 0, 0]),
            start_skill=0.3,
            noise=0.0,
            seed=s,
        )[-100:].mean(0)
        for s in range(8)
    ]
    w = np.mean(finals, 0)
    assert w.argmax() == 2 and w[2] > 0.23


def test_step_signals_carry_the_group_size_through_the_wire_format():
    sig = step(3, {"a": (2, 1.0, 0.4)}, SPACE5, group=6)
    back = StepSignals.from_plain(sig.to_plain())
    assert back == sig and back.group == 6
    old = sig.to_plain()
    del old["group"]
    assert StepSignals.from_plain(old).group == 1


# -- RegMix ----------------------------------------------------------------------------------------------------
def reference_generator(rng: np.random.Generator, prior: np.ndarray, n: int) -> np.ndarray:
    """sail-sg/regmix mixture_config/synthesize_mixture.py's generate_weights_dirichlet, re-implemented as a
    plain loop (one Dirichlet per strength, one of them picked; reject above 15 x prior; zero under 2e-4;
    round to 2e-4), without its final deduplication and subsampling."""
    bound = np.minimum(prior * 15, 1.0)
    centre = prior**0.5 / (prior**0.5).sum()
    out = []
    while len(out) < n:
        cands = [rng.dirichlet(centre * s) for s in np.logspace(np.log10(0.1), np.log10(5.0), 15)]
        x = cands[rng.integers(0, 15)]
        if np.any(x > bound):
            continue
        x = np.where(x < 2e-4, 0.0, x)
        x = x / x.sum()
        out.append(np.round(x / 2e-4) * 2e-4)
    return np.array(out)


@pytest.mark.parametrize("d", [5, 17])
def test_regmix_prior_matches_the_reference_generators_sparsity(d):
    from strategies.regmix import regmix_prior

    prior = np.full(d, 1.0 / d)
    ref = reference_generator(np.random.default_rng(0), prior, 3000)
    ours = regmix_prior(np.random.default_rng(1), prior, 3000)
    for stat in (
        lambda X: (X.max(1) > 0.9).mean(),
        lambda X: (X.max(1) > 0.5).mean(),
        lambda X: (X > 0).sum(1).mean() / d,
        lambda X: X.max(1).mean(),
    ):
        assert abs(stat(ref) - stat(ours)) < 0.03
    assert np.allclose(ours.sum(1), 1.0)
    if d == 5:  # the figure: about a third of the pilots nearly single-dataset
        assert 0.30 < (ref.max(1) > 0.9).mean() < 0.41


def test_regmix_fits_lightgbm_and_averages_the_papers_top_fraction_in_a_pool():
    import lightgbm

    cands = np.random.default_rng(0).dirichlet(np.ones(5), size=40)
    pool = pool_space(cands)
    s = strategies.get("regmix")(pool, seed=0)
    X = pool.candidate_matrix[:20]
    model = s._fit(X, -((X - 0.3) ** 2).sum(1))
    assert isinstance(model, lightgbm.LGBMRegressor)
    assert s.top_k == 128 and s.n_simulated == 100_000


@pytest.mark.parametrize("name", ["regmix", "regmix-linear", "cma-es", "quadratic", "linear", "mixing-law"])
def test_pool_pilots_are_never_repeated(name):
    cands = np.random.default_rng(3).dirichlet(np.full(5, 0.5), size=14)
    pool = pool_space(cands)
    s = strategies.get(name)(pool, seed=2)
    history = []
    rng = np.random.default_rng(0)
    while True:
        m = s.propose(tuple(history), Budget(14))
        if m is None:
            break
        history.append(Observation(m, float(rng.normal()), {}, "ok"))
    piloted = [o.mixture for o in history]
    assert len(piloted) == len(set(piloted))


# -- Algorithm 4 -----------------------------------------------------------------------------------------------
def _run(strategy, space, n, f):
    history = []
    for _ in range(n):
        m = strategy.propose(tuple(history), Budget(40))
        history.append(Observation(m, f(space.to_vector(m)), {}, "ok"))
    return history


def test_algorithm4_pilots_the_heuristics_after_the_seed_runs_and_fits_on_both():
    f = lambda v: float(1 - ((v - np.array([0.1, 0.4, 0.2, 0.2, 0.1])) ** 2).sum())  # noqa: E731
    q = strategies.get("quadratic")(SPACE5, seed=0)
    seed = _run(q, SPACE5, 11, f)
    expected, seen = [], set(o.mixture for o in seed)
    for name in ["ain", "aout", "abal", "coli", "norm"]:  # the registered heuristics on the same seed runs
        m = strategies.get(name)(SPACE5, seed=0).recommend(tuple(seed))
        if m not in seen:  # without an In_Score, Ain = Aout = Abal: piloted once
            seen.add(m)
            expected.append(m)
    assert 2 <= len(expected) <= 5
    history = list(seed)
    for m in expected:
        assert q.propose(tuple(history), Budget(40)) == m
        history.append(Observation(m, f(SPACE5.to_vector(m)), {}, "ok"))
    nh = len(expected)
    history.append(Observation(q.propose(tuple(history), Budget(40)), 0.0, {}, "ok"))
    # the model-based pilot depends on the heuristic runs' scores (the fit uses them)
    q2 = strategies.get("quadratic")(SPACE5, seed=0)
    changed = history[:11] + [
        Observation(o.mixture, o.objective + (0.5 if i == 1 else 0.0), {}, "ok")
        for i, o in enumerate(history[11 : 11 + nh])
    ]
    assert q2.propose(tuple(changed), Budget(40)) != history[11 + nh].mixture


def test_mixing_law_fits_a_two_term_law_only_with_two_runs_per_parameter():
    f = lambda v: float(1 - ((v - np.array([0.3, 0.3, 0.2, 0.1, 0.1])) ** 2).sum())  # noqa: E731
    s = strategies.get("mixing-law")(SPACE5, seed=0)
    history = _run(s, SPACE5, 27, f)  # 1 + 2 x 6 = 13 parameters: 27 runs = 2 per parameter + 1
    best = max(history[:26], key=lambda o: o.objective).mixture
    assert s.recommend(tuple(history[:26])) == best  # 26 runs: not yet
    rec = s.recommend(tuple(history))
    assert rec not in {o.mixture for o in history}  # 27 runs: the fitted law's maximiser, not a pilot


def test_mixing_law_fits_no_one_term_law():
    f = lambda v: float(1 - ((v - 0.2) ** 2).sum())  # noqa: E731
    s = strategies.get("mixing-law")(SPACE5, seed=0)
    history = _run(s, SPACE5, 8, f)
    best = max(history, key=lambda o: o.objective).mixture
    assert s.recommend(tuple(history)) == best  # 8 runs cannot identify two terms: the best observed
    one = strategies.get("mixing-law")(SPACE5, seed=0, min_terms=1, runs_per_parameter=1).recommend(tuple(history))
    assert max(one.as_dict().values()) > 0.9  # a one-term law's maximiser is a vertex


def test_cma_es_updates_on_the_repaired_points_in_a_pool():
    cands = np.random.default_rng(5).dirichlet(np.full(5, 0.3), size=30)
    pool = pool_space(cands)
    s = strategies.get("cma-es")(pool, seed=0)
    history = _run(s, pool, s.lam, lambda v: float(v[0]))
    n = pool.dim
    m0, sigma0, B, D = np.zeros(n), 1.0, np.eye(n), np.ones(n)
    for o in history:  # each injected point: log of the candidate (floor 1e-3), centred, clipped in length
        z = np.log(np.maximum(pool.to_vector(o.mixture), 1e-3))
        z = z - z.mean()
        x = s._inject(pool.to_vector(o.mixture), m0, sigma0, B, D)
        bound = math.sqrt(n) + 2 * n / (n + 2)
        norm = np.linalg.norm(z)
        assert np.allclose(x, z if norm <= bound else z * bound / norm)
    m1 = s._replay(tuple(history))[0]
    ranked = np.argsort([-o.objective for o in history], kind="stable")[: s.mu]
    X = np.array([s._inject(pool.to_vector(history[i].mixture), m0, sigma0, B, D) for i in ranked])
    assert np.allclose(m1, s.weights @ X)
