"""Plain-text tables of the leaderboard's statistics, for papers, issue notes and terminals.

`modomodo leaderboard table --results DIR` prints, per suite, the mean normalised regret of every
strategy at the chosen budgets with its bootstrap 95% interval (the same numbers as the site), and
the rank correlation of strategy orderings between suites (e.g. two base models).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from leaderboard.stats import Stats


def _f(v: float, digits: int = 3) -> str:
    return "—" if v is None or not math.isfinite(float(v)) else f"{float(v):.{digits}f}"


def regret_markdown(st: Stats, budgets: Sequence[int] | None = None, suites: Sequence[str] | None = None) -> str:
    """One markdown table per suite: strategies (best first at the largest budget) × budgets,
    each cell `mean [lo, hi]` of the normalised regret (lower is better)."""
    t = st.table
    out = []
    for suite in suites or sorted(set(t["suite"])):
        g = t[t["suite"] == suite]
        if g.empty:
            raise ValueError(f"no results for suite {suite!r}; found {sorted(set(t['suite']))}")
        bs = [b for b in (budgets or sorted(set(g["budget"]))) if b in set(g["budget"])]
        if not bs:
            raise ValueError(f"suite {suite!r} has none of the budgets {list(budgets or [])}; it has "
                             f"{sorted(set(g['budget']))}")
        last = g[g["budget"] == bs[-1]].set_index("strategy")["nregret_mean"]
        order = sorted(set(g["strategy"]), key=lambda s: (not math.isfinite(last.get(s, math.nan)),
                                                        last.get(s, math.inf), s))
        seeds = int(g["n_seeds"].max())
        out.append(f"**{suite}**: mean normalised regret [95% CI], {seeds} seeds (lower is better)\n")
        out.append("| strategy | " + " | ".join(f"budget {b}" for b in bs) + " |")
        out.append("|---|" + "---|" * len(bs))
        cell = g.set_index(["strategy", "budget"])
        for s in order:
            parts = []
            for b in bs:
                if (s, b) not in cell.index:
                    parts.append("—")
                    continue
                r = cell.loc[(s, b)]
                parts.append(f"{_f(r['nregret_mean'])} [{_f(r['nregret_lo'])}, {_f(r['nregret_hi'])}]")
            out.append(f"| {s} | " + " | ".join(parts) + " |")
        out.append("")
    return "\n".join(out)


def rank_corr_markdown(st: Stats, budgets: Sequence[int] | None = None) -> str:
    c = st.rank_corr
    if budgets:
        c = c[c["budget"].isin(list(budgets))]
    if c.empty:
        return "(one suite: no rank correlation)\n"
    lines = ["| suite A | suite B | budget | strategies | Spearman ρ | p (ρ = 0) | Kendall τ |",
             "|---|---|---|---|---|---|---|"]
    for r in c.sort_values(["suite_a", "suite_b", "budget"], kind="mergesort").itertuples():
        a = f"{r.suite_a} ({r.base_model_a})" if r.base_model_a else r.suite_a
        b = f"{r.suite_b} ({r.base_model_b})" if r.base_model_b else r.suite_b
        lines.append(f"| {a} | {b} | {r.budget} | {r.n_shared} | {_f(r.spearman, 2)} | {_f(r.spearman_p, 3)} "
                     f"| {_f(r.kendall, 2)} |")
    return "\n".join(lines) + "\n"


def report(st: Stats, budgets: Sequence[int] | None = None, suites: Sequence[str] | None = None) -> str:
    text = regret_markdown(st, budgets, suites)
    if suites is None or len(suites) > 1:
        c = st.rank_corr
        if suites is not None:
            c = c[c["suite_a"].isin(suites) & c["suite_b"].isin(suites)]
        text += "\nRank correlation of the strategies' mean normalised regret between suites\n\n"
        text += rank_corr_markdown(dataclasses.replace(st, rank_corr=c), budgets)
    return text

