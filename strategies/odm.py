"""ODM: online data mixing as a multi-armed bandit (Exp3), with the reward gain as the bandit reward.

Albalak et al., "Efficient Online Data Mixing For Language Model Pre-Training", arXiv 2312.02406 (2023).
Each domain is an arm. With K arms, step t:
    eps_t   = min(1/K, sqrt(ln K / (K t)))
    pi_t(i) = (1 - K eps_t) * softmax(eps_{t-1} * R_i) + eps_t
and after a step the arms that were drawn update an importance-weighted, smoothed reward estimate
    R_i <- alpha * R_i + (1 - alpha) * g_i / pi(i)
ODM's bandit reward is the training loss of the domain (language modelling); here, in RLVR, it is the
**reward gain** of the domain: its mean rollout reward this step minus a running baseline of its
previous mean rewards (an exponential average), so an arm pays when the policy is improving on it. The
gain is taken in units of the running standard deviation of all gains: ODM's losses are of order 1 to
10 nats, while one step's reward gain in RLVR is of order 0.01 to 0.1, which would leave Exp3's
weights at uniform; in standard units the estimate has the magnitude ODM's rewards had.

Named parameters:
- `smoothing`: alpha, the smoothing of the reward estimate. Default 0.9 (ODM's value).
- `baseline_decay`: of the exponential average the gain is measured against (not in ODM). Default 0.9.
- `reward_scale`: multiplies the standardised gain before it enters the estimate (not in ODM). Default 1.0.
"""

from __future__ import annotations

import math

import numpy as np

from strategies.online import OnlineStrategy, softmax
from strategies.registry import register


@register("odm")
class ODM(OnlineStrategy):
    description = "Exp3 bandit over domains, paid by each domain's reward gain (ODM, adapted to RLVR)."
    citation = "Albalak et al., Efficient Online Data Mixing For Language Model Pre-Training, arXiv 2312.02406 (2023)"
    family = "online"

    def __init__(self, space, seed: int = 0, smoothing: float = 0.9, baseline_decay: float = 0.9,
                 reward_scale: float = 1.0):
        super().__init__(space, seed)
        if not (0 <= smoothing < 1 and 0 <= baseline_decay < 1 and reward_scale > 0):
            raise ValueError(f"odm needs 0 <= smoothing < 1, 0 <= baseline_decay < 1, reward_scale > 0; got "
                             f"smoothing={smoothing}, baseline_decay={baseline_decay}, reward_scale={reward_scale}")
        self.alpha, self.beta, self.scale = float(smoothing), float(baseline_decay), float(reward_scale)
        k = space.dim
        self.estimate = np.zeros(k)
        self.baseline: list[float | None] = [None] * k
        self.eps_prev = 1.0 / k
        self.policy = np.full(k, 1.0 / k)  # the weights the latest signals were drawn with (approximately)
        self.gain_sq, self.gains_seen = 0.0, 0  # running mean square of the raw gains (their scale)

    def update(self, signals):
        k = self.space.dim
        for i, d in enumerate(self.space.datasets):
            s = signals.domains.get(d)
            if s is None or not s.drawn or s.mean_reward is None:
                continue
            base = self.baseline[i]
            gain = 0.0 if base is None else self.standardised(s.mean_reward - base) * self.scale
            self.baseline[i] = s.mean_reward if base is None else self.beta * base + (1 - self.beta) * s.mean_reward
            drawn_with = float(signals.weights.get(d, self.policy[i])) if signals.weights else float(self.policy[i])
            self.estimate[i] = self.alpha * self.estimate[i] + (1 - self.alpha) * gain / max(drawn_with, 1e-6)
        t = max(1, int(signals.step))
        eps = min(1.0 / k, math.sqrt(math.log(k) / (k * t))) if k > 1 else 0.0
        self.policy = (1 - k * eps) * softmax(self.eps_prev * self.estimate) + eps
        self.eps_prev = eps
        return self.weights(self.policy)

    def standardised(self, raw: float) -> float:
        self.gains_seen += 1
        self.gain_sq += (raw * raw - self.gain_sq) / self.gains_seen
        return raw / np.sqrt(self.gain_sq) if self.gain_sq > 0 else 0.0
