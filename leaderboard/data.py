"""Reading `bench` output folders into one table, plus what the site says about strategies and suites.

A results folder holds `summary.csv`, `trajectories.csv` and `bench.json` (see harness/bench.py); a folder of
the online track also `online.csv` (the weights every training step drew its prompts with) and
`online_runs.csv` (one row per online run, with every score it measured and its overhead).
Several folders merge into one leaderboard: the same suite may appear in several (e.g. a new
strategy benchmarked later), but only with the same protocol hash, otherwise the numbers are not
comparable and we refuse. A (suite, strategy, budget, seed) present twice keeps the first folder's
row, so the order of `--results` decides, deterministically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

KEY = ["suite", "strategy", "budget", "seed"]
REQUIRED_SUMMARY = [
    "suite",
    "strategy",
    "budget",
    "seed",
    "score",
    "normalized_regret",
    "uniform_score",
    "best_known",
    "worst_known",
    "status",
    "protocol",
]
# columns that must hold a number wherever they are not empty (a failed study leaves its scores empty)
NUMERIC_SUMMARY = [
    "budget",
    "seed",
    "score",
    "regret",
    "normalized_regret",
    "uniform_score",
    "best_known",
    "worst_known",
    "gain_over_uniform",
    "runs_used",
    "runs_failed",
    "wall_s",
]
NUMERIC_TRAJECTORIES = ["budget", "seed", "step", "value", "best_so_far"]
# columns no row may leave empty (an empty one is a row cut short)
COMPLETE_SUMMARY = ["suite", "strategy", "budget", "seed", "status", "protocol"]
COMPLETE_TRAJECTORIES = ["suite", "strategy", "budget", "seed", "step"]
# the online track (harness/online_track.py steps_frame, runs_frame): optional files
ONLINE_TRACK = "online"
ONLINE_STEP_KEY = ["suite", "strategy", "seed", "step"]
ONLINE_RUN_KEY = ["suite", "strategy", "seed"]
REQUIRED_ONLINE_RUNS = ["suite", "strategy", "seed", "status", "score", "cost_used"]
# online_runs.csv: every other column holds a number (the timings and each score the run measured)
TEXT_ONLINE_RUNS = ["suite", "strategy", "status", "reason"]
WEIGHT_PREFIX, PROMPTS_PREFIX = "w:", "n:"


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


class ResultsError(ValueError):
    """A results folder that is missing, incomplete, or inconsistent with the others."""


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


def is_online(entry: dict[str, Any]) -> bool:
    """A suite entry of the online track (one training run per seed, the weights changing during it)."""
    return str(entry.get("track") or "") == ONLINE_TRACK or str(entry.get("name") or "").endswith(f":{ONLINE_TRACK}")


def live_suite_name(entry: dict[str, Any]) -> str:
    """The live suite an online suite trained on: `minimodo-tiny-live:online` -> `minimodo-tiny-live`."""
    name = str(entry.get("name") or "")
    suffix = f":{ONLINE_TRACK}"
    return str(entry.get("suite") or (name[: -len(suffix)] if name.endswith(suffix) else name))


def _require(df: pd.DataFrame, path: Path, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ResultsError(
            f"{path}: lacks columns {missing} (a cut-short or foreign file? `modomodo bench "
            f"--out {path.parent}` rewrites it from the store)"
        )


def _read_online(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """online.csv and online_runs.csv when the folder has them (an offline-only folder has neither: two
    empty tables). Columns are checked like summary.csv's: a missing one or text in a number column
    is an error naming the file, the column and the line."""
    steps = pd.DataFrame(columns=ONLINE_STEP_KEY)
    runs = pd.DataFrame(columns=REQUIRED_ONLINE_RUNS)
    steps_path = folder / "online.csv"
    if steps_path.is_file():
        steps = _read_csv(steps_path, {"suite": str, "strategy": str})
        _require(steps, steps_path, ONLINE_STEP_KEY)
        weights = [c for c in steps.columns if c.startswith(WEIGHT_PREFIX)]
        if not weights:
            raise ResultsError(
                f"{steps_path}: has no weight column (valid: one `{WEIGHT_PREFIX}<domain>` column per "
                f"domain, from `modomodo bench --track online`)"
            )
        numeric = ["seed", "step"] + [c for c in steps.columns if c.startswith((WEIGHT_PREFIX, PROMPTS_PREFIX))]
        _check_rows(steps, steps_path, numeric, ONLINE_STEP_KEY)
        steps["seed"], steps["step"] = steps["seed"].astype(int), steps["step"].astype(int)
    runs_path = folder / "online_runs.csv"
    if runs_path.is_file():
        runs = _read_csv(runs_path, {c: str for c in TEXT_ONLINE_RUNS})
        _require(runs, runs_path, REQUIRED_ONLINE_RUNS)
        _check_rows(
            runs, runs_path, [c for c in runs.columns if c not in TEXT_ONLINE_RUNS], ONLINE_RUN_KEY + ["status"]
        )
        runs["seed"] = runs["seed"].astype(int)
    return steps, runs


def _merge_online(frames: list[pd.DataFrame], key: list[str], empty: list[str]) -> pd.DataFrame:
    """Several folders' online tables as one: the first folder's row of a key present twice (as for summary.csv);
    with no rows anywhere, an empty table with the `empty` columns."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=empty)
    df = pd.concat(frames, ignore_index=True)
    df = df.sort_values(key + ["_order"], kind="stable").drop_duplicates(key, keep="first")
    return df.drop(columns="_order").reset_index(drop=True)


def _read_folder(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    if not folder.is_dir():
        raise ResultsError(f"results folder {str(folder)!r} does not exist")
    summary_path = folder / "summary.csv"
    if not summary_path.is_file():
        raise ResultsError(
            f"{str(folder)!r} is not a bench results folder: it has no summary.csv "
            f"(make one with `modomodo bench ... --out {folder}`)"
        )
    summary = _read_csv(summary_path, {"suite": str, "strategy": str, "protocol": str})
    missing = [c for c in REQUIRED_SUMMARY if c not in summary.columns]
    if missing:
        raise ResultsError(
            f"{summary_path}: lacks columns {missing} (a cut-short or foreign file? `modomodo bench "
            f"--out {folder}` rewrites it from the store)"
        )
    _check_rows(summary, summary_path, NUMERIC_SUMMARY, COMPLETE_SUMMARY)
    traj_path = folder / "trajectories.csv"
    if traj_path.is_file() and traj_path.stat().st_size > 0:
        traj = _read_csv(traj_path, {"suite": str, "strategy": str})
        missing = [c for c in COMPLETE_TRAJECTORIES + ["value", "best_so_far"] if c not in traj.columns]
        if missing:
            raise ResultsError(
                f"{traj_path}: lacks columns {missing} (a cut-short or foreign file? `modomodo bench "
                f"--out {folder}` rewrites it from the store)"
            )
        _check_rows(traj, traj_path, NUMERIC_TRAJECTORIES, COMPLETE_TRAJECTORIES)
        _check_counts(summary, traj, summary_path, traj_path)
    else:
        traj = pd.DataFrame(columns=KEY + ["step", "value", "best_so_far", "status", "mixture"])
    bench_path = folder / "bench.json"
    meta: dict = {}
    if bench_path.is_file():
        try:
            meta = json.loads(bench_path.read_text())
        except json.JSONDecodeError as e:
            raise ResultsError(f"{bench_path}: invalid JSON: {e}") from None
    meta["_folder"] = str(folder)
    return summary, traj, meta


def _read_csv(path: Path, dtype: dict[str, Any]) -> pd.DataFrame:
    """A results CSV; an empty, cut-short or unreadable one is a ResultsError naming the file."""
    rebuild = f"`modomodo bench ... --out {path.parent}` rewrites it from the store"
    with open(path, "rb") as f:  # bench writes whole files ending in a newline: anything else was cut short
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 1))
        if size and f.read(1) != b"\n":
            raise ResultsError(f"{path}: the file is cut short (its last line is incomplete); {rebuild}")
    try:
        df = pd.read_csv(path, dtype=dtype, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise ResultsError(f"{path}: the file is empty; {rebuild}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise ResultsError(
            f"{path}: not a readable CSV, cut short? ({str(e).strip().splitlines()[-1]}); {rebuild}"
        ) from None
    return df


def _check_rows(df: pd.DataFrame, path: Path, numeric: list[str], complete: list[str]) -> None:
    """Every non-empty value of a numeric column is a number, and no row leaves a key column empty:
    text in a score column would otherwise turn into NaN and silently shift a mean."""
    for c in complete:
        if c in df.columns and df[c].isna().any():
            i = int(df[c].isna().to_numpy().argmax())
            raise ResultsError(
                f"{path}: line {i + 2} (data row {i + 1}) has no {c!r} (a row cut short?); "
                f"`modomodo bench ... --out {path.parent}` rewrites the file from the store"
            )
    for c in numeric:
        if c not in df.columns:
            continue
        values = pd.to_numeric(df[c], errors="coerce")
        bad = (values.isna() & df[c].notna()).to_numpy()
        if bad.any():
            i = int(bad.argmax())
            raise ResultsError(
                f"{path}: column {c!r}, line {i + 2} (data row {i + 1}): {df[c].iloc[i]!r} is not a "
                f"number (valid: a number, or empty for a failed study)"
            )
        df[c] = values


def _check_counts(summary: pd.DataFrame, traj: pd.DataFrame, summary_path: Path, traj_path: Path) -> None:
    """trajectories.csv holds one row per pilot run of each study: as many as summary.csv's runs_used
    (a trajectories file cut at a line boundary would otherwise lose a study's curve silently)."""
    if "runs_used" not in summary.columns:
        return
    have = traj.groupby(KEY).size()
    for i, row in enumerate(summary.itertuples(index=False)):
        need = getattr(row, "runs_used")
        if pd.isna(need):
            continue
        got = int(have.get(tuple(getattr(row, k) for k in KEY), 0))
        if got != int(need):
            study = ", ".join(f"{k} {getattr(row, k)}" for k in KEY)
            raise ResultsError(
                f"{traj_path}: holds {got} pilot runs of the study on line {i + 2} of {summary_path.name} "
                f"({study}), which used {int(need)}: cut short? `modomodo bench ... --out "
                f"{traj_path.parent}` rewrites it from the store"
            )


def _card_for(entry: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The suite's card: from the folder bench.json names, else the registered suite of that name."""
    candidates = []
    # an online suite's card is the card of the live suite it trained on
    want = live_suite_name(entry) if is_online(entry) else entry.get("name")
    if entry.get("path"):
        candidates.append(Path(entry["path"]) / "card.yaml")
    try:
        from harness import suites

        folder = suites.registered().get(want or "")
        if folder is not None:
            candidates.append(Path(folder) / "card.yaml")
    except Exception:  # noqa: BLE001 - a broken suite path must not stop the leaderboard
        pass
    for c in candidates:
        if c.is_file():
            text = c.read_text()
            try:
                card = yaml.safe_load(text) or {}
            except yaml.YAMLError:
                continue
            if isinstance(card, dict) and str(card.get("name", want)) == want:
                return card, text
    return {}, ""


def signal_view(card: dict[str, Any]) -> dict[str, Any]:
    """The card's `signal:` block (recorded suites, harness/factory/export.py): can the suite rank mixtures?
    `can_rank` is None for suites without one (synthetic suites: exact; the paper's: one seed)."""
    signal = card.get("signal") if isinstance(card.get("signal"), dict) else {}
    rows = []
    for metric, s in signal.items():
        if not isinstance(s, dict):
            continue
        rows.append(
            {
                "metric": str(metric),
                "snr_mean": s.get("snr_mean"),
                "snr_mean_ci": s.get("snr_mean_ci"),
                "ci_level": s.get("ci_level", 0.9),
                "snr_single": s.get("snr_single"),
                "mixtures": s.get("mixtures"),
                "seeds": s.get("seeds_per_mixture"),
                "target": s.get("target", 3.0),
                "can_rank": bool(s.get("can_rank")),
                "by_seeds": s.get("by_seeds") or [],
                "seeds_for_target": s.get("seeds_for_target"),
            }
        )
    main = next((r for r in rows if r["metric"] == card.get("metric")), None)
    return {
        "signal": rows,
        "can_rank": None if main is None else main["can_rank"],
        "signal_main": main,
        "signal_notes": str(card.get("signal_notes") or ""),
        **fidelity_signal_view(card),
    }


def fidelity_signal_view(card: dict[str, Any]) -> dict[str, Any]:
    """The card's `fidelities:` block (a multi-fidelity recorded suite, `export_suite`): per objective, the SNR
    of the per-mixture mean at every fidelity and the Spearman correlation of per-mixture means with full
    fidelity (does a partial run rank the mixtures as the full one does?). Empty for other suites."""
    block = card.get("fidelities") if isinstance(card.get("fidelities"), dict) else {}
    levels = [float(f) for f in block.get("levels") or []]
    signal = block.get("signal") if isinstance(block.get("signal"), dict) else {}
    corr = block.get("rank_correlation") if isinstance(block.get("rank_correlation"), dict) else {}
    if not levels or not signal:
        return {"fidelity_levels": [], "fidelity_signal": []}

    def at(d: dict, f: float) -> dict:  # keys are the levels as the card wrote them ("0.25", "1.0")
        v = d.get(str(f)) if isinstance(d.get(str(f)), dict) else d.get(f"{f:g}")
        return v if isinstance(v, dict) else {}

    metrics = list(dict.fromkeys(m for f in levels for m in at(signal, f)))
    metrics.sort(key=lambda m: m != card.get("metric"))  # the suite's objective first
    rows = []
    for m in metrics:
        cells = []
        for f in levels:
            s = at(signal, f).get(m) or {}
            r = at(corr, f).get(m) or {}
            cells.append(
                {
                    "fidelity": f,
                    "snr_mean": s.get("snr_mean"),
                    "snr_mean_ci": s.get("snr_mean_ci"),
                    "seeds": s.get("seeds_per_mixture"),
                    "can_rank": s.get("can_rank"),
                    "spearman": None if f == max(levels) else r.get("spearman_with_full"),
                }
            )
        rows.append({"metric": str(m), "primary": m == card.get("metric"), "cells": cells})
    return {"fidelity_levels": levels, "fidelity_signal": rows}


def strategy_info(name: str, fallback: dict[str, Any] | None, unsandboxed: bool = False) -> dict[str, Any]:
    """Family, description and citation: from the strategy class when importable, else bench.json; and, for a
    strategy from a file, its provenance (file, sha256, sandboxed) from bench.json and summary.csv."""
    fallback = fallback or {}
    prov = {
        "file": str(fallback.get("file") or ""),
        "sha256": str(fallback.get("sha256") or ""),
        "sandboxed": "no" if unsandboxed else str(fallback.get("sandboxed") or ""),
    }
    if prov["file"]:  # a strategy from a file: bench.json describes the code that ran
        return {
            "name": name,
            "description": str(fallback.get("description") or ""),
            "citation": str(fallback.get("citation") or ""),
            "family": str(fallback.get("family") or "other"),
            "source": "file",
            **prov,
        }
    try:
        import strategies

        cls = strategies.get(name)
        return {
            "name": name,
            "description": str(cls.description or fallback.get("description", "")),
            "citation": str(cls.citation or fallback.get("citation", "")),
            "family": str(cls.family or fallback.get("family") or "other"),
            "source": "class",
            "limitations": str(getattr(cls, "limitations", "") or ""),
            **prov,
        }
    except Exception:  # noqa: BLE001 - not importable here (e.g. came from a --strategy-file)
        return {
            "name": name,
            "description": str(fallback.get("description") or ""),
            "citation": str(fallback.get("citation") or ""),
            "family": str(fallback.get("family") or "other"),
            "source": "bench.json",
            **prov,
        }


def load_results(folders: list[str | Path]) -> Results:
    if not folders:
        raise ResultsError("no results folder given (--results DIR)")
    summaries, trajs, metas, on_steps, on_runs = [], [], [], [], []
    paths = [Path(f) for f in folders]
    for i, folder in enumerate(paths):
        s, t, m = _read_folder(folder)
        s = s.assign(_order=i)
        t = t.assign(_order=i)
        summaries.append(s)
        trajs.append(t)
        metas.append(m)
        os_, or_ = _read_online(folder)
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
        entry["card"], entry["card_text"] = _card_for(entry)
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
