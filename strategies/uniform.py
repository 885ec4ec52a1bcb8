"""Uniform: the reference line every leaderboard row is compared with. Spends no pilot runs."""

from strategies.base import Strategy
from strategies.registry import register


@register("uniform")
class Uniform(Strategy):
    description = "Equal weight on every dataset; spends no pilot runs (the reference line)."
    citation = "MoDoMoDo (Liang et al., 2025), the 'All' seed design"
    family = "reference"

    def propose(self, history, budget):
        return None

    def recommend(self, history):
        return self.space.uniform()
