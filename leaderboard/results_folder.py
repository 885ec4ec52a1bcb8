"""One `bench` results folder, read and checked: every file a table the leaderboard can trust, or a one-line error.

A results folder (harness/bench/folder.py writes it) holds `summary.csv` (one row per study), `trajectories.csv`
(one row per pilot run) and `bench.json` (what was run); a folder of the online track also `online.csv` (the
weights every training step drew its prompts with) and `online_runs.csv` (one row per online run, with every
score it measured and its overhead). A file cut short, a missing column, or text in a number column would
otherwise turn into NaN and silently shift a mean: each is refused here, naming the file, the column and the
line, and how to rewrite the file from the store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

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
# the online track (harness/suites/online_track.py steps_frame, runs_frame): optional files
ONLINE_TRACK = "online"
ONLINE_STEP_KEY = ["suite", "strategy", "seed", "step"]
ONLINE_RUN_KEY = ["suite", "strategy", "seed"]
REQUIRED_ONLINE_RUNS = ["suite", "strategy", "seed", "status", "score", "cost_used"]
# online_runs.csv: every other column holds a number (the timings and each score the run measured)
TEXT_ONLINE_RUNS = ["suite", "strategy", "status", "reason"]
WEIGHT_PREFIX, PROMPTS_PREFIX = "w:", "n:"


class ResultsError(ValueError):
    """A results folder that is missing, incomplete, or inconsistent with the others."""


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


def read_online(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
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


def read_folder(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(summary, trajectories, bench.json) of one folder, every row checked; an empty trajectories table where the
    folder has none, and `_folder` added to bench.json's dict (which folder said it)."""
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
