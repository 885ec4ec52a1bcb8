"""DUMP: a distribution-level curriculum for RL post-training (UCB on the mean absolute advantage).

Wang et al., "DUMP: Automated Distribution-Level Curriculum Learning for RL-based LLM Post-training",
arXiv 2504.09710 (2025). Reference code: ZhentingWang/DUMP, `verl/utils/curriculum_learning.py`
(`LearnabilityEstimator`, `CurriculumController.compute_sampling_weights`), read for this module:
- each data source keeps a sliding window of the absolute advantages of its most recent `window_size = 300`
  *completions* (`recent_advantages`, trimmed to the window after every update); its mean is `mu`;
- `n_samples` counts the completions drawn from the source, `total_samples` the completions of all sources;
- score_j = mu_j + c * sqrt(2 ln(N + 1) / (n_j + 1)), with `exploration_weight` c = 1.0 (the +1 in both
  places is the reference's smoothing: a source never drawn has mu = 0 and a finite, large bonus);
- weights = softmax(score / temperature), `temperature = 0.1`, recomputed after every batch.
The defaults here are those values.

What RLVR in this harness forces (each a named parameter):
- `count_unit` ("completions", the reference; "prompts": the harness's earlier reading, a G-times shorter
  window and a sqrt(G)-times stronger bonus). The harness reports per domain and step the number of prompts
  and the mean |advantage| over their completions, and `StepSignals.group` (G, completions per prompt); a
  step's domain contributes prompts * G completions, each carrying that step's mean |advantage|. The
  window's mean is exact whenever the window holds whole steps, and at its edge the oldest step's
  completions are trimmed at their step mean rather than one by one (the individual advantages are not
  reported).
"""

from __future__ import annotations

import collections
import math

import numpy as np

from strategies.online import OnlineStrategy, softmax
from strategies.registry import register


class Window:
    """The most recent `size` values, stored as (value, count) runs (a step's completions share a value)."""

    def __init__(self, size: int):
        self.size = int(size)
        self.runs: collections.deque = collections.deque()
        self.count = 0
        self.total = 0.0

    def extend(self, value: float, count: int) -> None:
        if count <= 0:
            return
        self.runs.append([float(value), int(count)])
        self.count += int(count)
        self.total += float(value) * int(count)
        while self.count > self.size:  # trim the oldest completions
            excess = self.count - self.size
            head = self.runs[0]
            drop = min(excess, head[1])
            head[1] -= drop
            self.count -= drop
            self.total -= head[0] * drop
            if head[1] == 0:
                self.runs.popleft()

    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0  # the reference's mu starts at 0.0


@register("dump")
class DUMP(OnlineStrategy):
    description = "UCB over each domain's windowed mean |advantage| (counts in completions), sampled by softmax (DUMP)."
    citation = "Wang et al., DUMP: Automated Distribution-Level Curriculum Learning for RL-based LLM Post-training, arXiv 2504.09710 (2025)"
    family = "online"

    def __init__(
        self,
        space,
        seed: int = 0,
        window: int = 300,
        temperature: float = 0.1,
        exploration: float = 1.0,
        count_unit: str = "completions",
    ):
        super().__init__(space, seed)
        if (
            int(window) < 1
            or not temperature > 0
            or not exploration >= 0
            or count_unit not in ("completions", "prompts")
        ):
            raise ValueError(
                f"dump needs window >= 1, temperature > 0, exploration >= 0 and count_unit 'completions' or "
                f"'prompts'; got window={window}, temperature={temperature}, exploration={exploration}, "
                f"count_unit={count_unit!r}"
            )
        self.window, self.temperature, self.exploration = int(window), float(temperature), float(exploration)
        self.count_unit = count_unit
        self.recent = {d: Window(self.window) for d in space.datasets}
        self.drawn = dict.fromkeys(space.datasets, 0)

    def update(self, signals):
        per_prompt = max(1, int(getattr(signals, "group", 1) or 1)) if self.count_unit == "completions" else 1
        for d, s in signals.domains.items():
            if d in self.drawn and s.drawn and s.mean_abs_advantage is not None:
                self.recent[d].extend(s.mean_abs_advantage, s.prompts * per_prompt)
                self.drawn[d] += s.prompts * per_prompt
        return self.weights(softmax(self.scores(), self.temperature))

    def scores(self) -> np.ndarray:
        """mu_j + c * sqrt(2 ln(N + 1) / (n_j + 1)) per domain, in the space's order."""
        total = sum(self.drawn.values())
        return np.array(
            [
                self.recent[d].mean() + self.exploration * math.sqrt(2.0 * math.log(total + 1) / (self.drawn[d] + 1))
                for d in self.space.datasets
            ]
        )
