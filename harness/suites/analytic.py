"""Analytic objectives on the simplex with a known optimum, so regret is exact.

Each function is built deterministically from a seed and has interactions between datasets
(off-diagonal curvature). Their minima over the simplex lie at vertices (each is concave or
quasi-concave), so the worst value is exact too, and normalised regret has an exact denominator.

- `bowl`: a concave quadratic, c − (w − w*)ᵀQ(w − w*), optimum exactly w* (interior). A quadratic
  surrogate can represent it exactly: the easy case for the paper's method.
- `bump`: base + h·exp(−½(w − w*)ᵀQ(w − w*)), optimum exactly w* (interior), not quadratic:
  a sharp peak that a global quadratic fit smooths over.
- `corner`: a concave quadratic whose unconstrained peak lies outside the simplex (one dataset
  hurts), so the optimum lies on a face and is found by a convex solve (SLSQP from many starts;
  exact to solver tolerance, checked against the KKT conditions in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

from harness.mixture import Mixture, MixtureSpace
from harness.spec import derive_seed
from harness.suites.base import Suite

FUNCTIONS = ("bowl", "bump", "corner")


@dataclass(frozen=True)
class AnalyticFunction:
    kind: str
    dim: int
    seed: int
    center: np.ndarray
    Q: np.ndarray
    level: float
    height: float

    @classmethod
    def build(cls, kind: str, dim: int, seed: int) -> AnalyticFunction:
        if kind not in FUNCTIONS:
            raise ValueError(f"unknown synthetic function {kind!r}; valid: {', '.join(FUNCTIONS)}")
        rng = np.random.default_rng([seed, dim, FUNCTIONS.index(kind)])
        # Curvature with strong interactions: a random PSD matrix plus a diagonal floor.
        A = rng.normal(size=(dim, dim))
        Q = A @ A.T / dim + 0.3 * np.eye(dim)
        if kind == "corner":
            center = rng.dirichlet(np.ones(dim) * 2.0)
            center[0] -= 0.35  # the first dataset hurts: its unconstrained best weight is negative
            center = center + 0.35 / dim * (1 - np.eye(dim)[0]) * dim / (dim - 1)
        else:
            # Far from uniform (so the reference line has real regret) but interior.
            center = 0.9 * rng.dirichlet(np.ones(dim)) + 0.1 / dim
        if kind == "bump":
            Q = Q * 12.0
        return cls(kind, dim, seed, center, Q, level=0.55, height=0.2)

    def __call__(self, X) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        D = X - self.center
        quad = np.einsum("ni,ij,nj->n", D, self.Q, D)
        if self.kind == "bump":
            return (self.level - self.height) + self.height * np.exp(-0.5 * quad)
        return self.level - 0.5 * self.height * quad

    def optimum(self) -> tuple[np.ndarray, float]:
        if self.kind in ("bowl", "bump"):
            return self.center.copy(), float(self(self.center)[0])
        # Convex problem (concave maximisation on the simplex): every start reaches the same optimum.
        f = lambda x: -float(self(x)[0])  # noqa: E731
        g = lambda x: self.height * (self.Q @ (x - self.center))  # noqa: E731
        cons = ({"type": "eq", "fun": lambda x: x.sum() - 1.0, "jac": lambda x: np.ones_like(x)},)
        best = None
        for x0 in [np.full(self.dim, 1 / self.dim)] + list(np.eye(self.dim)):
            r = minimize(
                f,
                x0,
                jac=g,
                method="SLSQP",
                bounds=[(0, 1)] * self.dim,
                constraints=cons,
                options={"ftol": 1e-15, "maxiter": 1000},
            )
            if best is None or r.fun < best.fun:
                best = r
        x = np.clip(best.x, 0, None)
        x /= x.sum()
        return x, float(self(x)[0])

    def worst(self) -> float:
        """Minimum over the simplex: at a vertex, since the function is (quasi-)concave."""
        return float(self(np.eye(self.dim)).min())


class SyntheticSuite(Suite):
    """An analytic function with a known optimum, plus optional Gaussian noise per pilot run."""

    @classmethod
    def from_card(cls, card: dict[str, Any], path: Path | None, protocol: str) -> SyntheticSuite:
        datasets = card.get("datasets") or [f"D{i + 1}" for i in range(int(card["function"]["dim"]))]
        fn = card["function"]
        suite = cls(
            card["name"],
            str(card["version"]),
            MixtureSpace(tuple(datasets)),
            card.get("metric", "score"),
            card.get("goal", "max"),
            card,
            path,
            protocol,
        )
        suite.function = AnalyticFunction.build(fn["kind"], len(datasets), int(fn.get("seed", 0)))
        suite.noise_sd = float(fn.get("noise_sd", 0.0))
        return suite

    def simulate(self, mixture: Mixture, seed: int) -> tuple[dict[str, float], str]:
        x = self.space.to_vector(mixture)
        value = float(self.function(x)[0])
        if self.noise_sd > 0:
            value += (
                float(np.random.default_rng(derive_seed(seed, "noise", x.round(9).tolist())).normal()) * self.noise_sd
            )
        return {self.metric: value}, "analytic"

    def oracle(self, mixture: Mixture) -> tuple[float, str]:
        return float(self.function(self.space.to_vector(mixture))[0]), "analytic"

    def _bounds(self) -> tuple[float, float]:
        return self.function.optimum()[1], self.function.worst()

    def optimum_mixture(self) -> Mixture:
        return self.space.from_vector(self.function.optimum()[0], normalize=True)
