"""What an online strategy sees during a training run: per domain, the signals of one training step's rollouts.

`StepSignals` is to an online strategy what `harness.spec.Observation` is to an offline one: the only thing it
is told of the outside world (strategies/online.py's `update(signals)`); harness/training/online.py collects them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: the per-domain signals an online strategy receives after each training step, in this order
SIGNAL_FIELDS = ("prompts", "mean_reward", "mean_abs_advantage", "reward_variance", "frac_zero_std")


@dataclass(frozen=True)
class DomainSignal:
    """What one training step's rollouts showed about one domain (plain numbers the trainer already has).

    `prompts`: prompts drawn from the domain this step (each with the protocol's group of completions);
    the others are None when it drew none: the mean total reward of its completions, the mean absolute
    GRPO advantage, the variance of the rewards, and the fraction of its groups whose rewards were all
    equal (a group with no learning signal)."""

    prompts: int = 0
    mean_reward: float | None = None
    mean_abs_advantage: float | None = None
    reward_variance: float | None = None
    frac_zero_std: float | None = None

    @property
    def drawn(self) -> bool:
        return self.prompts > 0


@dataclass(frozen=True)
class StepSignals:
    """The signals of one training step: `step` (1-based: the optimizer steps done), for every training
    domain in the space's order a `DomainSignal`, and `weights`, the mixture this step's prompts were
    drawn with (an earlier decision: the loader draws ahead), and `group`, the completions per prompt (the
    GRPO group size), so a method that counts completions (DUMP) can. The only thing an online strategy sees."""

    step: int
    domains: dict[str, DomainSignal]
    weights: dict[str, float] = field(default_factory=dict)
    group: int = 1

    def to_plain(self) -> dict[str, Any]:
        return {
            "step": int(self.step),
            "domains": {d: [getattr(s, f) for f in SIGNAL_FIELDS] for d, s in self.domains.items()},
            "weights": {str(d): float(w) for d, w in self.weights.items()},
            "group": int(self.group),
        }

    @classmethod
    def from_plain(cls, d: dict[str, Any]) -> StepSignals:
        domains = {}
        for name, values in dict(d["domains"]).items():
            prompts, *rest = list(values)
            domains[str(name)] = DomainSignal(int(prompts), *[None if v is None else float(v) for v in rest])
        return cls(
            int(d["step"]),
            domains,
            {str(k): float(v) for k, v in dict(d.get("weights") or {}).items()},
            int(d.get("group") or 1),
        )
