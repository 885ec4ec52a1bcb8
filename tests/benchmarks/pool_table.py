"""A results table with a known truth, for the judge's tests and benchmarks.

`make_table` writes what a real sweep would give: one row per (mixture, seed), mixture-weight columns
and a score column, from a function with
- a dominant dataset (D0's linear coefficient is the largest),
- pairwise interactions (a random symmetric matrix: some pairs help each other, some conflict),
- diminishing returns (sqrt of each weight: steep near 0, so not a quadratic a Scheffé fit could
  represent exactly),
- seed noise (Gaussian, sd `noise`),
and one dataset whose weight never exceeds 0.03 anywhere in the table (the case where a fitted
quadratic extrapolates into a region nobody measured). The mixtures are Dirichlet draws at several
concentrations (0.3, 1, 3), so both sparse and near-uniform mixtures appear.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RARE_CAP = 0.03


def true_score(W: np.ndarray, seed: int = 0) -> np.ndarray:
    W = np.atleast_2d(W)
    d = W.shape[1]
    rng = np.random.default_rng([seed, d, 99])
    lin = rng.uniform(0.2, 0.5, d)
    lin[0] = 0.9  # the dominant dataset
    A = rng.normal(0, 0.6, (d, d))
    A = (A + A.T) / 2
    np.fill_diagonal(A, 0.0)
    return (
        W @ lin
        + 0.5 * np.einsum("ni,ij,nj->n", W, A, W)
        + 0.15 * np.sum(np.sqrt(W), axis=1)
        - 0.6 * np.sum(W**2, axis=1)
    )


def make_table(n_mix: int = 500, dim: int = 10, seeds: int = 1, noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng([seed, n_mix, dim])
    alphas = np.array([0.3, 1.0, 3.0])[rng.integers(0, 3, n_mix)]
    W = np.array([rng.dirichlet(np.full(dim, a)) for a in alphas])
    rare = np.minimum(W[:, -1], RARE_CAP * rng.uniform(0, 1, n_mix))  # the rare dataset: never above RARE_CAP
    W[:, :-1] *= ((1 - rare) / W[:, :-1].sum(axis=1))[:, None]
    W[:, -1] = rare
    truth = true_score(W, seed)
    rows = []
    for i, w in enumerate(W):
        for s in range(seeds):
            rows.append(
                {
                    **{f"w_D{j}": float(w[j]) for j in range(dim)},
                    "seed": s,
                    "score": float(truth[i] + rng.normal(0, noise)),
                }
            )
    return pd.DataFrame(rows)


def import_pool_suite(
    folder,
    n_mix: int = 500,
    dim: int = 10,
    seeds: int = 1,
    noise: float = 0.01,
    seed: int = 0,
    name: str = "pool-table",
):
    """Write the table through `suite import` (the path a user takes) and return the suite folder."""
    from harness.factory.importer import import_table

    table = make_table(n_mix, dim, seeds, noise, seed)
    weights = ",".join(f"w_D{j}" for j in range(dim))
    return import_table(
        table,
        name,
        weights,
        "score",
        "max",
        folder,
        seed_col="seed" if seeds > 1 else None,
        scores=["score"],
        overwrite=True,
        source=f"tests/benchmarks/pool_table.py seed {seed}",
    )
