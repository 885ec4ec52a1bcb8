"""The strategy interface.

A strategy decides; it never runs. It is built with the mixture space and a seed, and sees only
its own history: a tuple of `Observation`s (mixture, objective oriented so higher is better, scores,
status, fidelity). `propose` returns the next mixture to pilot (or, where `space.fidelities` offers
partial runs, a `Proposal(mixture, fidelity)`), or None to stop early; `recommend` returns
the mixture it would train with. The study validates both, so a buggy strategy is recorded as failed
instead of taking the benchmark down.

The online interface (weights updated within one training run from per-domain rollout signals, as
in DUMP, ODM or Aioli) is the second base class beside this one: `strategies.online.OnlineStrategy`.
Both share `StrategyBase` (name, description, citation, family, kind, the space and the seed), so one
registry, one sandbox and one leaderboard serve both.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from harness.mixture import Mixture, MixtureSpace
from harness.spec import Budget, Observation, Proposal

History = Sequence[Observation]


class StrategyBase:
    """What every strategy has, offline or online: its card (name, description, citation, family,
    kind), the mixture space it decides in, and a seed (`self.rng`)."""

    name: ClassVar[str] = ""
    #: one line for `modomodo strategies` and the leaderboard.
    description: ClassVar[str] = ""
    #: where the method comes from (paper, year); shown on the leaderboard.
    citation: ClassVar[str] = ""
    #: family, for filtering on the leaderboard: reference, design, heuristic, surrogate, bayesopt, ...
    family: ClassVar[str] = "other"
    #: "offline" (pilot runs, then a recommendation: `Strategy`) or "online" (weights within one run:
    #: `strategies.online.OnlineStrategy`); decides which tracks may run it.
    kind: ClassVar[str] = "offline"

    def __init__(self, space: MixtureSpace, seed: int = 0, **params):
        if params:
            raise TypeError(f"{type(self).__name__} got unknown parameters {sorted(params)}")
        self.space = space
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)


def strategy_kind(cls) -> str:
    """ "offline" or "online" for a strategy class (a file's stand-in carries the kind its sandbox reported)."""
    return str(getattr(cls, "kind", "offline") or "offline")


class Strategy(StrategyBase):
    """Base class: subclass, set `name`, implement `propose` (and `recommend` if not best-seen)."""

    def __init_subclass__(cls, **kwargs):
        """Every strategy takes part in every track: what `propose` and `recommend` return passes through
        `space.snap` (in the pool track, the nearest candidate; in a bounded space, the projection into
        the bounds; otherwise unchanged). A strategy that already returns candidates is unaffected; the
        model-based ones maximise their acquisition over `space.candidates` instead of snapping."""
        super().__init_subclass__(**kwargs)
        for name in ("propose", "recommend"):
            fn = cls.__dict__.get(name)
            if fn is not None and not getattr(fn, "_snaps", False):
                setattr(cls, name, _snapping(fn))

    # -- the contract ---------------------------------------------------------------------------
    def propose(self, history: History, budget: Budget) -> Mixture | Proposal | None:
        """The next pilot: a Mixture (a full run), a `Proposal(mixture, fidelity)` with fidelity in
        `self.space.fidelities` (a partial run, on multi-fidelity suites; its cost is `harness.spec.pilot_cost`),
        or None to stop. `budget.remaining(history)` is in run-equivalents."""
        raise NotImplementedError

    def recommend(self, history: History) -> Mixture:
        """Default: the best mixture observed so far (uniform if nothing succeeded)."""
        return best_observed(history) or self.space.uniform()

    # -- helpers for subclasses -----------------------------------------------------------------
    def vectors(self, history: History, ok_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(X, y): weight vectors (n × d) and objectives of the successful observations."""
        obs = [o for o in history if o.ok] if ok_only else list(history)
        X = np.array([self.space.to_vector(o.mixture) for o in obs]).reshape(len(obs), self.space.dim)
        y = np.array([o.objective if o.objective is not None else np.nan for o in obs], dtype=float)
        return X, y


def _snapping(fn):
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        out = fn(self, *args, **kwargs)
        try:
            if isinstance(out, Proposal):  # a pilot at a fidelity: snap its mixture, keep the fidelity
                return Proposal(self.space.snap(out.mixture), out.fidelity)
            return self.space.snap(out)
        except Exception:  # noqa: BLE001 - an invalid mixture is the study's to report, with its reason
            return out

    wrapper._snaps = True
    return wrapper


def best_observed(history: History) -> Mixture | None:
    """The mixture with the highest mean objective over its successful observations."""
    totals: dict[Mixture, list[float]] = {}
    for o in history:
        if o.ok:
            totals.setdefault(o.mixture, []).append(o.objective)
    if not totals:
        return None
    return max(totals, key=lambda m: float(np.mean(totals[m])))


def seed_designs(space: MixtureSpace, seed: int | None = None) -> list[Mixture]:
    """See `_seed_designs` (cached: strategies call this on every propose)."""
    return list(_seed_designs(space, seed))


@functools.lru_cache(maxsize=256)
def _seed_designs(space: MixtureSpace, seed: int | None = None) -> tuple[Mixture, ...]:
    """The paper's seed designs: uniform, each leave-one-out, each single dataset (2n+1 for n > 2).

    Uniform comes first, then the leave-one-out designs, then the single-dataset ones, so a budget
    smaller than 2n+1 covers the interior first. With a seed, the order within each group is
    shuffled: otherwise a small budget would always pick the same datasets to leave out, and the
    ranking would reward the table's column order rather than the strategy.
    """
    d = space.dim
    rng = np.random.default_rng([seed, 11]) if seed is not None else None
    order = rng.permutation(d) if rng is not None else np.arange(d)
    designs = [space.uniform()]
    if d > 2:
        for i in order:
            v = np.full(d, 1.0 / (d - 1))
            v[i] = 0.0
            designs.append(space.snap(space.from_vector(v)))
    order = rng.permutation(d) if rng is not None else np.arange(d)
    vertices = space.vertices()
    designs.extend(vertices[i] for i in order)
    if space.is_pool or space.bounded:
        # in a pool or within bounds two designs can map to the same admissible point: keep the first
        designs = list(dict.fromkeys(designs))
    return tuple(designs)
