"""The replay surrogate: answers for mixtures a table never recorded, with its error published.

Model: a Scheffé quadratic (w_i and w_i·w_j for i<j) with ridge regularisation chosen by
leave-one-out (scikit-learn's RidgeCV, which computes
LOO in closed form). It is the smallest model that can express interactions between datasets, and
ridge keeps it sane when there are fewer rows than features (the paper's 11 seed runs against 15
features). The intercept is left unpenalised (it is collinear with the linear terms on the simplex,
but it makes ridge shrink towards the mean score instead of towards zero). One multi-output fit
covers every score column.

The published fit error is honest leave-one-out: for each row, the whole procedure (including the
choice of alpha) is refitted without it and that row is predicted. Rows that repeat a mixture are
averaged first, so LOO leaves out a mixture, not one of its seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import RidgeCV

ALPHAS = np.logspace(-6, 2, 17)


def scheffe_features(X: np.ndarray) -> np.ndarray:
    X = np.atleast_2d(np.asarray(X, dtype=float))
    d = X.shape[1]
    iu = np.triu_indices(d, k=1)
    return np.hstack([X, X[:, iu[0]] * X[:, iu[1]]])


def _fit(X: np.ndarray, Y: np.ndarray) -> RidgeCV:
    return RidgeCV(alphas=ALPHAS, fit_intercept=True, alpha_per_target=Y.ndim == 2 and Y.shape[1] > 1).fit(
        scheffe_features(X), Y
    )


@dataclass
class Surrogate:
    """Multi-output surrogate over named score columns."""

    columns: list[str]
    model: RidgeCV

    @classmethod
    def fit(cls, X: np.ndarray, Y: np.ndarray, columns: list[str]) -> Surrogate:
        Y = np.asarray(Y, dtype=float).reshape(len(X), len(columns))
        return cls(list(columns), _fit(np.asarray(X, dtype=float), Y))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(n × columns) predictions."""
        return np.asarray(self.model.predict(scheffe_features(X))).reshape(np.atleast_2d(X).shape[0], len(self.columns))

    def predict_one(self, x: np.ndarray) -> dict[str, float]:
        return dict(zip(self.columns, (float(v) for v in self.predict(np.atleast_2d(x))[0])))

    def optimum(self, column: str, maximize: bool, n_starts: int = 24, seed: int = 0) -> tuple[np.ndarray, float]:
        """Best point of one column's prediction on the simplex (multi-start SLSQP from vertices,
        the centre and Dirichlet samples)."""
        j = self.columns.index(column)
        d = self.model.coef_.shape[-1]
        dim = int(round((-1 + np.sqrt(1 + 8 * d)) / 2))  # d = n + n(n-1)/2
        sign = -1.0 if maximize else 1.0
        f = lambda x: sign * float(self.predict(x[None, :])[0, j])  # noqa: E731
        starts = list(np.eye(dim)) + [np.full(dim, 1 / dim)]
        starts += list(np.random.default_rng(seed).dirichlet(np.ones(dim), size=n_starts))
        best_x, best_v = None, np.inf
        cons = ({"type": "eq", "fun": lambda x: x.sum() - 1.0},)
        for x0 in starts:
            res = minimize(
                f, x0, method="SLSQP", bounds=[(0, 1)] * dim, constraints=cons, options={"ftol": 1e-12, "maxiter": 300}
            )
            x = np.clip(res.x, 0, None)
            x = x / x.sum()
            v = f(x)
            if v < best_v:
                best_x, best_v = x, v
        return best_x, sign * best_v


LOO_MAX = 100  # above this many mixtures the held-out error is 10-fold, not leave-one-out (one refit per fold)
KFOLD = 10


def loo_errors(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Honest held-out residuals (n × columns), refitting everything (alpha included) without the held-out
    mixtures: leave-one-mixture-out up to LOO_MAX mixtures, 10-fold beyond (512 LOO refits took over a minute
    on RegMix's table; 10 folds of 460 mixtures estimate the same error). One BLAS thread: small fits
    oversubscribe a shared machine."""
    from threadpoolctl import threadpool_limits

    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float).reshape(len(X), -1)
    n = len(X)
    res = np.empty_like(Y)
    if n <= LOO_MAX:
        folds = [np.array([i]) for i in range(n)]
    else:
        order = np.random.default_rng([0, 7]).permutation(n)
        folds = [order[k::KFOLD] for k in range(KFOLD)]
    with threadpool_limits(1):
        for test in folds:
            mask = np.ones(n, bool)
            mask[test] = False
            model = _fit(X[mask], Y[mask] if Y.shape[1] > 1 else Y[mask, 0])
            res[test] = np.asarray(model.predict(scheffe_features(X[test]))).reshape(len(test), -1) - Y[test]
    return res


def fit_report(X: np.ndarray, Y: np.ndarray, columns: list[str]) -> dict[str, dict[str, float]]:
    """LOO RMSE, MAE and R² per column, for the suite card."""
    res = loo_errors(X, Y)
    Y = np.asarray(Y, dtype=float).reshape(len(X), -1)
    out = {}
    for j, c in enumerate(columns):
        ss_tot = float(np.sum((Y[:, j] - Y[:, j].mean()) ** 2))
        out[c] = {
            "loo_rmse": round(float(np.sqrt(np.mean(res[:, j] ** 2))), 6),
            "loo_mae": round(float(np.mean(np.abs(res[:, j]))), 6),
            "loo_r2": round(1 - float(np.sum(res[:, j] ** 2)) / ss_tot, 4) if ss_tot > 0 else None,
            "spread_sd": round(float(np.std(Y[:, j])), 6),
        }
    return out
