"""Aioli: an online estimate of a linear mixing law, followed by exponentiated-gradient updates.

Chen et al., "Aioli: A Unified Optimization Framework for Language Model Data Mixing", arXiv 2411.05735
(ICLR 2025). Aioli alternates, in rounds, (1) LearnParams: a few steps on perturbed mixtures to estimate
the matrix A^t of a linear mixing law (how training on domain j moves the loss of domain i), and (2) an
update p_j <- p_j * exp(eta * sum_i A^t_ij), normalised, held for the rest of the round.

Here, in RLVR, **per-domain mean rollout reward takes the place of loss** (higher is better, so the
sign is that of a gain), and the law is measured on the training rollouts rather than on a held-out
set. LearnParams probes each domain k with the mixture (1 - epsilon) p + epsilon e_k for `probe_steps`
steps; with probes along each e_k, the least-squares estimate of A's columns is the centred difference
of each domain's reward across probes divided by epsilon, up to a constant per row that the
normalisation cancels. Every step's signals name the weights they were drawn with, so each step's
rewards are credited to the probe actually used (the loader draws two steps after a decision).

Named parameters (the round structure and step sizes of the paper are for language-model
pre-training; these are for runs of a few hundred steps):
- `round_steps`: steps per round (probes, then the updated mixture). Default 50.
- `probe_steps`: steps per probe. Default 6 (5 domains: 30 of each 50 steps probe).
- `epsilon`: the probes' perturbation. Default 0.5.
- `eta`: the step size of the exponentiated update. Default 0.3.
- `floor`: the least weight any domain keeps after an update (exploration). Default 0.02.
"""

from __future__ import annotations

import numpy as np

from strategies.online import OnlineStrategy
from strategies.registry import register


@register("aioli")
class Aioli(OnlineStrategy):
    description = "Rounds of probes estimating a linear mixing law of per-domain reward, then an exponentiated update (Aioli, adapted to RLVR)."
    citation = "Chen et al., Aioli: A Unified Optimization Framework for Language Model Data Mixing, arXiv 2411.05735 (2025)"
    family = "online"

    def __init__(self, space, seed: int = 0, round_steps: int = 50, probe_steps: int = 6, epsilon: float = 0.5,
                 eta: float = 0.3, floor: float = 0.02):
        super().__init__(space, seed)
        k = space.dim
        if int(probe_steps) < 1 or int(round_steps) < k * int(probe_steps) + 2 or not 0 < epsilon <= 1 \
                or not eta > 0 or not 0 <= floor < 1.0 / k:
            raise ValueError(f"aioli needs probe_steps >= 1, round_steps >= {k} * probe_steps + 2 (probes plus two steps "
                             f"for the last probe's signals to arrive), 0 < epsilon <= 1, eta > 0 and 0 <= floor < 1/{k}; "
                             f"got round_steps={round_steps}, probe_steps={probe_steps}, epsilon={epsilon}, eta={eta}, "
                             f"floor={floor}")
        self.round_steps, self.probe_steps = int(round_steps), int(probe_steps)
        self.epsilon, self.eta, self.floor = float(epsilon), float(eta), float(floor)
        self.p = np.full(k, 1.0 / k)
        self.issued = 0  # mixtures issued so far (start() is the first)
        self.new_round()

    def new_round(self) -> None:
        k = self.space.dim
        self.probes = [(1 - self.epsilon) * self.p + self.epsilon * np.eye(k)[j] for j in range(k)]
        self.reward_sum = np.zeros((k, k))  # [probe, domain]
        self.prompt_sum = np.zeros((k, k))

    def schedule(self, position: int) -> np.ndarray:
        """The mixture for position `position` of the round: probe j for its steps, then p."""
        j = position // self.probe_steps
        return self.probes[j] if j < len(self.probes) else self.p

    def start(self):
        self.issued = 1
        return self.weights(self.schedule(0))

    def update(self, signals):
        self.credit(signals)
        position = self.issued % self.round_steps
        if position == 0:  # a round ends: estimate the law from its probes and move p
            self.p = self.with_floor(self.step_p(), self.floor)
            self.new_round()
        self.issued += 1
        return self.weights(self.schedule(position))

    def credit(self, signals) -> None:
        if not signals.weights:
            return
        drawn = np.array([float(signals.weights.get(d, 0.0)) for d in self.space.datasets])
        for j, probe in enumerate(self.probes):
            if np.allclose(drawn, probe / probe.sum(), atol=1e-9):
                for i, d in enumerate(self.space.datasets):
                    s = signals.domains.get(d)
                    if s is not None and s.drawn and s.mean_reward is not None:
                        self.reward_sum[j, i] += s.mean_reward * s.prompts
                        self.prompt_sum[j, i] += s.prompts
                return

    def step_p(self) -> np.ndarray:
        k = self.space.dim
        column = np.zeros(k)  # sum_i A_ij (up to a constant), from the centred rewards of each domain i
        for i in range(k):
            seen = self.prompt_sum[:, i] > 0
            if seen.sum() < 2:
                continue  # a domain seen under fewer than two probes says nothing about the difference
            r = np.where(seen, self.reward_sum[:, i] / np.maximum(self.prompt_sum[:, i], 1), 0.0)
            centred = np.where(seen, r - r[seen].mean(), 0.0)
            column += centred / self.epsilon
        p = self.p * np.exp(self.eta * (column - column.max()))
        return p / p.sum()
