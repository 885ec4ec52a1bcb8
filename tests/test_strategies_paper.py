"""The paper's heuristics, checked against hand computations on Table 2's seed runs (`reproduce paper`
itself: tests/test_reproduce_paper.py)."""

from __future__ import annotations

import numpy as np
import pytest

import strategies
from harness.factory.reproduce_paper import DATASETS, load_seed_runs, reproduce
from harness.mixture import MixtureSpace
from harness.spec import Budget, Observation
from strategies.paper_heuristics import alpha_weights, coli_weights, norm_weights


@pytest.fixture(scope="module")
def seeds():
    return load_seed_runs()


def arrays(seeds):
    return (
        seeds[[f"w_{d}" for d in DATASETS]].to_numpy(float),
        seeds["In_Score"].to_numpy(float),
        seeds["Out_Score"].to_numpy(float),
    )


def test_norm_by_hand(seeds):
    W, _, out = arrays(seeds)
    o = np.array([0.5146, 0.4783, 0.4889, 0.4721, 0.4930])  # Exclude-COCO, -LISA, -GeoQAV, -SAT, -ScienceQA
    hat = (o - o.min()) / (o.max() - o.min())
    raw = 0.2 - 0.1 * hat
    np.testing.assert_allclose(norm_weights(W, out), raw / raw.sum(), atol=1e-12)


def test_coli_by_hand(seeds):
    W, _, out = arrays(seeds)
    X = (W > 0).astype(float)
    A = np.linalg.inv(X.T @ X + 1e-3 * np.eye(5))
    s = np.clip((A @ X.T @ out) / np.diag(A), 0, None)
    np.testing.assert_allclose(coli_weights(W, out), s / s.sum(), atol=1e-12)


def test_alpha_by_hand(seeds):
    W, ins, out = arrays(seeds)
    for alpha_single in (0.0, 0.5, 1.0):
        inc = W > 0
        scale = np.where(inc.sum(1) == 1, alpha_single, 1.0)
        In = (inc * (scale * ins)[:, None]).sum(0)
        Out = (inc * (scale * out)[:, None]).sum(0)
        mm = lambda v: (v - v.min()) / (v.max() - v.min())  # noqa: E731
        for alpha in (0.0, 0.5, 1.0):
            C = alpha * mm(In) + (1 - alpha) * mm(Out)
            np.testing.assert_allclose(alpha_weights(W, ins, out, alpha, alpha_single), C / C.sum(), atol=1e-12)


def test_degenerate_inputs_give_uniform():
    W = np.eye(3)
    flat = np.ones(3)
    np.testing.assert_allclose(alpha_weights(W, flat, flat, 0.5), np.full(3, 1 / 3))
    np.testing.assert_allclose(norm_weights(W, flat), np.full(3, 1 / 3))  # no leave-one-out runs
    np.testing.assert_allclose(coli_weights(W, -flat), np.full(3, 1 / 3))  # every coefficient clips


@pytest.mark.parametrize("name", ["ain", "aout", "abal", "coli", "norm"])
def test_heuristic_strategy_spends_the_seed_runs_then_proposes_its_mixture(seeds, name):
    space = MixtureSpace(tuple(DATASETS))
    s = strategies.get(name)(space, seed=0)
    W, ins, out = arrays(seeds)
    lookup = {space.from_vector(w, normalize=True): (i, o) for w, i, o in zip(W, ins, out)}
    history = []
    budget = Budget(16)
    while (m := s.propose(tuple(history), budget)) is not None:
        i, o = lookup.get(m, (0.5, 0.5))
        history.append(Observation(m, o, {"In_Score": i, "Out_Score": o}, "ok"))
    assert len(history) == 12  # 11 seed designs + the heuristic mixture, then it stops
    assert set(h.mixture for h in history[:11]) == set(lookup)
    expected = reproduce()["heuristics"][name.capitalize() if name != "ain" else "Ain"]
    rec = s.recommend(tuple(history))
    np.testing.assert_allclose([rec[d] for d in DATASETS], [expected[d] for d in DATASETS], atol=1e-6)
    assert history[11].mixture == rec
