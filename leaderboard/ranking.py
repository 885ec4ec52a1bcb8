"""Rankings across suites, per track (and per suite family), by the judge's rules (harness/suites/tracks.py).

- Only suites that **can rank** enter: the judge's verdict in bench.json (`can_rank`, `ranking_reason`). A results
  folder from before the judge wrote one ranks only its analytic suites: a card's own figure is never taken as
  the verdict.
- Only **complete** strategies are ranked: benched on every one of those suites at the budget, with no failed
  study there. The others are listed as incomplete, with what they lack.
- **The unit of evidence is a suite** (Demšar 2006; HPO-B, the AutoML benchmark): on each suite the complete
  strategies are ranked by their mean oriented score over the study seeds every one of them ran (ties share the
  average rank); the average rank is the mean over suites. Study seeds are repeated measures of one problem, never
  extra data sets.
- Significance across suites: Friedman's test over the N suites, Nemenyi's critical difference
  CD = q_α(k)·√(k(k+1)/(6N)) with N = the number of suites, and Wilcoxon's signed-rank test of every pair over
  suites with Holm's correction. With few suites nothing may be separable; `sentence` says so in words.
- Intervals of the average rank and the mean regret: a hierarchical bootstrap (suites, then seeds within each).
- Suite families (`suite_family`): rlvr, lm-pretraining, analytic, from the card's optional `family` field, else
  inferred (an analytic suite: analytic; any other: rlvr). Each track is ranked over all its suites and, where it
  holds more than one family, per family, so a reader sees whether one kind of problem carries a strategy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.suites.tracks import verdict_of_kind
from leaderboard import evidence as ev

ALPHA = ev.ALPHA
FAMILIES = ("rlvr", "lm-pretraining", "analytic")
FAMILY_LABELS = {
    "rlvr": "real RLVR runs (this machine's protocol)",
    "lm-pretraining": "public language-model pretraining runs",
    "analytic": "analytic functions",
    "all": "all suite families",
}
RANK_COLUMNS = [
    "track",
    "suite_family",
    "budget",
    "strategy",
    "family",
    "rank_mean",
    "rank_lo",
    "rank_hi",
    "nregret_mean",
    "nregret_lo",
    "nregret_hi",
    "n_suites",
    "n_seeds",
]
nemenyi_cd = ev.nemenyi_cd


def suite_track(entry: dict[str, Any]) -> str:
    if entry.get("track"):
        return str(entry["track"])
    kind = (entry.get("card") or {}).get("kind", entry.get("kind", "replay"))
    return "pool" if kind == "replay" else "continuous"


def suite_family(entry: dict[str, Any]) -> str:
    """The card's `family` (rlvr, lm-pretraining, analytic); absent: analytic for an analytic suite, else rlvr."""
    card = entry.get("card") or {}
    fam = str(card.get("family") or entry.get("family") or "").strip()
    if fam:
        return fam
    return "analytic" if str(card.get("kind") or entry.get("kind") or "") == "synthetic" else "rlvr"


def suite_can_rank(entry: dict[str, Any]) -> tuple[bool, str]:
    """The judge's verdict for one results entry (a suite in one track), as bench.json records it. Without one
    (a folder from before the judge), the judge's verdict by kind (harness.suites.tracks.verdict_of_kind: only an
    analytic suite ranks): a card's own signal figure is a claim, not a measurement, and never decides."""
    if "can_rank" in entry:
        return bool(entry["can_rank"]), str(entry.get("ranking_reason") or "")
    card = entry.get("card") or {}
    decided = verdict_of_kind(card.get("kind", entry.get("kind")))  # the judge's rule where the kind decides alone
    if decided is not None:
        return decided
    return False, (
        "no verdict of the judge in bench.json (results from before the judge's tracks): "
        "re-run `modomodo bench` to have it measured"
    )


@dataclass
class TrackRanking:
    track: str
    budget: float
    suites: list[str]  # suites that can rank, in this track (and family)
    apart: list[tuple[str, str]]  # (suite, why it cannot rank)
    table: pd.DataFrame  # complete strategies: average rank [CI], mean regret [CI]
    incomplete: list[tuple[str, str]]  # (strategy, what it lacks)
    n_blocks: int = 0  # Demšar's N: the number of suites (data sets) ranked over
    friedman_p: float = math.nan
    cd: float = math.nan
    groups: list[list[str]] = field(default_factory=list)  # maximal runs of strategies within CD of each other
    family: str = "all"  # the suite family ranked over ("all": every family of the track)
    pairs: list[dict] = field(default_factory=list)  # Wilcoxon over suites, Holm-adjusted, every pair
    n_seeds: int = 0  # the fewest study seeds any of the suites contributed
    sentence: str = ""  # what these suites can and cannot separate, in words


def _blocks(s: pd.DataFrame, suites: list[str], complete: list[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per suite: (name, oriented scores, normalised regrets), seeds x complete strategies, over the seeds every
    complete strategy ran there."""
    out = []
    for su in suites:
        g = s[s["suite"] == su]
        score = g.pivot_table(index="seed", columns="strategy", values="oriented", aggfunc="first")
        regret = g.pivot_table(index="seed", columns="strategy", values="normalized_regret", aggfunc="first")
        score = score.reindex(columns=complete).dropna()
        regret = regret.reindex(index=score.index, columns=complete)
        if len(score) and regret.notna().all().all():
            out.append((su, score.to_numpy(float), regret.to_numpy(float)))
    return out


def rank_track(
    studies: pd.DataFrame,
    suites: dict[str, dict],
    strategies: dict[str, dict],
    track: str,
    budget,
    bootstrap=None,
    family: str = "all",
) -> TrackRanking:
    """One track (one suite family, or all) at one budget. `studies` is leaderboard.stats.per_study's frame.
    (`bootstrap` is accepted for older callers and unused: the intervals are hierarchical.)"""
    entries = {
        n: e for n, e in suites.items() if suite_track(e) == track and (family == "all" or suite_family(e) == family)
    }
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
    out = TrackRanking(track, budget, rankable, apart, pd.DataFrame(columns=RANK_COLUMNS), incomplete, family=family)
    if not rankable or not complete:
        out.sentence = sentence(out)
        return out
    blocks = _blocks(s[s["strategy"].isin(complete)], rankable, complete)
    if not blocks:
        out.sentence = sentence(out)
        return out
    hb = ev.hierarchical_bootstrap([(b[1], b[2]) for b in blocks], "overall", track, family, budget)
    if track == "pool":  # recorded means against the best and worst recorded: regret in [0, 1] by construction
        hb["regret_lo"], hb["regret_hi"] = np.clip(hb["regret_lo"], 0, 1), np.clip(hb["regret_hi"], 0, 1)
    elif all(str((suites[n].get("card") or {}).get("kind", suites[n].get("kind"))) == "synthetic" for n in rankable):
        hb["regret_lo"] = np.maximum(hb["regret_lo"], 0.0)  # analytic: regret to the true optimum is never below 0
    rows = []
    for i, strat in enumerate(complete):
        rows.append(
            {
                "track": track,
                "suite_family": family,
                "budget": budget,
                "strategy": strat,
                "family": (strategies.get(strat) or {}).get("family", "other"),
                "rank_mean": float(hb["rank"][i]),
                "rank_lo": float(hb["rank_lo"][i]),
                "rank_hi": float(hb["rank_hi"][i]),
                "nregret_mean": float(hb["regret"][i]),
                "nregret_lo": float(hb["regret_lo"][i]),
                "nregret_hi": float(hb["regret_hi"][i]),
                "n_suites": len(blocks),
                "n_seeds": int(min(b[1].shape[0] for b in blocks)),
            }
        )
    out.table = pd.DataFrame(rows, columns=RANK_COLUMNS).sort_values(["rank_mean", "strategy"]).reset_index(drop=True)
    out.n_blocks = len(blocks)
    out.n_seeds = int(min(b[1].shape[0] for b in blocks))
    k = len(complete)
    per_suite_score = np.array([b[1].mean(axis=0) for b in blocks])
    per_suite_regret = np.array([b[2].mean(axis=0) for b in blocks])
    out.friedman_p = ev.friedman_p(per_suite_score)
    out.cd = ev.nemenyi_cd(k, out.n_blocks) if k >= 2 else math.nan
    out.groups = cd_groups(out.table, out.cd)
    out.pairs = ev.wilcoxon_holm(per_suite_regret, complete) if k >= 2 and out.n_blocks >= 1 else []
    out.sentence = sentence(out)
    return out


def separated_pairs(r: TrackRanking, alpha: float = ALPHA) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(pairs Nemenyi separates: average ranks at least CD apart; pairs Wilcoxon-Holm separates), better first."""
    nem = []
    if len(r.table) and math.isfinite(r.cd):
        names, ranks = list(r.table["strategy"]), r.table["rank_mean"].to_numpy(float)
        nem = [
            (names[i], names[j])
            for i in range(len(names))
            for j in range(i + 1, len(names))
            if ranks[j] - ranks[i] >= r.cd
        ]
    wil = []
    if len(r.table):
        regret = dict(zip(r.table["strategy"], r.table["nregret_mean"]))
        for p in r.pairs:
            if math.isfinite(p["p_holm"]) and p["p_holm"] < alpha:
                a, b = (p["a"], p["b"]) if regret[p["a"]] <= regret[p["b"]] else (p["b"], p["a"])
                wil.append((a, b))
    return nem, wil


def sentence(r: TrackRanking, alpha: float = ALPHA) -> str:
    """What the suites of this ranking can and cannot separate, in one plain sentence."""
    where = f"the {r.track} track" + ("" if r.family == "all" else f" ({FAMILY_LABELS.get(r.family, r.family)})")
    n = r.n_blocks
    if not r.suites:
        return f"In {where} no suite can rank, so nothing is compared across suites."
    if not len(r.table):
        return f"In {where} no strategy was benched on every suite that can rank, so nothing is compared across suites."
    k = len(r.table)
    suites = f"{n} rankable suite{'s' if n != 1 else ''}"
    if n < 2:
        return (
            f"With {suites} in {where} there is no test across problems: a ranking over one suite says how "
            f"strategies do on that problem only (see its page for who beats whom there)."
        )
    nem, wil = separated_pairs(r, alpha)
    total = k * (k - 1) // 2
    fp = "" if not math.isfinite(r.friedman_p) else f"Friedman p = {r.friedman_p:.3g}, "
    stats = f"({fp}Nemenyi CD = {r.cd:.2f} ranks with N = {n})"
    if not nem and not wil:
        return (
            f"With {suites} in {where}, no pair of the {k} strategies differs at α = {alpha:g} {stats}; "
            f"within single suites, the paired tests on each suite's page say who beats whom there."
        )
    shown = sorted(set(nem) | set(wil))
    text = "; ".join(f"{a} over {b}" for a, b in shown[:6]) + ("; …" if len(shown) > 6 else "")
    return (
        f"With {suites} in {where}, {len(shown)} of {total} pairs {'differs' if len(shown) == 1 else 'differ'} "
        f"at α = {alpha:g} {stats}, "
        f"Nemenyi {len(nem)}, Wilcoxon-Holm {len(wil)}: {text}; every other pair cannot be told apart."
    )


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
        if j > i and not any(set(names[i : j + 1]) <= set(g) for g in groups):
            groups.append(names[i : j + 1])
    return groups


def rank_all(
    studies: pd.DataFrame, suites: dict[str, dict], strategies: dict[str, dict], bootstrap=None
) -> list[TrackRanking]:
    """Every (track, budget): over all the track's suites, then per suite family where the track has several."""
    out = []
    for track in sorted({suite_track(e) for e in suites.values()}):
        in_track = {n: e for n, e in suites.items() if suite_track(e) == track}
        families = sorted({suite_family(e) for e in in_track.values()})
        for budget in sorted(set(studies[studies["suite"].isin(list(in_track))]["budget"])):
            out.append(rank_track(studies, suites, strategies, track, budget))
            if len(families) > 1:
                out += [rank_track(studies, suites, strategies, track, budget, family=f) for f in families]
    return out
