"""The `auto` strategy: its models are the regressions they claim to be, it picks the model the data
supports, it finds the optimum of known pool functions with few pilots, and never pilots twice.

Expected values come from independent computations: explicit Scheffé features, brute-force
leave-one-out refits, and the argmax of a known function over the pool.
"""

from __future__ import annotations

import numpy as np
import pytest

import strategies
from harness.mixture import MixtureSpace
from harness.spec import STATUS_FAILED, STATUS_OK, Budget, Observation
from strategies.auto import Auto, KernelRegression, _quadratic_kernel


def explicit_quadratic_features(X):
    d = X.shape[1]
    V = X - 1.0 / d
    cols = [np.sqrt(d) * V[:, i] for i in range(d)]
    cols += [d * V[:, i] * V[:, j] for i in range(d) for j in range(i + 1, d)]
    return np.column_stack(cols)


def test_quadratic_kernel_is_the_dot_product_of_scheffe_features():
    rng = np.random.default_rng(0)
    A, B = rng.dirichlet(np.ones(6), 7), rng.dirichlet(np.ones(6), 5)
    FA, FB = explicit_quadratic_features(A), explicit_quadratic_features(B)
    np.testing.assert_allclose(_quadratic_kernel(A, B), FA @ FB.T / FA.shape[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["linear", "quadratic", "gp"])
def test_closed_form_leave_one_out_matches_refits(kind):
    """The closed-form LOO error equals refitting without each point (same hyperparameters)."""
    rng = np.random.default_rng(1)
    X = rng.dirichlet(np.ones(4), 12)
    y = X @ np.array([1.0, -0.5, 0.3, 0.0]) + 0.05 * rng.normal(size=12)
    m = KernelRegression(kind, X, y)
    z = (y - m.mu) / m.sd
    errs = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        K = m._prior(X[keep], X[keep], m.lengthscale) + m.noise * np.eye(keep.sum())
        k = m._prior(X[i : i + 1], X[keep], m.lengthscale)
        errs.append(z[i] - float((k @ np.linalg.solve(K, z[keep]))[0]))
    assert m.loo_sq_error == pytest.approx(np.mean(np.square(errs)), rel=1e-8)


def pool_space(d, m, seed):
    rng = np.random.default_rng(seed)
    W = np.vstack([rng.dirichlet(np.full(d, a)) for a in rng.choice([0.2, 1.0, 3.0], m)])
    W = np.round(W, 6)
    W = W / W.sum(1, keepdims=True)
    return MixtureSpace(tuple(f"d{i}" for i in range(d)), candidates=[tuple(w) for w in W]), W


def play(strategy, space, f, budget):
    """The pool track on a noiseless function: returns (history, recommendation)."""
    history, b = [], Budget(budget)
    while (m := strategy.propose(tuple(history), b)) is not None:
        v = float(f(space.to_vector(m)))
        history.append(Observation(m, v, {"score": v}, STATUS_OK))
    return history, strategy.recommend(tuple(history))


@pytest.mark.parametrize("d", [17, 64])
def test_finds_the_best_candidate_of_a_linear_surface_with_few_pilots(d):
    space, W = pool_space(d, 300, seed=d)
    beta = np.random.default_rng(7).normal(size=d)
    f = lambda x: float(x @ beta)  # noqa: E731
    order = list(np.argsort(-(W @ beta)))  # independent: the ranking of the pool by the known function
    ranks = []
    for seed in range(5):
        history, rec = play(Auto(space, seed=seed), space, f, budget=12)
        assert len({o.mixture for o in history}) == len(history), "a candidate was piloted twice"
        ranks.append(order.index(space.candidate_index(rec)))
    # random search with 12 pilots finds the best of 300 with probability 12/300 = 0.04 per study and
    # lands in the top 10 with probability 1 - (290/300)^12 = 0.33
    assert max(ranks) < 10 and ranks.count(0) >= 3, f"ranks of the recommendations among 300: {ranks}"


def test_beats_random_search_on_a_quadratic_pool():
    d = 8
    space, W = pool_space(d, 200, seed=3)
    rng = np.random.default_rng(11)
    t = rng.dirichlet(np.ones(d))
    f = lambda x: -float(((x - t) ** 2).sum())  # noqa: E731
    vals = np.array([f(w) for w in W])
    regret = {}
    for name in ("auto", "random"):
        r = []
        for seed in range(8):
            _, rec = play(strategies.get(name)(space, seed=seed), space, f, budget=10)
            r.append((vals.max() - f(space.to_vector(rec))) / (vals.max() - np.median(vals)))
        regret[name] = np.mean(r)
    assert regret["auto"] < 0.5 * regret["random"], regret


def test_chooses_the_model_the_data_supports_and_logs_it():
    d = 6
    space, W = pool_space(d, 150, seed=5)
    beta = np.linspace(-1, 1, d)
    s = Auto(space, seed=0)
    play(s, space, lambda x: float(x @ beta), budget=10)
    # once there are more pilots than the linear model has free parameters (d), it must win
    modelled = [e for e in s.decisions if e["action"] not in ("initial design",) and e["step"] > d]
    assert modelled and all(e["model"] == "linear" for e in modelled), s.describe_decisions()
    assert all("cv_sq_error" in e for e in modelled)

    # a surface with a strong interaction no linear model can express: the quadratic one is chosen
    q = Auto(space, seed=0)
    play(q, space, lambda x: float(-40 * (x[0] - x[1]) ** 2 + 30 * x[0] * x[1]), budget=16)
    assert q.decisions[-1]["model"] in ("quadratic", "gp"), q.describe_decisions()


def test_pure_noise_falls_back_to_random_pilots():
    space, W = pool_space(5, 80, seed=2)
    rng = np.random.default_rng(0)
    s = Auto(space, seed=1)
    play(s, space, lambda x: float(rng.normal()), budget=12)
    assert any(e["action"] == "random" for e in s.decisions), s.describe_decisions()


def test_failed_pilots_are_not_retried_and_do_not_crash():
    space, W = pool_space(5, 40, seed=4)
    s = Auto(space, seed=0)
    history, b = [], Budget(10)
    for i in range(10):
        m = s.propose(tuple(history), b)
        assert m not in {o.mixture for o in history}
        failed = i % 3 == 1
        v = None if failed else float(space.to_vector(m)[0])
        history.append(Observation(m, v, {} if failed else {"score": v}, STATUS_FAILED if failed else STATUS_OK))
    assert space.check_candidate(s.recommend(tuple(history)))


def test_recommends_an_unpiloted_candidate_only_when_the_evidence_supports_it():
    space, W = pool_space(4, 60, seed=9)
    beta = np.array([3.0, 0.0, 0.0, 0.0])
    s = Auto(space, seed=0, recommend_z=1e9)  # never: the recommendation is a piloted candidate
    history, rec = play(s, space, lambda x: float(x @ beta), budget=6)
    assert rec in {o.mixture for o in history}


def test_bad_parameters_are_named():
    space, _ = pool_space(3, 10, seed=0)
    with pytest.raises(ValueError, match="models"):
        Auto(space, models=("linear", "svm"))
    with pytest.raises(ValueError, match="acquisition"):
        Auto(space, acquisition="pi")
