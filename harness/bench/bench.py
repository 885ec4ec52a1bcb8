"""`modomodo bench`: every (suite, strategy, budget, seed) study, resumable, with a summary table.

Output folder:
- `store/`            the result store (runs, failed runs, finished studies); safe to share
- `summary.csv`       one row per recommendation (the leaderboard's input)
- `trajectories.csv`  one row per pilot run of every study (best-so-far curves)
- `bench.json`        what was run: suites (with protocol hashes), strategies, budgets, seeds, versions
- `online.csv`, `online_runs.csv` (the online track only, harness/suites/online_track.py): the weights every step
  of every online run was drawn with (and the prompts each domain got); one row per online run with all
  its scores and the measured overhead of the online machinery

This module plans a bench (every check on its suites, strategies, budgets and seeds happens before any work)
and runs it; the folder's files, and how benches sharing one folder merge there, are harness/bench/folder.py's;
one study as a task any process can run is harness/bench/task.py's.

Each finished study is stored as soon as it ends, so a killed bench loses only the studies in
flight (and of those, only the runs in flight: their completed runs are in the store). Running the
same command again skips finished studies and serves completed runs from the store.
"""

from __future__ import annotations

import concurrent.futures as cf

import datetime as _dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness import suites
from harness.suites import online_track
from harness.bench.folder import (
    merge_meta,
    merge_studies,
    strategy_provenance,
    study_identity,
    suite_entry,
    summary_frames,
    write_csv_atomic,
    write_text_atomic,
)
from harness.runners.executor import make_executor
from harness.provenance import git_sha, versions
from harness.runners.own_runs import give_own_runner
from harness.sandbox import submission
from harness.spec import Budget
from harness.store import ResultStore
from harness.bench.task import StudyTask, harness_failure, run_study_task


def _load_strategy_files(files: Sequence[str]) -> None:
    for f in files:
        submission.load_file(f)


def _register_file_strategies(entries: list[dict]) -> None:
    """Worker initializer: the file strategies the bench process described (no second sandboxed import)."""
    submission.register_entries(entries)


MAX_BENCH_STUDIES = 100_000  # one bench plans at most this many studies (as sweep bounds its runs)
MAX_BUDGET = 10_000  # run-equivalents one study may spend


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
        from harness.runners.slurm import check_executor

        check_executor(executor_kind, protocol_file)
    protocol_file = protocol_arg or ""  # handed to every study task (and job) as an argument
    if runner == "gpu":  # a protocol whose memory plan does not fit its GPUs is refused before any study or job
        from harness.protocols.memory_plan import check_fits

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
            from harness.runners.slurm import submitting_runner

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
    # bench.json's suite entries measure each recorded suite's signal on its table (a one-seed table cross-validates
    # a surrogate: ~8 s for the demo's RegMix suites), work that waited for the last study; with worker processes, a
    # thread of this otherwise idle one does it while they run (its result, or its error, is taken at the end as
    # before). In-process studies keep it for the end: they share the suites and the BLAS thread limit it sets.
    entries = cf.ThreadPoolExecutor(1, thread_name_prefix="suite-entries") if pool.workers > 1 else None
    suite_entries = entries.submit(lambda: [suite_entry(s) for s in loaded]) if entries else None
    if entries:
        entries.shutdown(wait=False)
    bar = tqdm(total=len(tasks), desc="studies", unit="study", disable=not progress, dynamic_ncols=True)
    index = {id(t): i for i, t in enumerate(tasks)}
    keys: dict[tuple, str] = {}

    def take(task: StudyTask, rec: dict) -> None:
        nonlocal resumed, executed, reused, failed, retried
        finished.add(index[id(task)])
        key = rec.pop("_key", None)
        if key:
            keys[study_identity(rec)] = key
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
            from harness.sandbox.protocol import short_error

            why = f"the study's worker process ended before it did ({short_error(e)})"
            for i, task in enumerate(tasks):
                if i not in finished:
                    take(task, harness_failure(task, why))
    finally:
        bar.close()
        pool.close()

    failures = [r for r in records if r["status"] != "ok"]  # this bench's (earlier benches' are in summary.csv)
    records = merge_studies(out, store, keys, records)
    summary, trajectories = summary_frames(records)
    write_csv_atomic(summary, out / "summary.csv")
    write_csv_atomic(trajectories, out / "trajectories.csv")
    for name, frame in online_track.reports(records).items():
        write_csv_atomic(frame, out / name)
    meta = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "suites": suite_entries.result() if suite_entries else [suite_entry(s) for s in loaded],
        "strategies": [
            {
                "name": n,
                "description": strategies.get(n).description,
                "citation": strategies.get(n).citation,
                "family": strategies.get(n).family,
                **strategy_provenance(strategies.get(n)),
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
    meta = merge_meta(out / "bench.json", meta)
    write_text_atomic(out / "bench.json", json.dumps(meta, indent=2, sort_keys=True))
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
