"""The leaderboard site's online track: its suites' views, rows and score-vs-compute pictures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


from leaderboard import plots_online
from leaderboard import online as onl
from leaderboard.data import Results
from leaderboard.results_folder import live_suite_name
from leaderboard.site_commands import shell_quote, suite_ref
from leaderboard.site_views import REFERENCE, card_view, is_finite, slug
from leaderboard.stats import Stats, records


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
    return (
        f"modomodo bench --track online --suite {shell_quote(suite_ref(live))} --runner "
        f"{shell_quote(str(meta.get('runner') or 'cpu'))} --strategy {shell_quote(','.join(names))} --seeds "
        f"{_seed_range(meta.get('seeds'))} --out DIR"
    )


def _snr_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return "∞" if math.isinf(float(v)) else f"{float(v):.2f}"


def online_strategy_rows(ost, suite: str, prefix: str) -> list[dict[str, Any]]:
    """One row per strategy: its runs, mean score [CI], overhead, and its paired differences against the control."""
    t = ost.table[ost.table["suite"] == suite]
    paired = ost.paired[ost.paired["suite"] == suite] if len(ost.paired) else ost.paired
    rows = []
    for r in sorted(records(t), key=lambda r: (r["strategy"] != onl.CONTROL, r["strategy"])):  # the control first
        mine = paired[paired["strategy"] == r["strategy"]]
        # the SNR as text from the frame: records() writes an infinite one as None, and here ∞ means something
        diffs = {d["metric"]: {**d, "snr_text": _snr_text(raw)} for d, raw in zip(records(mine), mine["snr"])}
        rows.append(
            {
                **r,
                "is_control": r["strategy"] == onl.CONTROL,
                "diffs": diffs,
                "href": f"{prefix}strategies/{slug(r['strategy'])}.html",
            }
        )
    return rows


def _compute_points(results: Results, st: Stats, suite: str) -> tuple[list[dict], list[dict], str | None]:
    """The score-vs-compute picture's points: online strategies at their mean cost, offline ones (of the suite
    recorded from the same live suite, same metric; uniform is the line) at budget + 1."""
    t = st.online.table[st.online.table["suite"] == suite]
    online = [
        {
            "name": r["strategy"],
            "x": r["cost_mean"] if is_finite(r["cost_mean"]) else 1.0,
            "mean": r["score_mean"],
            "lo": r["score_lo"],
            "hi": r["score_hi"],
        }
        for r in records(t)
    ]
    match = onl.offline_match(results, suite)
    offline = []
    if match:
        o = st.table[
            (st.table["suite"] == match)
            & st.table["budget"].isin(OFFLINE_BUDGETS)
            & (st.table["strategy"] != REFERENCE)
        ]
        offline = [
            {
                "name": r["strategy"],
                "budget": int(r["budget"]),
                "x": int(r["budget"]) + 1,
                "mean": r["score_mean"],
                "lo": r["score_lo"],
                "hi": r["score_hi"],
                "n": r["n_ok"],
            }
            for r in records(o)
        ]
    return online, offline, match


def online_suite_views(results: Results, st: Stats, out: Path) -> list[dict[str, Any]]:
    """One view per online suite (its card, strategies, pictures drawn into `out`): the online section's pages."""
    views = []
    for name in st.online.suites:
        e = results.suites[name]
        sl = slug(name)
        strategies = sorted(
            set(st.online.table.loc[st.online.table["suite"] == name, "strategy"]), key=lambda n: (n != onl.CONTROL, n)
        )
        weights_plot = f"plots/online-weights-{sl}.svg"
        if not plots_online.online_weights(st.online.weights, name, strategies, out / weights_plot):
            weights_plot = ""
        online, offline, match = _compute_points(results, st, name)
        compute_plot = f"plots/online-compute-{sl}.svg"
        if not plots_online.score_vs_compute(
            online, offline, e.get("uniform_score"), str(e.get("metric") or "score"), out / compute_plot
        ):
            compute_plot = ""
        n_offline_seeds = max((p["n"] for p in offline), default=0)
        views.append(
            {
                "name": name,
                "slug": sl,
                "href": f"suites/{sl}.html",
                "live": live_suite_name(e),
                "metric": str(e.get("metric") or "score"),
                "goal": str(e.get("goal", "max")),
                "version": str(e.get("version", "")),
                "protocol": str(e.get("protocol", "")),
                "uniform_score": e.get("uniform_score"),
                "metrics": st.online.metrics.get(name, []),
                "verdicts": st.online.verdicts.get(name, []),
                "card": card_view(e),
                "weights_plot": weights_plot,
                "compute_plot": compute_plot,
                "offline_suite": match or "",
                "offline_href": f"suites/{slug(match)}.html" if match else "",
                "offline_budgets": sorted({p["budget"] for p in offline}),
                "offline_seeds": n_offline_seeds,
                "command": online_command(results, name),
                "n_seeds": int(st.online.table.loc[st.online.table["suite"] == name, "runs"].max()),
            }
        )
    return views
