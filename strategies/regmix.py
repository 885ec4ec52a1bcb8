"""RegMix: data mixture as regression (Liu et al., "RegMix: Data Mixture as Regression for
Language Model Pre-training", ICLR 2025, arXiv 2407.01492).

Procedure, as in the paper, at pilot scale:
1. Pilot runs at mixtures drawn from a Dirichlet prior. RegMix centres its prior on the token
   distribution of the corpora and varies the concentration from 0.1 to 5 so that both spread and
   near-vertex mixtures are seen; with no token counts here the centre is uniform and each run's
   concentration scale is drawn log-uniformly from [0.1, 5]. Step 0 is uniform.
2. Fit a regression from weights to score: gradient-boosted trees (the paper used LightGBM; here
   scikit-learn's GradientBoostingRegressor: 30 trees of depth 2, learning rate 0.2, for a few dozen points) or, in the
   `regmix-linear` variant, linear regression.
3. Simulate `n_simulated` mixtures from the same prior, predict each, and recommend the mean of
   the top-k predictions (the paper averages the top 100 to reduce variance).

What it needs: many cheap pilot runs. It is one-shot (no adaptivity), so at a budget of a dozen
runs the regression has little to learn from: expect it to shine only when pilots are cheap.
With fewer than `min_fit` successful runs it recommends the best observed mixture.
"""

from __future__ import annotations

import numpy as np

from strategies.base import Strategy, best_observed
from strategies.bo_common import ok_arrays, step_rng
from strategies.registry import register


def regmix_prior(rng: np.random.Generator, dim: int, size: int, low: float = 0.1, high: float = 5.0) -> np.ndarray:
    scales = np.exp(rng.uniform(np.log(low), np.log(high), size=size))
    # Dirichlet(s·1) rows via normalised Gamma(s) draws (vectorised: one call for every row)
    G = rng.gamma(np.repeat(scales[:, None], dim, axis=1))
    G[G.sum(1) <= 0] = 1.0
    return G / G.sum(1, keepdims=True)


@register("regmix")
class RegMix(Strategy):
    description = "RegMix: Dirichlet-prior pilots, gradient-boosted regression, mean of top-k simulated mixtures."
    citation = "Liu et al., RegMix: Data Mixture as Regression for Language Model Pre-training (ICLR 2025)"
    family = "surrogate"
    model_kind = "gbt"

    def __init__(self, space, seed=0, n_simulated: int = 4000, top_k: int = 100, min_fit: int = 5,
                 n_estimators: int = 30, max_depth: int = 2, learning_rate: float = 0.2):
        super().__init__(space, seed)
        self.n_simulated, self.top_k, self.min_fit = int(n_simulated), int(top_k), int(min_fit)
        self.gbt = dict(n_estimators=int(n_estimators), max_depth=int(max_depth), learning_rate=float(learning_rate))

    def propose(self, history, budget):
        if budget.remaining(history) <= 0:
            return None
        step = len(history)
        if step == 0:
            return self.space.uniform()
        return self.space.from_vector(regmix_prior(step_rng(self.seed, step, 5), self.space.dim, 1)[0], normalize=True)

    def _fit(self, X, y):
        if self.model_kind == "linear":
            from sklearn.linear_model import LinearRegression

            return LinearRegression().fit(X, y)
        from sklearn.ensemble import GradientBoostingRegressor

        return GradientBoostingRegressor(random_state=self.seed, subsample=1.0, min_samples_leaf=2, **self.gbt).fit(X, y)

    def recommend(self, history):
        X, y = ok_arrays(self.space, history)
        if len(y) < self.min_fit:
            return best_observed(history) or self.space.uniform()
        model = self._fit(X, y)
        if self.space.is_pool:  # the pool track: the candidate the regression ranks first
            pred = model.predict(self.space.candidate_matrix)
            return self.space.from_vector(self.space.candidate_matrix[int(np.argmax(pred))], normalize=True)
        sims = regmix_prior(step_rng(self.seed, len(history), 6), self.space.dim, self.n_simulated)
        pred = model.predict(sims)
        top = sims[np.argsort(-pred, kind="stable")[: self.top_k]]
        return self.space.from_vector(top.mean(axis=0), normalize=True)


@register("regmix-linear")
class RegMixLinear(RegMix):
    description = "RegMix's linear-regression variant: Dirichlet-prior pilots, linear fit, mean of top-k simulated."
    model_kind = "linear"
