"""The paper's seed designs: uniform, every leave-one-out, every single dataset."""

from strategies.base import Strategy, seed_designs
from strategies.registry import register


@register("seed")
class SeedDesigns(Strategy):
    description = "Pilots the paper's 2n+1 seed designs (uniform, leave-one-out, single); recommends the best."
    citation = "MoDoMoDo (Liang et al., 2025), Section 3 seed mixtures"
    family = "design"

    def propose(self, history, budget):
        designs = seed_designs(self.space, self.seed)
        if budget.remaining(history) <= 0 or len(history) >= len(designs):
            return None
        return designs[len(history)]
