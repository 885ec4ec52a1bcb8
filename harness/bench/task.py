"""One study of a bench as a task: what any process (a worker, a job) needs to run it, and its record.

A `StudyTask` is plain, picklable data (paths and names, no loaded objects), so the bench can hand it to
whichever executor it chose. `run_study_task` runs the study end to end, serving it from the store when
it finished before; a harness error (a bug, a suite that cannot load in the worker) fails this one study,
recorded under a key of the task itself, and never takes the other studies of the bench down.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from harness import suites
from harness.suites import online_track
from harness.fingerprint import code_fingerprint, study_key
from harness.runners import make_runner
from harness.runners.own_runs import give_own_runner
from harness.sandbox import submission
from harness.spec import Budget, canonical_json
from harness.store import ResultStore
from harness.studies.study import Study, StudyOutcome


@dataclass(frozen=True)
class StudyTask:
    suite_path: str
    strategy: str
    budget: int | float  # run-equivalents (fractional only on multi-fidelity suites)
    seed: int
    store: str
    runner: str = "replay"
    # Where each pilot run executes: "local" (in the study's process) or one submitit job per run
    # ("slurm", or "submitit-local" for the same path on this machine); see harness/runners/slurm.py.
    executor: str = "local"
    executor_folder: str = ""
    protocol_file: str = ""
    track: str = ""  # "" = the suite's default track (pool on recorded suites, continuous elsewhere)


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
    from harness.sandbox.protocol import short_error

    name = Path(task.suite_path).name
    try:
        name = suites.load(task.suite_path).judge(task.track or None).name
    except Exception:
        pass
    why = error if isinstance(error, str) else short_error(error)
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
        from harness.runners.slurm import submitting_runner

        runner = submitting_runner(
            task.runner, suite, task.executor, task.executor_folder, task.store, task.protocol_file
        )
        # a live suite scores recommendations with runs of its own runner: send those to jobs too
        give_own_runner(suite, runner if getattr(suite, "runner_kind", None) == task.runner else None)
    if suite.track == online_track.TRACK:  # the other study kind: one run, its weights set during training
        from harness.studies.online import OnlineStudy

        outcome: StudyOutcome = OnlineStudy(
            suite, cls, task.seed, runner, store, fingerprint=code_fingerprint(cls)
        ).run()
    else:
        outcome = Study(suite, cls, Budget(task.budget), task.seed, runner, store).run()
    record = outcome.to_dict()
    record.update(submission.provenance(cls))
    store.put_study(key, record, encoded=outcome.encoded_fields())
    return {**record, "_key": key, "_retried": retried}
