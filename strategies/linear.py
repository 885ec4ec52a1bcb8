"""The paper's linear surrogate: score ≈ a + bᵀw by least squares, used exactly like Algorithm 4.

The paper fits it to show that a linear model fits the seed runs poorly (the reason for the
quadratic). As a strategy it runs the quadratic pipeline (strategies/quadratic.py, Algorithm 4 as published)
with the feature map [1, w]: seed runs, then the paper's five heuristic mixtures, OLS on both
(minimum-norm; the intercept is collinear with Σw = 1), best of 5 random 80/20 splits by held-out
R², Gaussian candidates, top-k by prediction. A linear model on the simplex ranks
candidates towards one vertex, so expect it to chase the best single dataset.
"""

from __future__ import annotations

from strategies.quadratic import Quadratic, linear_features
from strategies.registry import register


@register("linear")
class Linear(Quadratic):
    description = "Paper's linear surrogate a + bᵀw (OLS, best of 5 splits) in Algorithm 4's candidate/top-k pipeline."
    citation = "Liang et al., MoDoMoDo (arXiv 2505.24871), Section 4 / appendix (linear baseline of Algorithm 4)"
    family = "surrogate"
    features = staticmethod(linear_features)
