"""Random search: Dirichlet samples, recommend the best seen. The honest baseline."""

import numpy as np

from strategies.base import Strategy
from strategies.bo_common import pool_draw
from strategies.registry import register


@register("random")
class RandomSearch(Strategy):
    description = "Pilots Dirichlet(alpha) samples of the simplex; recommends the best observed mixture."
    citation = "Bergstra & Bengio, Random Search for Hyper-Parameter Optimization (JMLR 2012)"
    family = "reference"

    def __init__(self, space, seed=0, alpha: float = 1.0):
        super().__init__(space, seed)
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def propose(self, history, budget):
        if budget.remaining(history) <= 0:
            return None
        # The i-th proposal depends only on (seed, i): a resumed study proposes exactly what the
        # uninterrupted one would have.
        if self.space.is_pool:  # HPO-B's random search: candidates without replacement
            return self.space.from_vector(pool_draw(self.space, self.seed, len(history)), normalize=True)
        rng = np.random.default_rng([self.seed, len(history)])
        return self.space.from_vector(rng.dirichlet([self.alpha] * self.space.dim), normalize=True)
