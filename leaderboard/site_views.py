"""The leaderboard site's view model: the rows, matrices, marks and card sections its pages show.

Plain data for the Jinja2 templates (leaderboard/templates), computed from the loaded results and
their statistics (leaderboard.stats); the pictures each view names are drawn here too
(leaderboard.plots).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from leaderboard import plots
from leaderboard.data import Results, budget_label, budget_value
from leaderboard.descriptions import signal_view
from leaderboard.stats import Stats, records


# -- formatting filters -------------------------------------------------------------------------------
def is_finite(v: Any) -> bool:
    """A value the pages can show as a number (None, NaN, inf and text are shown as blanks)."""
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def fmt(v: Any, signed: bool = False, digits: int | None = None) -> str:
    if not is_finite(v):
        return "—"
    v = float(v)
    if digits is None:
        digits = 1 if abs(v) >= 100 else 3
    if abs(v) < 0.5 * 10**-digits:
        v = 0.0  # no "-0.000"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def sort_key(v: Any) -> str:
    return f"{float(v):.10g}" if is_finite(v) else ""


def fmt_p(p: Any) -> str:
    if not is_finite(p):
        return "—"
    p = float(p)
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


REFERENCE = "uniform"


def slug(name: str) -> str:
    """A file-name-safe, collision-free name for any string (hostile ones included)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:40] or "x"
    return f"{base}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


# -- the view model -----------------------------------------------------------------------------------
# "Best" in a (suite, budget): only on a suite that can rank, and only where the strategy with the lowest mean
# normalised regret beats every other strategy there (paired sign-flip tests over the study seeds, Holm over those
# comparisons: leaderboard/within_suite.py). Overlapping noise never earns a mark; computed over every strategy of
# the (suite, budget), whichever page shows the cell.
BEST_DIGITS = 3
BEST_LEGEND = (
    "best on its suite at this budget: a lower mean regret than every other strategy there, each "
    "difference significant over the study seeds (paired sign-flip test, Holm-corrected); only on suites "
    "that can rank, so most columns have none"
)


def _shown(v: float, digits: int = BEST_DIGITS) -> float:
    return round(float(v), digits) + 0.0  # + 0.0: no -0.0


def best_marks(evidence: pd.DataFrame) -> set[tuple[str, str, Any]]:
    """(suite, strategy, budget) of every cell whose strategy is separably best there (within_suite's `best`)."""
    if evidence is None or evidence.empty:
        return set()
    return {(r.suite, str(r.best), budget_value(r.budget)) for r in evidence.itertuples() if r.best}


def table_rows(table: pd.DataFrame, results: Results, prefix: str, best: set | None = None) -> list[dict[str, Any]]:
    """`best`: best_marks of the whole table (a page showing a slice passes it, so marks compare every strategy)."""
    best = set() if best is None else best
    rows = []
    for r in records(table):
        r = dict(r)
        r["is_ref"] = r["strategy"] == REFERENCE
        r["unsandboxed"] = results.strategies.get(r["strategy"], {}).get("sandboxed") == "no"
        r["href"] = f"{prefix}strategies/{slug(r['strategy'])}.html"
        r["suite_href"] = f"{prefix}suites/{slug(r['suite'])}.html"
        r["is_best"] = (r["suite"], r["strategy"], budget_value(r["budget"])) in best
        r["budget_label"] = budget_label(r["budget"])
        r["beats_frac"] = (r["beats_uniform"] / r["K"]) if r["K"] else None
        rows.append(r)
    return rows


def _ordinal_ranks(values: dict[str, float], digits: int = BEST_DIGITS) -> dict[str, int]:
    """1 = lowest; values equal at the digits shown share a place (competition ranking: 1, 1, 3)."""
    order = sorted((_shown(v, digits), n) for n, v in values.items() if is_finite(v))
    out, place, prev = {}, 0, None
    for i, (v, n) in enumerate(order):
        if prev is None or v > prev:
            place, prev = i + 1, v
        out[n] = place
    return out


def suite_strategy_matrix(
    table: pd.DataFrame, suites: list[str], names: list[str], budget: int, best: set
) -> dict[str, dict]:
    """strategy -> suite -> cell (mean normalised regret [CI], its place in the suite's column, marks) at `budget`."""
    t = table[(table["budget"] == budget) & table["suite"].isin(suites)]
    by = {(r["suite"], r["strategy"]): r for r in records(t)}
    places = {su: _ordinal_ranks({n: by[(su, n)]["nregret_mean"] for n in names if (su, n) in by}) for su in suites}
    out: dict[str, dict] = {}
    for n in names:
        row = {}
        for su in suites:
            r = by.get((su, n))
            if r is None:
                continue
            row[su] = {
                "mean": r["nregret_mean"],
                "lo": r["nregret_lo"],
                "hi": r["nregret_hi"],
                "place": places[su].get(n),
                "of": len(places[su]),
                "is_best": (su, n, budget_value(budget)) in best,
                "surrogate_fraction": r.get("surrogate_fraction") or 0.0,
                "n_failed": r["n_failed"],
                "n_seeds": r["n_seeds"],
            }
        out[n] = row
    return out


def _evidence_by_suite(st: Stats, budget) -> dict[str, dict]:
    ev = st.suite_evidence
    if ev is None or ev.empty:
        return {}
    return {r["suite"]: r for r in records(ev[ev["budget"] == budget])}


def _family_view(r, mdd: dict) -> dict[str, Any]:
    from leaderboard.ranking import FAMILY_LABELS

    return {
        "family": r.family,
        "label": FAMILY_LABELS.get(r.family, r.family),
        "suites": r.suites,
        "rows": records(r.table),
        "n_suites": r.n_blocks,
        "sentence": r.sentence,
        "friedman_p": r.friedman_p if math.isfinite(r.friedman_p) else None,
        "cd": r.cd if math.isfinite(r.cd) else None,
    }


def track_overview(
    r, st: Stats, results: Results, strategies: list[dict], best: set, out: Path, family_rankings: list | None = None
) -> dict[str, Any]:
    """One track's overview at one budget: the suite x strategy matrix over the suites that can rank, the overall
    rank [CI] and mean regret [CI] of the complete strategies (suites as the unit of evidence), the CD diagram, the
    sentence saying what these suites can separate, every suite's verdict and its minimum detectable difference,
    and the rankings per suite family."""
    cd_plot = f"plots/cd-{slug(r.track)}.svg"
    drawn = plots.cd_diagram(r, out / cd_plot)
    info = {s["name"]: s for s in strategies}
    in_track = sorted(set(st.table[st.table["suite"].isin(r.suites + [n for n, _ in r.apart])]["strategy"]))
    overall = {row["strategy"]: row for row in records(r.table)}
    complete = [n for n in r.table["strategy"]] if len(r.table) else []
    incomplete = dict(r.incomplete)
    rest = [n for n in in_track if n not in overall]
    matrix = suite_strategy_matrix(st.table, r.suites, in_track, r.budget, best)
    rows = [
        {**info.get(n, {"name": n}), "cells": matrix[n], "overall": overall.get(n), "why": incomplete.get(n, "")}
        for n in complete + rest
    ]
    from leaderboard.ranking import suite_can_rank  # the judge's verdict, as bench.json recorded it

    evid = _evidence_by_suite(st, r.budget)
    verdicts = [
        {"name": n, "ranks": True, "why": suite_can_rank(results.suites[n])[1], "href": f"suites/{slug(n)}.html"}
        for n in r.suites
    ]
    verdicts += [{"name": n, "ranks": False, "why": why, "href": f"suites/{slug(n)}.html"} for n, why in r.apart]
    for v in verdicts:
        e = evid.get(v["name"]) or {}
        v["mdd"], v["best"] = e.get("mdd"), e.get("best") or ""
        v["pool_note"] = _pool_note(results.suites[v["name"]], r.budget)
    families = [_family_view(f, {}) for f in (family_rankings or [])]
    return {
        "track": r.track,
        "budget": r.budget,
        "budget_label": budget_label(r.budget),
        "suites": r.suites,
        "suite_links": {n: f"suites/{slug(n)}.html" for n in r.suites},
        "apart": r.apart,
        "incomplete": r.incomplete,
        "rows": rows,
        "n_blocks": r.n_blocks,
        "n_seeds": r.n_seeds,
        "n_complete": len(complete),
        "verdicts": sorted(verdicts, key=lambda v: (not v["ranks"], v["name"])),
        "friedman_p": r.friedman_p if math.isfinite(r.friedman_p) else None,
        "cd": r.cd if math.isfinite(r.cd) else None,
        "cd_plot": cd_plot if drawn else "",
        "sentence": r.sentence,
        "mdd": {n: (evid.get(n) or {}).get("mdd") for n in r.suites},
        "families": families,
        "has_surrogate": any(c["surrogate_fraction"] for row in rows for c in row["cells"].values()),
    }


def _suite_evidence_view(st: Stats, name: str, entry: dict[str, Any], default_budget) -> dict[str, Any]:
    """The suite page's within-suite verdicts: per budget the MDD, the seeds a 0.01 difference needs and the best
    (if separable); per budget and strategy the paired comparison with random (Holm)."""
    ev = st.suite_evidence
    rows = records(ev[ev["suite"] == name].sort_values("budget")) if ev is not None and len(ev) else []
    for r in rows:
        r["budget_label"] = budget_label(r["budget"])
        r["pool_note"] = _pool_note(entry, r["budget"])
    vr = st.vs_random
    pairs = (
        records(vr[vr["suite"] == name].sort_values(["budget", "diff_mean", "strategy"]))
        if vr is not None and len(vr)
        else []
    )
    for p in pairs:
        p["budget_label"] = budget_label(p["budget"])
    head = next(
        (r for r in rows if budget_value(r["budget"]) == budget_value(default_budget)), rows[-1] if rows else None
    )
    return {"evidence": rows, "vs_random": pairs, "headline": head}


def _pool_note(entry: dict[str, Any], budget) -> str:
    """A pool suite whose budget is not well below its pool size (at least half of it) says so: a strategy can then
    try most candidates, and its regret measures little search."""
    size = entry.get("pool_size")
    if not size or not is_finite(size) or float(budget) < 0.5 * float(size):
        return ""
    return (
        f"budget {budget_label(budget)} is {'the whole' if float(budget) >= float(size) else 'over half the'} "
        f"pool of {int(size)} candidates: a strategy can try {'every one' if float(budget) >= float(size) else 'most of them'}, "
        f"so regret here measures little search"
    )


CARD_LABELS = {
    "recorded_from": "Recorded from (live suite)",
    "protocol_hash": "Live protocol hash (of the live suite that made the recorded runs; this suite's own is above)",
    "protocol_version": "Live protocol version",
    "suite_id": "Live suite id",
    "base_model": "Base model",
    "reward_rule": "Reward rule",
    "protocol_config": "Training settings",
    "runner": "Runner of the recorded runs",
    "imported_from": "Imported from",
    "imported_at": "Imported on",
    "git_sha": "Git commit",
    "versions": "Package versions",
    "mixtures_recorded": "Mixtures recorded",
    "seeds_per_mixture": "Seeds per mixture",
    "noise_sd": "Seed noise (sd of one run)",
    "best_known": "Best known",
    "worst_known": "Worst known",
    "loo_rmse": "Leave-one-out RMSE",
    "loo_mae": "Leave-one-out MAE",
    "loo_r2": "Leave-one-out R²",
    "spread_sd": "Spread (sd of the per-mixture means)",
}


def _word_value(v: Any) -> str:
    """A card value as text: integral floats as integers, short floats, mappings as `k = v` pairs."""
    if isinstance(v, bool) or v is None:
        return {True: "yes", False: "no", None: "—"}[v]
    if isinstance(v, float):
        if math.isfinite(v) and v == int(v) and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.6g}"
    if isinstance(v, (int, str)):
        return str(v)
    if isinstance(v, dict):
        if set(v) == {"min", "max"}:
            lo, hi = _word_value(v["min"]), _word_value(v["max"])
            return lo if lo == hi else f"{lo} to {hi}"
        return "; ".join(f"{k} = {_word_value(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(_word_value(x) for x in v)
    return json.dumps(v, sort_keys=True)


def _label(k: str) -> str:
    return CARD_LABELS.get(k) or (k.replace("_", " ")[:1].upper() + k.replace("_", " ")[1:])


def card_view(entry: dict[str, Any]) -> dict[str, Any]:
    """A suite's card as its page shows it: labelled fields, the oracle and its fit, the signal, the judge's verdict."""
    card = entry.get("card") or {}
    oracle = card.get("oracle") if isinstance(card.get("oracle"), dict) else {}
    fit = oracle.get("surrogate_fit") if isinstance(oracle.get("surrogate_fit"), dict) else None

    def pairs(d):
        return [(_label(str(k)), _word_value(v)) for k, v in d.items()] if isinstance(d, dict) else []

    protocol = card.get("protocol") if isinstance(card.get("protocol"), dict) else {}
    return {
        "description": str(card.get("description") or "").strip(),
        "datasets": [str(d) for d in card.get("datasets") or []],
        "kind": str(card.get("kind") or "replay"),
        "citation": str(card.get("citation") or ""),
        "base_model": str(protocol.get("base_model") or card.get("base_model") or ""),
        "protocol": pairs(protocol),
        "provenance": pairs(card.get("provenance")),
        "function": pairs(card.get("function")),
        "normalization": pairs(card.get("normalization")),
        "oracle": [(k, v) for k, v in pairs({k: x for k, x in oracle.items() if k != "surrogate_fit"})],
        "fit": pairs(fit) if fit else [],
        "seeds_note": str(card.get("seeds_note") or ""),
        "preregistration": preregistration_view(card),
        "text": entry.get("card_text") or "",
        **signal_view(card),
        **_judge_view(entry, card),
    }


def preregistration_view(card: dict[str, Any]) -> dict[str, Any] | None:
    """The card's `preregistration` block (issue 27: fixed before the suite's first run, carried on by the export):
    when, the registered objective, and the rest as labelled fields, its commands apart; None without one."""
    pre = card.get("preregistration")
    if not isinstance(pre, dict) or not pre:
        return None
    rest = {k: v for k, v in pre.items() if k not in ("preregistered", "objective", "commands")}
    commands = pre.get("commands") or []
    return {
        "when": str(pre.get("preregistered") or ""),
        "objective": str(pre.get("objective") or ""),
        "fields": [(_label(str(k)), " ".join(_word_value(v).split())) for k, v in rest.items()],
        "commands": [str(c) for c in (commands if isinstance(commands, list) else [commands])],
    }


def _judge_view(entry: dict[str, Any], card: dict[str, Any]) -> dict[str, Any]:
    """How this suite is judged here: its track, whether it can rank (bench.json, from the judge), the
    tracks it offers and its fidelity gate (the card's judge block)."""
    from leaderboard.ranking import suite_can_rank, suite_track

    judge = card.get("judge") if isinstance(card.get("judge"), dict) else {}
    fid = judge.get("fidelity") if isinstance(judge.get("fidelity"), dict) else {}
    ok, why = suite_can_rank(entry)
    return {
        "track": suite_track(entry),
        "ranks": ok,
        "ranking_reason": why,
        "tracks": entry.get("tracks") or judge.get("tracks") or [],
        "pool_size": entry.get("pool_size"),
        "gate_passed": fid.get("passed"),
        "gate_reason": fid.get("reason", ""),
        "normalization_note": str(entry.get("normalization") or ""),
    }


def suite_view(results: Results, st: Stats, name: str, color: dict[str, str], default_budget, out: Path) -> dict:
    """A suite's page view, with its pictures drawn into out/plots: regret against budget, the anytime
    curves at its largest budget, one study's history, the mixtures every strategy tried, and the
    signal-to-noise by seeds (the last three where there is something to draw)."""
    e = results.suites[name]
    sl = slug(name)
    plots.regret_vs_budget(st.table, name, color, out / "plots" / f"regret-{sl}.svg")
    suite_curves = st.curves[st.curves["suite"] == name]
    top = budget_value(suite_curves["budget"].max()) if len(suite_curves) else None
    if top:
        plots.anytime(st.curves, name, top, color, out / "plots" / f"anytime-{sl}.svg")
    t = st.table[st.table["suite"] == name]
    # one study's history (the lowest-regret strategy at the largest budget, seed 0 or its first seed) and the
    # mixtures every strategy tried, in parallel coordinates
    history_plot = mixtures_plot = history_of = ""
    maximize = results.goal(name) != "min"
    best_v, worst_v = float(e["best_known"]), float(e["worst_known"])
    if top and len(t):
        tt = t[(t["budget"] == top) & (t["strategy"] != REFERENCE)].dropna(subset=["nregret_mean"])
        if len(tt):
            history_of = str(tt.sort_values(["nregret_mean", "strategy"])["strategy"].iloc[0])
            seeds_run = sorted(
                set(
                    results.trajectories.loc[
                        (results.trajectories["suite"] == name)
                        & (results.trajectories["strategy"] == history_of)
                        & (results.trajectories["budget"] == top),
                        "seed",
                    ]
                )
            )
            if seeds_run and plots.study_history(
                results.trajectories,
                name,
                history_of,
                top,
                int(seeds_run[0]),
                best_v,
                worst_v,
                maximize,
                out / "plots" / f"history-{sl}.svg",
            ):
                history_plot = f"plots/history-{sl}.svg"
    datasets = [str(d) for d in (e.get("card") or {}).get("datasets") or []]
    if plots.mixtures_tried(
        results.trajectories, name, datasets, best_v, worst_v, maximize, out / "plots" / f"mixtures-{sl}.svg"
    ):
        mixtures_plot = f"plots/mixtures-{sl}.svg"
    snr_plot = ""
    main = signal_view(e.get("card") or {})["signal_main"]
    if main and plots.snr_by_seeds(
        main["by_seeds"], main["metric"], main["target"], main["seeds_for_target"], out / "plots" / f"snr-{sl}.svg"
    ):
        snr_plot = f"plots/snr-{sl}.svg"
    return {
        "name": name,
        "slug": sl,
        "href": f"suites/{sl}.html",
        "metric": str(e.get("metric", "")),
        "goal": str(e.get("goal", "max")),
        "version": str(e.get("version", "")),
        "protocol": str(e.get("protocol", "")),
        "best_known": e.get("best_known"),
        "worst_known": e.get("worst_known"),
        "uniform_score": e.get("uniform_score"),
        "base_model": card_view(e)["base_model"],
        "regret_plot": f"plots/regret-{sl}.svg",
        "anytime_plot": f"plots/anytime-{sl}.svg" if top else "",
        "anytime_budget": top,
        "snr_plot": snr_plot,
        "history_plot": history_plot,
        "history_of": history_of,
        "mixtures_plot": mixtures_plot,
        "focus": [(n, plots.focus_id(n)) for n in sorted(set(t["strategy"]))],
        "n_seeds": int(t["n_seeds"].max()) if len(t) else 0,
        "n_strategies": int(t["strategy"].nunique()),
        "card": card_view(e),
        "describe": card_view(e)["description"].splitlines()[0] if card_view(e)["description"] else "",
        **_suite_evidence_view(st, name, e, default_budget),
    }
