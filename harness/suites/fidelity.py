"""The surrogate fidelity gate: may a recorded suite offer the continuous track?

A surrogate answers for mixtures a table never recorded. Its answers are only worth ranking
strategies by if it predicts *unseen mixtures* well, so the gate is measured the way it will be
used: k-fold cross-validation over mixtures (every seed of a mixture stays in one fold), on the
per-mixture means of the suite metric. A model passes when, on the held-out folds,

    Spearman(prediction, per-mixture mean) >= 0.9   and   RMSE <= 0.5 × sd(per-mixture means)

(RegMix reports Spearman 0.989 for its regression on its own proxy runs; a judge that orders
mixtures worse than 0.9 would decide rankings by its own error). Several well-kept models compete
and the one with the best held-out RMSE answers, refitted on all mixtures:

- `scheffe-ridge`: the Scheffé quadratic with ridge (harness.suites.surrogate), the paper's family;
- `hist-gb`: scikit-learn's HistGradientBoostingRegressor (RegMix uses LightGBM, the same family);
- `gp`: a Gaussian process (Matérn 5/2 + white noise, scikit-learn), which interpolates smoothly.

Both figures of every model, the chosen one and the verdict go on the card (`judge.fidelity`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

MIN_SPEARMAN = 0.9
MAX_RMSE_OVER_SD = 0.5
FOLDS = 5
MIN_MIXTURES = 10  # fewer mixtures than this cannot support a held-out estimate worth gating on
MODELS = ("scheffe-ridge", "hist-gb", "gp")


LARGE = 100  # mixtures above which the gate is sized down (issue 29: 512 RegMix mixtures took 2.5-5.4 minutes)


def _make(model: str, seed: int = 0, n: int = 0):
    """A fresh model. On more than LARGE mixtures the GP's kernel is fitted from one start, not two (measured on
    RegMix's 512: the same held-out Spearman and RMSE to 4 digits, 2.6x less CPU)."""
    if model == "scheffe-ridge":
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer

        from harness.suites.surrogate import ALPHAS, scheffe_features

        return make_pipeline(FunctionTransformer(scheffe_features), RidgeCV(alphas=ALPHAS))
    if model == "hist-gb":
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, min_samples_leaf=5, random_state=seed)
    if model == "gp":
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        kernel = ConstantKernel(1.0) * Matern(length_scale=0.5, nu=2.5) + WhiteKernel(1e-2)
        return GaussianProcessRegressor(
            kernel=kernel, normalize_y=True, random_state=seed, n_restarts_optimizer=0 if n > LARGE else 1
        )
    raise ValueError(f"unknown surrogate model {model!r}; valid: {', '.join(MODELS)}")


class FittedModel:
    """One model per score column, fitted on per-mixture means; predicts (n × columns)."""

    def __init__(self, model: str, X: np.ndarray, Y: np.ndarray, columns: list[str]):
        self.name, self.columns = model, list(columns)
        Y = np.asarray(Y, dtype=float).reshape(len(X), -1)
        with warnings.catch_warnings(), _one_thread():
            warnings.simplefilter("ignore")  # GP/ridge convergence chatter on tiny tables
            self.models = [_make(model, n=len(X)).fit(X, Y[:, j]) for j in range(Y.shape[1])]

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        with _one_thread():
            return np.column_stack([m.predict(X) for m in self.models])


def _folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng([seed, 7]).permutation(n)
    return [order[i::k] for i in range(k)]


def _one_thread():
    """Small fits run fastest on one thread: OpenMP/BLAS pools oversubscribe a busy 2-core machine
    (measured: hist-gb 5-fold CV on 80 mixtures 3.9 s with the default pool, 0.8 s on one thread)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def cross_validate(X: np.ndarray, y: np.ndarray, model: str, folds: int = FOLDS, seed: int = 0) -> dict[str, float]:
    """Held-out Spearman and RMSE of one model over mixture folds (one row of X per mixture)."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float).reshape(-1)
    pred = np.empty_like(y)
    for test in _folds(len(y), min(folds, len(y)), seed):
        train = np.setdiff1d(np.arange(len(y)), test)
        with warnings.catch_warnings(), _one_thread():
            warnings.simplefilter("ignore")
            pred[test] = _make(model, seed, len(y)).fit(X[train], y[train]).predict(X[test])
    rho = spearmanr(pred, y).statistic if np.std(pred) > 0 and np.std(y) > 0 else 0.0
    return {"spearman": round(float(np.nan_to_num(rho)), 4), "rmse": round(float(np.sqrt(np.mean((pred - y) ** 2))), 6)}


@dataclass(frozen=True)
class GateResult:
    passed: bool
    chosen: str | None
    models: dict[str, dict[str, float]]
    sd_of_means: float
    mixtures: int
    reason: str

    def to_card(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "chosen": self.chosen,
            "mixtures": self.mixtures,
            "sd_of_means": round(self.sd_of_means, 6),
            "models": self.models,
            "rule": f"{FOLDS}-fold cross-validation over mixtures on the per-mixture means: held-out Spearman >= "
            f"{MIN_SPEARMAN} and RMSE <= {MAX_RMSE_OVER_SD} x sd of the per-mixture means",
            "reason": self.reason,
        }


def gate(X: np.ndarray, y: np.ndarray, models=MODELS, seed: int = 0) -> GateResult:
    """Cross-validate every model on (mixture vectors, per-mixture means of the metric) and decide."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float).reshape(-1)
    n, sd = len(y), float(np.std(y, ddof=1)) if len(y) > 1 else 0.0
    if n < MIN_MIXTURES:
        return GateResult(
            False, None, {}, sd, n, f"only {n} recorded mixtures (the gate needs at least {MIN_MIXTURES})"
        )
    if sd == 0:
        return GateResult(False, None, {}, sd, n, "the per-mixture means do not vary")
    scores = {m: cross_validate(X, y, m, seed=seed) for m in models}
    for s in scores.values():
        s["rmse_over_sd"] = round(s["rmse"] / sd, 4)
        s["passes"] = bool(s["spearman"] >= MIN_SPEARMAN and s["rmse_over_sd"] <= MAX_RMSE_OVER_SD)
    chosen = min(scores, key=lambda m: (scores[m]["rmse"], m))
    best = scores[chosen]
    passed = bool(best["passes"])
    reason = f"{chosen}: held-out Spearman {best['spearman']:.3f}, RMSE {best['rmse_over_sd']:.2f} x sd" + (
        "" if passed else f" (needs >= {MIN_SPEARMAN} and <= {MAX_RMSE_OVER_SD})"
    )
    return GateResult(passed, chosen, scores, sd, n, reason)
