"""Data Mixing Laws (Ye et al., "Data Mixing Laws: Optimizing Data Mixtures by Predicting Language
Modeling Performance", ICLR 2025, arXiv 2403.16952).

The law: a domain's loss is c + k·exp(Σ_j t_j·w_j). For a target whose composition is unknown,
the paper aggregates K implicit domains, score ≈ c + Σ_m k_m·exp(Σ_j t_mj·w_j) (Section 3.4);
with K = 1 the law is monotone in one linear function of w and its optimum is a vertex whatever the
data say, so the number of terms is the largest K ≤ `max_terms` that the data can identify
(1 + K·(n+1) parameters ≤ (the number of successful runs − 1) / `runs_per_parameter`), and a law is
fitted only when that K is
at least `min_terms` (default 2: the smallest law that can place an optimum inside the simplex). Below
that (fewer than 2n + 4 runs) the strategy recommends the best observed mixture: the paper fits its
laws on many more mixtures than a budget of 8 gives, and a one-term fit at 8 pilots sent every
recommendation to a vertex (normalised regret 0.39 to 0.68 on the demo suites, worse than random search;
`min_terms=1` restores that behaviour). `runs_per_parameter` (default 2): with one run per parameter (the
earlier rule) the two-term law interpolated 16 runs with 13 parameters at n = 5; its maximiser was a
near-vertex mixture in 31% of the studies at budget 16 and the normalised regret 0.245 (16) and 0.167 (24)
on the demo pool suites, against random search's 0.118 and 0.119; with two runs per parameter it is not
fitted below 2·(2n + 3) + 1 runs (27 at n = 5), so at the leaderboard's budgets on five datasets this
strategy is its pilots (uniform, then random draws) and the best of them: 0.136, 0.120, 0.121 at 8/16/24.
That is what the law can support with so few runs, and the leaderboard row shows it.

Procedure: pilots at uniform, then Dirichlet(1) samples (the paper fits on a set of sampled
mixtures; it is one-shot, not sequential); fit by nonlinear least squares (scipy least_squares,
a few deterministic starts); recommend the law's maximiser on the simplex (multi-start SLSQP).
What it needs: at least n + 3 runs for n datasets; with fewer, or when no fit converges, it
recommends the best observed mixture.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from strategies.base import Strategy, best_observed
from strategies.bo_common import blas_single, initial_design, maximise_on_simplex, ok_arrays, snap, step_rng
from strategies.registry import register


def law(theta: np.ndarray, X: np.ndarray, terms: int) -> np.ndarray:
    d = X.shape[1]
    c, rest = theta[0], theta[1:].reshape(terms, d + 1)
    return c + (rest[:, 0][None, :] * np.exp(np.clip(X @ rest[:, 1:].T, -30, 30))).sum(1)


def law_grad_x(theta: np.ndarray, x: np.ndarray, terms: int) -> np.ndarray:
    d = x.shape[0]
    rest = theta[1:].reshape(terms, d + 1)
    e = np.exp(np.clip(rest[:, 1:] @ x, -30, 30))
    return ((rest[:, 0] * e)[:, None] * rest[:, 1:]).sum(0)


def law_jacobian(theta: np.ndarray, X: np.ndarray, terms: int) -> np.ndarray:
    """d law / d theta, (n × (1 + terms·(d+1))): analytic, so a fit costs milliseconds."""
    n, d = X.shape
    rest = theta[1:].reshape(terms, d + 1)
    E = np.exp(np.clip(X @ rest[:, 1:].T, -30, 30))  # n × terms
    J = np.empty((n, 1 + terms * (d + 1)))
    J[:, 0] = 1.0
    blocks = J[:, 1:].reshape(n, terms, d + 1)
    blocks[:, :, 0] = E
    blocks[:, :, 1:] = (rest[:, 0] * E)[:, :, None] * X[:, None, :]
    J[:, 1:] = blocks.reshape(n, -1)
    return J


def fit_law(X: np.ndarray, y: np.ndarray, terms: int, rng: np.random.Generator, starts: int = 4):
    """Least-squares fit of the K-term law in standardised y; returns (theta, rmse) or None."""
    mu, sd = float(y.mean()), float(y.std()) or 1.0
    z = (y - mu) / sd
    d = X.shape[1]
    best = None
    for s in range(starts):
        t0 = rng.normal(scale=1.0, size=(terms, d))
        k0 = rng.choice([-1.0, 1.0], size=terms) * 0.5
        theta0 = np.concatenate([[0.0], np.column_stack([k0, t0]).ravel()])
        try:
            res = least_squares(
                lambda th: law(th, X, terms) - z,
                theta0,
                jac=lambda th: law_jacobian(th, X, terms),
                method="trf",
                max_nfev=60,
            )
        except (ValueError, FloatingPointError):
            continue
        rmse = float(np.sqrt(np.mean(res.fun**2)))
        if np.isfinite(rmse) and (best is None or rmse < best[1]):
            best = (res.x, rmse)
    if best is None:
        return None
    theta = best[0].copy()
    # back to the objective's units: y = mu + sd·(c + Σ k·e)
    theta[0] = mu + sd * theta[0]
    rest = theta[1:].reshape(terms, d + 1)
    rest[:, 0] *= sd
    theta[1:] = rest.ravel()
    return theta, best[1] * sd


@register("mixing-law")
class MixingLaw(Strategy):
    description = (
        "Data Mixing Laws: fit a two-term law c + Σ k·exp(t·w) once there are 2 runs per parameter "
        "(27 at 5 datasets), recommend its maximiser; before that, the best of its random pilots."
    )
    citation = "Ye et al., Data Mixing Laws: Optimizing Data Mixtures by Predicting LM Performance (ICLR 2025)"
    family = "surrogate"

    def __init__(
        self,
        space,
        seed=0,
        max_terms: int = 2,
        fit_starts: int = 3,
        min_terms: int = 2,
        runs_per_parameter: float = 2.0,
    ):
        super().__init__(space, seed)
        if max_terms < 1 or not 1 <= min_terms <= max_terms:
            raise ValueError(
                f"mixing-law needs max_terms >= 1 and 1 <= min_terms <= max_terms, got "
                f"max_terms={max_terms}, min_terms={min_terms}"
            )
        self.max_terms, self.fit_starts, self.min_terms = int(max_terms), int(fit_starts), int(min_terms)
        if not runs_per_parameter >= 1:
            raise ValueError(f"runs_per_parameter must be >= 1, got {runs_per_parameter}")
        self.runs_per_parameter = float(runs_per_parameter)

    def propose(self, history, budget):
        if budget.remaining(history) <= 0:
            return None
        return self.space.from_vector(initial_design(self.space, self.seed, len(history)), normalize=True)

    @blas_single
    def recommend(self, history):
        X, y = ok_arrays(self.space, history)
        d = self.space.dim
        terms = min(self.max_terms, int(((len(y) - 1) / self.runs_per_parameter - 1) // (d + 1)))
        if terms < self.min_terms or np.std(y) == 0:
            return best_observed(history) or self.space.uniform()
        fit = fit_law(X, y, terms, step_rng(self.seed, len(history), 7), self.fit_starts)
        if fit is None:
            return best_observed(history) or self.space.uniform()
        theta, _ = fit
        if self.space.is_pool:  # the pool track: the candidate the fitted law ranks first
            pool = self.space.candidate_matrix
            return self.space.from_vector(pool[int(np.argmax(law(theta, pool, terms)))], normalize=True)
        fg = lambda x: (float(law(theta, x[None, :], terms)[0]), law_grad_x(theta, x, terms))  # noqa: E731
        cands = np.vstack([X, np.eye(d), np.full((1, d), 1.0 / d)])
        starts = cands[np.argsort(-law(theta, cands, terms))[:3]]
        x, _ = maximise_on_simplex(fg, starts)
        return self.space.from_vector(snap(x), normalize=True)
