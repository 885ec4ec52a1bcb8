"""quadratic-bo: the paper's quadratic surrogate, made sequential, regularised and uncertainty-aware.

Our improvement of MoDoMoDo's Algorithm 4 (Liang et al., arXiv 2505.24871). The paper fits an
OLS quadratic once on the seed runs and pilots the top-k of random candidates. Here:
- the model is a Scheffé quadratic (w_i and w_i·w_j: the quadratic mixture model without the
  redundant intercept and squares) fitted as Bayesian ridge regression, prior and noise scales
  chosen by the evidence: regularised, so it is sane with fewer runs than coefficients;
- it is refitted after every pilot run;
- the next pilot maximises an upper confidence bound, mean + κ·sd (sd = the coefficients'
  posterior uncertainty), κ shrinking linearly to `kappa_end` over the budget;
- the maximisation is a constrained optimisation on the simplex (SLSQP with analytic gradients,
  multi-start), inside a trust region ||w − w_best|| ≤ Δ around the run with the best posterior
  mean, as derivative-free trust-region methods do with quadratic models (Powell's NEWUOA,
  Conn, Scheinberg & Vicente 2009): Δ grows ×1.5 after a run that improves on the best observed
  value and shrinks ×0.6 otherwise, within [`radius_min`, `radius_max`]. Without it the UCB of a
  global quadratic sits on the simplex's vertices, where its uncertainty is largest;
- the recommendation maximises the posterior mean inside the final trust region when the model
  explains the data (leave-one-out R² ≥ `trust_r2`, closed form), else it is the observed run
  with the best posterior mean.

Initial design: uniform, then Dirichlet(1) samples (`n_init`, default 3).
What it needs: (mixture, objective) pairs only; failed runs are ignored by the fit.
"""

from __future__ import annotations

import numpy as np

from strategies.base import Strategy, best_observed
from strategies.bo_common import BayesScheffe, initial_design, maximise_on_simplex, ok_arrays, snap, step_rng
from strategies.registry import register


def loo_r2(model: BayesScheffe, X: np.ndarray, y: np.ndarray) -> float:
    """Leave-one-out R² of a Bayesian ridge fit at its hyperparameters: closed form,
    residual_i / (1 − H_ii) with the hat matrix H = F S Fᵀ / σ²."""
    if len(y) < 4 or np.std(y) == 0:
        return -np.inf
    F = model.features(X)
    z = (y - model.mu) / model.sd
    h = np.einsum("ij,jk,ik->i", F, model.S, F) / model.sig**2
    resid = (z - F @ model.m) / np.maximum(1.0 - h, 1e-6)
    return 1.0 - float(np.sum(resid**2)) / float(np.sum((z - z.mean()) ** 2))


@register("quadratic-bo")
class QuadraticBO(Strategy):
    description = "Bayesian Scheffé quadratic refitted every run; UCB maximised by SLSQP in a trust region."
    citation = "modomodo: sequential, regularised version of MoDoMoDo Alg. 4 (Liang et al., arXiv 2505.24871)"
    family = "bayesopt"

    def __init__(self, space, seed=0, n_init: int = 3, kappa_start: float = 2.0, kappa_end: float = 0.3,
                 n_candidates: int = 128, n_starts: int = 1, radius_start: float = 0.2, radius_min: float = 0.03,
                 radius_max: float = 0.8, trust_r2: float = 0.5, recommend: str = "auto"):
        super().__init__(space, seed)
        if recommend not in ("auto", "model", "observed"):
            raise ValueError(f"recommend must be 'auto', 'model' or 'observed', got {recommend!r}")
        if n_init < 1:
            raise ValueError(f"n_init must be >= 1, got {n_init}")
        if not 0 < radius_min <= radius_start <= radius_max:
            raise ValueError("need 0 < radius_min <= radius_start <= radius_max")
        self.n_init, self.kappa_start, self.kappa_end = int(n_init), float(kappa_start), float(kappa_end)
        self.n_candidates, self.n_starts, self.trust_r2 = int(n_candidates), int(n_starts), float(trust_r2)
        self.radius = (float(radius_start), float(radius_min), float(radius_max))
        self.recommend_by = recommend

    def _radius(self, history) -> float:
        """Trust-region radius replayed from the history (a pure function of it)."""
        r, lo, hi = self.radius
        best = -np.inf
        for step, o in enumerate(history):
            if not o.ok:
                if step >= self.n_init:
                    r = max(lo, r * 0.6)
                continue
            if step >= self.n_init:
                r = min(hi, r * 1.5) if o.objective > best else max(lo, r * 0.6)
            best = max(best, o.objective)
        return r

    def _maximise(self, model: BayesScheffe, kappa: float, rng, X_obs, centre, radius) -> np.ndarray:
        d = self.space.dim
        local = rng.dirichlet(np.clip(centre, 1e-3, None) * (2.0 / max(radius, 1e-3)) ** 2 + 0.02, size=self.n_candidates)
        cands = np.vstack([local, X_obs, centre[None, :]])
        cands = cands[np.linalg.norm(cands - centre, axis=1) <= radius]
        mean, sd = model.predict(cands)
        starts = cands[np.argsort(-(mean + kappa * sd))[: self.n_starts]]
        x, _ = maximise_on_simplex(lambda x: model.value_and_grad(x, kappa), starts, centre=centre, radius=radius)
        return snap(x)

    def _centre(self, model, X) -> np.ndarray:
        mean, _ = model.predict(X)
        return X[int(np.argmax(mean))]

    def propose(self, history, budget):
        if budget.remaining(history) <= 0:
            return None
        step = len(history)
        X, y = ok_arrays(self.space, history)
        if step < self.n_init or len(y) < 2:
            return self.space.from_vector(initial_design(self.space, self.seed, step), normalize=True)
        frac = (budget.remaining(history) - 1) / max(1, budget.runs - self.n_init - 1)
        kappa = self.kappa_end + (self.kappa_start - self.kappa_end) * float(np.clip(frac, 0.0, 1.0))
        model = BayesScheffe(X, y)
        x = self._maximise(model, kappa, step_rng(self.seed, step, 3), X, self._centre(model, X), self._radius(history))
        return self.space.from_vector(x, normalize=True)

    def recommend(self, history):
        X, y = ok_arrays(self.space, history)
        if len(y) < 2:
            return best_observed(history) or self.space.uniform()
        model = BayesScheffe(X, y)
        centre = self._centre(model, X)
        use_model = self.recommend_by == "model" or (self.recommend_by == "auto" and loo_r2(model, X, y) >= self.trust_r2)
        if use_model:
            centre = self._maximise(model, 0.0, step_rng(self.seed, len(history), 4), X, centre, self._radius(history))
        return self.space.from_vector(centre, normalize=True)
