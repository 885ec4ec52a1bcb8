"""CMA-ES on the simplex (softmax parametrisation).

Citation: Hansen, "The CMA Evolution Strategy: A Tutorial" (arXiv 1604.00772), the (μ/μ_w, λ)
algorithm with its default parameters; Hansen & Ostermeier (2001).

The search runs in R^n and each sample z maps to the mixture softmax(z), so every proposal is a
valid, strictly positive mixture and the initial mean (z = 0) is uniform. Generations of λ = 4 + ⌊3 ln n⌋
samples; a failed pilot run ranks last in its generation. The state (mean, step size, covariance,
evolution paths) is not stored: each propose replays the completed generations from the history
with samples regenerated from (seed, generation), so the same seed and history give the same
proposal and a resumed study continues exactly. The recommendation is the best observed mixture
(`recommend="mean"`: softmax of the final mean).

In the pool track (and in a bounded space) a sample's mixture is repaired: it becomes the pool's
candidate nearest softmax(z) that has not been piloted (no candidate is piloted twice), and the
generation's update uses the repaired point, not the sample (Hansen, "Injecting External Solutions Into
CMA-ES", arXiv 1110.4181): z' = log(max(w, `repair_floor`)) centred, y = (z' − m)/σ with its Mahalanobis
length clipped to √n + 2n/(n + 2) (the paper's bound), so ranks are credited to the points actually scored.

What it needs: many runs. It is a derivative-free optimiser for budgets of hundreds of
evaluations; at 8 to 24 pilot runs it sees two or three generations, so read it as the generic
black-box reference, not as a contender.
"""

from __future__ import annotations

import numpy as np

from strategies.base import Strategy, best_observed
from strategies.registry import register


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


@register("cma-es")
class CMAES(Strategy):
    description = "CMA-ES (μ/μ_w, λ) in softmax coordinates of the simplex; recommends the best observed mixture."
    citation = "Hansen, The CMA Evolution Strategy: A Tutorial (arXiv 1604.00772); Hansen & Ostermeier (2001)"
    family = "evolutionary"

    def __init__(
        self,
        space,
        seed=0,
        sigma0: float = 1.0,
        popsize: int | None = None,
        recommend: str = "observed",
        repair_floor: float = 1e-3,
    ):
        super().__init__(space, seed)
        if not 0 < repair_floor < 1:
            raise ValueError(f"repair_floor must be in (0, 1), got {repair_floor}")
        self.repair_floor = float(repair_floor)
        if not sigma0 > 0:
            raise ValueError(f"sigma0 must be > 0, got {sigma0}")
        if recommend not in ("observed", "mean"):
            raise ValueError(f"recommend must be 'observed' or 'mean', got {recommend!r}")
        n = space.dim
        self.lam = int(popsize) if popsize else 4 + int(3 * np.log(n))
        if self.lam < 2:
            raise ValueError(f"popsize must be >= 2, got {popsize}")
        self.sigma0, self.recommend_by = float(sigma0), recommend
        mu = self.lam // 2
        w = np.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
        self.weights = w / w.sum()
        self.mu, self.mueff = mu, 1.0 / np.sum(self.weights**2)
        self.cc = (4 + self.mueff / n) / (n + 4 + 2 * self.mueff / n)
        self.cs = (self.mueff + 2) / (n + self.mueff + 5)
        self.c1 = 2 / ((n + 1.3) ** 2 + self.mueff)
        self.cmu = min(1 - self.c1, 2 * (self.mueff - 2 + 1 / self.mueff) / ((n + 2) ** 2 + self.mueff))
        self.damps = 1 + 2 * max(0.0, np.sqrt((self.mueff - 1) / (n + 1)) - 1) + self.cs
        self.chin = np.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))

    def _samples(self, g: int, m, sigma, B, D) -> np.ndarray:
        Z = np.random.default_rng([self.seed, g, 9]).standard_normal((self.lam, self.space.dim))
        return m + sigma * (Z * D) @ B.T

    def _replay(self, history):
        """State after the completed generations of `history`: (mean, sigma, B, D, g)."""
        n = self.space.dim
        m, sigma = np.zeros(n), self.sigma0
        C, pc, ps = np.eye(n), np.zeros(n), np.zeros(n)
        B, D = np.eye(n), np.ones(n)
        g = 0
        while len(history) >= (g + 1) * self.lam:
            X = self._samples(g, m, sigma, B, D)
            obs = history[g * self.lam : (g + 1) * self.lam]
            if self.repairs:
                X = np.array([self._inject(self.space.to_vector(o.mixture), m, sigma, B, D) for o in obs])
            f = np.array([o.objective if o.ok else -np.inf for o in obs])
            order = np.argsort(-f, kind="stable")[: self.mu]
            old = m
            m = self.weights @ X[order]
            y = (m - old) / sigma
            Cinv_sqrt = B @ np.diag(1 / D) @ B.T
            ps = (1 - self.cs) * ps + np.sqrt(self.cs * (2 - self.cs) * self.mueff) * Cinv_sqrt @ y
            hsig = np.linalg.norm(ps) / np.sqrt(1 - (1 - self.cs) ** (2 * (g + 1))) / self.chin < 1.4 + 2 / (n + 1)
            pc = (1 - self.cc) * pc + hsig * np.sqrt(self.cc * (2 - self.cc) * self.mueff) * y
            Y = (X[order] - old) / sigma
            C = (
                (1 - self.c1 - self.cmu) * C
                + self.c1 * (np.outer(pc, pc) + (1 - hsig) * self.cc * (2 - self.cc) * C)
                + self.cmu * (Y.T * self.weights) @ Y
            )
            sigma *= np.exp((self.cs / self.damps) * (np.linalg.norm(ps) / self.chin - 1))
            sigma = float(np.clip(sigma, 1e-8, 1e3))
            C = (C + C.T) / 2
            evals, B = np.linalg.eigh(C)
            D = np.sqrt(np.maximum(evals, 1e-20))
            g += 1
        return m, sigma, B, D, g

    @property
    def repairs(self) -> bool:
        return self.space.is_pool or self.space.bounded

    def _inject(self, w: np.ndarray, m, sigma, B, D) -> np.ndarray:
        """The search point of a repaired mixture w, its step from the mean clipped in Mahalanobis length."""
        n = self.space.dim
        z = np.log(np.maximum(w, self.repair_floor))
        z = z - z.mean() + m.mean()  # softmax ignores a shift along (1, ..., 1): keep the mean's
        y = (z - m) / sigma
        length = float(np.linalg.norm((B.T @ y) / D))
        bound = np.sqrt(n) + 2 * n / (n + 2)
        if length > bound:
            y = y * bound / length
        return m + sigma * y

    def propose(self, history, budget):
        if budget.remaining(history) <= 0:
            return None
        m, sigma, B, D, g = self._replay(history)
        k = len(history) - g * self.lam
        w = softmax(self._samples(g, m, sigma, B, D)[k])
        if self.space.is_pool:  # the nearest candidate not piloted yet
            pool, piloted = self.space.candidate_matrix, {o.mixture for o in history}
            for i in np.argsort(((pool - w[None, :]) ** 2).sum(1), kind="stable"):
                c = self.space.from_vector(pool[i], normalize=True)
                if self.space.snap(c) not in piloted:
                    return c
            return None
        return self.space.from_vector(w, normalize=True)

    def recommend(self, history):
        if self.recommend_by == "mean":
            return self.space.from_vector(softmax(self._replay(history)[0]), normalize=True)
        return best_observed(history) or self.space.uniform()
