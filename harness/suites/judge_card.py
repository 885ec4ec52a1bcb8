"""The card's `judge:` block: what a recorded suite can be judged by, measured once and written down.

`judge_block(suite)` measures, on the suite's own table:
- `tracks`: the tracks it offers (pool always; continuous only if the fidelity gate passed);
- `pool`: how many candidates (recorded mixtures) and seeds per candidate;
- `support`: per-dataset weight bounds of the continuous track (recorded range ± slack);
- `fidelity`: the gate's figures for every surrogate model and its verdict (harness/suites/fidelity.py);
- `ranking`: whether the suite can enter an overall ranking, and why (harness/suites/tracks.py);
and `normalization`: best/worst known as recorded per-mixture means (never a model's extreme).

`modomodo suite import` writes it; `modomodo suite check NAME [--write]` re-measures an existing card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.suites.fidelity import gate
from harness.suites.replay import SUPPORT_SLACK, ReplaySuite
from harness.suites.tracks import ranking_status


def judge_block(suite: ReplaySuite) -> dict[str, Any]:
    j = suite.score_columns.index(suite.metric)
    fidelity = gate(suite._X, suite._Y[:, j]).to_card()
    suite.__dict__["fidelity"] = fidelity  # the tracks and ranking below use the fresh verdict
    lo, hi = suite.support_bounds_measured()
    seeds = [len(v) for v in suite.recorded.values()]
    tracks = ["pool"] + (["continuous"] if fidelity["passed"] else [])
    ranking = {}
    for t in tracks:
        ok, why = ranking_status(suite, t)
        ranking[t] = {"can_rank": ok, "reason": why}
    return {
        "tracks": tracks,
        "default_track": "pool",
        "pool": {"candidates": len(suite.recorded), "seeds_per_candidate": {"min": min(seeds), "max": max(seeds)},
                 "pilot": "one recorded training seed of the candidate; proposing it again draws a seed not yet "
                          "drawn in the study (all seeds before any repeats)",
                 "recommendation": "its per-mixture mean over every recorded seed"},
        "support": {"lower": list(lo), "upper": list(hi), "slack": SUPPORT_SLACK,
                    "rule": "each dataset's recorded weight range widened by the slack, clipped to [0, 1]"},
        "fidelity": fidelity,
        "ranking": ranking,
    }


def normalization_block(suite: ReplaySuite) -> dict[str, Any]:
    best, worst = suite._bounds()
    return {"best_known": round(best, 8), "worst_known": round(worst, 8), "statistic": "per-mixture mean",
            "note": suite.NORMALISATION_NOTE}


def refresh_card(folder: str | Path, write: bool = False) -> dict[str, Any]:
    """Re-measure a recorded suite's judge block; with write=True, store it (and the recorded-means
    normalisation) in its card.yaml, keeping every other key as it was."""
    from harness.suites.loading import load_folder

    folder = Path(folder)
    suite = load_folder(folder)
    if not isinstance(suite, ReplaySuite):
        raise ValueError(f"{folder}: a {suite.kind} suite has no recorded table to judge by")
    card = yaml.safe_load((folder / "card.yaml").read_text())
    card["judge"] = judge_block(suite)
    card["normalization"] = normalization_block(suite)
    oracle = card.get("oracle")
    if isinstance(oracle, dict) and "unrecorded" in oracle:
        oracle["unrecorded"] = (f"continuous track only, and only if the fidelity gate passed (it "
                                f"{'passed' if card['judge']['fidelity']['passed'] else 'did not'}): the gated "
                                f"surrogate ({card['judge']['fidelity'].get('chosen')}), labelled 'surrogate'")
    if write:
        tmp = folder / ".card.yaml.tmp"
        tmp.write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True))
        tmp.replace(folder / "card.yaml")
    return card
