"""auto and a suite's cheaper fidelities (strategies/auto_fidelity.py; issue 26, round 5).

The truths are planted: a pool whose cheap level is the full score plus a little noise (a near-perfect proxy)
or pure noise; pilots are priced by harness.spec's own ledger (the study's rule), not by auto. The
single-fidelity trajectories were recorded from auto's code before fidelities existed (commit e08f810)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from harness.mixture import MixtureSpace
from harness.spec import STATUS_OK, Budget, CostModel, Ledger, Observation, Proposal, spent
from strategies.auto import Auto
from strategies.auto_fidelity import cheap_level, fit_link
from tests.benchmarks.auto_report import generated, play

# candidate index per pilot and the recommendation, recorded with auto at e08f810 (before this round) by
# tests/benchmarks/auto_report.play: single-seed 17 domains, an 8-seed pool with re-pilots, a covered pool
BEFORE = {
    ("interactions", 17, 128, 1, 0.3, 11, 16, 0): (
        [11, 0, 87, 112, 1, 97, 106, 79, 70, 127, 74, 64, 125, 61, 5, 96],
        70,
    ),
    ("interactions", 6, 48, 8, 1.0, 12, 24, 1): (
        [19, 10, 28, 3, 35, 12, 31, 31, 28, 28, 31, 19, 19, 28, 39, 39, 21, 21, 6, 39, 25, 39, 29, 28],
        28,
    ),
    ("dominant", 5, 20, 4, 0.5, 13, 14, 1): ([17, 10, 6, 3, 0, 5, 6, 3, 6, 7, 7, 7, 7, 6], 7),
}


@pytest.mark.parametrize("case", list(BEFORE))
def test_single_fidelity_trajectory_is_unchanged(case):
    kind, d, m, seeds, noise, s, budget, seed = case
    strat, index, history, _, pilots = play(generated(kind, d, m, seeds, noise, s), "auto", budget, seed)
    assert pilots == BEFORE[case][0]
    assert index[strat.space.check_candidate(strat.recommend(tuple(history)))] == BEFORE[case][1]


def _pool(n=40, d=4, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(d), n)
    full = W @ rng.normal(0, 1, d) + 0.5 * np.sin(6 * W[:, 0])
    return W, (full - full.mean()) / full.std()


def _play(cheap_of, budget, cost_model, seed=0, **params):
    """A pool-track study as harness.studies.study plays it (a pilot priced by the ledger; refused if it does not fit):
    (strategy, history, candidate index per pilot, whether auto ever proposed what did not fit)."""
    W, full = _pool()
    space = MixtureSpace(
        tuple(f"d{i}" for i in range(W.shape[1])), candidates=[tuple(w) for w in W], fidelities=(0.25, 1.0)
    )
    index = {m: i for i, m in enumerate(space.candidate_mixtures())}
    strat, b, ledger = Auto(space, seed=seed, **params), Budget(budget, cost_model=cost_model), Ledger(cost_model)
    history, pilots, refused = [], [], False
    while b.left(ledger) > 0:
        p = strat.propose(tuple(history), b)
        if p is None:
            break
        m, f = (p.mixture, p.fidelity) if isinstance(p, Proposal) else (p, 1.0)
        cost, _ = ledger.price(m, f)
        if cost > b.left(ledger) + 1e-9:
            refused = True
            break
        i = index[space.check_candidate(m)]
        v = float(full[i] if f == 1.0 else cheap_of(i, full))
        o = Observation(m, v, {"score": v}, STATUS_OK, f)
        history.append(o)
        ledger.add_observation(o, cost)
        pilots.append((i, f))
    return strat, history, pilots, refused, full


SCALES = CostModel("scales", cost=((0.25, 0.1), (1.0, 1.0)))
rng_noise = np.random.default_rng(7).normal(0, 1, 40)


def test_screens_with_a_near_perfect_proxy_and_recommends_a_full_run():
    strat, history, pilots, refused, full = _play(lambda i, full: 0.3 + full[i] + 0.01 * rng_noise[i], 10, SCALES)
    cheap = [p for p in pilots if p[1] < 1.0]
    assert len(cheap) > 3 * strat.calibration_pairs  # screened far beyond calibration
    assert not refused and spent(history, SCALES) <= 10 + 1e-9
    rec = strat.space.check_candidate(strat.recommend(tuple(history)))
    fulls = {o.mixture for o in history if o.fidelity == 1.0}
    assert rec in fulls  # only full-fidelity evidence is recommended
    notes = [e["fidelity_note"] for e in strat.decisions if e.get("fidelity") == 0.25]
    assert any(n.startswith("screen") and " pays" in n for n in notes)
    # the screen found what the full pilots alone would not: the pool's best is among the full runs
    assert int(np.argmax(full)) in {p[0] for p in pilots if p[1] == 1.0}


def test_ignores_a_noise_proxy_after_calibration():
    strat, history, pilots, refused, _ = _play(lambda i, full: rng_noise[i], 10, SCALES)
    cheap = [p for p in pilots if p[1] < 1.0]
    assert len(cheap) == strat.calibration_pairs  # the calibration pairs, then full runs only
    assert not refused and spent(history, SCALES) <= 10 + 1e-9
    assert any("does not pay" in e.get("fidelity_note", "") for e in strat.decisions)
    # each calibration pair: the cheap run and then the same candidate's full run
    firsts = [k for k, p in enumerate(pilots) if p[1] < 1.0]
    assert all(pilots[k + 1] == (pilots[k][0], 1.0) for k in firsts)


@pytest.mark.parametrize("budget", [7.3, 10.5])
@pytest.mark.parametrize(
    "cm", [SCALES, CostModel("checkpoints", train_seconds=1.0, eval_seconds=0.1), CostModel("fraction")]
)
def test_never_proposes_what_the_budget_cannot_pay(budget, cm):
    strat, history, _, refused, _ = _play(lambda i, full: full[i] + 0.05 * rng_noise[i], budget, cm, seed=3)
    assert not refused
    assert spent(history, cm) <= budget + 1e-9


def test_a_level_that_cannot_pay_is_never_asked_and_single_fidelity_is_off():
    space = MixtureSpace(("a", "b"), candidates=[(0.5, 0.5), (1.0, 0.0)], fidelities=(0.25, 1.0))
    measured = CostModel("checkpoints", train_seconds=35.124, eval_seconds=7.704)  # minimodo-pool's card
    assert cheap_level(space, Budget(16, cost_model=measured), 3.0) is None  # 1 / 0.385 < 3
    new_run = (0.25 * 35.124 + 7.704) / (35.124 + 7.704)  # the card's rule, by hand: 0.385
    assert cheap_level(space, Budget(16, cost_model=measured), 2.0) == pytest.approx((0.25, new_run))
    assert cheap_level(space.restricted(candidates=space.candidates), Budget(16), 3.0) is None


def test_link_matches_scipy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=9)
    y = 2 * x + rng.normal(size=9)
    link = fit_link(x, y)
    lr = stats.linregress(x, y)
    assert link.b == pytest.approx(lr.slope) and link.a == pytest.approx(lr.intercept)
    assert link.r == pytest.approx(lr.rvalue)
    assert link.r_low == pytest.approx(np.tanh(np.arctanh(lr.rvalue) - 1 / np.sqrt(6)))
    assert fit_link(x[:3], y[:3]) is None


def test_bad_fidelity_parameters_are_named():
    space = MixtureSpace(("a", "b"))
    with pytest.raises(ValueError, match="calibration_pairs"):
        Auto(space, calibration_pairs=2)
    with pytest.raises(ValueError, match="screen_share"):
        Auto(space, screen_share=1.5)


def test_page_says_what_it_does_with_fidelities_and_where_it_loses():
    text = Auto.description + " " + Auto.limitations
    assert "cheap" in text and "fidelit" in text
    assert "minimodo-pool" in Auto.limitations and "calibrat" in Auto.limitations


def test_ucb_pe_first_pick_is_ucb_and_a_twin_is_never_picked_too():
    """The batch's first pick is the plain UCB argmax (the model's own predict); on a near-noiseless fit, an exact
    twin of a picked point keeps less than the noise's variance once that one is 'observed', so a batch never
    holds both (before conditioning, their UCBs are equal); the later picks are spread, not clustered."""
    from strategies.auto_models import KernelRegression

    rng = np.random.default_rng(3)
    X = rng.dirichlet(np.ones(4), 12)
    y = X @ np.array([1.0, -0.5, 0.2, 0.0]) + 0.001 * rng.normal(size=12)
    model = KernelRegression("gp", X, y)
    assert model.noise <= 0.01  # a near-noiseless fit: a twin's variance is (almost) all the first pick's
    pts = rng.dirichlet(np.ones(4), 30)
    mean, sd = model.predict(pts)
    best = int(np.argmax(mean + 2.0 * sd))
    pts = np.vstack([pts, pts[best]])  # the twin, last
    picks = model.ucb_batch(pts, 2.0, 5)
    assert picks[0] == best and len(set(picks)) == len(picks) >= 2 and len(pts) - 1 not in picks
    for kind in ("linear", "quadratic"):
        m = KernelRegression(kind, X, y)
        mean, sd = m.predict(pts[:-1])
        b = int(np.argmax(mean + 2.0 * sd))
        twins = np.vstack([pts[:-1], pts[b]])
        got = m.ucb_batch(twins, 2.0, 5)
        assert not {b, len(twins) - 1} <= set(got), (kind, got)


def test_a_fresh_instance_mid_batch_makes_the_same_screening_pick():
    """The screening batch is a function of the history: a new Auto handed the same history (a resumed study)
    proposes what the one that made the batch proposes, at every step of a screening run."""
    strat, history, pilots, _, _ = _play(lambda i, full: full[i] + 0.01 * rng_noise[i], 8, SCALES)
    screens = [k for k, e in enumerate(strat.decisions) if e.get("fidelity") == 0.25 and "screen" in e["action"]]
    assert len(screens) >= 4
    W, _ = _pool()
    space = strat.space
    for k in screens[1:4]:
        step = strat.decisions[k]["step"]
        fresh = Auto(space, seed=0)
        p = fresh.propose(tuple(history[:step]), Budget(8, cost_model=SCALES))
        assert isinstance(p, Proposal) and p.fidelity == 0.25
        assert space.check_candidate(p.mixture) == space.check_candidate(history[step].mixture)
