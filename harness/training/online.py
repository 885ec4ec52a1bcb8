"""Online mixing inside one GRPO run: a sampler that reads the current weights, the signals each step's
rollouts give per domain, the controller that asks the online strategy for new weights, and the request
that asks a runner for an online run.

The parts (none of them a fork of TRL; the trainer side is harness/training/online_grpo.py):
- `DomainWeightedSampler`: the train sampler. The dataset holds every training domain's rows
  (`online_grpo.online_dataset`); for each generation batch the sampler draws each prompt's domain from
  the *current* weights (as `interleave_datasets` does offline with fixed ones), takes that domain's next
  row (each domain's rows in a seeded order, reshuffled when used up: an online run never stops early),
  and yields it `num_generations` times, in the layout of TRL's `RepeatSampler`.
- `OnlineMixture`: the controller. After every optimizer step (a `TrainerCallback`) it turns what was
  collected into `StepSignals` (harness/online_signals.py), calls the strategy's `update`, validates the weights
  (a bad answer or an exception stops the run: `OnlineStrategyFailed`) and sets them on the sampler.
  It records every step's weights and signals (`record()`, stored in `RunResult.online`) and the seconds
  it spent (`seconds`: the measured overhead of the online machinery).
- `OnlineRunSpec`: one online run as a study asks a runner for it (`runner.run_online(request)`): the
  run's spec, the controller, and the strategy as plain data for a runner that trains in another process.
  The strategy decides; the runner only trains with the controller it is given.

The loader draws one batch ahead (accelerate's DataLoaderShard prefetches to detect the last batch),
so the weights returned after step t draw the prompts of step t + 2. The record keeps, per step, the
weights that step was actually drawn with, and the strategy gets them in `StepSignals.weights`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.mixture import InvalidMixture, Mixture, MixtureSpace
from harness.online_signals import SIGNAL_FIELDS, DomainSignal, StepSignals
from harness.spec import RunSpec, derive_seed


class OnlineStrategyFailed(RuntimeError):
    """The online strategy raised, timed out or returned invalid weights: the run (and its study) fails."""


class DomainWeightedSampler:
    """Indices of the online dataset, one generation batch at a time, by the current domain weights.

    `prompts` prompts per generation batch, each repeated `num_generations` times (one GRPO group),
    the whole batch repeated `repeat_count` times (TRL's `RepeatSampler` layout: generations reused over
    `steps_per_generation × num_iterations` steps); `batches` generation batches in all. `draws` records,
    per batch, the weights it was drawn with and the prompts each domain got."""

    def __init__(
        self,
        ranges: Mapping[str, range],
        weights: Mapping[str, float],
        prompts: int,
        num_generations: int,
        repeat_count: int,
        batches: int,
        seed: int,
    ):
        self.domains = list(ranges)
        self.ranges = dict(ranges)
        self.prompts, self.num_generations = int(prompts), int(num_generations)
        self.repeat_count, self.batches = int(repeat_count), int(batches)
        self.rng = np.random.default_rng(derive_seed("online-sampler", int(seed)))
        self.order = {d: self.rng.permutation(len(r)) for d, r in self.ranges.items()}
        self.next_row = dict.fromkeys(self.domains, 0)
        self.draws: list[dict[str, Any]] = []
        self.set_weights(weights, after_step=0)

    def set_weights(self, weights: Mapping[str, float], after_step: int = 0) -> None:
        """The weights of every draw from now on; `after_step`: the step whose signals they answer (0: start)."""
        p = np.array([float(weights.get(d, 0.0)) for d in self.domains])
        if not (np.all(np.isfinite(p)) and np.all(p >= 0) and p.sum() > 0):
            raise InvalidMixture(f"sampler weights {dict(weights)} are not a mixture of {self.domains}")
        self.p = p / p.sum()
        self.after_step = int(after_step)

    def _row(self, d: str) -> int:
        i = self.next_row[d]
        if i >= len(self.order[d]):  # a domain used up: a fresh order of its rows
            self.order[d], i = self.rng.permutation(len(self.ranges[d])), 0
        self.next_row[d] = i + 1
        return self.ranges[d][int(self.order[d][i])]

    def draw(self) -> list[int]:
        """One generation batch's prompt indices (each once), by the weights set now."""
        picks = self.rng.choice(len(self.domains), size=self.prompts, p=self.p)
        rows = [self._row(self.domains[k]) for k in picks]
        counts = np.bincount(picks, minlength=len(self.domains))
        self.draws.append(
            {"weights": self.p.round(9).tolist(), "prompts": counts.tolist(), "after_step": self.after_step}
        )
        return rows

    def __iter__(self):
        for _ in range(self.batches):
            rows = self.draw()
            for _ in range(self.repeat_count):
                for r in rows:
                    for _ in range(self.num_generations):
                        yield r

    def __len__(self) -> int:
        return self.batches * self.repeat_count * self.prompts * self.num_generations


def domain_signals(
    domains: list[str], prompt_domains: list[str], rewards, advantages, group: int
) -> dict[str, DomainSignal]:
    """Per-domain signals of a batch: `prompt_domains` names each group's domain (one entry per group of
    `group` completions), `rewards`/`advantages` one entry per completion, in TRL's order (a group's
    completions consecutive)."""
    rewards = np.asarray(rewards, dtype=float).reshape(-1, group)
    advantages = np.asarray(advantages, dtype=float).reshape(-1, group)
    out = {}
    for d in domains:
        rows = [i for i, x in enumerate(prompt_domains) if x == d]
        if not rows:
            out[d] = DomainSignal(0)
            continue
        r, a = rewards[rows], advantages[rows]
        finite = r[np.isfinite(r)]
        zero_std = [
            bool(np.all(np.isclose(g[np.isfinite(g)], g[np.isfinite(g)][0]))) if np.isfinite(g).any() else True
            for g in r
        ]
        out[d] = DomainSignal(
            prompts=len(rows),
            mean_reward=float(finite.mean()) if finite.size else None,
            mean_abs_advantage=float(np.abs(a).mean()),
            reward_variance=float(finite.var()) if finite.size else None,
            frac_zero_std=float(np.mean(zero_std)),
        )
    return out


def merge_signals(domains: list[str], parts: list[dict[str, DomainSignal]]) -> dict[str, DomainSignal]:
    """Several batches' signals of one step as one (prompt-weighted means; variance pooled about the
    pooled mean). One batch per step (the CPU protocol) is returned as it is."""
    if len(parts) == 1:
        return parts[0]
    out = {}
    for d in domains:
        got = [p[d] for p in parts if p[d].drawn]
        n = sum(s.prompts for s in got)
        if not n:
            out[d] = DomainSignal(0)
            continue

        def mean(field, items=got):
            vals = [(getattr(s, field), s.prompts) for s in items if getattr(s, field) is not None]
            w = sum(k for _, k in vals)
            return sum(v * k for v, k in vals) / w if w else None

        m = mean("mean_reward")
        second = [
            (s.reward_variance + s.mean_reward**2, s.prompts)
            for s in got
            if s.reward_variance is not None and s.mean_reward is not None
        ]
        var = (sum(v * k for v, k in second) / sum(k for _, k in second) - m**2) if second and m is not None else None
        out[d] = DomainSignal(
            n, m, mean("mean_abs_advantage"), None if var is None else max(var, 0.0), mean("frac_zero_std")
        )
    return out


class OnlineMixture:
    """The controller of one online run (see the module docstring). `strategy` is a built strategy handle
    (harness.sandbox.isolation: in-process or sandboxed) with `start()` and `update(signals)`."""

    def __init__(self, strategy, space: MixtureSpace, name: str = ""):
        self.strategy, self.space, self.name = strategy, space, name
        self.domains = list(space.datasets)
        self.sampler: DomainWeightedSampler | None = None
        self.pending: list[dict[str, DomainSignal]] = []
        self.group = 1  # completions per prompt, as the trainer reports it in `capture` (StepSignals.group)
        self.steps: list[dict[str, Any]] = []  # per step: drawn-with weights, signals, returned weights
        self.seconds = 0.0  # time spent in the online machinery (signals, strategy calls, validation)
        self.calls_seconds = 0.0  # of which in the strategy's own calls
        self.first: Mixture | None = None

    # -- the strategy, checked -----------------------------------------------------------------------
    def _ask(self, what: str, call, step: int) -> Mixture:
        t0 = time.perf_counter()
        try:
            value = call()
        except Exception as e:  # noqa: BLE001 - the strategy's failure ends this run, not the benchmark
            from harness.sandbox.protocol import short_error

            raise OnlineStrategyFailed(f"{what} raised {short_error(e)} (after step {step})") from None
        finally:
            self.calls_seconds += time.perf_counter() - t0
        if not isinstance(value, Mixture):
            raise OnlineStrategyFailed(
                f"{what} returned {type(value).__name__} {value!r:.80} after step {step}, "
                f"not a Mixture of {self.domains}"
            )
        try:
            return self.space.validate(value)
        except InvalidMixture as e:
            raise OnlineStrategyFailed(f"{what} returned an invalid mixture after step {step}: {e}") from None

    def start(self) -> Mixture:
        if self.first is None:
            t0 = time.perf_counter()
            self.first = self._ask("start", self.strategy.start, 0)
            self.seconds += time.perf_counter() - t0
        return self.first

    # -- what the trainer calls ----------------------------------------------------------------------
    def make_sampler(
        self, ranges, prompts: int, num_generations: int, repeat_count: int, batches: int, seed: int
    ) -> DomainWeightedSampler:
        self.sampler = DomainWeightedSampler(
            ranges, self.start().as_dict(), prompts, num_generations, repeat_count, batches, seed
        )
        return self.sampler

    def capture(self, prompt_domains: list[str], rewards, advantages, group: int) -> None:
        t0 = time.perf_counter()
        self.group = int(group)
        self.pending.append(domain_signals(self.domains, prompt_domains, rewards, advantages, group))
        self.seconds += time.perf_counter() - t0

    def after_step(self, step: int) -> None:
        t0 = time.perf_counter()
        if not self.pending:
            return  # a step that reused buffered generations: nothing new to report
        signals = merge_signals(self.domains, self.pending)
        self.pending = []
        index = len(self.steps)  # the generation batch these signals come from
        drawn = self.sampler.draws[index] if self.sampler is not None and index < len(self.sampler.draws) else None
        weights = dict(zip(self.domains, drawn["weights"])) if drawn else {}
        step_signals = StepSignals(int(step), signals, weights, self.group)
        new = self._ask("update", lambda: self.strategy.update(step_signals), step)
        if self.sampler is not None:
            self.sampler.set_weights(new.as_dict(), after_step=int(step))
        self.steps.append(
            {
                "step": int(step),
                "weights": [weights.get(d) for d in self.domains],
                "drawn_after_step": drawn["after_step"] if drawn else None,
                "next": [new[d] for d in self.domains],
                "signals": {f: [_short(getattr(signals[d], f)) for d in self.domains] for f in SIGNAL_FIELDS},
            }
        )
        self.seconds += time.perf_counter() - t0

    def callback(self):
        """The `TrainerCallback` that calls `after_step` at the end of every optimizer step."""
        from transformers import TrainerCallback

        controller = self

        class OnlineMixtureCallback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                controller.after_step(int(state.global_step))
                return control

        return OnlineMixtureCallback()

    def record(self) -> dict[str, Any]:
        """What the run stores (RunResult.online): per step, columns in the domains' order."""
        fields = {f: [s["signals"][f] for s in self.steps] for f in SIGNAL_FIELDS}
        return {
            "strategy": self.name,
            "domains": self.domains,
            "start": [self.first[d] for d in self.domains] if self.first else None,
            "steps": [s["step"] for s in self.steps],
            "weights": [s["weights"] for s in self.steps],
            "next": [s["next"] for s in self.steps],
            # measured: the step after which each step's weights were returned (0: start), and the largest lag
            "drawn_after_step": [s["drawn_after_step"] for s in self.steps],
            "draw_lag_steps": max(
                (s["step"] - s["drawn_after_step"] for s in self.steps if s["drawn_after_step"]), default=None
            ),
            "signals": fields,
            "seconds": round(self.seconds, 6),
            "strategy_seconds": round(self.calls_seconds, 6),
        }


def _short(x):
    """A signal as recorded: 7 significant digits (the strategy got the full value; the record stays small)."""
    return x if x is None or isinstance(x, int) else float(f"{x:.7g}")


@dataclass(frozen=True)
class OnlineRunSpec:
    """One online run, as a study asks a runner for it (`run_online`), beside the offline `RunSpec` (`run`).

    `spec`: the run's spec, whose key names the online strategy (`spec.online`) and its start weights;
    `controller`: the `OnlineMixture` that asks the strategy for weights during training (a runner that
    trains in this process uses it); `strategy`: the strategy as plain data
    (`harness.studies.online.strategy_spec`), from which a runner that trains in another process (the gpu
    runner's train command) rebuilds its own controller."""

    spec: RunSpec
    controller: OnlineMixture
    strategy: Mapping[str, Any]

    def __post_init__(self):
        if not self.spec.online:
            raise ValueError(f"an online run's spec names its online strategy; {self.spec.key} names none")
        if not self.strategy.get("name"):
            raise ValueError(f"the online run {self.spec.online!r} has no strategy description (strategy_spec)")
