"""The paper's heuristics (MoDoMoDo, arXiv 2505.24871, appendix): pure functions and a base class.

Every heuristic turns the *seed runs* (the 2n+1 seed designs: uniform, leave-one-out, single)
into one mixture, with no further pilot runs. The functions below take plain arrays so that
`modomodo reproduce paper` (harness/factory/reproduce_paper.py) recomputes the paper's mixtures from its
Table 2 with exactly the code the strategies run.

Inputs, per seed run r: its weight vector W[r] (inclusion of dataset i means W[r, i] > 0), its
In-Score and its Out-Score (higher is better). In a study, "Out-Score" is the suite's objective
and "In-Score" is the score named `in_score` (default "In_Score"), falling back to the objective
when a suite does not report one (every synthetic suite): there Ain, Aout and Abal coincide.

Values the paper leaves unstated are named parameters with documented defaults:
- `alpha_single` (the factor on single-dataset runs in the alpha family): the functions default
  to 1.0 (no rescaling); the strategies use 0.5, the middle of the range consistent with the
  paper's recorded Aout row (see strategies/alpha.py). The table cannot identify it further.
- Norm for n != 5 datasets: the paper's raw weight 0.2 - 0.1·ô_i is read as 1/n - (1/(2n))·ô_i.
- A degenerate case (all raw weights zero, or fewer runs than a formula needs) returns uniform.
"""

from __future__ import annotations

import numpy as np

from strategies.base import Strategy, best_observed, seed_designs

INCLUDED_EPS = 1e-12


def _normalise_or_uniform(raw: np.ndarray) -> np.ndarray:
    raw = np.clip(np.asarray(raw, dtype=float), 0.0, None)
    total = raw.sum()
    if not np.isfinite(total) or total <= 0:
        return np.full(raw.shape[0], 1.0 / raw.shape[0])
    return raw / total


def _minmax(v: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(v)), float(np.max(v))
    if hi - lo <= 0:
        return np.zeros_like(v, dtype=float)
    return (v - lo) / (hi - lo)


def alpha_weights(
    W: np.ndarray, in_scores: np.ndarray, out_scores: np.ndarray, alpha: float, alpha_single: float = 1.0
) -> np.ndarray:
    """Algorithm 1 (Ain α=1, Aout α=0, Abal α=0.5).

    For each dataset i: In_i = Σ_r s_r·In_r and Out_i = Σ_r s_r·Out_r over the seed runs r that
    include i, where s_r = alpha_single for a single-dataset run and 1 otherwise; min-max normalise
    In and Out across datasets; C_i = α·In_i + (1−α)·Out_i; w = C / ΣC.
    """
    W = np.atleast_2d(np.asarray(W, dtype=float))
    inc = W > INCLUDED_EPS
    single = inc.sum(axis=1) == 1
    s = np.where(single, float(alpha_single), 1.0)
    In = (inc * (s * np.asarray(in_scores, dtype=float))[:, None]).sum(axis=0)
    Out = (inc * (s * np.asarray(out_scores, dtype=float))[:, None]).sum(axis=0)
    C = float(alpha) * _minmax(In) + (1.0 - float(alpha)) * _minmax(Out)
    return _normalise_or_uniform(C)


def coli_weights(W: np.ndarray, out_scores: np.ndarray, lam: float = 1e-3) -> np.ndarray:
    """Algorithm 2 (Coli): ridge without intercept of Out-Score on 0/1 inclusion indicators;
    each coefficient divided by the matching diagonal entry of (XᵀX + λI)⁻¹; negatives clipped
    to 0; normalised."""
    X = (np.atleast_2d(np.asarray(W, dtype=float)) > INCLUDED_EPS).astype(float)
    y = np.asarray(out_scores, dtype=float)
    if len(y) == 0:
        return np.full(X.shape[1], 1.0 / X.shape[1])
    A_inv = np.linalg.inv(X.T @ X + float(lam) * np.eye(X.shape[1]))
    beta = A_inv @ X.T @ y
    return _normalise_or_uniform(beta / np.diag(A_inv))


def coli_details(W: np.ndarray, out_scores: np.ndarray, lam: float = 1e-3) -> dict:
    """Coefficients and scaled scores of Coli, for the reproduction report."""
    X = (np.atleast_2d(np.asarray(W, dtype=float)) > INCLUDED_EPS).astype(float)
    A_inv = np.linalg.inv(X.T @ X + float(lam) * np.eye(X.shape[1]))
    beta = A_inv @ X.T @ np.asarray(out_scores, dtype=float)
    return {"beta": beta.tolist(), "diag_inv": np.diag(A_inv).tolist(), "scaled": (beta / np.diag(A_inv)).tolist()}


def leave_one_out_index(W: np.ndarray) -> dict[int, int]:
    """dataset i -> row of the run that excludes exactly i and includes every other dataset."""
    W = np.atleast_2d(np.asarray(W, dtype=float))
    inc = W > INCLUDED_EPS
    d = W.shape[1]
    out: dict[int, int] = {}
    for r, row in enumerate(inc):
        if row.sum() == d - 1 and d > 2:
            i = int(np.flatnonzero(~row)[0])
            out.setdefault(i, r)
    return out


def norm_weights(
    W: np.ndarray, out_scores: np.ndarray, base: float | None = None, scale: float | None = None
) -> np.ndarray:
    """Algorithm 3 (Norm): o_i = Out-Score of the run that excludes i; min-max normalise the o_i;
    raw weight base − scale·ô_i (paper, n=5: 0.2 − 0.1·ô_i); normalise.

    A dataset whose leave-one-out run is missing (a budget below 2n+1, or a failed run) gets the
    mean of the known o_i; with fewer than two known, the result is uniform.
    """
    W = np.atleast_2d(np.asarray(W, dtype=float))
    d = W.shape[1]
    base = 1.0 / d if base is None else float(base)
    scale = 0.5 / d if scale is None else float(scale)
    loo = leave_one_out_index(W)
    if len(loo) < 2:
        return np.full(d, 1.0 / d)
    y = np.asarray(out_scores, dtype=float)
    o = np.full(d, np.nan)
    for i, r in loo.items():
        o[i] = y[r]
    o[np.isnan(o)] = np.nanmean(o)
    return _normalise_or_uniform(base - scale * _minmax(o))


def _finite_or(value, fallback: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return float(fallback)
    return v if np.isfinite(v) else float(fallback)


class SeedThenHeuristic(Strategy):
    """Pilot the 2n+1 seed designs, then compute one mixture from them.

    Budget use: the first min(budget, 2n+1) pilots are the seed designs (uniform first, then
    leave-one-out, then single; shuffled within each group by the seed). If budget remains, the
    heuristic mixture itself is piloted once; the strategy then stops (the paper's heuristics are
    one-shot). `recommend="heuristic"` (default, the paper's method) recommends the computed
    mixture; `recommend="observed"` the best piloted one.
    """

    family = "heuristic"

    def __init__(
        self, space, seed=0, in_score: str = "In_Score", recommend: str = "heuristic", pilot_heuristic: bool = True
    ):
        super().__init__(space, seed)
        if recommend not in ("heuristic", "observed"):
            raise ValueError(f"recommend must be 'heuristic' or 'observed', got {recommend!r}")
        self.in_score, self.recommend_by, self.pilot_heuristic = str(in_score), recommend, bool(pilot_heuristic)
        self._designs = seed_designs(space, self.seed)

    # subclasses: weights from (W, in, out) of the successful seed runs
    def heuristic_vector(self, W: np.ndarray, in_scores: np.ndarray, out_scores: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def seed_arrays(self, history):
        seed_obs = [o for o in history[: len(self._designs)] if o.ok]
        d = self.space.dim
        W = np.array([self.space.to_vector(o.mixture) for o in seed_obs]).reshape(len(seed_obs), d)
        out = np.array([o.objective for o in seed_obs], dtype=float)
        ins = np.array([_finite_or(o.scores.get(self.in_score), o.objective) for o in seed_obs], dtype=float)
        return W, ins, out

    def heuristic_mixture(self, history):
        W, ins, out = self.seed_arrays(history)
        if len(out) == 0:
            return self.space.uniform()
        v = self.heuristic_vector(W, ins, out)
        return self.space.from_vector(v, normalize=True)

    def propose(self, history, budget):
        if budget.remaining(history) <= 0:
            return None
        n = len(history)
        if n < len(self._designs):
            return self._designs[n]
        if n == len(self._designs) and self.pilot_heuristic:
            return self.heuristic_mixture(history)
        return None

    def recommend(self, history):
        if self.recommend_by == "observed":
            return best_observed(history) or self.space.uniform()
        return self.heuristic_mixture(history)
