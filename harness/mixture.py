"""Mixtures and the space they live in.

A `Mixture` is an immutable mapping from dataset name to weight that is valid by construction:
finite, non-negative, summing to one. A `MixtureSpace` is the ordered set of datasets of a suite;
it turns user text and strategy vectors into mixtures and rejects names it does not know, with a
"did you mean" suggestion. Validation lives here and only here, so every entry point (CLI, study
loop, replay tables) raises the same clear errors.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

SUM_TOLERANCE = 1e-6


class InvalidMixture(ValueError):
    """A mixture that is not a point of the simplex, or names an unknown dataset."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A short hint naming the closest valid choice, or listing the valid ones."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if close:
        return f"did you mean {close[0]!r}? (valid: {', '.join(choices)})"
    return f"valid: {', '.join(choices)}"


class Mixture(Mapping[str, float]):
    """Dataset weights on the simplex. Hashable, ordered as given, immutable."""

    __slots__ = ("_items", "_key", "_map", "_hash", "_names")

    def __init__(self, weights: Mapping[str, float]):
        items = tuple((str(k), float(v)) for k, v in weights.items())
        if not items:
            raise InvalidMixture("a mixture needs at least one dataset")
        for name, w in items:
            if not math.isfinite(w):
                raise InvalidMixture(f"weight of dataset {name!r} is {w}; weights must be finite numbers in [0, 1]")
            if w < 0:
                raise InvalidMixture(f"weight of dataset {name!r} is negative ({w}); weights must be >= 0")
        total = math.fsum(w for _, w in items)
        if abs(total - 1.0) > SUM_TOLERANCE:
            raise InvalidMixture(
                f"weights sum to {total:.8g}, not 1 (tolerance {SUM_TOLERANCE}): "
                + ", ".join(f"{n}={w:g}" for n, w in items)
                + "; use Mixture.normalized(...) to rescale explicitly"
            )
        self._items = items

    @classmethod
    def _of_valid(cls, items: tuple[tuple[str, float], ...]) -> Mixture:
        """A mixture of (name, float weight) pairs already known valid: another valid mixture's weights, reordered
        or with zero weights added (the same finite non-negative floats, so the same exactly rounded sum). The
        checks of `__init__` would pass; skipping them is what keeps a replayed pilot cheap."""
        m = cls.__new__(cls)
        m._items = items
        return m

    @classmethod
    def normalized(cls, weights: Mapping[str, float]) -> Mixture:
        """Rescale non-negative weights to sum to one (explicitly, never silently)."""
        for name, w in weights.items():
            w = float(w)
            if not math.isfinite(w) or w < 0:
                raise InvalidMixture(f"weight of dataset {name!r} is {w}; weights must be finite and >= 0")
        total = math.fsum(float(w) for w in weights.values())
        if total <= 0:
            raise InvalidMixture("all weights are zero; at least one dataset needs a positive weight")
        return cls({k: float(v) / total for k, v in weights.items()})

    def _weights(self) -> dict[str, float]:
        """name -> weight, built once (a mixture is immutable): lookups by name are O(1), not a scan."""
        try:
            return self._map
        except AttributeError:
            self._map = dict(self._items)
            return self._map

    def __getitem__(self, name: str) -> float:
        return self._weights()[name]

    def get(self, name, default=None):
        return self._weights().get(name, default)

    def __contains__(self, name) -> bool:
        return name in self._weights()

    def names(self) -> tuple[str, ...]:
        """The dataset names, in the mixture's order (built once: every admission and validation asks)."""
        try:
            return self._names
        except AttributeError:
            self._names = tuple(n for n, _ in self._items)
            return self._names

    def __iter__(self) -> Iterator[str]:
        return (n for n, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __reduce__(self):
        # the weights only: the remembered hash is of this process's string hashes (salted per process), so it
        # must not travel to a worker; the other caches are rebuilt on first use
        return (Mixture._of_valid, (self._items,))

    def __hash__(self) -> int:
        try:
            return self._hash  # a tuple does not remember its hash: every dict lookup would rehash the weights
        except AttributeError:
            self._hash = hash(self.key())
            return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mixture):
            return self.key() == other.key()
        return NotImplemented

    def key(self, digits: int = 9) -> tuple[tuple[str, float], ...]:
        """Canonical, order-free identity: names sorted, weights rounded (so 1/3 matches 0.333333333).
        The default one is computed once (a mixture is immutable): every hash and comparison asks for it."""
        if digits != 9:
            return tuple(sorted((n, round(w, digits) + 0.0) for n, w in self._items))
        try:
            return self._key
        except AttributeError:
            self._key = tuple(sorted((n, round(w, 9) + 0.0) for n, w in self._items))
            return self._key

    def as_dict(self) -> dict[str, float]:
        return dict(self._items)

    def items_(self) -> tuple[tuple[str, float], ...]:
        """The (name, weight) pairs in the mixture's order (the stored tuple: no copy)."""
        return self._items

    def __repr__(self) -> str:
        return "Mixture(" + ", ".join(f"{n}={w:.4g}" for n, w in self._items) + ")"

    def __str__(self) -> str:
        return ",".join(f"{n}={w:.6g}" for n, w in self._items)


BOUND_TOLERANCE = 1e-9
# a proposal matches a pool candidate when every weight is within this of the candidate's stored weight
CANDIDATE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class MixtureSpace:
    """The ordered datasets of a suite. Strategies work in vectors; the space maps both ways.

    Two optional restrictions, both set by the judge (harness/suites/tracks.py), never by a strategy:
    - `lower` / `upper`: per-dataset weight bounds (the continuous track of a recorded suite keeps
      every mixture inside the region its table covers). Validation, `uniform()`, `project()` and
      the samplers below honour them.
    - `candidates`: the pool track's candidate weight vectors (in dataset order). A strategy sees
      their weights, never their scores; it must propose and recommend members (`snap()` maps any
      vector to the nearest member; `check_candidate()` is the judge's test).
    """

    datasets: tuple[str, ...]
    lower: tuple[float, ...] | None = None
    upper: tuple[float, ...] | None = None
    candidates: tuple[tuple[float, ...], ...] | None = None
    #: the fidelity levels a strategy may ask for (`Proposal(mixture, f)`), ascending, ending at 1.0; empty on
    #: single-fidelity suites and tracks (then every pilot is a full run). Set by the judge.
    fidelities: tuple[float, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "datasets", tuple(self.datasets))
        if len(self.datasets) < 2:
            raise ValueError(f"a mixture space needs at least two datasets, got {list(self.datasets)}")
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"duplicate dataset names in {list(self.datasets)}")
        for side in ("lower", "upper"):
            b = getattr(self, side)
            if b is None:
                continue
            b = tuple(float(x) for x in b)
            if len(b) != self.dim or not all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in b):
                raise ValueError(f"{side} bounds {list(b)} must be {self.dim} numbers in [0, 1]")
            object.__setattr__(self, side, b)
        lo, hi = self.lower_array, self.upper_array
        if np.any(lo > hi) or lo.sum() > 1 + BOUND_TOLERANCE or hi.sum() < 1 - BOUND_TOLERANCE:
            raise ValueError(
                f"bounds lower={lo.tolist()} upper={hi.tolist()} leave no mixture: need lower <= upper, "
                f"sum(lower) <= 1 <= sum(upper)"
            )
        if self.candidates is not None:
            cands = tuple(tuple(float(x) for x in c) for c in self.candidates)
            if not cands:
                raise ValueError("a pool needs at least one candidate")
            for c in cands:
                if len(c) != self.dim:
                    raise ValueError(f"candidate {list(c)} has {len(c)} weights; this space has {self.dim} datasets")
            object.__setattr__(self, "candidates", cands)
        fids = tuple(sorted({float(f) for f in self.fidelities}))
        if fids and (not all(0.0 < f <= 1.0 for f in fids) or fids[-1] != 1.0):
            raise ValueError(f"fidelities {list(fids)} must lie in (0, 1] and include 1.0 (the full run)")
        object.__setattr__(self, "fidelities", fids)
        # hashing hundreds of candidates on every lru_cache lookup would dominate a cheap strategy
        object.__setattr__(
            self, "_hash", hash((self.datasets, self.lower, self.upper, self.candidates, self.fidelities))
        )

    def __hash__(self) -> int:
        return self._hash

    # -- plain data (what crosses into a sandboxed strategy process) --------------------------------
    def to_plain(self) -> dict:
        return {
            "datasets": list(self.datasets),
            "lower": None if self.lower is None else list(self.lower),
            "upper": None if self.upper is None else list(self.upper),
            "candidates": None if self.candidates is None else [list(c) for c in self.candidates],
            "fidelities": list(self.fidelities),
        }

    @classmethod
    def from_plain(cls, d: dict) -> MixtureSpace:
        return cls(
            tuple(d["datasets"]), d.get("lower"), d.get("upper"), d.get("candidates"), tuple(d.get("fidelities") or ())
        )

    def restricted(self, lower=None, upper=None, candidates=None, fidelities=()) -> MixtureSpace:
        """The same datasets with bounds and/or a pool and/or fidelity levels (what a track hands to strategies)."""
        return MixtureSpace(self.datasets, lower, upper, candidates, tuple(fidelities))

    @property
    def multi_fidelity(self) -> bool:
        """Whether strategies may ask for partial runs here (more than the full fidelity on offer)."""
        return len(self.fidelities) > 1

    # -- bounds and pool ------------------------------------------------------------------------------
    @property
    def bounded(self) -> bool:
        return self.lower is not None or self.upper is not None

    @property
    def is_pool(self) -> bool:
        return self.candidates is not None

    @property
    def lower_array(self) -> np.ndarray:
        return np.zeros(self.dim) if self.lower is None else np.array(self.lower)

    @property
    def upper_array(self) -> np.ndarray:
        return np.ones(self.dim) if self.upper is None else np.array(self.upper)

    @functools.cached_property
    def candidate_matrix(self) -> np.ndarray:
        """The pool as an (n × d) array (empty when there is no pool)."""
        if self.candidates is None:
            return np.zeros((0, self.dim))
        return np.array(self.candidates, dtype=float)

    @functools.cached_property
    def _candidate_exact(self) -> dict:
        """Each candidate's stored vector (exact floats) -> its index: the pool is keyed by index, never by
        re-rounded weights (rounding to 9 digits splits a value ending in 5 differently once renormalised)."""
        out: dict[tuple[float, ...], int] = {}
        for i, c in enumerate(self.candidates or ()):
            out.setdefault(c, i)
        return out

    def candidate(self, i: int) -> Mixture:
        """The i-th candidate with its stored weights, exactly (renormalised only if they do not sum to 1).
        Built once per index (a mixture is immutable; the judge asks for it on every admitted proposal)."""
        made = self._candidate_mixtures
        m = made.get(i)
        if m is None:
            c = self.candidate_matrix[i]
            if abs(math.fsum(c) - 1.0) <= SUM_TOLERANCE:
                m = Mixture(dict(zip(self.datasets, c.tolist())))
            else:
                m = self.from_vector(c, normalize=True)
            made[int(i)] = m
        return m

    @functools.cached_property
    def _candidate_mixtures(self) -> dict[int, Mixture]:
        return {}

    def candidate_mixtures(self) -> list[Mixture]:
        return [self.candidate(i) for i in range(len(self.candidate_matrix))]

    def candidate_index(self, mixture: Mixture) -> int | None:
        """Index of the mixture in the pool, or None: its exact vector, else the nearest candidate within
        CANDIDATE_TOLERANCE in every weight (a strategy's own arithmetic, a renormalisation)."""
        v = tuple([w for _, w in self.validate(mixture).items_()])  # its weights in dataset order
        i = self._candidate_exact.get(v)
        if i is not None or not self.is_pool:
            return i
        dist = np.abs(self.candidate_matrix - np.array(v)).max(axis=1)
        j = int(np.argmin(dist))
        return j if dist[j] <= CANDIDATE_TOLERANCE else None

    def nearest_candidate(self, vector) -> Mixture:
        v = np.asarray(vector, dtype=float).reshape(-1)
        i = int(np.argmin(np.abs(self.candidate_matrix - v).sum(axis=1)))
        return self.candidate(i)

    def snap(self, mixture: Mixture | None) -> Mixture | None:
        """In a pool: the nearest candidate (L1) to the mixture; otherwise the mixture itself, projected
        into the bounds. This is how a strategy that computes a mixture takes part in the pool track."""
        if mixture is None or not isinstance(mixture, Mixture):
            return mixture
        v = self.raw_vector(mixture)
        if self.is_pool:
            return mixture if self.candidate_index(mixture) is not None else self.nearest_candidate(v)
        if self.bounded and not self.within_bounds(v):
            return self.from_vector(self.project(v))
        return mixture

    def within_bounds(self, vector) -> bool:
        v = np.asarray(vector, dtype=float)
        return bool(np.all(v >= self.lower_array - BOUND_TOLERANCE) and np.all(v <= self.upper_array + BOUND_TOLERANCE))

    def project(self, vector) -> np.ndarray:
        """The Euclidean projection of a vector onto {lower <= w <= upper, sum w = 1} (bisection on the
        shift t in clip(v - t, lower, upper); exact to 1e-12)."""
        v = np.asarray(vector, dtype=float).reshape(-1)
        lo, hi = self.lower_array, self.upper_array
        a, b = float(np.min(v - hi)) - 1.0, float(np.max(v - lo)) + 1.0
        for _ in range(200):
            t = 0.5 * (a + b)
            if np.clip(v - t, lo, hi).sum() > 1.0:
                a = t
            else:
                b = t
            if b - a < 1e-13:
                break
        w = np.clip(v - 0.5 * (a + b), lo, hi)
        return w / w.sum()

    def check_candidate(self, mixture: Mixture) -> Mixture:
        """The judge's pool rule: the mixture must be a candidate; the error names the nearest one."""
        m = self.validate(mixture)
        if not self.is_pool:
            return m
        i = self.candidate_index(m)
        if i is None:
            near = self.nearest_candidate(self.to_vector(m))
            dist = float(np.abs(self.to_vector(near) - self.to_vector(m)).sum())
            raise InvalidMixture(
                f"{m} is not a candidate of the pool ({len(self.candidate_matrix)} recorded mixtures); "
                f"the nearest is {near} (L1 distance {dist:.3g}); propose one of space.candidates"
            )
        return self.candidate(i)  # the stored weights: what the judge looks up, bit for bit

    def sample(self, rng: np.random.Generator, n: int, alpha: float = 1.0) -> np.ndarray:
        """n points of the space: Dirichlet(alpha) draws, projected into the bounds; in a pool, candidates
        drawn without replacement (with replacement once the pool is exhausted)."""
        if self.is_pool:
            k = len(self.candidate_matrix)
            idx = rng.permutation(k)[:n] if n <= k else rng.integers(0, k, n)
            return self.candidate_matrix[idx]
        X = rng.dirichlet(np.full(self.dim, float(alpha)), size=n)
        if self.bounded:
            X = np.array([x if self.within_bounds(x) else self.project(x) for x in X])
        return X

    @property
    def dim(self) -> int:
        return len(self.datasets)

    def validate(self, mixture: Mixture) -> Mixture:
        """Return the mixture in this space's dataset order; unknown names raise with a suggestion."""
        if not isinstance(mixture, Mixture):
            raise InvalidMixture(f"expected a Mixture, got {type(mixture).__name__}: {mixture!r}")
        if mixture.names() == self.datasets:  # already in this space's order (the common case): itself
            m = mixture
        else:
            for name in mixture:
                if name not in self.datasets:
                    raise InvalidMixture(f"unknown dataset {name!r}; {did_you_mean(name, self.datasets)}")
            m = Mixture._of_valid(tuple((d, mixture.get(d, 0.0)) for d in self.datasets))
        if self.bounded:
            lo, hi = self.lower_array, self.upper_array
            for i, d in enumerate(self.datasets):
                if not (lo[i] - BOUND_TOLERANCE <= m[d] <= hi[i] + BOUND_TOLERANCE):
                    raise InvalidMixture(
                        f"weight of dataset {d!r} is {m[d]:.6g}, outside this space's bounds "
                        f"[{lo[i]:.6g}, {hi[i]:.6g}] (the region the suite's data covers)"
                    )
        return m

    def mixture(self, weights: Mapping[str, float]) -> Mixture:
        """Build a mixture from a mapping; datasets left out get weight 0."""
        for name in weights:
            if name not in self.datasets:
                raise InvalidMixture(f"unknown dataset {name!r}; {did_you_mean(name, self.datasets)}")
        return Mixture({d: float(weights.get(d, 0.0)) for d in self.datasets})

    def parse(self, text: str) -> Mixture:
        """Parse "A=0.5,B=0.5" (datasets left out get weight 0)."""
        weights: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep:
                raise InvalidMixture(f"cannot parse {part!r} in mixture {text!r}: expected NAME=WEIGHT")
            if name in weights:
                raise InvalidMixture(f"dataset {name!r} appears twice in {text!r}")
            try:
                weights[name] = float(value)
            except ValueError:
                raise InvalidMixture(f"weight {value.strip()!r} of dataset {name!r} is not a number") from None
        if not weights:
            raise InvalidMixture(f"empty mixture {text!r}; expected e.g. {self.datasets[0]}=0.5,{self.datasets[1]}=0.5")
        return self.mixture(weights)

    def from_vector(self, vector, normalize: bool = False) -> Mixture:
        """Turn a strategy's weight vector into a mixture.

        Round-off below 1e-12 (tiny negatives from an optimiser) is clipped; anything else invalid
        raises. With normalize=True the vector is rescaled to sum to one.
        """
        v = np.asarray(vector, dtype=float).reshape(-1)
        if v.shape[0] != self.dim:
            raise InvalidMixture(
                f"weight vector has {v.shape[0]} entries; this space has {self.dim} datasets {list(self.datasets)}"
            )
        v = np.where((v < 0) & (v > -1e-12), 0.0, v)
        weights = dict(zip(self.datasets, v.tolist()))
        return Mixture.normalized(weights) if normalize else Mixture(weights)

    def raw_vector(self, mixture: Mixture) -> np.ndarray:
        """The weights in dataset order, names checked but bounds not (for projecting into them)."""
        for name in mixture:
            if name not in self.datasets:
                raise InvalidMixture(f"unknown dataset {name!r}; {did_you_mean(name, self.datasets)}")
        return np.array([mixture.get(d, 0.0) for d in self.datasets], dtype=float)

    def to_vector(self, mixture: Mixture) -> np.ndarray:
        m = self.validate(mixture)  # in dataset order
        return np.array([w for _, w in m.items_()], dtype=float)

    def uniform(self) -> Mixture:
        """Equal weights; within bounds, their projection; in a pool, the candidate nearest the centre."""
        v = np.full(self.dim, 1.0 / self.dim)
        if self.is_pool:
            return self.nearest_candidate(v)
        if self.bounded and not self.within_bounds(v):
            v = self.project(v)
        return self.from_vector(v)

    def vertices(self) -> list[Mixture]:
        """The single-dataset mixtures (the corners; within bounds or a pool, the nearest admissible
        points, so a seed design stays valid)."""
        return [self.snap(self._unchecked(np.eye(self.dim)[i])) for i in range(self.dim)]

    def _unchecked(self, v) -> Mixture:
        return Mixture(dict(zip(self.datasets, np.asarray(v, dtype=float).tolist())))
