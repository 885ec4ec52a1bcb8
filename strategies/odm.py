"""ODM: online data mixing as a multi-armed bandit (Albalak et al., arXiv 2312.02406), in two forms.

Both forms take, per domain and step, a *loss* (in ODM: the training loss of the domain's examples in the
step's minibatch; a domain with a higher loss has more left to learn and gets more weight). RLVR has no
per-domain language-modelling loss, so the loss is a named choice (`signal`, the deviation RLVR forces):
- "abs_advantage" (default): the domain's mean absolute GRPO advantage. GRPO's gradient on a domain is
  proportional to its advantages, so this is how much the domain still teaches; it is 0 when every group
  agrees (solved, or hopeless), as a loss is 0 when nothing is left to learn.
- "shortfall": `reward_ceiling` minus the domain's mean reward (the reward's distance from perfect;
  default ceiling 3.0, the protocol's 2·accuracy + 1·format).
`signal_scale` multiplies the loss before it is used (LM losses are 2 to 10 nats; |advantage| is at most
about 1).

`odm`: the released code. alon-albalak/online-data-mixing, `megatron/data/data_sampling_utils.py`,
`SmoothedMeanWeightUpdater.group_update` (the `smoothed_mean` method of the repository's README and of its
scripts `scripts/train_1B_ema*.sh`: mixed minibatches, update every step, 2000 warm-up steps of 100,000
(`alon_configs/models/1B.yml` train-iters), smoothing factor 0.9 (`data_sampling_smoothing_factor`
default; 0.5 in `train_1B_ema_0.5smoothing.sh`)). After each step t past the warm-up:
    eps_prev = eps;  eps = min(1/K, sqrt(ln K / (K t)))        (eps starts at 1/K)
    R_i <- a R_i + (1 - a) exp(loss_i)        for each domain i in the step's batch (R starts at 0)
    w_i = (1 - K eps) * R_i / sum_j R_j + eps,   normalised
This differs materially from the paper's Exp3 (below): the estimate is a smoothed mean of an exponentiated
loss, not an importance-weighted reward, and the normalisation is linear, not a softmax scaled by eps_prev
(so the weights do not return to uniform as eps shrinks). `t` is the global step, as in the code (the warm-up
steps count). Named parameters: `smoothing` (0.9), `warmup_steps` (4: the released 2% of the run, of this
harness's 200-step runs), `signal`, `signal_scale` (1.0), `reward_ceiling`.

`odm-exp3`: the paper's Algorithm 1 (Exp3 with a smoothed importance-weighted reward):
    pi_t(i) = (1 - K eps_t) * softmax_i(eps_{t-1} * R_i) + eps_t
    R_i <- a R_i + (1 - a) * loss_i / pi(i)      for the domains drawn (pi: the weights the step was drawn with)
With a smoothed (bounded) estimate and eps_{t-1} shrinking as 1/sqrt(t), the softmax's argument shrinks,
so the weights drift back to uniform unless the losses are large: LM losses of several nats times K are;
RLVR's |advantage| is not. Its `signal_scale` defaults to 10 (the released Exp3 updater divides the loss by
10, `Exp3WeightUpdater.update`; the paper's Pile losses are 2 to 10 nats, about 10 times an |advantage|),
so the bandit sees rewards of the magnitude the paper's had.
"""

from __future__ import annotations

import math

import numpy as np

from strategies.online import OnlineStrategy, softmax
from strategies.registry import register

SIGNALS = ("abs_advantage", "shortfall")


class _ODMBase(OnlineStrategy):
    family = "online"
    citation = "Albalak et al., Efficient Online Data Mixing For Language Model Pre-Training, arXiv 2312.02406 (2023)"

    def _check_signal(self, signal, signal_scale, reward_ceiling):
        if signal not in SIGNALS or not signal_scale > 0 or not np.isfinite(float(reward_ceiling)):
            raise ValueError(
                f"{self.name or 'odm'} needs signal in {SIGNALS}, signal_scale > 0 and a finite "
                f"reward_ceiling; got signal={signal!r}, signal_scale={signal_scale}, "
                f"reward_ceiling={reward_ceiling}"
            )
        self.signal, self.signal_scale, self.ceiling = signal, float(signal_scale), float(reward_ceiling)

    def loss(self, s) -> float | None:
        """The domain's loss analogue this step (see the module docstring), or None when not measured."""
        if s is None or not s.drawn:
            return None
        if self.signal == "abs_advantage":
            return None if s.mean_abs_advantage is None else self.signal_scale * float(s.mean_abs_advantage)
        return None if s.mean_reward is None else self.signal_scale * (self.ceiling - float(s.mean_reward))

    @staticmethod
    def eps_at(k: int, t: int) -> float:
        return min(1.0 / k, math.sqrt(math.log(k) / (k * max(1, t)))) if k > 1 else 0.0


@register("odm")
class ODM(_ODMBase):
    description = "ODM as released: smoothed mean of exp(loss) per domain, linear normalisation, decaying floor (loss: |advantage|)."

    def __init__(
        self,
        space,
        seed: int = 0,
        smoothing: float = 0.9,
        warmup_steps: int = 4,
        signal: str = "abs_advantage",
        signal_scale: float = 1.0,
        reward_ceiling: float = 3.0,
    ):
        super().__init__(space, seed)
        if not (0 <= smoothing < 1 and int(warmup_steps) >= 0):
            raise ValueError(
                f"odm needs 0 <= smoothing < 1 and warmup_steps >= 0; got smoothing={smoothing}, "
                f"warmup_steps={warmup_steps}"
            )
        self._check_signal(signal, signal_scale, reward_ceiling)
        self.alpha, self.warmup = float(smoothing), int(warmup_steps)
        k = space.dim
        self.estimate = np.zeros(k)
        self.eps = 1.0 / k
        self.p = np.full(k, 1.0 / k)

    def update(self, signals):
        t = int(signals.step)
        if t <= self.warmup:  # the released UpdateScheduler: no update (and no estimate) during warm-up
            return self.weights(self.p)
        k = self.space.dim
        eps_prev, self.eps = self.eps, self.eps_at(k, t)
        for i, d in enumerate(self.space.datasets):
            x = self.loss(signals.domains.get(d))
            if x is not None:
                self.estimate[i] = self.alpha * self.estimate[i] + (1 - self.alpha) * math.exp(min(x, 50.0))
        total = float((self.estimate * eps_prev).sum())
        if total > 0:
            raw = self.estimate * eps_prev * (1 - k * self.eps) / total + self.eps
            self.p = raw / raw.sum()
        return self.weights(self.p)


@register("odm-exp3")
class ODMExp3(_ODMBase):
    description = (
        "ODM as in the paper: Exp3 over domains with a smoothed importance-weighted loss (loss: |advantage| x 10)."
    )

    def __init__(
        self,
        space,
        seed: int = 0,
        smoothing: float = 0.9,
        signal: str = "abs_advantage",
        signal_scale: float = 10.0,
        reward_ceiling: float = 3.0,
    ):
        super().__init__(space, seed)
        if not 0 <= smoothing < 1:
            raise ValueError(f"odm-exp3 needs 0 <= smoothing < 1; got smoothing={smoothing}")
        self._check_signal(signal, signal_scale, reward_ceiling)
        self.alpha = float(smoothing)
        k = space.dim
        self.estimate = np.zeros(k)
        self.eps_prev = 1.0 / k
        self.policy = np.full(k, 1.0 / k)

    def update(self, signals):
        k = self.space.dim
        for i, d in enumerate(self.space.datasets):
            x = self.loss(signals.domains.get(d))
            if x is None:
                continue
            pi = float(signals.weights.get(d, self.policy[i])) if signals.weights else float(self.policy[i])
            self.estimate[i] = self.alpha * self.estimate[i] + (1 - self.alpha) * x / max(pi, 1e-6)
        eps = self.eps_at(k, int(signals.step))
        self.policy = (1 - k * eps) * softmax(self.eps_prev * self.estimate) + eps
        self.eps_prev = eps
        return self.weights(self.policy)
