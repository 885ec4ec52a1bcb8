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
from strategies.auto import Auto
from strategies.auto_models import KernelRegression, _quadratic_kernel


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
        # at most one repeat: the probe that finds the pool single-seed (the same number again)
        assert len(history) - len({o.mixture for o in history}) <= 1, "a candidate was re-piloted"
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
    late = [e["model"] for e in q.decisions if e["step"] >= 10]
    assert sum(m in ("quadratic", "gp") for m in late) > len(late) / 2, q.describe_decisions()


def test_pure_noise_is_logged_as_no_better_than_flat():
    """No model predicts noise better than its mean: the log says so (the pilots still follow the best
    model, which on noise costs nothing against a random pilot)."""
    space, W = pool_space(5, 80, seed=2)
    rng = np.random.default_rng(0)
    s = Auto(space, seed=1, repilot=False)  # the seed-noise rules have their own tests below
    history, _ = play(s, space, lambda x: float(rng.normal()), budget=12)
    assert len({o.mixture for o in history}) == 12
    assert any("not yet better than a flat surface" in e["note"] for e in s.decisions), s.describe_decisions()
    # and no step after the initial design is a random pilot (the old flat-surface gate sent them to random)
    assert all(e["action"] in ("initial design", "ucb") for e in s.decisions), s.describe_decisions()


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


def test_recommends_the_best_piloted_candidate():
    """Only what the evidence supports: a piloted candidate, the one with the best mean of its runs (the
    expected value is computed here from the history, not by the strategy's code)."""
    space, W = pool_space(6, 60, seed=9)
    beta = np.array([3.0, -1.0, 0.5, 0.0, 0.2, -0.4])
    rng = np.random.default_rng(3)
    s = Auto(space, seed=0)
    history, rec = play(s, space, lambda x: float(x @ beta + 0.3 * rng.normal()), budget=10)
    means = {}
    for o in history:
        means.setdefault(o.mixture, []).append(o.objective)
    assert rec == max(means, key=lambda m: np.mean(means[m]))


def test_a_single_seed_pool_is_probed_at_most_once_then_never_repiloted():
    """A 12-candidate pool with a budget of 20 on a deterministic surface: every candidate once, at most one
    probe (a second pilot that returns the number already seen says the pool is single-seed), then stop."""
    space, W = pool_space(4, 12, seed=6)
    for seed in range(4):
        s = Auto(space, seed=seed, probe_noise=0.0)  # probe as soon as allowed, so the rule after it is tested
        history, rec = play(s, space, lambda x: float(x[0] - x[1] ** 2), budget=20)
        assert len({o.mixture for o in history}) == 12 and len(history) <= 13
        assert [e["action"] for e in s.decisions].count("probe") == len(history) - 12
        assert "re-pilot" not in [e["action"] for e in s.decisions]
        assert s.decisions[-1]["action"] == "stop"


def test_repilots_the_leader_in_a_noisy_pool_and_recommends_by_shrunk_means():
    """Seed noise (sd 1) four times the spread of the true scores: after the probe measures it, the leader
    is piloted again; the recommendation is the candidate with the best empirical-Bayes posterior mean,
    computed here independently from the history (James-Stein shrinkage towards the mean of the means)."""
    space, W = pool_space(5, 60, seed=8)
    truth = 0.25 * np.random.default_rng(1).normal(size=60)
    rng = np.random.default_rng(2)
    f = lambda x: float(truth[space.candidate_index(space.snap(space.from_vector(x)))] + rng.normal())  # noqa: E731
    s = Auto(space, seed=0)
    history, rec = play(s, space, f, budget=24)
    actions = [e["action"] for e in s.decisions]
    assert "probe" in actions and "re-pilot" in actions, s.describe_decisions()
    runs = {}
    for o in history:
        runs.setdefault(o.mixture, []).append(o.objective)
    reps = [np.asarray(r) for r in runs.values() if len(r) > 1]
    sigma2 = sum(((r - r.mean()) ** 2).sum() for r in reps) / sum(len(r) - 1 for r in reps)
    means = np.array([np.mean(r) for r in runs.values()])
    k = np.array([len(r) for r in runs.values()])
    tau2 = max(means.var(ddof=1) - np.mean(sigma2 / k), 0.1 * means.var(ddof=1))
    post = means.mean() + tau2 / (tau2 + sigma2 / k) * (means - means.mean())
    assert rec == list(runs)[int(np.argmax(post))]


def test_no_noise_probe_before_d_plus_1_distinct_pilots():
    """A 20-domain pool with seed noise: the model's fitted noise ratio reads misfit as noise until it has
    d + 1 = 21 pilots, so the probe (forced here by probe_noise 0) waits for 21 distinct pilots, however
    early `probe_from` allows it; a 5-domain pool probes from `probe_from` (10) distinct pilots."""
    for d, first in ((20, 21), (5, 10)):
        space, W = pool_space(d, 60, seed=d)
        rng = np.random.default_rng(3)
        s = Auto(space, seed=0, probe_noise=0.0, coverage=1.0)
        history, _ = play(s, space, lambda x: float(x[0] + rng.normal()), budget=first + 2)  # noqa: B023
        probes = [e["step"] for e in s.decisions if e["action"] == "probe"]
        assert probes, s.describe_decisions()
        distinct = len({o.mixture for o in history[: probes[0]]})
        assert distinct == first, (d, probes, distinct)


def test_covered_pool_probes_after_the_random_start_and_repilots_the_top_two():
    """A 24-candidate, 5-domain pool (minimodo-tiny's shape) with seed noise 4 x the spread of the true
    scores and a budget of 16 (two thirds of the pool): the probe may come right after the d + 1 = 6
    random pilots, before `probe_from` (10) distinct ones, and every re-pilot is, of the two best candidates by empirical-Bayes posterior mean
    (computed here independently from the history before it), the one with fewer runs. A budget of 8 on a
    13-candidate pool leaves no d + 1 pilots after the random start: no probe."""
    space, W = pool_space(5, 24, seed=21)
    truth = 0.25 * np.random.default_rng(4).normal(size=24)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        f = lambda x: float(truth[space.candidate_index(space.snap(space.from_vector(x)))] + rng.normal())  # noqa: E731,B023
        s = Auto(space, seed=seed)
        history, _ = play(s, space, f, budget=16)
        steps = {e["step"]: e["action"] for e in s.decisions}
        probes = [k for k, v in steps.items() if v == "probe"]
        assert len(probes) == 1 and 6 <= probes[0] < 10, s.describe_decisions()
        for step, action in steps.items():
            if action != "re-pilot":
                continue
            runs = {}
            for o in history[:step]:
                runs.setdefault(o.mixture, []).append(o.objective)
            reps = [np.asarray(r) for r in runs.values() if len(r) > 1]
            sigma2 = sum(((r - r.mean()) ** 2).sum() for r in reps) / sum(len(r) - 1 for r in reps)
            means = np.array([np.mean(r) for r in runs.values()])
            k = np.array([len(r) for r in runs.values()])
            tau2 = max(means.var(ddof=1) - np.mean(sigma2 / k), 0.1 * means.var(ddof=1))
            post = means.mean() + tau2 / (tau2 + sigma2 / k) * (means - means.mean())
            a, b = np.argsort(-post)[:2]
            want = b if k[b] < k[a] else a
            assert history[step].mixture == list(runs)[want], (seed, step)
    small, _ = pool_space(5, 13, seed=22)
    s = Auto(small, seed=0, probe_noise=0.0)
    noise = np.random.default_rng(5)
    play(s, small, lambda x: float(x[0] + noise.normal()), budget=8)
    assert "probe" not in [e["action"] for e in s.decisions]


def test_pilots_d_plus_1_at_random_when_the_budget_covers_half_the_pool():
    """13 candidates, 5 domains (paper-qwen2vl-2b's shape): a budget of 8 pilots d + 1 = 6 before any model;
    a budget of 4 (under half the pool) models from the 3rd pilot."""
    space, W = pool_space(5, 13, seed=12)
    f = lambda x: float(x[0])  # noqa: E731
    big = Auto(space, seed=0)
    play(big, space, f, budget=8)
    assert [e["action"] for e in big.decisions[:7]] == ["initial design"] * 6 + ["ucb"]
    small = Auto(space, seed=0)
    play(small, space, f, budget=4)
    assert [e["action"] for e in small.decisions[:4]] == ["initial design"] * 3 + ["ucb"]


@pytest.mark.parametrize("d", [17, 24])
def test_finds_a_planted_optimum_within_the_budget(d):
    """A concave quadratic surface whose maximum is planted at one sparse candidate of a 300-mixture pool:
    within 16 pilots `auto` pilots that very candidate in at least 4 of 5 studies. Random search pilots it
    with probability 16/300 = 0.053 per study, so 4 of 5 by chance has probability < 1e-4."""
    space, W = pool_space(d, 299, seed=d + 1)
    rng = np.random.default_rng(d)
    t = np.zeros(d)
    t[rng.choice(d, 3, replace=False)] = [0.5, 0.3, 0.2]
    planted = MixtureSpace(space.datasets, candidates=[tuple(w) for w in np.vstack([W, t])])
    b = rng.normal(0, 0.3, d)
    f = lambda x: float(-4.0 * ((x - t) ** 2).sum() + 0.1 * (x - t) @ b)  # noqa: E731
    values = np.array([f(w) for w in planted.candidate_matrix])
    best = int(np.argmax(values))
    assert best == 299  # independent check of the plant: the planted mixture is the pool's best
    found = []
    for seed in range(5):
        history, rec = play(Auto(planted, seed=seed), planted, f, budget=16)
        found.append(any(planted.candidate_index(o.mixture) == best for o in history))
    assert sum(found) >= 4, found


def test_bad_parameters_are_named():
    space, _ = pool_space(3, 10, seed=0)
    with pytest.raises(ValueError, match="models"):
        Auto(space, models=("linear", "svm"))
    with pytest.raises(ValueError, match="acquisition"):
        Auto(space, acquisition="pi")
    with pytest.raises(ValueError, match="repeat_share"):
        Auto(space, repeat_share=1.5)
    with pytest.raises(ValueError, match="confidence"):
        Auto(space, confidence=0.3)
