"""Verdicts within one suite at one budget: who beats whom *on that suite*, and how small a difference its seeds see.

Per (suite, budget), over the study seeds (repeated measures of one problem):
- *paired difference*: a strategy's normalised regret minus another's on the same study seed, over the seeds both
  ran successfully (negative = the first is better).
- *beats random*: every strategy is compared with the `random` baseline by the exact sign-flip permutation test of
  the mean paired difference (leaderboard.evidence.sign_flip_test), Holm-corrected over the comparisons with random
  on that suite and budget; "beats" when the Holm-adjusted p < α and the mean difference favours it.
- *best*: the strategy with the lowest mean regret, marked only on a suite that can rank and only when it beats every
  other strategy there (the same test, Holm over those k − 1 comparisons): separable from the runner-up.
- *MDD* (minimum detectable difference): the regret difference a two-sided paired t-test at α = 0.05 detects with
  80% power with this suite's seeds, from the pooled sd of the paired differences over every pair of strategies
  (root mean of their variances); and how many seeds a difference of 0.01 would need.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from leaderboard import evidence as ev

BASELINE = "random"
TARGET_DIFF = 0.01
PAIR_COLUMNS = [
    "suite",
    "budget",
    "strategy",
    "vs",
    "n_pairs",
    "diff_mean",
    "diff_lo",
    "diff_hi",
    "p",
    "p_holm",
    "verdict",
]
SUITE_COLUMNS = [
    "suite",
    "budget",
    "n_seeds",
    "sd_pair",
    "mdd",
    "seeds_for_target",
    "best",
    "runner_up",
    "best_p_holm",
    "can_rank",
]


def regret_matrix(studies: pd.DataFrame, suite: str, budget) -> pd.DataFrame:
    """seeds x strategies of normalised regret (successful studies only; NaN where a study failed or is missing)."""
    g = studies[(studies["suite"] == suite) & (studies["budget"] == budget) & studies["ok"]]
    return g.pivot_table(index="seed", columns="strategy", values="normalized_regret", aggfunc="first")


def compare(m: pd.DataFrame, a: str, b: str, *key: Any) -> dict[str, Any]:
    d = m[a].to_numpy(float) - m[b].to_numpy(float)
    d = d[np.isfinite(d)]
    t = ev.paired_t(d)
    return {
        "n_pairs": int(d.size),
        "diff_mean": t["mean"],
        "diff_lo": t["lo"],
        "diff_hi": t["hi"],
        "p": ev.sign_flip_test(d, *key, a, b),
    }


def pooled_pair_sd(m: pd.DataFrame) -> tuple[float, int]:
    """Root mean of the variances of the paired differences over every pair of strategies, and the median number
    of paired seeds (pairs whose differences are all 0, e.g. two strategies that always find the best, count too:
    they are part of what the suite's seeds measure)."""
    x = m.to_numpy(float)
    k = x.shape[1]
    if k < 2:
        return math.nan, 0
    iu = np.triu_indices(k, 1)
    d = (x[:, :, None] - x[:, None, :])[:, iu[0], iu[1]]  # seeds x pairs
    n = np.isfinite(d).sum(axis=0)
    ok = n >= 2
    if not ok.any():
        return math.nan, 0
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.nanvar(d[:, ok], axis=0, ddof=1)
    return math.sqrt(float(np.mean(var))), int(np.median(n[ok]))


def suite_verdicts(
    studies: pd.DataFrame, suite: str, budget, can_rank: bool, alpha: float = ev.ALPHA
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    m = regret_matrix(studies, suite, budget)
    sd, n = pooled_pair_sd(m)
    row = {
        "suite": suite,
        "budget": budget,
        "n_seeds": n,
        "sd_pair": sd,
        "mdd": ev.mdd(sd, n),
        "seeds_for_target": ev.seeds_needed(sd, TARGET_DIFF),
        "best": "",
        "runner_up": "",
        "best_p_holm": math.nan,
        "can_rank": bool(can_rank),
    }
    pairs: list[dict[str, Any]] = []
    if BASELINE in m.columns:
        others = [c for c in m.columns if c != BASELINE]
        cmp = [compare(m, c, BASELINE, suite, budget) for c in others]
        for c, r, q in zip(others, cmp, ev.holm([r["p"] for r in cmp])):
            verdict = "—"
            if math.isfinite(q) and q < alpha:
                verdict = "beats" if r["diff_mean"] < 0 else "loses to"
            pairs.append(
                {
                    "suite": suite,
                    "budget": budget,
                    "strategy": c,
                    "vs": BASELINE,
                    **r,
                    "p_holm": float(q),
                    "verdict": verdict,
                }
            )
    means = m.mean(axis=0).dropna()
    means = means[m.count(axis=0)[means.index] >= 2]
    if len(means) >= 2:
        order = sorted(means.index, key=lambda c: (means[c], c))
        best, row["runner_up"] = order[0], order[1]
        cmp = [compare(m, best, c, suite, budget, "best") for c in order[1:]]
        adj = ev.holm([r["p"] for r in cmp])
        worst_p = float(np.nanmax(adj)) if np.isfinite(adj).any() else math.nan
        row["best_p_holm"] = worst_p
        separable = (
            math.isfinite(worst_p)
            and worst_p < alpha
            and all(r["diff_mean"] < 0 for r in cmp)
            and np.isfinite(adj).all()
        )
        if can_rank and separable:
            row["best"] = best
    return row, pairs


def compute(studies: pd.DataFrame, can_rank: dict[str, bool]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per (suite, budget), one row per comparison with random) over every suite and budget."""
    rows, pairs = [], []
    for (suite, budget), _ in studies.groupby(["suite", "budget"], sort=True):
        r, p = suite_verdicts(studies, suite, budget, can_rank.get(suite, False))
        rows.append(r)
        pairs += p
    return pd.DataFrame(rows, columns=SUITE_COLUMNS), pd.DataFrame(pairs, columns=PAIR_COLUMNS)
