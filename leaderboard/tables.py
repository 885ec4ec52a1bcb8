"""Plain-text tables of the leaderboard's statistics, for papers, issue notes and terminals.

`modomodo leaderboard table --results DIR` prints, per suite, the mean normalised regret of every
strategy at the chosen budgets with its bootstrap 95% interval (the same numbers as the site), and
the rank correlation of strategy orderings between suites (e.g. two base models). A recorded suite
whose card says its per-mixture means are mostly seed noise (SNR below the target) is flagged under
its table and in the correlations, so that nobody reads a ranking into noise.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from leaderboard.data import signal_view
from leaderboard.stats import Stats

Cards = Mapping[str, Mapping[str, Any]]   # suite name -> its card (Results.suites[name]["card"])


def _f(v: float, digits: int = 3) -> str:
    return "—" if v is None or not math.isfinite(float(v)) else f"{float(v):.{digits}f}"


def signal_line(card: Mapping[str, Any] | None) -> str:
    """The card's verdict on its own signal, one sentence; "" for suites without a `signal:` block
    (synthetic suites are exact; the paper's has one seed per mixture)."""
    v = signal_view(dict(card or {}))
    main = v["signal_main"]
    if main is None:
        return ""
    ci = main.get("snr_mean_ci")
    ci_text = f" [{_f(ci[0], 2)}, {_f(ci[1], 2)}]" if ci else ""
    head = (f"SNR of the per-mixture mean {main['metric']}: {_f(main['snr_mean'], 2)}{ci_text} "
            f"({_f(main['seeds'], 0)} seeds per mixture, target {_f(main['target'], 1)})")
    if main["can_rank"]:
        return f"{head}: differences between mixtures are signal, not seed noise."
    return f"{head}: this suite CANNOT rank mixtures; the differences in this table are mostly seed noise."


def _cannot_rank(cards: Cards | None, suite: str) -> bool:
    return signal_view(dict((cards or {}).get(suite) or {}))["can_rank"] is False


def regret_markdown(st: Stats, budgets: Sequence[int] | None = None, suites: Sequence[str] | None = None,
                    cards: Cards | None = None) -> str:
    """One markdown table per suite: strategies (best first at the largest budget) × budgets,
    each cell `mean [lo, hi]` of the normalised regret (lower is better), then the suite's
    signal verdict when its card has one."""
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
        verdict = signal_line((cards or {}).get(suite))
        if verdict:
            out += ["", verdict]
        out.append("")
    return "\n".join(out)


def rank_corr_markdown(st: Stats, budgets: Sequence[int] | None = None, cards: Cards | None = None) -> str:
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
        a += " †" if _cannot_rank(cards, r.suite_a) else ""
        b += " †" if _cannot_rank(cards, r.suite_b) else ""
        lines.append(f"| {a} | {b} | {r.budget} | {r.n_shared} | {_f(r.spearman, 2)} | {_f(r.spearman_p, 3)} "
                     f"| {_f(r.kendall, 2)} |")
    if any(_cannot_rank(cards, n) for n in set(c["suite_a"]) | set(c["suite_b"])):
        lines.append("\n† cannot rank mixtures (SNR of the per-mixture mean below target): a correlation "
                     "involving it is mostly between seed noise.")
    return "\n".join(lines) + "\n"


def report(st: Stats, budgets: Sequence[int] | None = None, suites: Sequence[str] | None = None,
           cards: Cards | None = None) -> str:
    text = regret_markdown(st, budgets, suites, cards)
    if suites is None or len(suites) > 1:
        c = st.rank_corr
        if suites is not None:
            c = c[c["suite_a"].isin(suites) & c["suite_b"].isin(suites)]
        text += "\nRank correlation of the strategies' mean normalised regret between suites\n\n"
        text += rank_corr_markdown(dataclasses.replace(st, rank_corr=c), budgets, cards)
    return text

