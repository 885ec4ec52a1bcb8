"""The online strategy interface: domain weights that change during one training run.

An offline `Strategy` spends pilot runs and then recommends one mixture. An `OnlineStrategy` spends
no pilots: the trainer asks it for the first mixture (`start`), and after every training step hands
it that step's per-domain signals (`update(signals)`, a `harness.online_signals.StepSignals`: per domain, the
prompts drawn, mean reward, mean absolute advantage, reward variance and the fraction of groups whose
rewards were all equal) and samples the next prompts by the weights it returns. It sees nothing else:
no runner, no table, no model. Every returned mixture is validated (a bad one fails the study, as a bad
proposal does), and strategies from a user's file run in the same sandbox as offline ones.

Timing (measured, tests/test_online.py): the weights returned after step t govern the prompts drawn for
step t + 2, because the data loader (accelerate) fetches one batch ahead; steps 1 and 2 use `start()`.
The run records, for every step, the weights its prompts were actually drawn with.

A strategy that updates every k steps does so itself (it gets every step's signals and may return the
same weights). Subclass, set `name`, implement `update` (and `start` if not uniform), `@register` it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from harness.mixture import Mixture
from harness.online_signals import StepSignals
from strategies.base import StrategyBase


class OnlineStrategy(StrategyBase):
    """Base class of online strategies (`kind = "online"`; the online track runs only these)."""

    kind: ClassVar[str] = "online"
    family: ClassVar[str] = "online"

    def start(self) -> Mixture:
        """The weights the run starts from. Default: uniform."""
        return self.space.uniform()

    def update(self, signals: StepSignals) -> Mixture:
        """The weights for the next prompts, after the step `signals.step` (1-based)."""
        raise NotImplementedError

    # -- helpers for subclasses -----------------------------------------------------------------
    def weights(self, vector) -> Mixture:
        """A mixture from a non-negative weight vector in the space's dataset order (rescaled to sum to 1)."""
        return self.space.from_vector(np.clip(np.asarray(vector, dtype=float), 0.0, None), normalize=True)

    def with_floor(self, p, floor: float) -> np.ndarray:
        """`p` mixed with uniform so that every domain keeps at least `floor` (exploration; 0: unchanged)."""
        p = np.asarray(p, dtype=float)
        p = p / p.sum()
        k = len(p)
        floor = min(max(float(floor), 0.0), 1.0 / k)
        return (1.0 - k * floor) * p + floor


def softmax(x, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(x, dtype=float) / float(temperature)
    z = z - np.max(z)
    e = np.exp(z)
    return e / e.sum()
