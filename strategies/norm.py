"""The paper's Norm heuristic (MoDoMoDo, Algorithm 3): the one behind the abstract's headline.

o_i = Out-Score of the seed run that leaves dataset i out; min-max normalise the o_i; raw weight
base − scale·ô_i (the paper, n = 5: 0.2 − 0.1·ô_i; defaults 1/n and 1/(2n) for other n), normalise.
A high o_i means dropping i helped, so i gets less weight. Needs the leave-one-out seed runs.
"""

from __future__ import annotations

from strategies.paper_heuristics import SeedThenHeuristic, norm_weights
from strategies.registry import register


@register("norm")
class Norm(SeedThenHeuristic):
    description = "Paper's Norm: seed runs, then weight 1/n − ô_i/(2n) from each leave-one-out run's Out-Score."
    citation = "Liang et al., MoDoMoDo (arXiv 2505.24871), appendix Algorithm 3 (Norm)"

    def __init__(self, space, seed=0, base: float | None = None, scale: float | None = None, **kw):
        super().__init__(space, seed, **kw)
        self.base = None if base is None else float(base)
        self.scale = None if scale is None else float(scale)

    def heuristic_vector(self, W, in_scores, out_scores):
        return norm_weights(W, out_scores, self.base, self.scale)
