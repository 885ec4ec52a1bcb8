"""The online strategy conformance suite: every online strategy gets these checks for free.

Subclass `OnlineConformance`, set `strategy_name` (a registered online strategy; load a user's file
first with `harness.sandbox.submission.load_file`) and optionally `params`; `tests/test_online.py` generates one class
for every registered online strategy and one loaded from a file (driven through its sandbox).

The checks drive the strategy with synthetic step signals, as the trainer would (the weights a step
was drawn with are the strategy's answer from two steps before, as in a real run):
- `start` and every `update` return a valid mixture of the space, for 2, 5 and 8 domains, over 240
  steps, with steps where some or all domains drew no prompt;
- the same seed and the same signals give the same weights (determinism), and the plain-data round
  trip of the signals (the sandbox's wire format) changes nothing;
- signals with every reward equal (no learning signal anywhere) do not crash it;
- an update stays under `latency_limit_s` (50 ms per step: a strategy runs after every training step).
The study-level checks (a raising strategy fails its study only) run on real training in
tests/test_online.py.
"""

from __future__ import annotations

import time

import numpy as np

import strategies
from harness.mixture import Mixture, MixtureSpace
from harness.sandbox.isolation import is_user_strategy, make_strategy
from harness.online_signals import DomainSignal, StepSignals


def synthetic_signals(
    space: MixtureSpace, step: int, drawn_with: Mixture, rng: np.random.Generator, prompts: int = 2, flat: bool = False
) -> StepSignals:
    """One step's signals: `prompts` prompts drawn by `drawn_with`; domain i's reward rises with i and with
    the step (so adapting strategies have something to follow); `flat`: every reward equal."""
    w = np.array([drawn_with[d] for d in space.datasets])
    picks = rng.choice(space.dim, size=prompts, p=w / w.sum())
    domains = {}
    for i, d in enumerate(space.datasets):
        n = int((picks == i).sum())
        if n == 0:
            domains[d] = DomainSignal(0)
        elif flat:
            domains[d] = DomainSignal(n, 1.0, 0.0, 0.0, 1.0)
        else:
            mean = 0.5 + i / space.dim + 0.002 * step + 0.1 * rng.standard_normal()
            domains[d] = DomainSignal(
                n,
                float(mean),
                float(abs(0.2 + 0.1 * i * rng.random())),
                float(0.1 + 0.05 * rng.random()),
                float(rng.random() < 0.3),
            )
    return StepSignals(step, domains, drawn_with.as_dict())


def drive(strategy, space: MixtureSpace, steps: int, seed: int = 0, flat: bool = False, plain: bool = False):
    """Run a strategy through `steps` steps of synthetic signals; returns every mixture it returned."""
    rng = np.random.default_rng(seed)
    first = strategy.start()
    out = [first]
    queue = [first, first]  # the loader draws two steps after a decision
    for t in range(1, steps + 1):
        drawn = queue.pop(0)
        signals = synthetic_signals(space, t, drawn, rng, flat=flat)
        if plain:
            signals = StepSignals.from_plain(signals.to_plain())
        new = strategy.update(signals)
        out.append(new)
        queue.append(new)
    return out


class OnlineConformance:
    strategy_name: str = ""
    params: dict = {}
    latency_limit_s: float = 0.05

    def make(self, space: MixtureSpace, seed: int = 0):
        cls = strategies.get(self.strategy_name)
        if is_user_strategy(cls):  # a file's strategy: in its sandbox (its class is a stand-in)
            return make_strategy(cls, space, seed, self.params)
        return cls(space, seed=seed, **self.params)

    def close(self, s) -> None:
        if hasattr(s, "close"):
            s.close()

    def test_every_answer_is_a_valid_mixture(self):
        for d in (2, 5, 8):
            space = MixtureSpace(tuple(f"D{i}" for i in range(d)))
            s = self.make(space)
            try:
                answers = drive(s, space, 240)
            finally:
                self.close(s)
            assert len(answers) == 241
            for m in answers:
                assert isinstance(m, Mixture), type(m)
                v = space.to_vector(m)  # validates: names, finite, >= 0, sums to 1
                assert np.all(v >= 0) and abs(v.sum() - 1) < 1e-6

    def test_same_seed_same_weights(self):
        space = MixtureSpace(("a", "b", "c", "d", "e"))
        runs = []
        for plain in (False, True, False):
            s = self.make(space, seed=3)
            try:
                runs.append([m.key() for m in drive(s, space, 120, seed=5, plain=plain)])
            finally:
                self.close(s)
        assert runs[0] == runs[1] == runs[2]

    def test_no_learning_signal_does_not_crash_it(self):
        space = MixtureSpace(("a", "b", "c"))
        s = self.make(space)
        try:
            answers = drive(s, space, 60, flat=True)
        finally:
            self.close(s)
        assert all(isinstance(m, Mixture) for m in answers)

    def test_update_latency(self):
        space = MixtureSpace(tuple(f"D{i}" for i in range(8)))
        s = self.make(space)
        try:
            drive(s, space, 100)
            rng = np.random.default_rng(1)
            m = space.uniform()
            times = []
            for t in range(101, 121):
                sig = synthetic_signals(space, t, m, rng)
                t0 = time.perf_counter()
                m = s.update(sig)
                times.append(time.perf_counter() - t0)
        finally:
            self.close(s)
        assert float(np.median(times)) < self.latency_limit_s


# -- a simulated RLVR run with a planted truth (for the methods' behaviour tests and trajectories) ------------
def simulate(
    strategy,
    space: MixtureSpace,
    steps: int,
    learn: np.ndarray,
    start_skill: np.ndarray | float = 0.5,
    drift: float = 0.0,
    prompts: int = 2,
    group: int = 8,
    noise: float = 0.05,
    seed: int = 0,
    lag: int = 2,
):
    """Drive `strategy` through `steps` steps of a toy policy with a known answer; returns the weights it returned
    (one row per decision, the start first).

    Domain i has a skill s_i in [0, 1] (the chance a completion is right); a prompt's group of `group`
    completions has mean reward 3·s_i (+ noise) and mean |advantage| 2·sqrt(s_i(1 - s_i)) (the expected |z| of
    a Bernoulli group's standardised rewards, 0 when the domain is solved or hopeless). Training one prompt of
    domain j moves every s_i by learn[i, j] · s_i(1 - s_i) (a transfer matrix), and every step adds `drift` to
    every s_i (a rise common to all domains: what a method must not mistake for a domain's effect). Prompts are
    drawn by the weights decided `lag` steps before, as the trainer's loader does."""
    rng = np.random.default_rng(seed)
    k = space.dim
    s = np.full(k, float(start_skill)) if np.isscalar(start_skill) else np.array(start_skill, dtype=float)
    learn = np.asarray(learn, dtype=float)
    first = strategy.start()
    out, queue = [space.to_vector(first)], [first] * lag
    for t in range(1, steps + 1):
        drawn = queue.pop(0)
        w = space.to_vector(drawn)
        picks = rng.choice(k, size=prompts, p=w / w.sum())
        domains = {}
        for i, d in enumerate(space.datasets):
            n = int((picks == i).sum())
            if n == 0:
                domains[d] = DomainSignal(0)
                continue
            r = 3.0 * s[i] + noise * rng.standard_normal() / np.sqrt(n)
            a = 2.0 * np.sqrt(max(s[i] * (1 - s[i]), 0.0))
            domains[d] = DomainSignal(n, float(r), float(a), float(s[i] * (1 - s[i])), float(a == 0))
        counts = np.bincount(picks, minlength=k)
        s = np.clip(s + learn @ counts * s * (1 - s) + drift, 0.0, 1.0)
        new = strategy.update(StepSignals(t, domains, drawn.as_dict(), group))
        out.append(space.to_vector(new))
        queue.append(new)
    return np.array(out)
