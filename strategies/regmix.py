"""RegMix: data mixture as regression (Liu et al., "RegMix: Data Mixture as Regression for Language Model
Pre-training", ICLR 2025, arXiv 2407.01492). Reference code: sail-sg/regmix, read for this module.

1. Pilots from the reference prior (`mixture_config/synthesize_mixture.py`, `generate_weights_dirichlet`):
   the prior p is the corpora's token distribution, smoothed by a temperature (`TEMP = 0.5`: p^0.5,
   renormalised); each pilot picks a strength s uniformly among 15 values log-spaced from
   `MIN_STRENGH = 0.1` to `MAX_STRENGH = 5.0` and draws Dirichlet(s · p); a draw is rejected when a domain
   exceeds `MAXIMUM_USAGE = 15` times its (untempered) prior share; weights below `MINIMUM = 2e-4` are zeroed,
   the rest renormalised and rounded to multiples of 2e-4. The concentration of a domain is s · p_i (s / d for
   a uniform prior), so most pilots put almost everything on a few domains.
2. The regressor: LightGBM (`regression_fitting/regression.ipynb`): `LGBMRegressor(boosting_type="gbdt",
   objective="regression", num_iterations=1000, learning_rate=1e-2, seed=42)` with early stopping after 3
   rounds without improvement of the l2 on a held-out set.
3. The mixture: simulate 100,000 mixtures from Dirichlet(p · 1) (the notebook's `np.random.dirichlet(
   prior_dist * 1, 100000)`), predict each, and average the top k = 128 (`k = 128`; the paper's Section 3
   states the same).
`regmix-linear` is the paper's linear-regression baseline (Table 2, "Linear"): the same pipeline with
ordinary least squares on the weights (scikit-learn `LinearRegression`).

What this harness forces (named parameters):
- `prior`: the token distribution is unknown to a strategy here; default uniform (a dict of weights may be
  given). The reference generator's statistics for a uniform prior are pinned in tests/test_strategies_methods.py.
- LightGBM's own leaf-size defaults (`min_child_samples` 20, `min_data_in_bin` 3) forbid every split with
  the 8 to 24 pilots of a budget here (the paper fits 512): `min_child_samples` 2, `min_data_in_bin` 1.
  Early stopping needs a held-out set: `valid_fraction` 0.2 of the pilots when there are at least
  `min_early_stopping` (50: a held-out set of 10 or more; on a smaller one the patience of 3 rounds stops
  the boosting after a tree or two, on noise), else all 1000 rounds on every pilot.
- The pool track (recorded mixtures only): a pilot is the prior draw's nearest candidate not yet piloted
  (no pilot twice), and the top-k average takes the same fraction of the pool as 128 of 100,000 (at least
  one candidate), snapped to the pool.
- With fewer than `min_fit` successful pilots, or a constant objective, the best observed mixture.
"""

from __future__ import annotations

import warnings

import numpy as np

from strategies import tree_cells
from strategies.base import Strategy, best_observed
from strategies.bo_common import ok_arrays, step_rng
from strategies.registry import register

TEMPERATURE, MIN_STRENGTH, MAX_STRENGTH, N_STRENGTHS = 0.5, 0.1, 5.0, 15
MAXIMUM_USAGE, MINIMUM = 15.0, 2e-4


def regmix_prior(
    rng: np.random.Generator,
    prior: np.ndarray,
    size: int,
    temperature: float = TEMPERATURE,
    min_strength: float = MIN_STRENGTH,
    max_strength: float = MAX_STRENGTH,
    n_strengths: int = N_STRENGTHS,
    maximum_usage: float = MAXIMUM_USAGE,
    minimum: float = MINIMUM,
) -> np.ndarray:
    """`size` pilot mixtures from the reference generator (see the module docstring), vectorised."""
    prior = np.asarray(prior, dtype=float)
    prior = prior / prior.sum()
    bound = np.minimum(prior * maximum_usage, 1.0)
    centre = prior**temperature if temperature < 1.0 else prior
    centre = centre / centre.sum()
    strengths = np.logspace(np.log10(min_strength), np.log10(max_strength), n_strengths)
    out = np.empty((0, len(prior)))
    while len(out) < size:
        n = max(16, 2 * (size - len(out)))
        s = strengths[rng.integers(0, n_strengths, size=n)]
        G = rng.gamma(s[:, None] * centre[None, :])
        zero = G.sum(1) <= 0  # every Gamma draw underflowed: the Dirichlet's limit, a vertex
        G[zero, rng.choice(len(prior), size=int(zero.sum()), p=centre)] = 1.0
        X = G / G.sum(1, keepdims=True)
        X = X[(X <= bound[None, :]).all(1)]
        X = np.where(X < minimum, 0.0, X)
        X = X / X.sum(1, keepdims=True)
        X = np.round(X / minimum) * minimum
        X = X[X.sum(1) > 0]
        out = np.vstack([out, X / X.sum(1, keepdims=True)])
    return out[:size]


def simulated_mixtures(rng: np.random.Generator, prior: np.ndarray, size: int) -> np.ndarray:
    """The notebook's simulation: Dirichlet(prior · 1) (no temperature, no bound)."""
    prior = np.asarray(prior, dtype=float)
    G = rng.gamma(np.broadcast_to(prior / prior.sum(), (size, len(prior))))
    zero = G.sum(1) <= 0
    G[zero, rng.integers(0, len(prior), size=int(zero.sum()))] = 1.0
    return G / G.sum(1, keepdims=True)


@register("regmix")
class RegMix(Strategy):
    description = "RegMix as released: reference Dirichlet prior pilots, LightGBM regression, mean of the top 128 of 100,000 simulated."
    citation = "Liu et al., RegMix: Data Mixture as Regression for Language Model Pre-training (ICLR 2025)"
    family = "surrogate"
    model_kind = "lightgbm"

    def __init__(
        self,
        space,
        seed=0,
        prior: dict | None = None,
        n_simulated: int = 100_000,
        top_k: int = 128,
        min_fit: int = 5,
        n_estimators: int = 1000,
        learning_rate: float = 1e-2,
        early_stopping_rounds: int = 3,
        valid_fraction: float = 0.2,
        min_early_stopping: int = 50,
        min_child_samples: int = 2,
        min_data_in_bin: int = 1,
    ):
        super().__init__(space, seed)
        if int(n_simulated) < 1 or not 1 <= int(top_k) or not 0 < valid_fraction < 1:
            raise ValueError(
                f"regmix needs n_simulated >= 1, top_k >= 1 and 0 < valid_fraction < 1; got "
                f"n_simulated={n_simulated}, top_k={top_k}, valid_fraction={valid_fraction}"
            )
        if prior is None:
            self.prior = np.full(space.dim, 1.0 / space.dim)
        else:
            space.mixture(prior)  # names checked (a clear error for an unknown dataset)
            self.prior = np.array([float(prior.get(d, 0.0)) for d in space.datasets])
        if not np.all(np.isfinite(self.prior)) or (self.prior <= 0).any():
            raise ValueError(f"regmix's prior must give every dataset a positive share; got {prior}")
        self.prior = self.prior / self.prior.sum()
        self.n_simulated, self.top_k, self.min_fit = int(n_simulated), int(top_k), int(min_fit)
        self.lgbm = dict(
            n_estimators=int(n_estimators),
            learning_rate=float(learning_rate),
            min_child_samples=int(min_child_samples),
            min_data_in_bin=int(min_data_in_bin),
        )
        self.early_stopping_rounds, self.valid_fraction = int(early_stopping_rounds), float(valid_fraction)
        self.min_early_stopping = int(min_early_stopping)

    # -- pilots ----------------------------------------------------------------------------------------
    def propose(self, history, budget):
        if budget.remaining(history) <= 0:
            return None
        x = regmix_prior(step_rng(self.seed, len(history), 5), self.prior, 1)[0]
        if self.space.is_pool:
            return self.unpiloted_nearest(x, history)
        return self.space.from_vector(x, normalize=True)

    def unpiloted_nearest(self, x, history):
        """The pool candidate nearest the draw among those not piloted yet (None when all are)."""
        pool = self.space.candidate_matrix
        piloted = {o.mixture for o in history}
        order = np.argsort(((pool - x[None, :]) ** 2).sum(1), kind="stable")
        for i in order:
            m = self.space.from_vector(pool[i], normalize=True)
            if self.space.snap(m) not in piloted:
                return m
        return None

    # -- the regression ----------------------------------------------------------------------------------
    def _fit(self, X, y):
        import lightgbm as lgb

        model = lgb.LGBMRegressor(
            boosting_type="gbdt",
            objective="regression",
            random_state=self.seed,
            verbosity=-1,
            n_jobs=1,
            deterministic=True,
            force_row_wise=True,
            **self.lgbm,
        )
        n = len(y)
        if n >= self.min_early_stopping:
            rng = np.random.default_rng([self.seed, n, 17])
            perm = rng.permutation(n)
            n_valid = max(2, int(round(self.valid_fraction * n)))
            valid, train = perm[:n_valid], perm[n_valid:]
            with warnings.catch_warnings():  # LightGBM 4.7 renames eval_set; 4.0 to 4.6 know only eval_set
                warnings.simplefilter("ignore", category=FutureWarning)
                warnings.simplefilter("ignore", category=DeprecationWarning)
                return model.fit(
                    X[train],
                    y[train],
                    eval_set=[(X[valid], y[valid])],
                    eval_metric="l2",
                    callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
                )
        return model.fit(X, y)

    def recommend(self, history):
        X, y = ok_arrays(self.space, history)
        if len(y) < self.min_fit or np.ptp(y) == 0:
            return best_observed(history) or self.space.uniform()
        model = self._fit(X, y)
        if self.space.is_pool:
            pool = self.space.candidate_matrix
            k = max(1, int(round(len(pool) * self.top_k / self.n_simulated)))
            top = pool[np.argsort(-model.predict(pool), kind="stable")[:k]]
        else:
            sims = simulated_mixtures(step_rng(self.seed, len(history), 6), self.prior, self.n_simulated)
            # the model's predictions, one per cell of its trees' thresholds (strategies/tree_cells.py: the same numbers)
            top = sims[np.argsort(-tree_cells.predict(model, sims), kind="stable")[: self.top_k]]
        return self.space.from_vector(top.mean(axis=0), normalize=True)


@register("regmix-linear")
class RegMixLinear(RegMix):
    description = (
        "RegMix's linear baseline: reference-prior pilots, least squares on the weights, mean of the top 128 simulated."
    )
    model_kind = "linear"

    def _fit(self, X, y):
        from sklearn.linear_model import LinearRegression

        return LinearRegression().fit(X, y)
