"""The online track, in one place: which suites offer it, what a bench of it admits, what a study costs,
and the tables it reports.

An online study is one real training run whose domain weights an online strategy (strategies/online.py)
sets step by step; harness/studies/online.py runs it. The offline kind (harness/studies/study.py) spends pilot runs
and has its recommendation scored. This module holds the rules that set the online kind apart, so that
the suites, the bench and the study ask it instead of each carrying its own copy:
- **offers**: a suite whose every answer is a real training run (a live suite) offers the track; any other
  suite says why not (`refusal`);
- **admits**: a bench of the track runs online strategies only, on online suites only, with a budget of 1
  (a study is one run), on a runner that trains (not replay), on the local executor (`admit`); a runner
  that cannot train online is refused (`check_runner`);
- **costs**: one run plus the measured overhead of the online machinery, in run-equivalents (`cost`);
- **reports**: bench's `online.csv` (weights per step) and `online_runs.csv` (one row per run).

It imports only leaf modules, so the suites (which offer it) and the studies (which run it) both can.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

TRACK = "online"
KIND = "online"  # the strategy kind (strategies.base.strategy_kind) the track runs; every other track: offline


# -- offers --------------------------------------------------------------------------------------
def offered_by(suite) -> bool:
    """Whether a suite offers the online track: only a suite whose answers are real training runs."""
    return getattr(suite, "kind", None) == "live"


def refusal(suite) -> str:
    """Why a suite that does not train cannot offer the online track."""
    return (
        f"a {suite.kind} suite does not train: the online track runs on live suites (each study a real "
        f"training run, e.g. minimodo-tiny-live)"
    )


# -- admits --------------------------------------------------------------------------------------
def study_kind(judges: Sequence) -> str:
    """The strategy kind a bench over these judged suites runs ("online" or "offline"); the online track
    cannot share a bench with another track (its studies have no budgets)."""
    online = [j.name for j in judges if j.track == TRACK]
    if online and len(online) != len(judges):
        raise ValueError(
            f"the online track cannot share a bench with other tracks (online: {', '.join(online)}); run them apart"
        )
    return KIND if online else "offline"


def check_strategy_kind(name: str, kind: str, want: str, track: str, names_of_kind: Sequence[str]) -> None:
    """A strategy of the other kind is refused before any work, with the ones that would do."""
    if kind != want:
        raise ValueError(
            f"strategy {name!r} is an {kind} strategy; the {track} track runs {want} "
            f"strategies ({', '.join(names_of_kind)})"
            + (" (online ones: --track online on a live suite)" if kind == KIND else "")
        )


def admit(budgets: Sequence, runner: str, executor: str) -> list:
    """The budgets of an online bench ([1]: one run per study), or a one-line refusal of its settings."""
    budgets = list(budgets) if budgets else [1]
    if [int(b) for b in budgets] != [1]:
        raise ValueError(
            f"the online track spends no pilot runs: each study is one training run, so its budget "
            f"is 1 (got --budget {','.join(str(b) for b in budgets)}); leave --budget out"
        )
    if runner == "replay":
        raise ValueError("the online track trains for real: use --runner cpu (replay has no online runs)")
    if executor != "local":
        raise ValueError(
            f"the online track runs on the local executor only (got --executor {executor}): the "
            f"strategy answers during training, and submitting a study's run as a job that "
            f"rebuilds its strategy is not built yet"
        )
    return budgets


def check_runner(runner) -> None:
    """A runner that cannot train with an online strategy (it has no `run_online`) is refused."""
    if not callable(getattr(runner, "run_online", None)):
        raise ValueError(f"the {getattr(runner, 'kind', '?')} runner cannot train online (runners that can: cpu)")


# -- costs ---------------------------------------------------------------------------------------
def cost(result) -> float:
    """Run-equivalents of an online run (a RunResult): 1 plus the online machinery's measured seconds over
    the run's other training seconds (`t_train` includes them); on the same axis as an offline study at
    budget B, which costs B pilot runs and the final run of its recommendation."""
    train = float(result.cost.get("t_train", 0.0))
    extra = float(result.cost.get("t_online", 0.0))
    if train <= extra or train <= 0:
        return 1.0
    return round(1.0 + extra / (train - extra), 6)


# -- reports -------------------------------------------------------------------------------------
# one row per (study, step): the weights that step's prompts were drawn with, one column per domain
# (w:<domain>), and the prompts each domain got (n:<domain>)
STEP_COLUMNS = ["suite", "strategy", "seed", "step"]
RUN_COLUMNS = [
    "suite",
    "strategy",
    "seed",
    "status",
    "score",
    "cost_used",
    "t_online",
    "t_online_strategy",
    "t_train",
    "s_per_step",
    "reason",
]


def steps_frame(records: list[dict]) -> pd.DataFrame:
    """The online studies' per-step weights (bench's online.csv; the leaderboard's trajectory pictures)."""
    rows = []
    for r in records:
        on = r.get("online") or {}
        domains = on.get("domains") or []
        for step, w, n in zip(on.get("steps", []), on.get("weights", []), on.get("prompts", [])):
            row = {"suite": r["suite"], "strategy": r["strategy"], "seed": r["seed"], "step": step}
            row.update({f"w:{d}": x for d, x in zip(domains, w)})
            row.update({f"n:{d}": x for d, x in zip(domains, n)})
            rows.append(row)
    df = pd.DataFrame(rows)
    if not len(df):
        return pd.DataFrame(columns=STEP_COLUMNS)
    return df.sort_values(STEP_COLUMNS, kind="stable").reset_index(drop=True)


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """The online studies, one row each, with every score the run measured (bench's online_runs.csv: the
    in-domain and out-of-domain comparisons of the online track) and the measured overhead."""
    rows = []
    for r in records:
        if r.get("track") != TRACK:
            continue
        on = r.get("online") or {}
        row = {
            "suite": r["suite"],
            "strategy": r["strategy"],
            "seed": r["seed"],
            "status": r["status"],
            "score": r.get("score"),
            "cost_used": r.get("cost_used"),
            "reason": r.get("reason", ""),
        }
        row.update({k: on.get(k) for k in ("t_online", "t_online_strategy", "t_train", "s_per_step")})
        row.update(on.get("scores") or {})
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=RUN_COLUMNS)
    df = pd.DataFrame(rows)
    extra = sorted(c for c in df.columns if c not in RUN_COLUMNS)
    return df[RUN_COLUMNS + extra].sort_values(["suite", "strategy", "seed"], kind="stable").reset_index(drop=True)


def reports(records: list[dict]) -> dict[str, pd.DataFrame]:
    """Bench's online files by name, when any record is an online study (else none: offline benches write
    no online files)."""
    steps = steps_frame(records)
    if not len(steps) and not any(r.get("track") == TRACK for r in records):
        return {}
    return {"online.csv": steps, "online_runs.csv": runs_frame(records)}
