"""The cross-base table (issue 27, item 6): does the strategies' order carry over between base models on the
same task set, and between task sets on the same base model? Over the RLVR suites that can rank.

- **Which suites.** Those of the RLVR family (leaderboard.ranking.suite_family) that can rank by the judge's
  verdict in bench.json (leaderboard.ranking.suite_can_rank): the same suites the RLVR ranking is made over, so
  a suite exported later (the issue-27 sweeps) joins both as soon as it is benched and its verdict says it ranks.
- **Base and task set from the card, never from the name.** A recorded suite's card carries the protocol its
  live suite ran (`protocol.protocol_config`, a live card's own `protocol_config`; harness.training.config.
  ProtocolConfig): the base model's architecture family (`base.family`) and width (`base.hidden`), and the
  task set (`base.task_set`, the corpus the base was warmed up on) with the card's `datasets`, the training
  domains. A card without one (a hub model's suite) names its model (`protocol.base_model`): that name is its
  family, its width unknown.
- **Descriptive pairs on request.** `descriptive=True` (`leaderboard cross-base --descriptive`) keeps every RLVR
  suite, rankable or not, with each suite's verdict beside the pair: the correlation of two suites that cannot
  rank is the order of strategies whose differences the judge found within noise, shown for the user who asks
  "does anything carry over", never pooled into the ranking.
- **Which numbers.** Each pair's row of Stats.rank_corr, unchanged: Spearman's ρ of the strategies' mean
  normalised regrets over the strategies both suites ran, its bootstrap interval (strategies and each suite's
  seeds resampled), its p-value, Kendall's τ, at every budget.
- **The pair's label.** Two suites share a base when family and width are equal, a task set when the
  task-set name and the set of training domains are equal:
  "across base, same task set", "across task set, same base", and otherwise "other" (same base and task set
  with another objective or protocol; both differ; or the card does not say). The objectives of the two suites
  are printed beside it: a pair across bases whose objectives differ also varies the objective.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from leaderboard.data import budget_label
from leaderboard.ranking import suite_can_rank, suite_family

ACROSS_BASE = "across base, same task set"
ACROSS_TASK_SET = "across task set, same base"
OTHER_SAME_BOTH = "other: same base and task set"
OTHER_BOTH_DIFFER = "other: base and task set differ"
OTHER_UNKNOWN = "other: the card does not say"
PAIR_KINDS = (ACROSS_BASE, ACROSS_TASK_SET, OTHER_SAME_BOTH, OTHER_BOTH_DIFFER, OTHER_UNKNOWN)
CORR_COLUMNS = ("n_shared", "spearman", "spearman_lo", "spearman_hi", "spearman_p", "kendall")  # Stats.rank_corr's
COLUMNS = [
    "pair",
    "suite_a",
    "suite_b",
    "budget",
    "base_a",
    "base_b",
    "task_set_a",
    "task_set_b",
    "metric_a",
    "metric_b",
    "ranks_a",
    "ranks_b",
    *CORR_COLUMNS,
]


@dataclass(frozen=True)
class SuiteIdentity:
    """What a suite's card says it was made of."""

    family: str  # the base's architecture family ('qwen2vl', 'idefics3') or a hub model's name; '' unknown
    width: int | None  # the base's hidden size (None: not on the card)
    base: str  # the base's label on the card (e.g. tiny-h64-cur)
    task_set: str  # the task set the protocol trains on and the base was warmed up on ('' not on the card)
    datasets: tuple[str, ...]  # the card's training domains, in the card's order
    metric: str

    @property
    def base_label(self) -> str:
        if not self.family:
            return self.base or "?"
        return f"{self.family} h{self.width}" if self.width else self.family

    @property
    def task_set_label(self) -> str:
        n = len(self.datasets)
        return f"{self.task_set} ({n} domains)" if self.task_set else (f"{n} domains" if n else "?")


def _protocol_config(card: Mapping[str, Any]) -> Any:
    """The card's ProtocolConfig (a recorded card: `protocol.protocol_config`; a live card: `protocol_config`),
    or None where there is none or it does not parse (then the card's named base model is all we know)."""
    proto = card.get("protocol") if isinstance(card.get("protocol"), dict) else {}
    raw = proto.get("protocol_config") if isinstance(proto.get("protocol_config"), dict) else None
    raw = raw if raw is not None else card.get("protocol_config")
    if not isinstance(raw, dict):
        return None
    from harness.training.config import ProtocolConfig

    try:
        return ProtocolConfig.from_dict(raw)
    except (ValueError, TypeError):  # a preset or base this checkout does not know
        return None


def identity(entry: Mapping[str, Any]) -> SuiteIdentity:
    """A results entry's (bench.json's, with its "card") base model and task set, from its card alone."""
    card = entry.get("card") if isinstance(entry.get("card"), dict) else {}
    proto = card.get("protocol") if isinstance(card.get("protocol"), dict) else {}
    named = str(proto.get("base_model") or card.get("base_model") or "")
    datasets = tuple(str(d) for d in card.get("datasets") or [])
    metric = str(card.get("metric") or entry.get("metric") or "")
    cfg = _protocol_config(card)
    if cfg is not None and cfg.model == "tiny":
        b = cfg.base
        return SuiteIdentity(b.family, int(b.hidden), named or b.name, b.task_set, datasets, metric)
    family = cfg.model if cfg is not None else named  # a hub model: its name is its family, its width unknown
    return SuiteIdentity(family, None, named or family, "", datasets, metric)


def pair_kind(a: SuiteIdentity, b: SuiteIdentity) -> str:
    if not (a.family and b.family and a.datasets and b.datasets):
        return OTHER_UNKNOWN
    same_base = (a.family, a.width) == (b.family, b.width)
    same_tasks = (a.task_set, frozenset(a.datasets)) == (b.task_set, frozenset(b.datasets))
    if same_tasks:
        return OTHER_SAME_BOTH if same_base else ACROSS_BASE
    return ACROSS_TASK_SET if same_base else OTHER_BOTH_DIFFER


def rankable_rlvr(entries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The suites the RLVR ranking is made over: family rlvr and the judge's verdict says they can rank."""
    return [n for n in rlvr_suites(entries, descriptive=True) if suite_can_rank(dict(entries[n]))[0]]


def rlvr_suites(entries: Mapping[str, Mapping[str, Any]], descriptive: bool = False) -> list[str]:
    """The suites the table pairs: the rankable RLVR suites, or with `descriptive` every RLVR suite."""
    if not descriptive:
        return rankable_rlvr(entries)
    return sorted(n for n, e in entries.items() if suite_family(dict(e)) == "rlvr")


def cross_base_table(
    rank_corr: pd.DataFrame, entries: Mapping[str, Mapping[str, Any]], descriptive: bool = False
) -> pd.DataFrame:
    """Every pair of rankable RLVR suites in `rank_corr` (Stats.rank_corr), labelled by what varies between them:
    across bases first, then across task sets, then the others; by suite names and budget within each.
    `descriptive`: every RLVR suite's pairs, with each suite's verdict in ranks_a / ranks_b."""
    keep = set(rlvr_suites(entries, descriptive))
    ranks = set(rankable_rlvr(entries))
    ids = {n: identity(entries[n]) for n in keep}
    rows = []
    for r in rank_corr.itertuples(index=False):
        if r.suite_a not in keep or r.suite_b not in keep:
            continue
        a, b = ids[r.suite_a], ids[r.suite_b]
        rows.append(
            {
                "pair": pair_kind(a, b),
                "suite_a": r.suite_a,
                "suite_b": r.suite_b,
                "budget": r.budget,
                "base_a": a.base_label,
                "base_b": b.base_label,
                "task_set_a": a.task_set_label,
                "task_set_b": b.task_set_label,
                "metric_a": a.metric,
                "metric_b": b.metric,
                "ranks_a": r.suite_a in ranks,
                "ranks_b": r.suite_b in ranks,
                **{c: getattr(r, c) for c in CORR_COLUMNS},
            }
        )
    out = pd.DataFrame(rows, columns=COLUMNS)
    if len(out):
        order = out["pair"].map(PAIR_KINDS.index)
        out = out.assign(_o=order).sort_values(["_o", "suite_a", "suite_b", "budget"], kind="mergesort")
        out = out.drop(columns="_o").reset_index(drop=True)
    return out


def _f(v: Any, digits: int = 2) -> str:
    return "—" if v is None or not math.isfinite(float(v)) else f"{float(v):.{digits}f}"


def cross_base_markdown(table: pd.DataFrame, budgets: Sequence[Any] | None = None) -> str:
    """The table as markdown (one row per pair and budget), for a terminal, a paper or an issue note."""
    t = table if not budgets else table[table["budget"].isin(list(budgets))]
    if t.empty:
        return "(fewer than two RLVR suites that can rank: no cross-base pair)\n"
    # a table with a pair whose suite cannot rank (descriptive) says so on every row: a reader copies rows
    verdicts = not bool(t["ranks_a"].all() and t["ranks_b"].all())
    lines = [
        "| pair | suite A (base, task set) | suite B (base, task set) | objective | budget | strategies "
        "| Spearman ρ [95% CI] | p (ρ = 0) | Kendall τ |" + (" can rank (A, B) |" if verdicts else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if verdicts else ""),
    ]
    for r in t.itertuples(index=False):
        obj = r.metric_a if r.metric_a == r.metric_b else f"{r.metric_a} / {r.metric_b}"
        ci = f" [{_f(r.spearman_lo)}, {_f(r.spearman_hi)}]" if math.isfinite(float(r.spearman_lo)) else ""
        verdict = f" {'yes' if r.ranks_a else 'no'}, {'yes' if r.ranks_b else 'no'} |" if verdicts else ""
        lines.append(
            f"| {r.pair} | {r.suite_a} ({r.base_a}, {r.task_set_a}) | {r.suite_b} ({r.base_b}, {r.task_set_b}) "
            f"| {obj} | {budget_label(r.budget)} | {r.n_shared} | {_f(r.spearman)}{ci} | {_f(r.spearman_p, 3)} "
            f"| {_f(r.kendall)} |{verdict}"
        )
    if verdicts:
        lines += [
            "",
            "A pair with a suite that cannot rank is descriptive: the judge found that suite's strategy "
            "differences within its seed noise, so its order is not evidence and joins no ranking.",
        ]
    return "\n".join(lines) + "\n"


def compute_cross_base(results, descriptive: bool = False) -> pd.DataFrame:
    """The cross-base table of a leaderboard.data.Results: its statistics computed over the rankable RLVR suites
    alone (each pair's correlation and seeded bootstrap depend only on the two suites, so the numbers are those of
    the whole leaderboard's Stats.rank_corr, for a fraction of the work). `descriptive`: over every RLVR suite."""
    import dataclasses

    from leaderboard.stats import compute

    keep = [n for n in rlvr_suites(results.suites, descriptive) if n in set(results.suite_names)]
    if len(keep) < 2:
        return pd.DataFrame(columns=COLUMNS)
    only = dataclasses.replace(
        results,
        summary=results.summary[results.summary["suite"].isin(keep)].reset_index(drop=True),
        trajectories=results.trajectories[results.trajectories["suite"].isin(keep)].reset_index(drop=True),
        suites={n: results.suites[n] for n in keep},
        online_steps=results.online_steps.iloc[0:0],
        online_runs=results.online_runs.iloc[0:0],
    )
    return cross_base_table(compute(only).rank_corr, only.suites, descriptive)
