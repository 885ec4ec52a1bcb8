"""In-Score and Out-Score exactly as the MoDoMoDo paper computes them: size-weighted means.

The paper's Table 2 values are reproduced (to within 5e-5 on all 42 runs) by weighting each test
set by its size (Table 1): In-Score over LISA-test, SAT-test, ScienceQA-test; Out-Score over
ChartQA, InfoVQA, MathVista (testmini), MMMU (validation). The CPU protocol's synthetic sets are
equal-sized, where this reduces to the plain mean of `tasks.aggregate`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

IN_SCORE, OUT_SCORE = "In_Score", "Out_Score"
PAPER_IN_SIZES: dict[str, int] = {"LISA": 3397, "SAT": 1928, "ScienceQA": 2017}
PAPER_OUT_SIZES: dict[str, int] = {"ChartQA": 2500, "InfoVQA": 2801, "MathVista": 1000, "MMMU": 900}


def weighted_score(scores: Mapping[str, float], sizes: Mapping[str, int]) -> float:
    """Σ size·score / Σ size over `sizes`; a missing or non-finite score makes it NaN (never silently skipped)."""
    missing = [n for n in sizes if n not in scores]
    if missing:
        raise KeyError(f"scores lack {missing}; have {sorted(scores)}")
    vals = [(float(scores[n]), int(sizes[n])) for n in sizes]
    if any(not math.isfinite(v) for v, _ in vals):
        return float("nan")
    total = sum(s for _, s in vals)
    if total <= 0:
        raise ValueError(f"test-set sizes must sum to > 0, got {dict(sizes)}")
    return sum(v * s for v, s in vals) / total


def paper_scores(scores: Mapping[str, float], in_sizes: Mapping[str, int] = PAPER_IN_SIZES,
                 out_sizes: Mapping[str, int] = PAPER_OUT_SIZES) -> dict[str, float]:
    """Per-benchmark scores plus In_Score and Out_Score."""
    out = {k: float(v) for k, v in scores.items()}
    out[IN_SCORE] = weighted_score(scores, in_sizes)
    out[OUT_SCORE] = weighted_score(scores, out_sizes)
    return out
