"""`modomodo bench`: every (suite, strategy, budget, seed) study, resumable, with a summary table.

Output folder:
- `store/`            the result store (runs, failed runs, finished studies); safe to share
- `summary.csv`       one row per recommendation (the leaderboard's input)
- `trajectories.csv`  one row per pilot run of every study (best-so-far curves)
- `bench.json`        what was run: suites (with protocol hashes), strategies, budgets, seeds, versions
- `online.csv`, `online_runs.csv` (the online track only, harness/online_track.py): the weights every step
  of every online run was drawn with (and the prompts each domain got); one row per online run with all
  its scores and the measured overhead of the online machinery

Each finished study is stored as soon as it ends, so a killed bench loses only the studies in
flight (and of those, only the runs in flight: their completed runs are in the store). Running the
same command again skips finished studies and serves completed runs from the store.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness import online_track, suites
from harness.executor import make_executor
from harness.fingerprint import code_fingerprint, study_key
from harness.provenance import git_sha, versions
from harness.runners import make_runner
from harness.runners.own_runs import give_own_runner
from harness.sandbox import submission
from harness.spec import Budget, canonical_json
from harness.store import ResultStore
from harness.study import Study, StudyOutcome

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


@dataclass(frozen=True)
class StudyTask:
    suite_path: str
    strategy: str
    budget: int | float  # run-equivalents (fractional only on multi-fidelity suites)
    seed: int
    store: str
    runner: str = "replay"
    # Where each pilot run executes: "local" (in the study's process) or one submitit job per run
    # ("slurm", or "submitit-local" for the same path on this machine); see harness/slurm.py.
    executor: str = "local"
    executor_folder: str = ""
    protocol_file: str = ""
    track: str = ""  # "" = the suite's default track (pool on recorded suites, continuous elsewhere)


def _load_strategy_files(files: Sequence[str]) -> None:
    for f in files:
        submission.load_file(f)


def _register_file_strategies(entries: list[dict]) -> None:
    """Worker initializer: the file strategies the bench process described (no second sandboxed import)."""
    submission.register_entries(entries)


def run_study_task(task: StudyTask) -> dict:
    """One study, end to end, in whatever process the executor chose. Returns the outcome dict.

    A harness error (a bug, a suite that cannot load in the worker, a runner crash outside a run) fails this
    study only, with its reason: it never takes down the other studies of the bench."""
    try:
        return _run_study(task)
    except Exception as e:
        return harness_failure(task, e)


def harness_failure(task: StudyTask, error: BaseException | str) -> dict:
    """The record of a study the harness could not finish. Stored like any failed study (under a key of the
    task itself), so it is listed in summary.csv, and retried by the next bench on the same folder."""
    from harness.spec import STATUS_FAILED
    from harness.study import _short_error

    name = Path(task.suite_path).name
    try:
        name = suites.load(task.suite_path).judge(task.track or None).name
    except Exception:
        pass
    why = error if isinstance(error, str) else _short_error(error)
    record = StudyOutcome(
        name,
        task.strategy,
        task.budget,
        task.seed,
        track=task.track,
        status=STATUS_FAILED,
        reason=f"harness error: {why}",
    ).to_dict()
    record["harness_error"] = True
    record["_key"] = _task_key(task)
    try:
        ResultStore(task.store).put_study(record["_key"], {k: v for k, v in record.items() if k != "_key"})
    except Exception:
        pass  # a store that cannot be written: the record still reaches this bench's summary
    return record


def _task_key(task: StudyTask) -> str:
    """The store key of a study the harness could not finish (its study key may not be computable)."""
    ident = ["harness-failure", task.suite_path, task.track, task.runner, task.strategy, task.budget, task.seed]
    return hashlib.sha256(canonical_json(ident).encode()).hexdigest()


def _run_study(task: StudyTask) -> dict:
    import strategies
    import strategies.registry

    from harness.runners.gpu_identity import bind_protocol

    # gpu runner: the protocol file (an argument of the task) keys the suite's runs and this study
    suite = bind_protocol(suites.load(task.suite_path), task.runner, task.protocol_file or None).judge(
        task.track or None
    )
    cls = strategies.get(task.strategy)
    store = ResultStore(task.store)
    key = study_key(suite, cls, runner=task.runner, strategy=task.strategy, budget=task.budget, seed=task.seed)
    done = store.get_study(key)
    retried = False
    if done is not None:
        if done.get("status") == "ok":
            done["_resumed"] = True
            done["_key"] = key
            return done
        retried = True  # a study that failed before is done again (its completed runs come from the store)
    elif store.get_study(_task_key(task)) is not None:
        retried = True  # the harness failed this study before: it is done now
    if task.executor == "local":
        runner = make_runner(task.runner, suite)
        give_own_runner(suite)  # a live suite scores recommendations with runs of its own runner
    else:
        from harness.slurm import submitting_runner

        runner = submitting_runner(
            task.runner, suite, task.executor, task.executor_folder, task.store, task.protocol_file
        )
        # a live suite scores recommendations with runs of its own runner: send those to jobs too
        give_own_runner(suite, runner if getattr(suite, "runner_kind", None) == task.runner else None)
    if suite.track == online_track.TRACK:  # the other study kind: one run, its weights set during training
        from harness.online_study import OnlineStudy

        outcome: StudyOutcome = OnlineStudy(
            suite, cls, task.seed, runner, store, fingerprint=code_fingerprint(cls)
        ).run()
    else:
        outcome = Study(suite, cls, Budget(task.budget), task.seed, runner, store).run()
    record = outcome.to_dict()
    record.update(submission.provenance(cls))
    store.put_study(key, record)
    return {**record, "_key": key, "_retried": retried}


MAX_BENCH_STUDIES = 100_000  # one bench plans at most this many studies (as sweep bounds its runs)
MAX_BUDGET = 10_000  # run-equivalents one study may spend
STUDY_INDEX = "studies.json"  # (suite, strategy, budget, seed) -> store key, over every bench on this folder


def check_plan(n_suites: int, n_strategies: int, n_budgets: int, n_seeds: int) -> int:
    """The number of studies of a bench, refused above MAX_BENCH_STUDIES before anything is built."""
    n = n_suites * n_strategies * n_budgets * n_seeds
    if n > MAX_BENCH_STUDIES:
        raise ValueError(
            f"the bench would plan {n_suites} suites x {n_strategies} strategies x {n_budgets} budgets x "
            f"{n_seeds:,} seeds = {n:,} studies; one bench plans at most {MAX_BENCH_STUDIES:,} (lower "
            f"--seeds; benches over consecutive seed ranges can share one --out)"
        )
    return n


def _identity(record: dict) -> tuple:
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
        mine = {_identity(r) for r in records}
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
            k = keys.get(_identity(r))
            if k:
                entries.append(
                    {"suite": r["suite"], "strategy": r["strategy"], "budget": r["budget"], "seed": r["seed"], "key": k}
                )
        _write_text_atomic(out / STUDY_INDEX, json.dumps({"studies": entries}, indent=1))
    return records + kept


def _merge_meta(path: Path, meta: dict) -> dict:
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


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        df.to_csv(f, index=False, float_format="%.10g")
    os.replace(tmp, path)


def summary_frames(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
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


def _strategy_provenance(cls) -> dict:
    """bench.json's provenance of a strategy: for one from a file, its path, sha256 and whether it ran sandboxed."""
    p = submission.provenance(cls)
    if not p["strategy_file"]:
        return {"sandboxed": p["sandboxed"]} if p["sandboxed"] else {}
    return {"file": p["strategy_file"], "sha256": p["strategy_sha256"], "sandboxed": p["sandboxed"]}


def _suite_entry(judge) -> dict:
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


@dataclass
class BenchReport:
    summary: pd.DataFrame
    out: Path
    studies: int
    studies_resumed: int
    runs_executed: int
    runs_reused: int
    failed_studies: int
    suites: list[dict] | None = None  # bench.json's suite entries (track, can_rank, ...)
    records_rejected: int = 0  # store records that failed their integrity check: done again, not served
    retried: int = 0  # studies that had failed in an earlier bench on this folder, done again now
    failures: list[dict] | None = None  # this bench's failed studies (their reasons)
    merged: int = 0  # studies of earlier benches on this folder kept in summary.csv beside this bench's


def bench(
    suite_refs: Sequence[str],
    strategy_names: Sequence[str],
    budgets: Sequence[int],
    seeds: int | Sequence[int],
    out: str | Path,
    workers: int = 1,
    strategy_files: Sequence[str] = (),
    runner: str = "replay",
    progress: bool = True,
    executor: str = "local",
    protocol_file: str | None = None,
    track: str | None = None,
) -> BenchReport:
    """Every (suite, strategy, budget, seed) study. `track`: "pool", "continuous", or None for each
    suite's default track; a suite that does not offer the track is refused before any work."""
    import strategies
    import strategies.registry
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out / "store")
    store.sweep()
    quarantined_before = store.quarantined()
    _load_strategy_files(strategy_files)
    from harness.runners.gpu_identity import bind_protocol

    protocol_arg = str(Path(protocol_file).resolve()) if protocol_file else None
    loaded = [
        bind_protocol(suites.load(s), runner, protocol_arg).judge(track)  # TrackError names the tracks offered
        for s in suite_refs
    ]
    if not strategy_names:
        raise ValueError("no strategy to benchmark; name at least one (or all)")
    from strategies.base import strategy_kind

    want = online_track.study_kind(loaded)  # which kind of study this bench runs: online or offline
    for name in strategy_names:  # fail fast, with a suggestion, before any work
        online_track.check_strategy_kind(
            name, strategy_kind(strategies.get(name)), want, loaded[0].track, strategies.names(want)
        )
    if want == online_track.KIND:
        budgets = online_track.admit(budgets, runner, executor)
    if not budgets:
        raise ValueError("no budget given; pass pilot-run budgets >= 1, e.g. --budget 4,8,16")
    budgets = [int(b) if float(b).is_integer() else float(b) for b in budgets]  # whole budgets stay ints (study keys)
    for b in budgets:
        if b > MAX_BUDGET:
            raise ValueError(
                f"budget {b:g} is more pilot runs than one study may spend (at most {MAX_BUDGET:,} run-equivalents)"
            )
        if b < 1:
            raise ValueError(
                f"budget {b:g} is not a study: a strategy needs at least 1 run-equivalent (valid: numbers "
                f">= 1; fractions only on suites with partial runs)"
            )
        Budget(b)
        if isinstance(b, float):
            flat = [s.name for s in loaded if not s.fidelities]
            if flat:
                raise ValueError(
                    f"budget {b:g} is fractional, but suite {flat[0]!r} has no partial runs (every pilot "
                    f"costs 1): use whole budgets there; fractional budgets (run-equivalents) need a suite "
                    f"with fidelities, e.g. minimodo-pool"
                )
    seed_range = range(seeds) if isinstance(seeds, int) else seeds
    if not len(seed_range):
        raise ValueError("no seed given; pass --seeds N (N >= 1) or a range A-B")
    check_plan(len(loaded), len(strategy_names), len(budgets), len(seed_range))  # before the seeds are expanded
    seed_list = list(seed_range)
    executor_kind = executor  # where pilot runs execute; `pool` below runs the studies
    if executor_kind != "local":
        from harness.slurm import check_executor

        check_executor(executor_kind, protocol_file)
    protocol_file = protocol_arg or ""  # handed to every study task (and job) as an argument
    if runner == "gpu":  # a protocol whose memory plan does not fit its GPUs is refused before any study or job
        from harness.memory_plan import check_fits

        for s in loaded:
            check_fits(s.gpu_protocol)
    tasks = [
        StudyTask(
            str(s.path),
            name,
            b,
            int(seed),
            str(store.root),
            runner,
            executor_kind,
            str((out / "jobs").resolve()) if executor_kind != "local" else "",
            protocol_file,
            s.track,
        )
        for s in loaded
        for name in strategy_names
        for b in budgets
        for seed in seed_list
    ]
    for s in loaded:  # a live suite's own runs (uniform score, oracle): with jobs, they go to jobs too
        if executor_kind != "local" and getattr(s, "runner_kind", None) == runner:
            from harness.slurm import submitting_runner

            give_own_runner(
                s,
                submitting_runner(
                    runner, s, executor_kind, str((out / "jobs").resolve()), str(store.root), protocol_file
                ),
            )
        else:
            give_own_runner(s)
    # Warm each suite's normalisation once here, so workers do not all redo it.
    for s in loaded:
        s.best_known, s.uniform_score

    records, resumed, executed, reused, failed, retried = [], 0, 0, 0, 0, 0
    finished: set[int] = set()
    pool = make_executor(workers, _register_file_strategies, (submission.file_entries(),))
    bar = tqdm(total=len(tasks), desc="studies", unit="study", disable=not progress, dynamic_ncols=True)
    index = {id(t): i for i, t in enumerate(tasks)}
    keys: dict[tuple, str] = {}

    def take(task: StudyTask, rec: dict) -> None:
        nonlocal resumed, executed, reused, failed, retried
        finished.add(index[id(task)])
        key = rec.pop("_key", None)
        if key:
            keys[_identity(rec)] = key
        if rec.pop("_resumed", False):
            resumed += 1
        else:
            executed += rec.get("runs_executed", 0)
            reused += rec.get("runs_reused", 0)
        retried += bool(rec.pop("_retried", False))
        failed += rec["status"] != "ok"
        records.append(rec)
        bar.update(1)
        bar.set_postfix(runs=executed, reused=reused, failed=failed, refresh=False)

    try:
        try:
            for task, rec in pool.imap(run_study_task, tasks):
                take(task, rec)
        except Exception as e:  # the executor itself broke (a worker process killed): the rest fail, named
            from harness.study import _short_error

            why = f"the study's worker process ended before it did ({_short_error(e)})"
            for i, task in enumerate(tasks):
                if i not in finished:
                    take(task, harness_failure(task, why))
    finally:
        bar.close()
        pool.close()

    failures = [r for r in records if r["status"] != "ok"]  # this bench's (earlier benches' are in summary.csv)
    records = merge_studies(out, store, keys, records)
    summary, trajectories = summary_frames(records)
    _write_csv_atomic(summary, out / "summary.csv")
    _write_csv_atomic(trajectories, out / "trajectories.csv")
    for name, frame in online_track.reports(records).items():
        _write_csv_atomic(frame, out / name)
    meta = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "suites": [_suite_entry(s) for s in loaded],
        "strategies": [
            {
                "name": n,
                "description": strategies.get(n).description,
                "citation": strategies.get(n).citation,
                "family": strategies.get(n).family,
                **_strategy_provenance(strategies.get(n)),
            }
            for n in strategy_names
        ],
        "budgets": list(budgets),
        "seeds": seed_list,
        "runner": runner,
        **({"executor": executor_kind, "protocol_file": protocol_file} if executor_kind != "local" else {}),
        "git_sha": git_sha(),
        "versions": versions(),
    }
    meta = _merge_meta(out / "bench.json", meta)
    _write_text_atomic(out / "bench.json", json.dumps(meta, indent=2, sort_keys=True))
    return BenchReport(
        summary,
        out,
        len(tasks),
        resumed,
        executed,
        reused,
        failed,
        meta["suites"],
        store.quarantined() - quarantined_before,
        retried=retried,
        failures=failures,
        merged=len(records) - len(tasks),
    )
