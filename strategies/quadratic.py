"""The paper's quadratic surrogate (MoDoMoDo, arXiv 2505.24871, Algorithm 4), as published.

The authors' code is not public; the reference is the paper's appendix (Algorithm 4, transcribed in
/work/shared/data/modomodo-paper/README.md) and its Table 2, whose model-based runs come after the
seed runs and the heuristic runs:
1. Pilot the 2n+1 seed designs.
2. Pilot the paper's heuristic mixtures computed from the seed runs: Ain, Aout, Abal (Algorithm 1,
   `alpha_single` 0.5 as strategies/alpha.py), Coli (Algorithm 2, λ 1e-3) and Norm (Algorithm 3), in that
   order, skipping any that equals a mixture already piloted (in a pool: after snapping to a candidate).
   The paper piloted each twice, fed with step-averaged and with final pilot metrics; a pilot here reports
   final scores only, so each heuristic is piloted once (`heuristics=False`: the seed runs only).
3. Fit score ≈ a + bᵀw + wᵀCw by ordinary least squares on features [1, w, w⊗w] to the seed and
   heuristic runs (minimum-norm solution: with n=5 there are 31 features and 16 runs, underdetermined
   as in the paper). Model selection: 5 random 80/20 splits, keep the fit with the best held-out R².
4. Sample candidates from a Gaussian fitted to the observed mixtures, drop negative components,
   renormalise, rank by predicted score, and pilot the top-k (k = the remaining budget). In the pool
   track the candidates are the pool's.
5. Recommend the best observed mixture (or the top predicted one with recommend="predicted").

The fit is done once, as in the paper (one-shot, no refitting): the surrogate is the paper's
contribution under test, not an improvement of it. Values the paper does not state are parameters:
`n_candidates` (default 10,000) and the split count/fraction (5, 0.2, as stated). With a budget below
2n+1 plus the heuristics, the strategy is the seed design (then the heuristics) and recommends the best
observed.
"""

from __future__ import annotations

import numpy as np

from strategies.base import Strategy, best_observed, seed_designs
from strategies.registry import register


_RANKED: dict = {}  # see Quadratic._ranked


def quadratic_features(X: np.ndarray) -> np.ndarray:
    """[1, w, w⊗w] per row (the paper's feature map; the outer product keeps both i,j and j,i)."""
    X = np.atleast_2d(X)
    outer = np.einsum("ni,nj->nij", X, X).reshape(X.shape[0], -1)
    return np.hstack([np.ones((X.shape[0], 1)), X, outer])


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    ss_res = float(np.sum((y - pred) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else (0.0 if ss_res > 0 else 1.0)


def linear_features(X: np.ndarray) -> np.ndarray:
    """[1, w] per row (the paper's linear surrogate)."""
    X = np.atleast_2d(X)
    return np.hstack([np.ones((X.shape[0], 1)), X])


def fit_best_of_splits(
    X: np.ndarray, y: np.ndarray, rng: np.random.Generator, n_splits=5, test_fraction=0.2, features=quadratic_features
):
    """OLS coefficients from the split with the best held-out R² (all data if too few points)."""
    F = features(X)
    n = len(y)
    n_test = max(1, int(round(test_fraction * n)))
    if n - n_test < 2:
        return np.linalg.lstsq(F, y, rcond=None)[0]
    best, best_r2 = None, -np.inf
    for _ in range(n_splits):
        perm = rng.permutation(n)
        test, train = perm[:n_test], perm[n_test:]
        coef = np.linalg.lstsq(F[train], y[train], rcond=None)[0]
        r2 = r2_score(y[test], F[test] @ coef) if n_test > 1 else -float(np.abs(y[test] - F[test] @ coef)[0])
        if r2 > best_r2:
            best, best_r2 = coef, r2
    return best


@register("quadratic")
class Quadratic(Strategy):
    description = "The paper's Algorithm 4: seed runs, one-shot OLS quadratic surrogate, Gaussian candidates, top-k."
    citation = "Liang et al., MoDoMoDo: Multi-Domain Data Mixtures for Multimodal LLM RL (arXiv 2505.24871), Alg. 4"
    family = "surrogate"
    #: the surrogate's feature map ([1, w, w⊗w]); `linear` swaps in [1, w].
    features = staticmethod(quadratic_features)

    def __init__(
        self,
        space,
        seed=0,
        n_candidates: int = 10_000,
        n_splits: int = 5,
        test_fraction: float = 0.2,
        recommend: str = "observed",
        heuristics: bool = True,
        in_score: str = "In_Score",
    ):
        super().__init__(space, seed)
        if recommend not in ("observed", "predicted"):
            raise ValueError(f"recommend must be 'observed' or 'predicted', got {recommend!r}")
        self.n_candidates, self.n_splits, self.test_fraction = int(n_candidates), int(n_splits), float(test_fraction)
        self.recommend_by, self.heuristics, self.in_score = recommend, bool(heuristics), str(in_score)

    def heuristic_designs(self, seed_history) -> list:
        """The paper's heuristic mixtures from the seed runs (Ain, Aout, Abal, Coli, Norm), snapped to the
        space and without any mixture already among the seed designs or earlier heuristics."""
        if not self.heuristics:
            return []
        from strategies.paper_heuristics import _finite_or, alpha_weights, coli_weights, norm_weights

        obs = [o for o in seed_history if o.ok]
        if not obs:
            return []
        d = self.space.dim
        W = np.array([self.space.to_vector(o.mixture) for o in obs]).reshape(len(obs), d)
        out = np.array([o.objective for o in obs], dtype=float)
        ins = np.array([_finite_or(o.scores.get(self.in_score), o.objective) for o in obs], dtype=float)
        vectors = [alpha_weights(W, ins, out, a, 0.5) for a in (1.0, 0.0, 0.5)]
        vectors += [coli_weights(W, out, 1e-3), norm_weights(W, out)]
        seen = set(seed_designs(self.space, self.seed))
        designs = []
        for v in vectors:
            m = self.space.snap(self.space.from_vector(v, normalize=True))
            if m not in seen:
                seen.add(m)
                designs.append(m)
        return designs

    def phases(self, history) -> tuple[list, list]:
        """(seed designs, heuristic designs) for this history (the heuristics once the seed runs are in)."""
        designs = seed_designs(self.space, self.seed)
        if len(history) < len(designs):
            return designs, []
        return designs, self.heuristic_designs(history[: len(designs)])

    def _ranked(self, seed_history) -> list:
        """Candidates ranked by the surrogate fitted on the seed-phase history (cached: one-shot fit).

        The cache is module-level and keyed by everything the ranking depends on, so the bench's
        studies of one seed at several budgets (same seed runs) fit once per worker process."""
        key = (
            type(self).__qualname__,
            self.features.__name__,
            self.n_candidates,
            self.n_splits,
            self.test_fraction,
            self.seed,
            self.space,
            tuple((o.mixture.key(), o.objective, o.status) for o in seed_history),
        )
        if key in _RANKED:
            return _RANKED[key]
        X, y = self.vectors(seed_history)
        rng = np.random.default_rng([self.seed, 4])
        if len(y) < 3:  # nothing to fit: rank Dirichlet samples arbitrarily (they are random search)
            cands = rng.dirichlet(np.ones(self.space.dim), size=self.n_candidates)
            if self.space.is_pool:
                cands = self.space.candidate_matrix[rng.permutation(len(self.space.candidate_matrix))]
            ranked = [self.space.snap(self.space.from_vector(c, normalize=True)) for c in cands[:64]]
        else:
            coef = fit_best_of_splits(X, y, rng, self.n_splits, self.test_fraction, self.features)
            if self.space.is_pool:  # the pool track: rank the candidates themselves
                cands = self.space.candidate_matrix
            else:
                mean, cov = X.mean(axis=0), np.cov(X, rowvar=False)
                cands = rng.multivariate_normal(mean, cov, size=self.n_candidates, method="svd")
                cands = np.clip(cands, 0.0, None)
                cands = cands[cands.sum(axis=1) > 1e-9]
                cands = cands / cands.sum(axis=1, keepdims=True)
            order = np.argsort(-(self.features(cands) @ coef), kind="stable")
            ranked, seen = [], set(o.mixture for o in seed_history)
            for i in order:
                m = self.space.from_vector(cands[i], normalize=True)
                if m not in seen:
                    seen.add(m)
                    ranked.append(m)
                if len(ranked) >= 256:
                    break
        if len(_RANKED) >= 1024:
            _RANKED.clear()
        _RANKED[key] = ranked
        return ranked

    def propose(self, history, budget):
        if budget.remaining(history) <= 0:
            return None
        designs, heuristic = self.phases(history)
        if len(history) < len(designs):
            return designs[len(history)]
        fixed = len(designs) + len(heuristic)
        if len(history) < fixed:
            return heuristic[len(history) - len(designs)]
        ranked = self._ranked(history[:fixed])
        piloted = {o.mixture for o in history}
        fresh = [m for m in ranked if m not in piloted]
        return fresh[0] if fresh else None

    def recommend(self, history):
        designs, heuristic = self.phases(history)
        fixed = len(designs) + len(heuristic)
        if self.recommend_by == "predicted" and len(history) >= fixed:
            ranked = self._ranked(history[:fixed])
            if ranked:
                return ranked[0]
        return best_observed(history) or self.space.uniform()
