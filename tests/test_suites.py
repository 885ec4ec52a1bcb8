"""Replay and synthetic suites: recorded runs exact, surrogates labelled, optima exact."""

import numpy as np
import pandas as pd
import pytest
import yaml

from harness import suites
from harness.mixture import InvalidMixture
from harness.runners import make_runner
from harness.spec import RunSpec
from tests.conftest import SHARED

PAPER = "paper-qwen2vl-2b"


def test_registered_suites_are_listed():
    assert {PAPER, "synth-bowl-5", "synth-bump-8", "synth-corner-6"} <= set(suites.registered())


def test_unknown_suite_suggests_the_closest():
    with pytest.raises(suites.SuiteError, match="did you mean 'paper-qwen2vl-2b'"):
        suites.load("paper-qwen2vl2b")


def test_paper_uniform_returns_recorded_scores_exactly():
    s = suites.load(PAPER)
    assert s.space.datasets == ("COCO", "LISA", "GeoQAV", "SAT", "ScienceQA")
    result = make_runner("replay", s).run(RunSpec(s.id, s.protocol, s.space.uniform(), seed=123))
    assert result.source == "recorded" and result.metric == "Out_Score"
    assert result.scores["Out_Score"] == 0.4609 and result.scores["In_Score"] == 0.5638
    assert result.scores["ChartQA"] == 0.4816  # every score column is kept


@pytest.mark.skipif(not (SHARED / "data/modomodo-paper/table2_runs.csv").exists(), reason="needs ../shared")
def test_every_paper_seed_row_replays_exactly():
    raw = pd.read_csv(SHARED / "data/modomodo-paper/table2_runs.csv")
    seeds = raw[raw["group"] == "Seed"]
    s = suites.load(PAPER)
    assert len(seeds) == 11 and len(s.recorded) == 13  # + the recomputed 2000-step Coli and Norm rows
    for _, row in seeds.iterrows():
        m = s.space.mixture({d: row[f"w_{d}"] for d in s.space.datasets})
        scores, source = s.simulate(m, seed=0)
        assert source == "recorded"
        assert scores["Out_Score"] == row["Out_Score"], row["name"]
        assert s.oracle(m) == (row["Out_Score"], "recorded")


def test_unrecorded_mixture_is_answered_by_the_labelled_surrogate():
    s = suites.load(PAPER)
    m = s.space.parse("COCO=0.1,LISA=0.3,GeoQAV=0.2,SAT=0.3,ScienceQA=0.1")
    scores, source = s.simulate(m, seed=0)
    assert source == "surrogate"
    assert 0.3 < scores["Out_Score"] < 0.6
    assert s.oracle(m)[1] == "surrogate"


def test_paper_card_states_the_surrogates_honest_loo_error():
    """The card's leave-one-out RMSE, recomputed with scikit-learn's own LOO loop on Scheffé features built
    here (w_i and w_i w_j), from runs.csv: independent of harness.suites.surrogate."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import LeaveOneOut, cross_val_predict

    s = suites.load(PAPER)
    fit = s.card["oracle"]["surrogate_fit"]
    runs = pd.read_csv(s.path / "runs.csv")
    W = runs[list(s.card["weight_columns"].values())].to_numpy(float)
    feats = np.hstack([W] + [W[:, [i]] * W[:, [j]] for i in range(5) for j in range(i + 1, 5)])
    y = runs["Out_Score"].to_numpy(float)
    pred = cross_val_predict(RidgeCV(alphas=np.logspace(-6, 2, 17)), feats, y, cv=LeaveOneOut())
    assert fit["loo_rmse"] == pytest.approx(float(np.sqrt(np.mean((pred - y) ** 2))), abs=1e-6)
    assert fit["loo_rmse"] > 0
    assert s.best_known == pytest.approx(0.5146)  # Exclude-COCO, the best recorded mixture
    assert s.worst_known <= 0.4219


@pytest.mark.parametrize("name", ["synth-bowl-5", "synth-bump-8", "synth-corner-6"])
def test_synthetic_optimum_is_exact(name):
    s = suites.load(name)
    best = s.optimum_mixture()
    assert s.oracle(best)[0] == pytest.approx(s.best_known, abs=1e-12)
    rng = np.random.default_rng(0)
    samples = rng.dirichlet(np.ones(s.space.dim), size=20000)
    values = s.function(samples)
    assert values.max() <= s.best_known + 1e-12, "no sampled mixture beats the optimum"
    assert values.min() >= s.worst_known - 1e-12, "no sampled mixture is below the worst (a vertex)"
    assert s.uniform_score < s.best_known
    regret, norm = s.regret(s.uniform_score)
    assert regret > 0 and 0 < norm < 1


def test_corner_optimum_satisfies_kkt():
    s = suites.load("synth-corner-6")
    f = s.function
    x = f.optimum()[0]
    grad = -f.height * f.Q @ (x - f.center)  # gradient of the objective (maximised)
    active = x > 1e-7
    lam = grad[active].mean()
    assert np.allclose(grad[active], lam, atol=1e-6), "equal marginal value on the support"
    assert np.all(grad[~active] <= lam + 1e-6), "no excluded dataset would help"
    assert (~active).any(), "the corner suite's optimum lies on a face"


def test_noise_is_seeded_and_unbiased():
    s = suites.load("synth-bump-8")
    m = s.space.uniform()
    a = [s.simulate(m, seed)[0]["score"] for seed in range(400)]
    assert a[:5] == [s.simulate(m, seed)[0]["score"] for seed in range(5)]
    assert np.std(a) == pytest.approx(0.02, rel=0.15)
    assert np.mean(a) == pytest.approx(s.oracle(m)[0], abs=0.004)


def test_runner_rejects_foreign_specs_and_bad_mixtures():
    s = suites.load("synth-bowl-5")
    other = suites.load("synth-corner-6")
    with pytest.raises(ValueError, match="sent to a runner of"):
        make_runner("replay", s).run(RunSpec(other.id, other.protocol, other.space.uniform(), 0))
    with pytest.raises(InvalidMixture, match="unknown dataset"):
        s.space.parse("Z=1")
    with pytest.raises(ValueError, match="unknown runner 'replya'; did you mean 'replay'"):
        make_runner("replya", s)


def test_malformed_cards_are_named(tmp_path):
    (tmp_path / "card.yaml").write_text(yaml.safe_dump({"name": "x", "version": 1, "metric": "m", "goal": "up"}))
    with pytest.raises(suites.SuiteError, match="goal is 'up'; valid: max, min"):
        suites.load_folder(tmp_path)
    (tmp_path / "card.yaml").write_text("name: [unclosed")
    with pytest.raises(suites.SuiteError, match="invalid YAML"):
        suites.load_folder(tmp_path)
    with pytest.raises(suites.SuiteError, match="no card.yaml"):
        suites.load_folder(tmp_path / "nowhere")


def _paper_formula_by_hand(strategy: str) -> np.ndarray:
    """The paper's Norm and Coli weights from its 11 seed runs, written out here (not the strategies' code):
    Norm from the five Exclude-X runs' Out_Scores, Coli from the ridge-regularised inclusion regression."""
    raw = pd.read_csv(SHARED / "data/modomodo-paper/table2_runs.csv")
    seed_rows = raw[raw["group"] == "Seed"]
    W = seed_rows[[f"w_{d}" for d in ("COCO", "LISA", "GeoQAV", "SAT", "ScienceQA")]].to_numpy(float)
    out = seed_rows["Out_Score"].to_numpy(float)
    if strategy == "norm":
        o = np.array([0.5146, 0.4783, 0.4889, 0.4721, 0.4930])  # Exclude-COCO, -LISA, -GeoQAV, -SAT, -ScienceQA
        w = 0.2 - 0.1 * (o - o.min()) / (o.max() - o.min())
        return w / w.sum()
    X = (W > 0).astype(float)
    A = np.linalg.inv(X.T @ X + 1e-3 * np.eye(5))
    c = np.clip((A @ X.T @ out) / np.diag(A), 0, None)
    return c / c.sum()


@pytest.mark.skipif(not (SHARED / "data/modomodo-paper/table2_runs.csv").exists(), reason="needs ../shared")
@pytest.mark.parametrize("strategy, out_score", [("norm", 0.5133), ("coli", 0.4471)])
def test_paper_heuristics_reproduce_their_recorded_runs(strategy, out_score):
    """Coli and Norm are fully specified by the paper: from the replayed seed runs, the strategies
    recompute the mixtures of Table 2's 2000-step rows, which the suite answers with their recorded
    scores (Norm's 0.5133 is the paper's headline +5.24 points over uniform). The suite's rows for those
    runs carry weights rebuilt by the strategies' own functions (the paper does not publish them), so the
    score match holds by construction; what this test checks independently is that the recommended
    weights are the paper's formulas computed by hand here."""
    import strategies
    from harness.spec import Budget
    from harness.studies.study import Study

    s = suites.load(PAPER)
    expected = dict(zip(s.space.datasets, _paper_formula_by_hand(strategy)))
    for seed in range(3):
        out = Study(s, strategies.get(strategy), Budget(11), seed, make_runner("replay", s)).run()
        assert (out.score, out.score_source) == (out_score, "recorded")
        assert out.recommended == pytest.approx(expected, abs=1e-6)
    assert out.score - s.uniform_score == pytest.approx(0.0524 if strategy == "norm" else -0.0138)
