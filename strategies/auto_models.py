"""The surrogate models `auto` chooses among by cross-validation (strategies/auto.py): Bayesian
regressions on the weight vectors in kernel form (Scheffé's linear and quadratic mixture models, a Matérn
GP) with closed-form leave-one-out errors and marginal likelihoods, and LightGBM with k-fold errors."""

from __future__ import annotations

import numpy as np

from strategies.bo_common import matern52

#: models in order of complexity (ties go to the simpler one)
MODELS = ("linear", "quadratic", "gp", "lightgbm")

_NOISE_RATIOS = np.array([1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5, 1.0, 3.0])
_LENGTHSCALES = np.array([0.08, 0.15, 0.25, 0.4, 0.6, 1.0, 1.6])


# -- prior covariances on centred weight vectors (v = w − 1/d) ----------------------------------------
def _linear_kernel(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(√d·v_a)·(√d·v_b) / d: a unit prior variance per unit of the typical mixture's move."""
    d = A.shape[1]
    return (A - 1.0 / d) @ (B - 1.0 / d).T


def _quadratic_kernel(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """φ(a)·φ(b)/p with φ = [√d·v_i, d·v_i·v_j (i<j)], p = d + d(d−1)/2, without building φ:
    Σ_{i<j} a_i a_j b_i b_j = ((a·b)² − Σ_i a_i² b_i²) / 2."""
    d = A.shape[1]
    Va, Vb = A - 1.0 / d, B - 1.0 / d
    G = Va @ Vb.T
    H = (Va * Va) @ (Vb * Vb).T
    p = d + d * (d - 1) / 2
    return (d * G + d * d * 0.5 * (G * G - H)) / p


def _diag_quadratic(A: np.ndarray) -> np.ndarray:
    d = A.shape[1]
    V = A - 1.0 / d
    g = (V * V).sum(1)
    h = (V**4).sum(1)
    p = d + d * (d - 1) / 2
    return (d * g + d * d * 0.5 * (g * g - h)) / p


class KernelRegression:
    """Exact GP regression (constant mean = the sample mean) with a fixed kernel family; signal
    variance profiled out, noise ratio (and lengthscale, for Matérn) by the marginal likelihood over a
    grid. `loo_sq_error` is the closed-form leave-one-out squared error in standardised units."""

    def __init__(self, kind: str, X: np.ndarray, y: np.ndarray):
        self.kind, self.X = kind, np.asarray(X, float)
        y = np.asarray(y, float)
        self.mu, self.sd = float(y.mean()), float(y.std()) or 1.0
        z = (y - self.mu) / self.sd
        n = len(z)
        best = None
        for ls in _LENGTHSCALES if kind == "gp" else (None,):
            K = self._prior(self.X, self.X, ls)
            lam, Q = np.linalg.eigh(K)
            lam = np.maximum(lam, 0.0)
            a2 = (Q.T @ z) ** 2
            ev = lam[None, :] + _NOISE_RATIOS[:, None]
            s2 = np.maximum((a2[None, :] / ev).sum(1) / n, 1e-12)
            lml = -0.5 * n * np.log(s2) - 0.5 * np.log(ev).sum(1)
            k = int(np.argmax(lml))
            if best is None or lml[k] > best[0] + 1e-9:
                best = (float(lml[k]), ls, float(_NOISE_RATIOS[k]), float(s2[k]))
        _, self.lengthscale, self.noise, self.s2 = best
        A = self._prior(self.X, self.X, self.lengthscale) + self.noise * np.eye(n)
        self.Ainv = np.linalg.inv(A)
        self.alpha = self.Ainv @ z
        diag = np.diag(self.Ainv)
        self.loo_sq_error = float(np.mean((self.alpha / diag) ** 2))

    # Every kernel carries an intercept with a unit prior (+ 1): the sample mean is only an estimate
    # of the surface's level, and without it a linear surface is not in the model's span.
    def _prior(self, A, B, ls):
        if self.kind == "constant":
            return np.ones((A.shape[0], B.shape[0]))
        if self.kind == "linear":
            return 1.0 + _linear_kernel(A, B)
        if self.kind == "quadratic":
            return 1.0 + _quadratic_kernel(A, B)
        return 1.0 + matern52(A, B, ls)

    def _prior_diag(self, A):
        if self.kind == "constant":
            return np.ones(A.shape[0])
        if self.kind == "linear":
            V = A - 1.0 / A.shape[1]
            return 1.0 + (V * V).sum(1)
        if self.kind == "quadratic":
            return 1.0 + _diag_quadratic(A)
        return np.full(A.shape[0], 2.0)

    def predict(self, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and sd of the latent surface, in the objective's units."""
        Xs = np.atleast_2d(Xs)
        Ks = self._prior(Xs, self.X, self.lengthscale)
        mean = Ks @ self.alpha
        var = np.maximum(self._prior_diag(Xs) - ((Ks @ self.Ainv) * Ks).sum(1), 1e-12)
        return self.mu + self.sd * mean, self.sd * np.sqrt(self.s2 * var)

    def ucb_batch(self, Xs: np.ndarray, kappa: float, k: int) -> list[int]:
        """Up to `k` rows of `Xs`: GP-UCB-PE (Contal, Buffoni, Robicquet & Vayatis 2013, "Parallel Gaussian process
        optimization with upper confidence bound and pure exploration"). The first is the plain UCB argmax; each
        next one is the row of the relevant region (UCB at least the best LCB: rows that may still be the best)
        with the largest variance once the rows already picked are conditioned on as if observed (the variance
        does not depend on the values), until none is left with more variance than the noise. Picks spread out
        instead of crowding the first: a twin of a picked row keeps less than the noise's variance.
        Written from the paper (no authors' code was read). Deviations: a fixed `kappa` (the paper's beta_t grows
        with t), the batch ends early once no relevant row has more variance than the noise (the paper always
        fills k), and the kernel's hyper-parameters are those of auto's fit."""
        Xs = np.atleast_2d(Xs)
        Ks = self._prior(Xs, self.X, self.lengthscale)
        mean = self.mu + self.sd * (Ks @ self.alpha)
        KsA = Ks @ self.Ainv
        var = np.maximum(self._prior_diag(Xs) - (KsA * Ks).sum(1), 1e-12)  # latent, before the s2 scale
        sd = self.sd * np.sqrt(self.s2 * var)
        ucb = mean + kappa * sd
        relevant = ucb >= (mean - kappa * sd).max()
        chosen: list[int] = []
        for _ in range(min(k, len(Xs))):
            # past the first, a row whose variance left is below the noise's would teach less than one noisy
            # run of itself: the batch ends there (a twin of a picked row never is picked)
            score = np.where(relevant & (var > self.noise), var, -np.inf) if chosen else ucb.copy()
            score[chosen] = -np.inf
            j = int(np.argmax(score))
            if not np.isfinite(score[j]):
                break  # the relevant region is used up
            chosen.append(j)
            cov = self._prior(Xs, Xs[j : j + 1], self.lengthscale)[:, 0] - KsA @ Ks[j]
            var = np.maximum(var - cov**2 / (var[j] + self.noise), 1e-12)
        return chosen

    @property
    def note(self) -> str:
        extra = f", lengthscale {self.lengthscale:g}" if self.lengthscale is not None else ""
        return f"noise ratio {self.noise:g}{extra}"


class BoostedTrees:
    """LightGBM regression with small trees; its predictive sd is its cross-validated RMSE.

    Built with LightGBM's own `train` API (the scikit-learn wrapper adds ~3 ms a fit) and coarse bins (a
    handful of pilots has few distinct values per weight). The k-fold error is computed on construction;
    the model on every pilot is fitted only if it is chosen (`predict`), as it rarely is on a few pilots."""

    PARAMS = dict(
        objective="regression",
        learning_rate=0.1,
        num_leaves=4,
        min_data_in_leaf=2,
        min_sum_hessian_in_leaf=1e-3,
        lambda_l2=1.0,
        num_threads=1,
        verbose=-1,
        force_col_wise=True,
    )
    DATASET = dict(verbose=-1, max_bin=15, min_data_in_bin=1)
    ROUNDS = 50

    def __init__(self, X: np.ndarray, y: np.ndarray, seed: int, folds: int = 3):
        import lightgbm  # a well-kept library (pyproject dependency); imported when first needed

        self._lgb, self.seed = lightgbm, seed
        y = np.asarray(y, float)
        self.X = np.asarray(X, float)
        self.mu, self.sd = float(y.mean()), float(y.std()) or 1.0
        self.z = (y - self.mu) / self.sd
        n = len(self.z)
        order = np.random.default_rng([seed, n, 41]).permutation(n)
        err = np.empty(n)
        for f in range(folds):
            test = order[f::folds]
            train = np.setdiff1d(order, test)
            err[test] = self.z[test] - self._train(self.X[train], self.z[train]).predict(self.X[test])
        self.loo_sq_error = float(np.mean(err**2))  # k-fold, not leave-one-out: named for the comparison
        self.model = None
        self.note = f"{folds}-fold CV"

    def _train(self, X, z):
        data = self._lgb.Dataset(X, z, params=self.DATASET)
        return self._lgb.train(dict(self.PARAMS, seed=self.seed), data, num_boost_round=self.ROUNDS)

    def predict(self, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.model is None:
            self.model = self._train(self.X, self.z)
        Xs = np.atleast_2d(Xs)
        mean = self.model.predict(Xs)
        return self.mu + self.sd * mean, np.full(len(Xs), self.sd * np.sqrt(self.loo_sq_error))
