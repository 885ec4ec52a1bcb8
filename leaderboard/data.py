"""Several `bench` results folders merged into one leaderboard table (`load_results`), and the budgets as
the tables key them.

Each folder is read and checked by leaderboard/results_folder.py; the suites' cards and the strategies'
descriptions come from leaderboard/descriptions.py. Several folders merge into one leaderboard: the same suite
may appear in several (e.g. a new strategy benchmarked later), but only with the same protocol hash, otherwise
the numbers are not comparable and we refuse. A (suite, strategy, budget, seed) present twice keeps the first
folder's row, so the order of `--results` decides, deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from leaderboard.descriptions import card_for, strategy_info
from leaderboard.results_folder import (
    KEY,
    ONLINE_RUN_KEY,
    ONLINE_STEP_KEY,
    REQUIRED_ONLINE_RUNS,
    ResultsError,
    is_online,
    read_folder,
    read_online,
)


def budget_value(b: Any) -> int | float:
    """A budget as the tables key it: an int when whole (4), else the float (2.5: a fractional budget in
    run-equivalents, multi-fidelity suites), never cast down to an int (that would merge 2.5 with 2)."""
    v = float(b)
    return int(v) if v == int(v) else v


def budget_column(col: pd.Series) -> pd.Series:
    v = pd.to_numeric(col)
    return v.astype(int) if len(v) and bool((v == v.round()).all()) else v.astype(float)


def budget_label(b: Any) -> str:
    """4 -> "4", 2.5 -> "2.5" (labels, file names and CLI arguments alike)."""
    v = budget_value(b)
    return str(v) if isinstance(v, int) else f"{v:g}"


@dataclass
class Results:
    summary: pd.DataFrame
    trajectories: pd.DataFrame
    folders: list[Path]
    benches: list[dict[str, Any]]  # each folder's bench.json, in --results order
    suites: dict[str, dict[str, Any]]  # suite name -> bench.json entry (+ "card", "card_text")
    strategies: dict[str, dict[str, Any]]  # strategy name -> name, description, citation, family, source
    duplicates_dropped: int = 0
    warnings: list[str] = field(default_factory=list)  # shown on every page: something a reader must know
    notes: list[str] = field(default_factory=list)  # shown once, on the data page: how the folders were merged
    # the online track: one row per (suite, strategy, seed, step) with w:<domain>, n:<domain> (online.csv), and one
    # per online run (online_runs.csv); empty where no folder has them
    online_steps: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ONLINE_STEP_KEY))
    online_runs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REQUIRED_ONLINE_RUNS))

    @property
    def suite_names(self) -> list[str]:
        """The offline suites (pool, continuous): those of the per-track tables and rankings."""
        return sorted(n for n, e in self.suites.items() if not is_online(e))

    @property
    def online_suite_names(self) -> list[str]:
        return sorted(n for n, e in self.suites.items() if is_online(e))

    @property
    def strategy_names(self) -> list[str]:
        return sorted(self.strategies)

    def goal(self, suite: str) -> str:
        return self.suites[suite].get("goal", "max")


def _merge_online(frames: list[pd.DataFrame], key: list[str], empty: list[str]) -> pd.DataFrame:
    """Several folders' online tables as one: the first folder's row of a key present twice (as for summary.csv);
    with no rows anywhere, an empty table with the `empty` columns."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=empty)
    df = pd.concat(frames, ignore_index=True)
    df = df.sort_values(key + ["_order"], kind="stable").drop_duplicates(key, keep="first")
    return df.drop(columns="_order").reset_index(drop=True)


def load_results(folders: list[str | Path]) -> Results:
    if not folders:
        raise ResultsError("no results folder given (--results DIR)")
    summaries, trajs, metas, on_steps, on_runs = [], [], [], [], []
    paths = [Path(f) for f in folders]
    for i, folder in enumerate(paths):
        s, t, m = read_folder(folder)
        s = s.assign(_order=i)
        t = t.assign(_order=i)
        summaries.append(s)
        trajs.append(t)
        metas.append(m)
        os_, or_ = read_online(folder)
        on_steps.append(os_.assign(_order=i))
        on_runs.append(or_.assign(_order=i))

    # Suites: same name must mean same protocol everywhere.
    suites: dict[str, dict[str, Any]] = {}
    for m in metas:
        for entry in m.get("suites", []):
            name = entry.get("name")
            if name in suites and suites[name].get("protocol") != entry.get("protocol"):
                raise ResultsError(
                    f"suite {name!r} has protocol {suites[name].get('protocol')} in "
                    f"{suites[name]['_folder']} but {entry.get('protocol')} in {m['_folder']}: the "
                    f"results are not comparable; render them separately"
                )
            suites.setdefault(name, {**entry, "_folder": m["_folder"]})
    summary = pd.concat(summaries, ignore_index=True)
    for name, g in summary.groupby("suite", sort=True):
        protos = sorted(set(g["protocol"].dropna().astype(str)))
        if len(protos) > 1:
            raise ResultsError(
                f"suite {name!r} appears with protocols {protos} across the results folders: the "
                f"results are not comparable; render them separately"
            )
        if name not in suites:  # bench.json missing: rebuild what the summary knows
            row = g.iloc[0]
            suites[name] = {
                "name": name,
                "protocol": protos[0] if protos else "",
                "goal": "max",
                "best_known": row["best_known"],
                "worst_known": row["worst_known"],
                "uniform_score": row["uniform_score"],
                "_folder": str(paths[int(row["_order"])]),
            }
    for name, entry in suites.items():
        entry["card"], entry["card_text"] = card_for(entry)
        entry.setdefault("goal", entry["card"].get("goal", "max"))
        entry.setdefault("metric", entry["card"].get("metric", "score"))
        entry.setdefault("version", str(entry["card"].get("version", "")))
    suites = {k: suites[k] for k in sorted(suites) if k in set(summary["suite"])}

    before = len(summary)
    summary = summary.sort_values(KEY + ["_order"], kind="stable").drop_duplicates(KEY, keep="first")
    dropped = before - len(summary)
    summary = summary.drop(columns="_order").reset_index(drop=True)
    summary["budget"] = budget_column(summary["budget"])
    summary["seed"] = summary["seed"].astype(int)

    traj = pd.concat(trajs, ignore_index=True)
    if len(traj):
        # Keep the trajectory of the study whose summary row was kept.
        kept = (
            pd.concat(summaries, ignore_index=True)
            .sort_values(KEY + ["_order"], kind="stable")
            .drop_duplicates(KEY, keep="first")[KEY + ["_order"]]
        )
        traj["budget"] = pd.to_numeric(traj["budget"]).astype(float)
        traj["seed"] = traj["seed"].astype(int)
        kept["budget"] = pd.to_numeric(kept["budget"]).astype(float)
        kept["seed"] = kept["seed"].astype(int)
        traj = traj.merge(kept, on=KEY + ["_order"], how="inner")
        traj = traj.sort_values(KEY + ["step"], kind="stable").reset_index(drop=True)
        traj["budget"] = budget_column(traj["budget"])
    traj = traj.drop(columns="_order", errors="ignore")

    bench_strats: dict[str, dict] = {}
    for m in metas:
        for entry in m.get("strategies", []):
            bench_strats.setdefault(entry.get("name"), entry)
    unsandboxed = set()
    if "sandboxed" in summary.columns:  # a strategy from a file that ran without the sandbox, in any study
        unsandboxed = set(summary.loc[summary["sandboxed"].astype(str) == "no", "strategy"])
    strategies = {n: strategy_info(n, bench_strats.get(n), n in unsandboxed) for n in sorted(set(summary["strategy"]))}

    notes = []
    if dropped:  # e.g. the same bench folder given twice, or a resumed bench beside its first run: the same studies
        notes.append(
            f"{dropped} {'study' if dropped == 1 else 'studies'} appeared in more than one results folder "
            f"(same suite, protocol, strategy, budget and seed); merged, keeping the first folder's "
            f"({', '.join(Path(f).name for f in paths)}, in that order)."
        )
    return Results(
        summary,
        traj,
        paths,
        metas,
        suites,
        strategies,
        dropped,
        [],
        notes,
        online_steps=_merge_online(on_steps, ONLINE_STEP_KEY, ONLINE_STEP_KEY),
        online_runs=_merge_online(on_runs, ONLINE_RUN_KEY, REQUIRED_ONLINE_RUNS),
    )


def offline_only(results: Results) -> Results:
    """The results without the online suites: what the per-track tables, rankings and correlations are computed
    on (an online suite has one training run per seed and no budget; it is compared in its own section)."""
    import dataclasses

    keep = set(results.suite_names)
    return dataclasses.replace(
        results,
        summary=results.summary[results.summary["suite"].isin(keep)].reset_index(drop=True),
        trajectories=results.trajectories[results.trajectories["suite"].isin(keep)].reset_index(drop=True),
        suites={n: e for n, e in results.suites.items() if n in keep},
    )
