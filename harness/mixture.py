"""Mixtures and the space they live in.

A `Mixture` is an immutable mapping from dataset name to weight that is valid by construction:
finite, non-negative, summing to one. A `MixtureSpace` is the ordered set of datasets of a suite;
it turns user text and strategy vectors into mixtures and rejects names it does not know, with a
"did you mean" suggestion. Validation lives here and only here, so every entry point (CLI, study
loop, replay tables) raises the same clear errors.
"""

from __future__ import annotations

import difflib
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

    __slots__ = ("_items",)

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

    def __getitem__(self, name: str) -> float:
        for n, w in self._items:
            if n == name:
                return w
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (n for n, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self.key())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mixture):
            return self.key() == other.key()
        return NotImplemented

    def key(self, digits: int = 9) -> tuple[tuple[str, float], ...]:
        """Canonical, order-free identity: names sorted, weights rounded (so 1/3 matches 0.333333333)."""
        return tuple(sorted((n, round(w, digits) + 0.0) for n, w in self._items))

    def as_dict(self) -> dict[str, float]:
        return dict(self._items)

    def __repr__(self) -> str:
        return "Mixture(" + ", ".join(f"{n}={w:.4g}" for n, w in self._items) + ")"

    def __str__(self) -> str:
        return ",".join(f"{n}={w:.6g}" for n, w in self._items)


@dataclass(frozen=True)
class MixtureSpace:
    """The ordered datasets of a suite. Strategies work in vectors; the space maps both ways."""

    datasets: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "datasets", tuple(self.datasets))
        if len(self.datasets) < 2:
            raise ValueError(f"a mixture space needs at least two datasets, got {list(self.datasets)}")
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"duplicate dataset names in {list(self.datasets)}")

    @property
    def dim(self) -> int:
        return len(self.datasets)

    def validate(self, mixture: Mixture) -> Mixture:
        """Return the mixture in this space's dataset order; unknown names raise with a suggestion."""
        if not isinstance(mixture, Mixture):
            raise InvalidMixture(f"expected a Mixture, got {type(mixture).__name__}: {mixture!r}")
        for name in mixture:
            if name not in self.datasets:
                raise InvalidMixture(f"unknown dataset {name!r}; {did_you_mean(name, self.datasets)}")
        return Mixture({d: mixture.get(d, 0.0) for d in self.datasets})

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
            raise InvalidMixture(f"weight vector has {v.shape[0]} entries; this space has {self.dim} datasets {list(self.datasets)}")
        v = np.where((v < 0) & (v > -1e-12), 0.0, v)
        weights = dict(zip(self.datasets, v.tolist()))
        return Mixture.normalized(weights) if normalize else Mixture(weights)

    def to_vector(self, mixture: Mixture) -> np.ndarray:
        m = self.validate(mixture)
        return np.array([m[d] for d in self.datasets], dtype=float)

    def uniform(self) -> Mixture:
        return self.from_vector(np.full(self.dim, 1.0 / self.dim))

    def vertices(self) -> list[Mixture]:
        return [self.from_vector(np.eye(self.dim)[i]) for i in range(self.dim)]
