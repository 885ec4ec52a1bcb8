"""strategies/tree_cells.py: a LightGBM model's predictions computed once per cell of its thresholds are the model's
own predictions, bit for bit (RegMix's 100,000 simulated mixtures, issue 30 item 7)."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from strategies import tree_cells


def _fit(X, y, **extra):
    """A model as RegMix fits one (strategies/regmix.py `_fit`, fewer trees to keep the test quick)."""
    params = dict(n_estimators=150, learning_rate=1e-2, min_child_samples=2, min_data_in_bin=1)
    params.update(extra)
    return lgb.LGBMRegressor(
        objective="regression",
        random_state=0,
        verbosity=-1,
        n_jobs=1,
        deterministic=True,
        force_row_wise=True,
        **params,
    ).fit(X, y)


@pytest.mark.parametrize("dim,n", [(3, 8), (5, 16), (8, 24)])
def test_cell_predictions_are_the_models_own_bit_for_bit(dim, n):
    rng = np.random.default_rng(dim * 100 + n)
    X = rng.dirichlet(np.full(dim, 0.5), n)
    y = np.sin(3 * X[:, 0]) + X[:, -1] ** 2 + 0.05 * rng.normal(size=n)
    model = _fit(X, y)
    sims = rng.dirichlet(np.full(dim, 1.0 / dim), 20_000)
    thresholds = tree_cells.split_thresholds(model)
    assert thresholds, "the fit has splits"
    # points exactly on each threshold and one float either side: where `<=` and `<` part
    edge = np.repeat(sims[:1], 3 * sum(len(t) for t in thresholds.values()), axis=0)
    row = 0
    for f, ts in thresholds.items():
        for t in ts:
            for v in (np.nextafter(t, -np.inf), t, np.nextafter(t, np.inf)):
                edge[row, f] = v
                row += 1
    Z = np.vstack([sims, edge])
    first, inverse = tree_cells.cells(Z, thresholds)
    assert len(first) < len(Z)  # fewer cells than points: the point of it
    assert np.array_equal(tree_cells.predict(model, Z), model.predict(Z))


def test_the_thresholds_are_the_models_own_splits():
    """Read from the model text; the same set the model's JSON dump lists (an independent reader)."""
    rng = np.random.default_rng(1)
    X = rng.dirichlet(np.ones(4), 12)
    model = _fit(X, X[:, 0] - X[:, 2])
    dumped: dict[int, set[float]] = {}
    todo = [t["tree_structure"] for t in model.booster_.dump_model()["tree_info"]]
    while todo:
        node = todo.pop()
        if "split_index" in node:
            dumped.setdefault(node["split_feature"], set()).add(node["threshold"])
            todo += [node["left_child"], node["right_child"]]
    got = tree_cells.split_thresholds(model)
    assert {f: set(t.tolist()) for f, t in got.items()} == dumped


def test_what_cells_cannot_answer_exactly_is_predicted_point_by_point():
    rng = np.random.default_rng(2)
    X = rng.dirichlet(np.ones(3), 30)
    y = X[:, 0] + 0.1 * rng.normal(size=30)
    linear = _fit(X, y, linear_tree=True)  # each leaf a linear function of the point: no cells
    assert tree_cells.split_thresholds(linear) is None
    Xn = X.copy()
    Xn[::3, 1] = np.nan  # missing values learnt: splits send them to a side of their own
    assert tree_cells.split_thresholds(_fit(Xn, y)) is None
    assert tree_cells.split_thresholds(object()) is None  # not a LightGBM model (regmix-linear's)
    Z = rng.dirichlet(np.ones(3), 500)
    assert np.array_equal(tree_cells.predict(linear, Z), linear.predict(Z))
    model = _fit(X, y)
    Z[0, 0] = np.nan  # a non-finite point: every point predicted
    assert np.array_equal(tree_cells.predict(model, Z), model.predict(Z), equal_nan=True)


def test_regmix_recommends_what_it_recommended_with_every_point_predicted(monkeypatch):
    """RegMix on an analytic suite: the recommendation with cells equals the one with the full prediction."""
    import strategies
    from harness import suites
    from harness.runners.replay import ReplayRunner
    from harness.spec import Budget
    from harness.studies.study import Study

    judge = suites.load("synth-bowl-5").judge(None)
    cls = strategies.get("regmix")
    params = {"n_simulated": 10_000, "n_estimators": 200}
    cells = Study(judge, cls, Budget(11), 3, ReplayRunner(judge), strategy_params=params).run()
    monkeypatch.setattr(tree_cells, "predict", lambda model, X: model.predict(X))
    full = Study(judge, cls, Budget(11), 3, ReplayRunner(judge), strategy_params=params).run()
    assert cells.status == full.status == "ok"
    assert cells.recommended == full.recommended and cells.normalized_regret == full.normalized_regret
