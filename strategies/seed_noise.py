"""Seed noise from a study's own replicates: how noisy one run is, what a candidate's mean is worth, and
when piloting a leader again pays (auto's rules for multi-seed pools, issue 26 round 3).

Everything here is the normal-normal model of a pool: a candidate's true score θ_m ~ N(μ, τ²) across the
piloted candidates, each run y ~ N(θ_m, σ²). σ² is pooled from candidates piloted more than once; μ and
τ² are the method-of-moments (empirical Bayes) estimates from the piloted candidates' means. No run has
a second seed until a strategy pilots a candidate twice, so σ² is unknown (None) until then.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm


def pooled_within_variance(runs: list[list[float]]) -> float | None:
    """The pooled within-candidate variance of the runs (one list of objectives per candidate), or None
    when no candidate has two runs. 0.0 when every replicate repeated its number (a single-seed pool, or a
    deterministic one: piloting a candidate again there returns what it returned before)."""
    dof = sum(len(r) - 1 for r in runs if len(r) > 1)
    if dof == 0:
        return None
    ss = sum(float(((np.asarray(r) - np.mean(r)) ** 2).sum()) for r in runs if len(r) > 1)
    return ss / dof


def posterior_means(means: np.ndarray, counts: np.ndarray, within_var: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(posterior mean, posterior variance) of each candidate's score under the normal-normal model.

    With σ² unknown or 0 the observed means are the answer (variance 0): nothing says they are noisy.
    τ² = var(means) − mean(σ²/k), floored at a tenth of var(means) so a table whose spread is mostly noise
    still ranks candidates; μ = the mean of the means. A single lucky run is pulled towards μ by
    σ²/k / (τ² + σ²/k): more the fewer runs it has."""
    means, counts = np.asarray(means, float), np.asarray(counts, float)
    if not within_var or len(means) < 3:
        return means.copy(), np.zeros(len(means))
    noise = within_var / counts
    spread = float(means.var(ddof=1))
    tau2 = max(spread - float(noise.mean()), 0.1 * spread, 1e-12)
    weight = tau2 / (tau2 + noise)
    return means.mean() + weight * (means - means.mean()), 1.0 / (1.0 / tau2 + counts / within_var)


def leader_is_uncertain(post_mean: np.ndarray, post_var: np.ndarray, confidence: float = 0.8) -> bool:
    """True when the posterior probability that the leader beats the runner-up is below `confidence`:
    another run of the leader is then the pilot most likely to change the recommendation."""
    if len(post_mean) < 2:
        return False
    order = np.argsort(-post_mean)
    a, b = order[0], order[1]
    sd = float(np.sqrt(post_var[a] + post_var[b]))
    if sd <= 0:
        return False
    return float(norm.cdf((post_mean[a] - post_mean[b]) / sd)) < confidence
