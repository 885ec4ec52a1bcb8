"""Render the static leaderboard site from `bench` results folders.

    render(["demo-results"], "demo-results/site")

The site is plain files with relative links (works from file:// and from any static host, e.g. a
static Hugging Face Space), Jinja2 templates with autoescaping on, one local script and one local
stylesheet (no CDN), SVG pictures shown through <img>. Nothing in it depends on the time of
rendering, so the same inputs give byte-identical output; the dates shown are those of the runs.
The site is built in a temporary folder next to the target and moved into place at the end, so a
failed render never leaves half a site; the hidden folders a killed render left there (its build
folder `.SITE.tmp-PID-*`, the previous site `.SITE.old-PID`) are removed when the next render starts,
once their process is gone.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from harness.folders import built_aside
from harness.provenance import package_version
from leaderboard import plots
from leaderboard import online as onl
from leaderboard.data import (Results, ResultsError, budget_label, budget_value, live_suite_name, load_results,
                              signal_view)
from leaderboard.stats import Stats, compute, records

PKG = Path(__file__).resolve().parent
MANIFEST = "site.json"
REFERENCE = "uniform"


def slug(name: str) -> str:
    """A file-name-safe, collision-free name for any string (hostile ones included)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:40] or "x"
    return f"{base}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


# -- formatting filters -------------------------------------------------------------------------------
def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def fmt(v: Any, signed: bool = False, digits: int | None = None) -> str:
    if not _finite(v):
        return "—"
    v = float(v)
    if digits is None:
        digits = 1 if abs(v) >= 100 else 3
    if abs(v) < 0.5 * 10 ** -digits:
        v = 0.0  # no "-0.000"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def sort_key(v: Any) -> str:
    return f"{float(v):.10g}" if _finite(v) else ""


def fmt_p(p: Any) -> str:
    if not _finite(p):
        return "—"
    p = float(p)
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(PKG / "templates")),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters.update(fmt=fmt, sortkey=sort_key, fmt_p=fmt_p, slug=slug, blabel=budget_label)
    env.globals["best_legend"] = BEST_LEGEND  # macros are imported without the page's context
    env.tests["finite"] = _finite
    env.tests["startingwith"] = lambda value, prefix: str(value).startswith(prefix)
    return env


# -- the view model -----------------------------------------------------------------------------------
# "Best" in a (suite, budget): only on a suite that can rank, and only where the strategy with the lowest mean
# normalised regret beats every other strategy there (paired sign-flip tests over the study seeds, Holm over those
# comparisons: leaderboard/within_suite.py). Overlapping noise never earns a mark; computed over every strategy of
# the (suite, budget), whichever page shows the cell.
BEST_DIGITS = 3
BEST_LEGEND = ("best on its suite at this budget: a lower mean regret than every other strategy there, each "
               "difference significant over the study seeds (paired sign-flip test, Holm-corrected); only on suites "
               "that can rank, so most columns have none")


def _shown(v: float, digits: int = BEST_DIGITS) -> float:
    return round(float(v), digits) + 0.0  # + 0.0: no -0.0


def best_marks(evidence: pd.DataFrame) -> set[tuple[str, str, Any]]:
    """(suite, strategy, budget) of every cell whose strategy is separably best there (within_suite's `best`)."""
    if evidence is None or evidence.empty:
        return set()
    return {(r.suite, str(r.best), budget_value(r.budget)) for r in evidence.itertuples() if r.best}


def _rows(table: pd.DataFrame, results: Results, prefix: str, best: set | None = None) -> list[dict[str, Any]]:
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
    order = sorted((_shown(v, digits), n) for n, v in values.items() if _finite(v))
    out, place, prev = {}, 0, None
    for i, (v, n) in enumerate(order):
        if prev is None or v > prev:
            place, prev = i + 1, v
        out[n] = place
    return out


def _matrix(table: pd.DataFrame, suites: list[str], names: list[str], budget: int, best: set) -> dict[str, dict]:
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
            row[su] = {"mean": r["nregret_mean"], "lo": r["nregret_lo"], "hi": r["nregret_hi"],
                       "place": places[su].get(n), "of": len(places[su]), "is_best": (su, n, budget_value(budget)) in best,
                       "surrogate_fraction": r.get("surrogate_fraction") or 0.0, "n_failed": r["n_failed"],
                       "n_seeds": r["n_seeds"]}
        out[n] = row
    return out


def _evidence_by_suite(st: Stats, budget) -> dict[str, dict]:
    ev = st.suite_evidence
    if ev is None or ev.empty:
        return {}
    return {r["suite"]: r for r in records(ev[ev["budget"] == budget])}


def _family_view(r, mdd: dict) -> dict[str, Any]:
    from leaderboard.ranking import FAMILY_LABELS

    return {"family": r.family, "label": FAMILY_LABELS.get(r.family, r.family), "suites": r.suites,
            "rows": records(r.table), "n_suites": r.n_blocks, "sentence": r.sentence,
            "friedman_p": r.friedman_p if math.isfinite(r.friedman_p) else None,
            "cd": r.cd if math.isfinite(r.cd) else None}


def _track_overview(r, st: Stats, results: Results, strategies: list[dict], best: set, out: Path,
                    family_rankings: list | None = None) -> dict[str, Any]:
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
    matrix = _matrix(st.table, r.suites, in_track, r.budget, best)
    rows = [{**info.get(n, {"name": n}), "cells": matrix[n], "overall": overall.get(n), "why": incomplete.get(n, "")}
            for n in complete + rest]
    evid = _evidence_by_suite(st, r.budget)
    verdicts = [{"name": n, "ranks": True, "why": why_ok, "href": f"suites/{slug(n)}.html"}
                for n, why_ok in ((n, _reason(results.suites[n])) for n in r.suites)]
    verdicts += [{"name": n, "ranks": False, "why": why, "href": f"suites/{slug(n)}.html"} for n, why in r.apart]
    for v in verdicts:
        e = evid.get(v["name"]) or {}
        v["mdd"], v["best"] = e.get("mdd"), e.get("best") or ""
        v["pool_note"] = _pool_note(results.suites[v["name"]], r.budget)
    families = [_family_view(f, {}) for f in (family_rankings or [])]
    return {"track": r.track, "budget": r.budget, "budget_label": budget_label(r.budget), "suites": r.suites,
            "suite_links": {n: f"suites/{slug(n)}.html" for n in r.suites}, "apart": r.apart,
            "incomplete": r.incomplete, "rows": rows, "n_blocks": r.n_blocks, "n_seeds": r.n_seeds,
            "n_complete": len(complete), "verdicts": sorted(verdicts, key=lambda v: (not v["ranks"], v["name"])),
            "friedman_p": r.friedman_p if math.isfinite(r.friedman_p) else None,
            "cd": r.cd if math.isfinite(r.cd) else None, "cd_plot": cd_plot if drawn else "", "sentence": r.sentence,
            "mdd": {n: (evid.get(n) or {}).get("mdd") for n in r.suites}, "families": families,
            "has_surrogate": any(c["surrogate_fraction"] for row in rows for c in row["cells"].values())}


def _suite_evidence_view(st: Stats, name: str, entry: dict[str, Any], default_budget) -> dict[str, Any]:
    """The suite page's within-suite verdicts: per budget the MDD, the seeds a 0.01 difference needs and the best
    (if separable); per budget and strategy the paired comparison with random (Holm)."""
    ev = st.suite_evidence
    rows = records(ev[ev["suite"] == name].sort_values("budget")) if ev is not None and len(ev) else []
    for r in rows:
        r["budget_label"] = budget_label(r["budget"])
        r["pool_note"] = _pool_note(entry, r["budget"])
    vr = st.vs_random
    pairs = records(vr[vr["suite"] == name].sort_values(["budget", "diff_mean", "strategy"])) if vr is not None and len(vr) else []
    for p in pairs:
        p["budget_label"] = budget_label(p["budget"])
    head = next((r for r in rows if budget_value(r["budget"]) == budget_value(default_budget)), rows[-1] if rows else None)
    return {"evidence": rows, "vs_random": pairs, "headline": head}


def _pool_note(entry: dict[str, Any], budget) -> str:
    """A pool suite whose budget is not well below its pool size (at least half of it) says so: a strategy can then
    try most candidates, and its regret measures little search."""
    size = entry.get("pool_size")
    if not size or not _finite(size) or float(budget) < 0.5 * float(size):
        return ""
    return (f"budget {budget_label(budget)} is {'the whole' if float(budget) >= float(size) else 'over half the'} "
            f"pool of {int(size)} candidates: a strategy can try {'every one' if float(budget) >= float(size) else 'most of them'}, "
            f"so regret here measures little search")


# -- the online track ---------------------------------------------------------------------------------
ONLINE_STRATEGIES = "constant,dump,odm,aioli"
OFFLINE_BUDGETS = (4, 8)  # the offline budgets drawn against the online runs in the score-vs-compute picture
ONLINE_LABEL = "one training run per seed; not in the overall ranking (live suite)"


def _seed_range(seeds: Any) -> str:
    """bench --seeds as the online track's commands write it: a range A-B when contiguous, else a comma list."""
    xs = sorted(int(x) for x in seeds or [])
    if not xs:
        return "0-7"
    if xs == list(range(xs[0], xs[-1] + 1)):
        return f"{xs[0]}-{xs[-1]}" if len(xs) > 1 else str(xs[0])
    return ",".join(str(x) for x in xs)


def online_command(results: Results, suite: str) -> str:
    """The bench command that retrains an online suite's runs: its live suite, strategies, seeds, runner."""
    entry = results.suites[suite]
    meta = next((m for m in results.benches if any(e.get("name") == suite for e in m.get("suites", []))), {})
    names = [str(e.get("name")) for e in meta.get("strategies", [])] or ONLINE_STRATEGIES.split(",")
    order = {n: i for i, n in enumerate(ONLINE_STRATEGIES.split(","))}  # the control first, as the issue writes it
    names = sorted(names, key=lambda n: (order.get(n, len(order)), n))
    live = {**entry, "name": live_suite_name(entry), "suite": live_suite_name(entry)}
    return (f"modomodo bench --track online --suite {_quote(_suite_ref(live))} --runner "
            f"{_quote(str(meta.get('runner') or 'cpu'))} --strategy {_quote(','.join(names))} --seeds "
            f"{_seed_range(meta.get('seeds'))} --out DIR")


def _snr_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return "∞" if math.isinf(float(v)) else f"{float(v):.2f}"


def _online_rows(ost, suite: str, prefix: str) -> list[dict[str, Any]]:
    """One row per strategy: its runs, mean score [CI], overhead, and its paired differences against the control."""
    t = ost.table[ost.table["suite"] == suite]
    paired = ost.paired[ost.paired["suite"] == suite] if len(ost.paired) else ost.paired
    rows = []
    for r in sorted(records(t), key=lambda r: (r["strategy"] != onl.CONTROL, r["strategy"])):  # the control first
        mine = paired[paired["strategy"] == r["strategy"]]
        # the SNR as text from the frame: records() writes an infinite one as None, and here ∞ means something
        diffs = {d["metric"]: {**d, "snr_text": _snr_text(raw)} for d, raw in zip(records(mine), mine["snr"])}
        rows.append({**r, "is_control": r["strategy"] == onl.CONTROL, "diffs": diffs,
                     "href": f"{prefix}strategies/{slug(r['strategy'])}.html"})
    return rows


def _compute_points(results: Results, st: Stats, suite: str) -> tuple[list[dict], list[dict], str | None]:
    """The score-vs-compute picture's points: online strategies at their mean cost, offline ones (of the suite
    recorded from the same live suite, same metric; uniform is the line) at budget + 1."""
    t = st.online.table[st.online.table["suite"] == suite]
    online = [{"name": r["strategy"], "x": r["cost_mean"] if _finite(r["cost_mean"]) else 1.0, "mean": r["score_mean"],
               "lo": r["score_lo"], "hi": r["score_hi"]} for r in records(t)]
    match = onl.offline_match(results, suite)
    offline = []
    if match:
        o = st.table[(st.table["suite"] == match) & st.table["budget"].isin(OFFLINE_BUDGETS)
                     & (st.table["strategy"] != REFERENCE)]
        offline = [{"name": r["strategy"], "budget": int(r["budget"]), "x": int(r["budget"]) + 1,
                    "mean": r["score_mean"], "lo": r["score_lo"], "hi": r["score_hi"], "n": r["n_ok"]}
                   for r in records(o)]
    return online, offline, match


def _online_views(results: Results, st: Stats, out: Path) -> list[dict[str, Any]]:
    views = []
    for name in st.online.suites:
        e = results.suites[name]
        sl = slug(name)
        strategies = sorted(set(st.online.table.loc[st.online.table["suite"] == name, "strategy"]),
                            key=lambda n: (n != onl.CONTROL, n))
        weights_plot = f"plots/online-weights-{sl}.svg"
        if not plots.online_weights(st.online.weights, name, strategies, out / weights_plot):
            weights_plot = ""
        online, offline, match = _compute_points(results, st, name)
        compute_plot = f"plots/online-compute-{sl}.svg"
        if not plots.score_vs_compute(online, offline, e.get("uniform_score"), str(e.get("metric") or "score"),
                                      out / compute_plot):
            compute_plot = ""
        n_offline_seeds = max((p["n"] for p in offline), default=0)
        views.append({"name": name, "slug": sl, "href": f"suites/{sl}.html", "live": live_suite_name(e),
                      "metric": str(e.get("metric") or "score"), "goal": str(e.get("goal", "max")),
                      "version": str(e.get("version", "")), "protocol": str(e.get("protocol", "")),
                      "uniform_score": e.get("uniform_score"), "metrics": st.online.metrics.get(name, []),
                      "verdicts": st.online.verdicts.get(name, []), "card": _card_view(e),
                      "weights_plot": weights_plot, "compute_plot": compute_plot, "offline_suite": match or "",
                      "offline_href": f"suites/{slug(match)}.html" if match else "",
                      "offline_budgets": sorted({p["budget"] for p in offline}), "offline_seeds": n_offline_seeds,
                      "command": online_command(results, name),
                      "n_seeds": int(st.online.table.loc[st.online.table["suite"] == name, "runs"].max())})
    return views


def _reason(entry: dict[str, Any]) -> str:
    from leaderboard.ranking import suite_can_rank

    return suite_can_rank(entry)[1]


def _seeds_arg(seeds: Any) -> str:
    """bench --seeds for a list of seeds: a count when they are 0..N-1, a range N-M, else a comma list."""
    if isinstance(seeds, int):
        return str(seeds)
    xs = sorted(int(x) for x in seeds or [])
    if not xs:
        return "1"
    if xs == list(range(len(xs))):
        return str(len(xs))
    if xs == list(range(xs[0], xs[-1] + 1)):
        return f"{xs[0]}-{xs[-1]}"
    return ",".join(str(x) for x in xs)


def _suite_ref(entry: dict[str, Any]) -> str:
    """How `bench --suite` names a suite: its registered name, or its folder."""
    name = str(entry.get("suite") or entry.get("name") or "")
    try:
        from harness.suites.loading import registered

        if name in registered():
            return name
    except Exception:  # noqa: BLE001 - no registry here: the folder is as good a reference
        pass
    folder = Path(str(entry.get("path") or "")).name
    return f"path/to/{folder}" if folder else name


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def bench_commands(results: Results, suite: str | None = None, strategy: str | None = None) -> list[str]:
    """The `modomodo bench` command(s) that regenerate the numbers of one suite or one strategy: one per results
    folder that holds them, from its bench.json (suites, strategies, budgets, seeds, track, runner)."""
    cmds = []
    for meta in results.benches:
        entries = [e for e in meta.get("suites", []) if suite is None or e.get("name") == suite]
        names = [str(e.get("name")) for e in meta.get("strategies", [])]
        if strategy is not None:
            names = [n for n in names if n == strategy]
        if not entries or not names:
            continue
        files = sorted({str(e["file"]) for e in meta.get("strategies", []) if e.get("name") in names and e.get("file")})
        tracks = sorted({str(e.get("track")) for e in entries if e.get("track")})
        parts = ["modomodo", "bench"]
        for e in entries:
            parts += ["--suite", _quote(_suite_ref(e))]
        parts += ["--strategy", _quote(",".join(names))]
        for f in files:
            parts += ["--strategy-file", _quote(f)]
        parts += ["--budget", ",".join(str(b) for b in meta.get("budgets", [])), "--seeds", _seeds_arg(meta.get("seeds"))]
        if len(tracks) == 1:
            parts += ["--track", tracks[0]]
        runner = str(meta.get("runner") or "replay")
        if runner != "replay":
            parts += ["--runner", runner]
        parts += ["--out", "results/"]
        cmds.append(" ".join(parts))
    return cmds


def _folder_ref(folder) -> str:
    """A results folder as a command names it: relative to the working folder of the render when inside it
    (e.g. baselines/online, not `online`); else its name (a published page shows no local absolute path)."""
    import os

    path = Path(folder).resolve()
    rel = os.path.relpath(path)
    return path.name if rel.startswith("..") else Path(rel).as_posix()


def submit_commands(results: Results) -> dict[str, str]:
    """The commands that put a new strategy beside these results: the same suites, budgets and seeds."""
    entries, budgets, seeds = {}, set(), None
    for meta in results.benches:
        for e in meta.get("suites", []):
            if e.get("kind") == "live" or e.get("track") == "online":
                continue  # a live suite trains for real (hours): never in the command a submitter copies
            entries.setdefault(str(e.get("name")), e)
        budgets.update(int(b) for b in meta.get("budgets", []))
        seeds = seeds if seeds is not None else meta.get("seeds")
    suite_args = " ".join(f"--suite {_quote(_suite_ref(e))}" for _, e in sorted(entries.items()))
    folders = " ".join(_quote(_folder_ref(f)) for f in results.folders)
    return {
        "bench": f"modomodo bench {suite_args} --strategy mine,uniform --strategy-file my_strategy.py "
                 f"--budget {','.join(str(b) for b in sorted(budgets))} --seeds {_seeds_arg(seeds)} --out results/mine",
        "render": f"modomodo leaderboard render --results {folders} results/mine --out site/",
    }


def _provenance(results: Results) -> dict[str, Any]:
    versions = sorted({str((b.get("versions") or {}).get("modomodo", "unknown")) for b in results.benches})
    shas = sorted({str(b.get("git_sha") or "unknown") for b in results.benches})
    dates = sorted({str(b.get("created") or "unknown") for b in results.benches})
    return {
        "renderer_version": package_version("modomodo") or "unknown",
        "versions": versions, "git_shas": shas, "dates": dates,
        "protocols": [(n, str(e.get("protocol", "")), str(e.get("version", ""))) for n, e in results.suites.items()],
        "runners": sorted({str(b.get("runner") or "replay") for b in results.benches}),
        "folders": [Path(f).name for f in results.folders],
    }


# Card rows in words: a label for the keys a reader would not decode, values without JSON punctuation.
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


def _card_view(entry: dict[str, Any]) -> dict[str, Any]:
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
        "text": entry.get("card_text") or "",
        **signal_view(card),
        **_judge_view(entry, card),
    }


def _judge_view(entry: dict[str, Any], card: dict[str, Any]) -> dict[str, Any]:
    """How this suite is judged here: its track, whether it can rank (bench.json, from the judge), the
    tracks it offers and its fidelity gate (the card's judge block)."""
    from leaderboard.ranking import suite_can_rank, suite_track

    judge = card.get("judge") if isinstance(card.get("judge"), dict) else {}
    fid = judge.get("fidelity") if isinstance(judge.get("fidelity"), dict) else {}
    ok, why = suite_can_rank(entry)
    return {"track": suite_track(entry), "ranks": ok, "ranking_reason": why,
            "tracks": entry.get("tracks") or judge.get("tracks") or [],
            "pool_size": entry.get("pool_size"), "gate_passed": fid.get("passed"), "gate_reason": fid.get("reason", ""),
            "normalization_note": str(entry.get("normalization") or "")}


def _public_bench(meta: dict[str, Any]) -> dict[str, Any]:
    """bench.json without local absolute paths (they name the machine and the user's folders)."""
    out = {k: v for k, v in meta.items() if not k.startswith("_")}
    out["folder"] = Path(meta.get("_folder", "")).name
    out["suites"] = [{**s, "path": Path(str(s.get("path", ""))).name} for s in meta.get("suites", [])]
    return out


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, float_format="%.10g", lineterminator="\n")


def _write_csv_gz(df: pd.DataFrame, path: Path) -> None:
    """gzip with no name and mtime 0 in its header, so the same table gives the same bytes."""
    import gzip

    text = df.to_csv(index=False, float_format="%.10g", lineterminator="\n").encode()
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(text)


def _site_trajectories(traj: pd.DataFrame) -> pd.DataFrame:
    """The trajectories as published: no run keys, and each pilot's mixture as one `w_<dataset>` column per dataset
    (empty where its suite has no such dataset) instead of a JSON text: the same weights (to the 10 significant
    digits of every table here), a third smaller once compressed, and a table any tool reads without parsing."""
    t = traj.drop(columns=["run_key"], errors="ignore")
    if "mixture" not in t.columns or t.empty:
        return t
    parsed = []
    for text in t["mixture"]:
        try:
            m = json.loads(text) if isinstance(text, str) else {}
        except json.JSONDecodeError:
            m = {}
        parsed.append(m if isinstance(m, dict) else {})
    names = sorted({k for m in parsed for k in m})
    wide = pd.DataFrame({f"w_{d}": [m.get(d, math.nan) for m in parsed] for d in names}, index=t.index)
    return pd.concat([t.drop(columns=["mixture"]), wide], axis=1)


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def build(results: Results, st: Stats, out: Path) -> list[str]:
    env = _env()
    (out / "assets").mkdir(parents=True)
    (out / "plots").mkdir()
    (out / "data").mkdir()
    (out / "suites").mkdir()
    (out / "strategies").mkdir()
    for f in ("leaderboard.css", "leaderboard.js", "favicon.svg"):
        shutil.copyfile(PKG / "static" / f, out / "assets" / f)

    color = plots.colors(results.strategy_names)
    budgets = sorted(set(st.table["budget"]))
    default_budget = max(budgets) if budgets else 0
    families = sorted(set(st.table["family"]))
    prov = _provenance(results)
    strategies = [{**results.strategies[n], "href": f"strategies/{slug(n)}.html", "slug": slug(n),
                   "is_ref": n == REFERENCE, "color": color[n]} for n in results.strategy_names]

    # Pictures.
    suite_views = []
    for name in results.suite_names:
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
                seeds_run = sorted(set(results.trajectories.loc[(results.trajectories["suite"] == name)
                                                                & (results.trajectories["strategy"] == history_of)
                                                                & (results.trajectories["budget"] == top), "seed"]))
                if seeds_run and plots.study_history(results.trajectories, name, history_of, top, int(seeds_run[0]),
                                                     best_v, worst_v, maximize, out / "plots" / f"history-{sl}.svg"):
                    history_plot = f"plots/history-{sl}.svg"
        datasets = [str(d) for d in (e.get("card") or {}).get("datasets") or []]
        if plots.mixtures_tried(results.trajectories, name, datasets, best_v, worst_v, maximize,
                                out / "plots" / f"mixtures-{sl}.svg"):
            mixtures_plot = f"plots/mixtures-{sl}.svg"
        snr_plot = ""
        main = signal_view(e.get("card") or {})["signal_main"]
        if main and plots.snr_by_seeds(main["by_seeds"], main["metric"], main["target"], main["seeds_for_target"],
                                       out / "plots" / f"snr-{sl}.svg"):
            snr_plot = f"plots/snr-{sl}.svg"
        suite_views.append({
            "name": name, "slug": sl, "href": f"suites/{sl}.html", "metric": str(e.get("metric", "")),
            "goal": str(e.get("goal", "max")), "version": str(e.get("version", "")),
            "protocol": str(e.get("protocol", "")), "best_known": e.get("best_known"),
            "worst_known": e.get("worst_known"), "uniform_score": e.get("uniform_score"),
            "base_model": _card_view(e)["base_model"],
            "regret_plot": f"plots/regret-{sl}.svg", "anytime_plot": f"plots/anytime-{sl}.svg" if top else "",
            "anytime_budget": top, "snr_plot": snr_plot, "history_plot": history_plot, "history_of": history_of,
            "mixtures_plot": mixtures_plot,
            "focus": [(n, plots.focus_id(n)) for n in sorted(set(t["strategy"]))], "n_seeds": int(t["n_seeds"].max()) if len(t) else 0,
            "n_strategies": int(t["strategy"].nunique()), "card": _card_view(e),
            "describe": _card_view(e)["description"].splitlines()[0] if _card_view(e)["description"] else "",
            **_suite_evidence_view(st, name, e, default_budget),
        })
    best = best_marks(st.suite_evidence)
    # pool (all measured) first; every budget and family: overall_rank.csv
    headline = sorted((r for r in st.rankings if r.budget == default_budget), key=lambda r: (r.track != "pool", r.track))
    track_views = [_track_overview(r, st, results, strategies, best, out,
                                   [f for f in headline if f.track == r.track and f.family != "all"])
                   for r in headline if r.family == "all"]
    # suites that cannot rank, across tracks, in their own section at the end of the index
    apart_names = sorted({n for tv in track_views for n, _ in tv["apart"]})
    apart_why = {n: why for tv in track_views for n, why in tv["apart"]}
    apart_strats = sorted(set(st.table[st.table["suite"].isin(apart_names)]["strategy"]))
    apart_matrix = _matrix(st.table, apart_names, apart_strats, default_budget, best)
    apart_view = {"suites": [{"name": n, "why": apart_why[n], "href": f"suites/{slug(n)}.html"} for n in apart_names],
                  "rows": [{**next((x for x in strategies if x["name"] == n), {"name": n}), "cells": apart_matrix[n]}
                           for n in apart_strats]}
    online_views = _online_views(results, st, out) if st.online is not None else []
    if len(st.overall):
        first = st.overall[(st.overall["track"] == st.overall["track"].iloc[0]) & (st.overall["suite_family"] == "all")]
        plots.rank_chart(first, color, out / "plots" / "ranks.svg")
    weight_plots = {}
    for n in results.strategy_names:
        p = out / "plots" / f"weights-{slug(n)}.svg"
        if plots.weights(st.weights, n, results.suite_names, p):
            weight_plots[n] = f"../plots/{p.name}"

    # Downloads.
    data = out / "data"
    # the two big tables gzip-compressed (the site stays small enough to publish: tests/test_leaderboard.py), the
    # run keys (64 hex digits each, a third of the compressed size, pointing into a store the site does not carry)
    # left in the bench folders' own trajectories.csv
    _write_csv_gz(results.summary, data / "summary.csv.gz")
    _write_csv_gz(_site_trajectories(results.trajectories), data / "trajectories.csv.gz")
    _write_csv(st.table, data / "leaderboard.csv")
    _write_csv(st.overall, data / "overall_rank.csv")
    _write_csv(st.rank_corr, data / "rank_correlation.csv")
    _write_csv(st.suite_evidence, data / "within_suite.csv")
    _write_csv(st.vs_random, data / "vs_random.csv")
    (data / "bench.json").write_text(_json([_public_bench(b) for b in results.benches]))
    suites_public = {n: {k: v for k, v in e.items() if k not in ("card_text", "_folder", "path")}
                     for n, e in results.suites.items()}
    board = {
        "provenance": prov, "suites": suites_public, "strategies": results.strategies,
        "table": records(st.table), "overall_rank": records(st.overall), "rank_correlation": records(st.rank_corr),
        "separates": {f"{r.track} {r.family} {budget_label(r.budget)}": r.sentence for r in st.rankings},
        "within_suite": records(st.suite_evidence), "vs_random": records(st.vs_random),
        "methods": {"ci": "95% Student t-interval of the mean over seeds",
                    "overall": "suites are the unit of evidence: strategies ranked on each suite that can rank by their "
                               "mean over its study seeds, ranks averaged over suites; 95% hierarchical bootstrap "
                               "(suites, then seeds), 2000 resamples; Friedman over suites; Nemenyi CD with N = suites; "
                               "Wilcoxon signed-rank over suites with Holm",
                    "within_suite": "paired over study seeds: exact sign-flip permutation test, Holm over the "
                                    "comparisons with random (and, for 'best', over the best's comparisons with every "
                                    "other strategy); MDD: paired t-test, alpha 0.05, power 0.8, pooled paired sd",
                    "paired_test": "one-sided exact sign test of score vs uniform over seeds (ties dropped)",
                    "rank": "rank by score within (suite, budget, seed); failed studies rank last",
                    "auc": "mean normalised regret of the best pilot so far over pilot runs 1..budget"},
    }
    if online_views:  # only where there is an online track, so an offline-only site stays as it was
        board["online"] = {"table": records(st.online.table), "paired": records(st.online.paired),
                           "verdicts": st.online.verdicts, "seeds_for_0.01": st.online.seeds_for_target,
                           "methods": {"paired": "strategy minus the constant control on the same seed, over the "
                                                 "seeds both ran; 95% paired t-interval",
                                       "snr": "|mean difference| / its standard error (sd over seeds / sqrt(seeds)); "
                                              "null when infinite or undefined",
                                       "verdict": "paired t-test, Holm over the comparisons on the suite, alpha 0.05, "
                                                  "none below the minimum of paired seeds",
                                       "overhead": "cost in run-equivalents minus 1"}}
    (data / "leaderboard.json").write_text(_json(board))
    downloads = [("data/summary.csv.gz", "every study: score, regret, recommended mixture (bench summary.csv, merged); "
                  "gzip-compressed CSV, pandas.read_csv reads it as is"),
                 ("data/trajectories.csv.gz", "every pilot run of every study (best-so-far curves), gzip-compressed CSV; "
                  "the mixture as one w_DATASET column per dataset; the run keys into each bench's store are in that "
                  "bench folder's own trajectories.csv"),
                 ("data/leaderboard.csv", "the statistics per suite × strategy × budget, with 95% CIs"),
                 ("data/overall_rank.csv", "average rank over the suites that can rank [hierarchical 95% CI], per track "
                  "× suite family × budget × strategy"),
                 ("data/within_suite.csv", "per suite × budget: minimum detectable difference, seeds a 0.01 difference "
                  "needs, the separably best strategy (if any)"),
                 ("data/vs_random.csv", "per suite × budget × strategy: paired difference with random [95% CI], "
                  "sign-flip p, Holm p, verdict"),
                 ("data/rank_correlation.csv", "rank correlation of strategy orderings between suites"),
                 ("data/leaderboard.json", "all of the above statistics, with suites, strategies and provenance"),
                 ("data/bench.json", "what was run: suites, strategies, budgets, seeds, versions")]
    if len(results.online_steps) or len(results.online_runs):  # the online track's tables, only where there is one
        _write_csv_gz(results.online_steps, data / "online.csv.gz")
        _write_csv_gz(results.online_runs, data / "online_runs.csv.gz")
        _write_csv(st.online.table, data / "online_leaderboard.csv")
        _write_csv(st.online.paired, data / "online_paired.csv")
        downloads += [("data/online.csv.gz", "the online track: the weights every training step drew its prompts with "
                       "(w:DOMAIN) and the prompts each domain got (n:DOMAIN), per suite × strategy × seed × step; "
                       "gzip-compressed CSV"),
                      ("data/online_runs.csv.gz", "the online runs, one per suite × strategy × seed: status, score, "
                       "cost in run-equivalents, timings, and every score the run measured; gzip-compressed CSV"),
                      ("data/online_leaderboard.csv", "the online track's statistics per suite × strategy: mean score "
                       "[95% CI], overhead"),
                      ("data/online_paired.csv", "each online strategy's paired difference against the constant "
                       "control over seeds, per score: mean [95% CI], standard error, SNR")]
    downloads = [(p, d, (out / p).stat().st_size) for p, d in downloads]

    corr = records(st.rank_corr)
    overall_by = {}
    for r in records(st.overall):
        overall_by.setdefault(r["strategy"], {})[f"{r['track']} {r['budget']}"] = r

    # suites the judge keeps out of the rankings: their correlations are flagged (mostly noise)
    cannot_rank = sorted(sv["name"] for sv in suite_views if not sv["card"]["ranks"])
    common = {"prov": prov, "strategies": strategies, "suites": suite_views, "budgets": budgets,
              "cannot_rank": cannot_rank, "best_legend": BEST_LEGEND,
              "default_budget": default_budget, "families": families, "warnings": results.warnings,
              "min_pairs": onl.MIN_PAIRS}

    def page(template: str, path: str, root: str, **ctx) -> None:
        html = env.get_template(template).render(root=root, page_path=path, **common, **ctx)
        (out / path).write_text(html)

    page("index.html", "index.html", "", corr=[c for c in corr if c["budget"] == default_budget],
         has_rank_plot=len(st.overall) > 0, track_views=track_views, apart=apart_view, online_views=online_views,
         online_rows={v["name"]: _online_rows(st.online, v["name"], "") for v in online_views},
         online_label=ONLINE_LABEL,
         rank_plot_track=str(st.overall["track"].iloc[0]) if len(st.overall) else "")
    page("data.html", "data.html", "", downloads=downloads, notes=results.notes)
    page("submit.html", "submit.html", "", commands=submit_commands(results))
    for sv in suite_views:
        srows = _rows(st.table[st.table["suite"] == sv["name"]], results, "../", best)
        scorr = [c for c in corr if sv["name"] in (c["suite_a"], c["suite_b"])]
        page("suite.html", f"suites/{sv['slug']}.html", "../", suite=sv, rows=srows, corr=scorr,
             commands=bench_commands(results, suite=sv["name"]))
    for ov in online_views:
        page("online.html", f"suites/{ov['slug']}.html", "../", suite=ov, online_label=ONLINE_LABEL,
             rows=_online_rows(st.online, ov["name"], "../"))
    for s in strategies:
        srows = _rows(st.table[st.table["strategy"] == s["name"]], results, "../", best)
        page("strategy.html", f"strategies/{s['slug']}.html", "../", strategy=s, rows=srows,
             weights_plot=weight_plots.get(s["name"], ""), overall=overall_by.get(s["name"], {}),
             online=[{"name": ov["name"], "href": ov["href"]} for ov in online_views
                     if s["name"] in set(st.online.table.loc[st.online.table["suite"] == ov["name"], "strategy"])],
             online_label=ONLINE_LABEL,
             commands=bench_commands(results, strategy=s["name"]))

    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    manifest = {"generator": "modomodo leaderboard", "modomodo_version": prov["renderer_version"],
                "results_versions": prov["versions"], "git_shas": prov["git_shas"], "run_dates": prov["dates"],
                "suites": {n: p for n, p, _ in prov["protocols"]}, "strategies": results.strategy_names,
                "files": {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in files}}
    (out / MANIFEST).write_text(_json(manifest))
    return files + [MANIFEST]


_LEFTOVER = re.compile(r"\.(?P<site>.+)\.(?:tmp-(?P<pid>\d+)-.+|old-(?P<oldpid>\d+)|(?P<legacy>[a-z0-9_]{8}))$")
LEGACY_LEFTOVER_AGE_S = 3600.0  # build folders from before they carried their pid: removed once this old


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(out: Path) -> list[Path]:
    """Remove the hidden folders killed renders of `out` left beside it (only those whose render
    process is gone: a render running at the same time keeps its build folder). Returns them."""
    import time

    removed = []
    if not out.parent.is_dir():
        return removed
    for p in out.parent.iterdir():
        m = _LEFTOVER.match(p.name)
        if not m or m.group("site") != out.name or not p.is_dir() or p.is_symlink():
            continue
        pid = m.group("pid") or m.group("oldpid")
        if pid is not None:
            stale = int(pid) != os.getpid() and not _pid_alive(int(pid))
        else:
            try:
                stale = time.time() - p.stat().st_mtime > LEGACY_LEFTOVER_AGE_S
            except FileNotFoundError:
                continue
        if stale:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def render(results_dirs: list[str | Path], out: str | Path) -> Path:
    """Render the site into `out` (replacing a previous site there); returns the index.html path."""
    out = Path(out).resolve()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise ResultsError(f"{str(out)!r} exists and is not a leaderboard site (no {MANIFEST}); choose an empty "
                           f"or new folder for --out")
    clean_leftovers(out)
    results = load_results([Path(d) for d in results_dirs])
    for d in results.folders:
        if out == d.resolve():
            raise ResultsError("--out must not be a results folder")
    st = compute(results)
    with built_aside(out, prefix=f".{out.name}.tmp-{os.getpid()}-") as tmp:
        build(results, st, tmp)
        os.chmod(tmp, 0o755)
    return out / "index.html"
