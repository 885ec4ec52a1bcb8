"""Plain-text tables of the leaderboard's statistics, for papers, issue notes and terminals.

`modomodo leaderboard table --results DIR` prints, per suite, the mean normalised regret of every
strategy at the chosen budgets with its 95% t-interval (the same numbers as the site), then what the
cells can support: the judge's verdict (can the suite rank?), the smallest regret difference its
seeds detect, and whether the lowest mean is separable from every other strategy there (paired,
Holm-corrected; leaderboard/within_suite.py). Nothing claims "signal, not noise" for cells whose
differences the suite's seeds cannot resolve. Then the rank correlation of strategy orderings between
suites (e.g. two base models), with its bootstrap interval.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from leaderboard.data import budget_label, budget_value
from leaderboard.ranking import suite_can_rank
from leaderboard.stats import Stats

Cards = Mapping[str, Mapping[str, Any]]  # suite name -> its bench.json entry (with "card"), or its card alone


def _f(v: float, digits: int = 3) -> str:
    return "—" if v is None or not math.isfinite(float(v)) else f"{float(v):.{digits}f}"


def _entry(cards: Cards | None, suite: str) -> dict[str, Any]:
    e = dict((cards or {}).get(suite) or {})
    return e if ("can_rank" in e or "card" in e) else {"card": e}


def verdict_line(st: Stats, suite: str, budget, entry: Mapping[str, Any] | None) -> str:
    """What the suite's cells support at `budget`, in words: the judge's verdict, the MDD, the separable best."""
    ok, why = suite_can_rank(dict(entry or {}))
    ev = st.suite_evidence
    row = None
    if ev is not None and len(ev):
        hit = ev[(ev["suite"] == suite) & (ev["budget"] == budget)]
        row = hit.iloc[0] if len(hit) else None
    head = (
        f"The judge: this suite can rank ({why})."
        if ok
        else f"The judge: this suite CANNOT rank mixtures ({why}); its cells enter no ranking."
    )
    if row is None:
        return head
    mdd = (
        f" At budget {budget_label(budget)} its {int(row['n_seeds'])} seeds detect a regret difference of "
        f"{_f(row['mdd'])} (paired t-test, 80% power); a difference of 0.01 would need "
        f"{row['seeds_for_target'] if row['seeds_for_target'] is not None and row['seeds_for_target'] == row['seeds_for_target'] else 'more than 100000'} seeds."
    )
    if ok and row["best"]:
        best = f" {row['best']} is best here, separable from every other strategy (sign-flip test, Holm)."
    elif row["runner_up"]:
        best = (
            f" The lowest mean is not separable from every other strategy (largest Holm-adjusted p "
            f"{_f(row['best_p_holm'])}; runner-up {row['runner_up']}): the order of the top rows is not established."
        )
    else:
        best = ""
    return head + mdd + best


def _cannot_rank(cards: Cards | None, suite: str) -> bool:
    return not suite_can_rank(_entry(cards, suite))[0]


def regret_markdown(
    st: Stats, budgets: Sequence[int] | None = None, suites: Sequence[str] | None = None, cards: Cards | None = None
) -> str:
    """One markdown table per suite: strategies (best first at the largest budget) × budgets,
    each cell `mean [lo, hi]` of the normalised regret (lower is better), then what the cells support
    (verdict_line) at the largest budget shown."""
    t = st.table
    out = []
    for suite in suites or sorted(set(t["suite"])):
        g = t[t["suite"] == suite]
        if g.empty:
            raise ValueError(f"no results for suite {suite!r}; found {sorted(set(t['suite']))}")
        have = {budget_value(b) for b in g["budget"]}
        bs = [budget_value(b) for b in (budgets or sorted(have)) if budget_value(b) in have]
        if not bs:
            raise ValueError(
                f"suite {suite!r} has none of the budgets {list(budgets or [])}; it has {sorted(set(g['budget']))}"
            )
        last = g[g["budget"] == bs[-1]].set_index("strategy")["nregret_mean"]
        order = sorted(
            set(g["strategy"]), key=lambda s: (not math.isfinite(last.get(s, math.nan)), last.get(s, math.inf), s)
        )
        seeds = int(g["n_seeds"].max())
        out.append(f"**{suite}**: mean normalised regret [95% CI], {seeds} seeds (lower is better)\n")
        out.append("| strategy | " + " | ".join(f"budget {budget_label(b)}" for b in bs) + " |")
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
        out += ["", verdict_line(st, suite, bs[-1], _entry(cards, suite))]
        out.append("")
    return "\n".join(out)


def rank_corr_markdown(st: Stats, budgets: Sequence[int] | None = None, cards: Cards | None = None) -> str:
    c = st.rank_corr
    if budgets:
        c = c[c["budget"].isin(list(budgets))]
    if c.empty:
        return "(one suite: no rank correlation)\n"
    lines = [
        "| suite A | suite B | budget | strategies | Spearman ρ [95% CI] | p (ρ = 0) | Kendall τ |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in c.sort_values(["suite_a", "suite_b", "budget"], kind="mergesort").itertuples():
        a = f"{r.suite_a} ({r.base_model_a})" if r.base_model_a else r.suite_a
        b = f"{r.suite_b} ({r.base_model_b})" if r.base_model_b else r.suite_b
        a += " †" if _cannot_rank(cards, r.suite_a) else ""
        b += " †" if _cannot_rank(cards, r.suite_b) else ""
        ci = f" [{_f(r.spearman_lo, 2)}, {_f(r.spearman_hi, 2)}]" if math.isfinite(r.spearman_lo) else ""
        lines.append(
            f"| {a} | {b} | {budget_label(r.budget)} | {r.n_shared} | {_f(r.spearman, 2)}{ci} | {_f(r.spearman_p, 3)} "
            f"| {_f(r.kendall, 2)} |"
        )
    if any(_cannot_rank(cards, n) for n in set(c["suite_a"]) | set(c["suite_b"])):
        lines.append(
            "\n† cannot rank mixtures (the judge's verdict): a correlation involving it may be mostly "
            "between seed noise."
        )
    return "\n".join(lines) + "\n"


def report(
    st: Stats, budgets: Sequence[int] | None = None, suites: Sequence[str] | None = None, cards: Cards | None = None
) -> str:
    text = regret_markdown(st, budgets, suites, cards)
    if suites is None and st.rankings:  # what the suites that can rank separate, at the largest budget shown
        have = sorted({budget_value(r.budget) for r in st.rankings})
        top = max((budget_value(b) for b in (budgets or have) if budget_value(b) in have), default=None)
        lines = [f"- {r.sentence}" for r in st.rankings if top is not None and budget_value(r.budget) == top]
        if lines:
            text += (
                f"\nAcross suites (budget {budget_label(top)}; suites are the unit of evidence)\n\n"
                + "\n".join(lines)
                + "\n"
            )
    if suites is None or len(suites) > 1:
        c = st.rank_corr
        if suites is not None:
            c = c[c["suite_a"].isin(suites) & c["suite_b"].isin(suites)]
        text += "\nRank correlation of the strategies' mean normalised regret between suites\n\n"
        text += rank_corr_markdown(dataclasses.replace(st, rank_corr=c), budgets, cards)
    if suites is None and cards is not None:  # the same correlations between the RLVR suites that can rank, by pair
        from leaderboard.cross_base import cross_base_markdown, cross_base_table

        text += "\nCross-base table: the RLVR suites that can rank, by what varies between them\n\n"
        entries = {n: _entry(cards, n) for n in cards}
        text += cross_base_markdown(cross_base_table(st.rank_corr, entries), budgets)
    return text
