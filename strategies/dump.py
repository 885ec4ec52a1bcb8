"""DUMP: a distribution-level curriculum for RL post-training (UCB on the mean absolute advantage).

Wang et al., "DUMP: Automated Distribution-Level Curriculum Learning for RL-based LLM Post-training",
arXiv 2504.09710 (2025). The expected absolute GRPO advantage of a domain measures how much the policy
can still learn from it. Each domain j keeps a sliding window of its recent absolute advantages; its
score is UCB_j = mean(window_j) + c * sqrt(2 ln N / n_j) (N prompts drawn in all, n_j from j), and the
sampling weights are softmax(UCB / temperature). A domain never drawn gets the highest score.

Named parameters (the defaults are the values as I recall them from the paper, which I could not
consult while writing this: check them before citing a result as DUMP's own setting):
- `window`: absolute advantages kept per domain, counted in prompts (each prompt's value is the mean
  |advantage| of its group; the paper counts samples). Default 300.
- `temperature`: of the softmax. Default 0.1.
- `exploration`: c, the weight of the UCB bonus. Default 1.0.
"""

from __future__ import annotations

import collections
import math

import numpy as np

from strategies.online import OnlineStrategy, softmax
from strategies.registry import register


@register("dump")
class DUMP(OnlineStrategy):
    description = "UCB over each domain's windowed mean |advantage|, sampled by softmax (DUMP)."
    citation = "Wang et al., DUMP: Automated Distribution-Level Curriculum Learning for RL-based LLM Post-training, arXiv 2504.09710 (2025)"
    family = "online"

    def __init__(self, space, seed: int = 0, window: int = 300, temperature: float = 0.1, exploration: float = 1.0):
        super().__init__(space, seed)
        if int(window) < 1 or not temperature > 0 or not exploration >= 0:
            raise ValueError(f"dump needs window >= 1, temperature > 0 and exploration >= 0; got window={window}, "
                             f"temperature={temperature}, exploration={exploration}")
        self.window, self.temperature, self.exploration = int(window), float(temperature), float(exploration)
        self.recent = {d: collections.deque(maxlen=self.window) for d in space.datasets}
        self.drawn = dict.fromkeys(space.datasets, 0)

    def update(self, signals):
        for d, s in signals.domains.items():
            if s.drawn and s.mean_abs_advantage is not None:
                self.recent[d].extend([s.mean_abs_advantage] * s.prompts)
                self.drawn[d] += s.prompts
        return self.weights(softmax(self.scores(), self.temperature))

    def scores(self) -> np.ndarray:
        total = sum(self.drawn.values())
        finite = []
        for d in self.space.datasets:
            n = self.drawn[d]
            if n == 0:
                finite.append(None)
                continue
            bonus = self.exploration * math.sqrt(2.0 * math.log(max(total, 1)) / n)
            finite.append(float(np.mean(self.recent[d])) + bonus)
        known = [x for x in finite if x is not None]
        top = (max(known) + 1.0) if known else 0.0  # never drawn: above every domain that was
        return np.array([top if x is None else x for x in finite])
