"""Constant weights through the online machinery: the control every online strategy is measured against.

It runs the same sampler, signal collection and per-step strategy calls as an online strategy, and
always returns its start weights. Against it, with the same training seeds, an online strategy's
difference is the effect of adapting the weights, not of the online sampler itself (which draws each
prompt's domain by the weights, as `datasets.interleave_datasets` does offline, but never stops early).
"""

from __future__ import annotations

from strategies.online import OnlineStrategy
from strategies.registry import register


@register("constant")
class Constant(OnlineStrategy):
    description = "Online control: the same online sampler and signals, weights never change (default uniform)."
    citation = "control (modomodo): static sampling through the online machinery"
    family = "reference"

    def __init__(self, space, seed: int = 0, weights: dict[str, float] | None = None):
        super().__init__(space, seed)
        self.fixed = space.uniform() if weights is None else space.mixture(weights)

    def start(self):
        return self.fixed

    def update(self, signals):
        return self.fixed
