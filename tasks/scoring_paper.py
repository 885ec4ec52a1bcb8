"""In-Score and Out-Score of the paper's protocol: its test sets and their sizes (Table 1).

In-Score over LISA-test, SAT-test, ScienceQA-test; Out-Score over ChartQA, InfoVQA, MathVista
(testmini), MMMU (validation); both size-weighted (`tasks.aggregate`).
"""

from __future__ import annotations

from collections.abc import Mapping

from tasks.aggregate import IN_SCORE, OUT_SCORE, aggregate, weighted_score

PAPER_IN_SIZES: dict[str, int] = {"LISA": 3397, "SAT": 1928, "ScienceQA": 2017}
PAPER_OUT_SIZES: dict[str, int] = {"ChartQA": 2500, "InfoVQA": 2801, "MathVista": 1000, "MMMU": 900}

__all__ = ["IN_SCORE", "OUT_SCORE", "PAPER_IN_SIZES", "PAPER_OUT_SIZES", "paper_scores", "weighted_score"]


def paper_scores(
    scores: Mapping[str, float],
    in_sizes: Mapping[str, int] = PAPER_IN_SIZES,
    out_sizes: Mapping[str, int] = PAPER_OUT_SIZES,
) -> dict[str, float]:
    """Per-benchmark scores plus In_Score and Out_Score."""
    return aggregate(scores, in_sizes, out_sizes)
