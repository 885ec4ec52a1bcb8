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


def aggregate(scores: Mapping[str, float], in_domain: Mapping[str, int] | Sequence[str],
              out_domain: Mapping[str, int] | Sequence[str]) -> dict[str, float]:
    """Per-benchmark scores plus `In_Score` and `Out_Score` (names, or name -> test-set size)."""
    out = {k: float(v) for k, v in scores.items()}
    out[IN_SCORE] = weighted_score(scores, in_domain)
    out[OUT_SCORE] = weighted_score(scores, out_domain)
    return out
