"""In-Score and Out-Score, aggregated the way the paper does: means weighted by test-set size.

The paper's Table 2 values are reproduced (to within 5e-5 on all its runs) by weighting each test
set by its size: In-Score over the in-domain test splits, Out-Score over the out-of-domain
benchmarks. Benchmarks given as a plain list of names weigh the same (MiniModo's sets are all of
one size, where this is the plain mean). Per-benchmark scores are mean accuracy rewards (IoU for
boxes), in 0..1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

IN_SCORE = "In_Score"
OUT_SCORE = "Out_Score"
P_CORRECT_PREFIX = "p_correct_"  # per-benchmark p_correct score names: p_correct_<benchmark>
P_SUFFIX = "_p"  # In_Score_p / Out_Score_p: the same aggregates over p_correct


def weighted_score(scores: Mapping[str, float], sizes: Mapping[str, int] | Sequence[str]) -> float:
    """Σ size·score / Σ size; a non-finite score makes it NaN (never silently skipped); a missing
    benchmark raises KeyError; no benchmark at all gives NaN."""
    if not isinstance(sizes, Mapping):
        sizes = {name: 1 for name in sizes}
    missing = [n for n in sizes if n not in scores]
    if missing:
        raise KeyError(f"scores lack {missing}; have {sorted(scores)}")
    if not sizes:
        return float("nan")
    vals = [(float(scores[n]), int(sizes[n])) for n in sizes]
    if any(not math.isfinite(v) for v, _ in vals):
        return float("nan")
    total = sum(s for _, s in vals)
    if total <= 0:
        raise ValueError(f"test-set sizes must sum to > 0, got {dict(sizes)}")
    return sum(v * s for v, s in vals) / total


def aggregate(
    scores: Mapping[str, float],
    in_domain: Mapping[str, int] | Sequence[str],
    out_domain: Mapping[str, int] | Sequence[str],
) -> dict[str, float]:
    """Per-benchmark scores plus `In_Score` and `Out_Score` (names, or name -> test-set size)."""
    out = {k: float(v) for k, v in scores.items()}
    out[IN_SCORE] = weighted_score(scores, in_domain)
    out[OUT_SCORE] = weighted_score(scores, out_domain)
    return out


def p_correct_scores(
    p_correct: Mapping[str, float],
    in_domain: Mapping[str, int] | Sequence[str],
    out_domain: Mapping[str, int] | Sequence[str],
) -> dict[str, float]:
    """`p_correct_<benchmark>` per benchmark plus `In_Score_p` and `Out_Score_p`, aggregated like the
    accuracies (so the two metrics of one run sit side by side in one score dict)."""
    agg = aggregate(p_correct, in_domain, out_domain)
    out = {P_CORRECT_PREFIX + k: v for k, v in agg.items() if k not in (IN_SCORE, OUT_SCORE)}
    out[IN_SCORE + P_SUFFIX] = agg[IN_SCORE]
    out[OUT_SCORE + P_SUFFIX] = agg[OUT_SCORE]
    return out
