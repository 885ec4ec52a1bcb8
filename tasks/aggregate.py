"""In-Score and Out-Score, aggregated the way the paper does.

The paper (MoDoMoDo, Table 2) reports, per trained model, the accuracy on each in-domain test split
and on each out-of-domain benchmark, then **In-Score** = the unweighted mean over the in-domain
test splits and **Out-Score** = the unweighted mean over the out-of-domain benchmarks (each in
0..1 here, percent in the paper). Per-benchmark scores are mean accuracy rewards (IoU for boxes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

IN_SCORE = "In_Score"
OUT_SCORE = "Out_Score"


def mean_score(scores: Mapping[str, float], names: Sequence[str]) -> float:
    vals = [float(scores[n]) for n in names]
    if not vals:
        return float("nan")
    if any(not math.isfinite(v) for v in vals):
        return float("nan")
    return sum(vals) / len(vals)


def aggregate(scores: Mapping[str, float], in_domain: Sequence[str], out_domain: Sequence[str]) -> dict[str, float]:
    """Per-benchmark scores plus `In_Score` and `Out_Score` (missing names raise KeyError)."""
    out = {k: float(v) for k, v in scores.items()}
    out[IN_SCORE] = mean_score(scores, in_domain)
    out[OUT_SCORE] = mean_score(scores, out_domain)
    return out
