"""The paper's Coli heuristic (MoDoMoDo, Algorithm 2).

Ridge regression without intercept (λ = 1e-3) of the Out-Score on the 0/1 inclusion indicators
of the seed runs; each coefficient divided by the matching diagonal entry of (XᵀX + λI)⁻¹;
negatives clipped to 0; normalised (uniform if every coefficient clips). Needs the 2n+1 seed runs.
"""

from __future__ import annotations

from strategies.paper_heuristics import SeedThenHeuristic, coli_weights
from strategies.registry import register


@register("coli")
class Coli(SeedThenHeuristic):
    description = "Paper's Coli: seed runs, then ridge (λ=1e-3) of Out-Score on inclusion indicators, scaled, clipped."
    citation = "Liang et al., MoDoMoDo (arXiv 2505.24871), appendix Algorithm 2 (Coli)"

    def __init__(self, space, seed=0, lam: float = 1e-3, **kw):
        super().__init__(space, seed, **kw)
        if not lam > 0:
            raise ValueError(f"lam must be > 0, got {lam}")
        self.lam = float(lam)

    def heuristic_vector(self, W, in_scores, out_scores):
        return coli_weights(W, out_scores, self.lam)
