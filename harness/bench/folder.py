"""What a bench writes to its results folder, and how benches that share one folder merge there.

The folder's files are the leaderboard's input (leaderboard/results_folder.py reads them back): `summary.csv`
(one row per study), `trajectories.csv` (one row per pilot run), `bench.json` (what was run) and the study
index `studies.json`. Several benches may write into one folder, one after another or at once: every file
is replaced atomically, the index under a lock, and each file covers every bench run into the folder (an
earlier bench's studies that this one did not redo are kept), so no bench hides another's results.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from harness.sandbox import submission
from harness.store import ResultStore

SUMMARY_COLUMNS = [
    "suite",
    "strategy",
    "budget",
    "seed",
    "track",
    "score",
    "regret",
    "normalized_regret",
    "uniform_score",
    "best_known",
    "worst_known",
    "gain_over_uniform",
    "status",
    "score_source",
    "surrogate_fraction",
    "beyond_best_known",
    "runs_used",
    "runs_failed",
    "cost_used",
    "recommended",
    "reason",
    "wall_s",
    "protocol",
    # provenance of a strategy from a file (harness.sandbox.submission.provenance): name, hash, sandboxed
    "strategy_file",
    "strategy_sha256",
    "sandboxed",
]
TRAJECTORY_COLUMNS = [
    "suite",
    "strategy",
    "budget",
    "seed",
    "step",
    "value",
    "best_so_far",
    "source",
    "status",
    "mixture",
    "run_key",
    # a pilot's fidelity, its cost and the run-equivalents spent after it (multi-fidelity suites)
    "fidelity",
    "cost",
    "spent",
]

STUDY_INDEX = "studies.json"  # (suite, strategy, budget, seed) -> store key, over every bench on this folder


def study_identity(record: dict) -> tuple:
    """(suite, strategy, budget, seed): what names one study across benches (the study index's key)."""
    return (str(record["suite"]), str(record["strategy"]), float(record["budget"]), int(record["seed"]))


def merge_studies(out: Path, store: ResultStore, keys: dict[tuple, str], records: list[dict]) -> list[dict]:
    """This bench's studies, plus those of earlier benches on the same folder that this one did not redo:
    summary.csv covers every bench run into one --out (two benches with different strategy lists keep both).
    The index (studies.json) maps each study to its store record, under a lock (benches may share a folder)."""
    import fcntl

    lock_path = out / f".{STUDY_INDEX}.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            earlier = json.loads((out / STUDY_INDEX).read_text())["studies"]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            earlier = []
        mine = {study_identity(r) for r in records}
        kept, entries = [], []
        for e in earlier if isinstance(earlier, list) else []:
            try:
                ident = (str(e["suite"]), str(e["strategy"]), float(e["budget"]), int(e["seed"]))
            except (KeyError, TypeError, ValueError):
                continue
            if ident in mine:
                continue
            rec = store.get_study(str(e.get("key", "")))
            if rec is None:  # gone from the store (quarantined): left out, its next bench redoes it
                continue
            kept.append(rec)
            entries.append(e)
        for r in records:
            k = keys.get(study_identity(r))
            if k:
                entries.append(
                    {"suite": r["suite"], "strategy": r["strategy"], "budget": r["budget"], "seed": r["seed"], "key": k}
                )
        write_text_atomic(out / STUDY_INDEX, json.dumps({"studies": entries}, indent=1))
    return records + kept


def merge_meta(path: Path, meta: dict) -> dict:
    """bench.json over several benches on one folder: suites and strategies by name (the latest entry wins),
    budgets and seeds as unions, and each bench's own plan under `benches`."""
    try:
        old = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        old = {}
    if not isinstance(old, dict):
        old = {}
    plan = {k: meta[k] for k in ("created", "budgets", "seeds", "runner")} | {
        "suites": [s["name"] for s in meta["suites"]],
        "strategies": [s["name"] for s in meta["strategies"]],
    }
    merged = dict(meta)
    for field in ("suites", "strategies"):
        by = {e["name"]: e for e in old.get(field, []) if isinstance(e, dict) and "name" in e}
        by.update({e["name"]: e for e in meta[field]})
        merged[field] = list(by.values())
    for field in ("budgets", "seeds"):
        merged[field] = sorted(set(old.get(field, [])) | set(meta[field]))
    merged["benches"] = [b for b in old.get("benches", []) if isinstance(b, dict)] + [plan]
    return merged


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` whole (a temp file, then a rename): a reader never sees a file cut short."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    """A table as CSV, replaced whole like write_text_atomic (the leaderboard refuses a cut-short file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        df.to_csv(f, index=False, float_format="%.10g")
    os.replace(tmp, path)


def summary_frames(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """summary.csv and trajectories.csv of study records: one row per study, one per pilot run, sorted."""
    rows, traj = [], []
    for r in records:
        row = {c: r.get(c) for c in SUMMARY_COLUMNS if c in r}
        row["recommended"] = json.dumps(r["recommended"], sort_keys=True) if r.get("recommended") else ""
        gain = None
        if r.get("score") is not None and r.get("uniform_score") is not None:
            gain = r["score"] - r["uniform_score"]
        row["gain_over_uniform"] = gain
        rows.append(row)
        for t in r.get("trajectory", []):
            traj.append(
                {
                    "suite": r["suite"],
                    "strategy": r["strategy"],
                    "budget": r["budget"],
                    "seed": r["seed"],
                    **{
                        k: t.get(k)
                        for k in (
                            "step",
                            "value",
                            "best_so_far",
                            "source",
                            "status",
                            "run_key",
                            "fidelity",
                            "cost",
                            "spent",
                        )
                    },
                    "mixture": json.dumps(t["mixture"], sort_keys=True),
                }
            )
    order = ["suite", "strategy", "budget", "seed"]
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS).sort_values(order, kind="stable").reset_index(drop=True)
    trajectories = pd.DataFrame(traj, columns=TRAJECTORY_COLUMNS)
    if len(trajectories):
        trajectories = trajectories.sort_values(order + ["step"], kind="stable").reset_index(drop=True)
    return summary, trajectories


def strategy_provenance(cls) -> dict:
    """bench.json's provenance of a strategy: for one from a file, its path, sha256 and whether it ran sandboxed."""
    p = submission.provenance(cls)
    if not p["strategy_file"]:
        return {"sandboxed": p["sandboxed"]} if p["sandboxed"] else {}
    return {"file": p["strategy_file"], "sha256": p["strategy_sha256"], "sandboxed": p["sandboxed"]}


def suite_entry(judge) -> dict:
    """What bench.json says about one (suite, track): the leaderboard's source for its rules."""
    can_rank, why = judge.ranking_status()
    return {
        "name": judge.name,
        "suite": judge.suite.name,
        "track": judge.track,
        "tracks": list(judge.suite.tracks),
        "version": judge.version,
        "protocol": judge.protocol,
        "path": str(judge.path),
        "metric": judge.metric,
        "goal": judge.goal,
        "kind": judge.kind,
        "best_known": judge.best_known,
        "worst_known": judge.worst_known,
        "normalization": getattr(
            judge.suite,
            "NORMALISATION_NOTE",
            "exact" if judge.kind == "synthetic" else "the card's normalization block",
        ),
        "uniform_score": judge.uniform_score,
        "can_rank": can_rank,
        "ranking_reason": why,
        "pool_size": len(judge.space.candidate_matrix) if judge.is_pool else None,
    }
