"""Rankings across suites, per track, by the judge's rules (harness/suites/tracks.py).

- Only suites that **can rank** enter (an analytic suite; a recorded suite with a noise model and an
  SNR of its per-mixture mean >= 3, and a passed fidelity gate for the continuous track). The
  verdict comes from bench.json (`can_rank`, `ranking_reason`), written by the judge; for an older
  results folder without it, from the suite's card.
- Only **complete** strategies are ranked: benched on every one of those suites at the budget, with
  no failed study there. The others are listed as incomplete, with what they lack.
- Blocks are (suite, seed) pairs, as HPO-B ranks per (task, seed): within a block the complete
  strategies are ranked by score (ties share the average rank). The average rank has a 95% bootstrap
  CI over blocks.
- Significance: the Friedman test over the blocks, then the Nemenyi critical difference
  CD = q_α(k) · sqrt(k(k+1) / (6N)) (Demšar 2006), q_α from the studentized range distribution
  (α = 0.05, k strategies, N blocks). Two strategies whose average ranks differ by less than CD are
  not significantly different; the critical-difference diagram draws them joined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

ALPHA = 0.05
RANK_COLUMNS = ["track", "budget", "strategy", "family", "rank_mean", "rank_lo", "rank_hi", "nregret_mean",
                "nregret_lo", "nregret_hi", "n_suites", "n_blocks"]


def suite_track(entry: dict[str, Any]) -> str:
    if entry.get("track"):
        return str(entry["track"])
    kind = (entry.get("card") or {}).get("kind", entry.get("kind", "replay"))
    return "pool" if kind == "replay" else "continuous"


def suite_can_rank(entry: dict[str, Any]) -> tuple[bool, str]:
    """The judge's verdict for one results entry (a suite in one track)."""
    if "can_rank" in entry:
        return bool(entry["can_rank"]), str(entry.get("ranking_reason") or "")
    card = entry.get("card") or {}
    kind = card.get("kind", "replay")
    if kind == "synthetic":
        return True, "analytic: exact scores"
    signal = (card.get("signal") or {}).get(card.get("metric"))
    if isinstance(signal, dict) and "snr_mean" in signal:
        ok = float(signal["snr_mean"]) >= float(signal.get("target", 3.0))
        return ok, f"SNR of the per-mixture mean {float(signal['snr_mean']):.2f}"
    return False, "no measured signal-to-noise on its card (results from before the judge's tracks)"


def nemenyi_cd(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi's critical difference of average ranks for k strategies over n blocks."""
    if k < 2 or n < 1:
        return math.nan
    q = float(sps.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q * math.sqrt(k * (k + 1) / (6.0 * n))


@dataclass
class TrackRanking:
    track: str
    budget: int
    suites: list[str]                       # suites that can rank, in this track
    apart: list[tuple[str, str]]            # (suite, why it cannot rank)
    table: pd.DataFrame                     # complete strategies: average rank [CI], mean regret
    incomplete: list[tuple[str, str]]       # (strategy, what it lacks)
    n_blocks: int = 0
    friedman_p: float = math.nan
    cd: float = math.nan
    groups: list[list[str]] = field(default_factory=list)  # maximal runs of strategies within CD of each other


def rank_track(studies: pd.DataFrame, suites: dict[str, dict], strategies: dict[str, dict], track: str, budget: int,
               bootstrap=None) -> TrackRanking:
    """One track at one budget. `studies` is leaderboard.stats.per_study's frame."""
    entries = {n: e for n, e in suites.items() if suite_track(e) == track}
    verdicts = {n: suite_can_rank(e) for n, e in entries.items()}
    rankable = sorted(n for n, (ok, _) in verdicts.items() if ok)
    apart = sorted((n, why) for n, (ok, why) in verdicts.items() if not ok)
    s = studies[(studies["budget"] == budget) & studies["suite"].isin(rankable)]
    incomplete, complete = [], []
    for strat in sorted(set(studies[studies["suite"].isin(entries)]["strategy"])):
        g = s[s["strategy"] == strat]
        missing = [n for n in rankable if n not in set(g["suite"])]
        failed = sorted(set(g[~g["ok"]]["suite"]))
        if missing or failed:
            why = []
            if missing:
                why.append(f"not benched on {', '.join(missing)}")
            if failed:
                why.append(f"failed studies on {', '.join(failed)}")
            incomplete.append((strat, "; ".join(why)))
        else:
            complete.append(strat)
    out = TrackRanking(track, int(budget), rankable, apart, pd.DataFrame(columns=RANK_COLUMNS), incomplete)
    if not rankable or not complete:
        return out
    s = s[s["strategy"].isin(complete)]
    # blocks: (suite, seed) pairs that every complete strategy ran
    per_block = s.pivot_table(index=["suite", "seed"], columns="strategy", values="oriented", aggfunc="first")
    per_block = per_block.dropna()
    if per_block.empty:
        return out
    ranks = per_block.rank(axis=1, ascending=False, method="average")
    # mean normalised regret over the same blocks, with its own CI (so rank and regret can be compared fairly)
    regret = s.pivot_table(index=["suite", "seed"], columns="strategy", values="normalized_regret",
                           aggfunc="first").reindex(per_block.index)
    rows = []
    for strat in complete:
        r = ranks[strat].to_numpy(float)
        m, lo, hi = bootstrap(r, "rank", track, int(budget), strat) if bootstrap else (float(r.mean()), math.nan, math.nan)
        g = regret[strat].to_numpy(float)
        gm, glo, ghi = (bootstrap(g, "regret", track, int(budget), strat) if bootstrap
                        else (float(np.nanmean(g)), math.nan, math.nan))
        rows.append({"track": track, "budget": int(budget), "strategy": strat,
                     "family": (strategies.get(strat) or {}).get("family", "other"), "rank_mean": m, "rank_lo": lo,
                     "rank_hi": hi, "nregret_mean": gm, "nregret_lo": glo, "nregret_hi": ghi, "n_suites": len(rankable),
                     "n_blocks": int(len(ranks))})
    out.table = pd.DataFrame(rows, columns=RANK_COLUMNS).sort_values(["rank_mean", "strategy"]).reset_index(drop=True)
    out.n_blocks = int(len(ranks))
    k = len(complete)
    if k >= 3 and out.n_blocks >= 2:
        values = per_block[complete].to_numpy(float)
        if np.ptp(values, axis=1).max() > 0:
            out.friedman_p = float(sps.friedmanchisquare(*values.T).pvalue)
    out.cd = nemenyi_cd(k, out.n_blocks)
    out.groups = cd_groups(out.table, out.cd)
    return out


def cd_groups(table: pd.DataFrame, cd: float) -> list[list[str]]:
    """Maximal sets of consecutive strategies (by average rank) whose ranks differ by less than CD."""
    if table.empty or not math.isfinite(cd):
        return []
    names, r = list(table["strategy"]), table["rank_mean"].to_numpy(float)
    groups: list[list[str]] = []
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and r[j + 1] - r[i] < cd:
            j += 1
        if j > i and not any(set(names[i:j + 1]) <= set(g) for g in groups):
            groups.append(names[i:j + 1])
    return groups


def rank_all(studies: pd.DataFrame, suites: dict[str, dict], strategies: dict[str, dict], bootstrap=None
             ) -> list[TrackRanking]:
    out = []
    for track in sorted({suite_track(e) for e in suites.values()}):
        for budget in sorted(set(studies[studies["suite"].isin([n for n, e in suites.items()
                                                               if suite_track(e) == track])]["budget"])):
            out.append(rank_track(studies, suites, strategies, track, int(budget), bootstrap))
    return out
