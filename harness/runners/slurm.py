"""SLURM through submitit: one job per task, failed or preempted jobs recorded and resubmitted once.

Two pieces:
- `SubmititExecutor` implements the foundation's `Executor.imap(fn, tasks)` contract on a cluster:
  each task becomes one job (GPUs, time, partition from the protocol's `JobResources`), results come back in
  completion order. `cluster="local"` runs the very same path with submitit's LocalExecutor (a
  subprocess per job on this machine), which is how the tests exercise it.
- `SubmittingRunner` wraps any runner kind so that each *pilot run* is one job: the study loop (and
  the strategy) stays on the submitting node, where it costs nothing, and only training holds GPUs.
  The job writes its RunResult to the shared `ResultStore` itself, so a driver killed while jobs run
  still finds their results on resume.

Why resubmit only once: a job that fails twice in a row almost always has a deterministic cause (a
bad mixture, out of memory); paying for a third attempt hides it. Every attempt, with its job id,
state and reason, is appended to the executor's ledger (`<folder>/ledger/<task-id>.json`) so the
failure is on record even when the retry succeeds. SLURM preemption itself is handled by submitit
(it requeues the job with the same call); the retry here covers jobs that end without a result
(node failure, OOM kill, a crash, a preemption that could not be requeued).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.runners.executor import Executor
from harness.protocols.gpu import JobResources, load_protocol, protocol_for_suite
from harness.studies.runner import Runner
from harness.runners.gpu_identity import bind_protocol
from harness.spec import RunResult, RunSpec, canonical_json

CLUSTERS = ("slurm", "local")
# The CLI's executor names: "slurm" submits to the cluster, "submitit-local" runs the same job path
# with submitit's LocalExecutor (a subprocess per job), to rehearse a cluster run on one machine.
EXECUTORS = {"slurm": "slurm", "submitit-local": "local"}


class JobFailed(RuntimeError):
    """A task whose job failed on every allowed attempt (raised only without an `on_failure`)."""


def task_id(task: Any) -> str:
    """A stable name for a task in the ledger: dataclasses and JSON-able values hash by content."""
    try:
        blob = canonical_json(dataclasses.asdict(task) if dataclasses.is_dataclass(task) else task)
    except (TypeError, ValueError):
        blob = repr(task)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _job_failure_reason(job) -> str:
    try:
        exc = job.exception()
    except Exception as e:  # submitit raises when it cannot even read the job's outcome
        exc = e
    state = getattr(job, "state", "?")
    lines = [ln.rstrip() for ln in str(exc or "").splitlines() if ln.strip()]
    # A job that raised carries its whole traceback; the cause is its last "ErrorName: message" line.
    causes = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", ln)]
    cause = causes[-1] if causes else (lines[0] if lines else "the job left no result")
    if not causes:  # died without a Python traceback (killed, setup failed): its stderr says why
        try:
            tail = [ln for ln in (job.stderr() or "").splitlines() if ln.strip()][-1:]
        except Exception:
            tail = []
        if tail:
            cause += f"; job stderr ends: {tail[0].strip()}"
    return f"job {job.job_id} ended in state {state}: {type(exc).__name__ if exc else 'NoResult'}: {cause}"[:2000]


class SubmititExecutor(Executor):
    """`imap(fn, tasks)` with one submitit job per task.

    `on_failure(task, reason)` turns a task that failed on every attempt into a result (e.g. a
    failed RunResult); without it `JobFailed` is raised, as a process pool would re-raise.
    """

    def __init__(
        self,
        folder: str | Path,
        resources: JobResources | None = None,
        cluster: str = "slurm",
        max_resubmits: int = 1,
        poll_s: float | None = None,
        on_failure: Callable[[Any, str], Any] | None = None,
        job_name: str = "modomodo",
    ):
        if cluster not in CLUSTERS:
            raise ValueError(f"cluster must be one of {', '.join(CLUSTERS)}, got {cluster!r}")
        if max_resubmits < 0:
            raise ValueError(f"max_resubmits must be >= 0, got {max_resubmits}")
        try:
            import submitit
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("the SLURM executor needs submitit: pip install 'modomodo[slurm]'") from e
        self.folder = Path(folder)
        self.resources = resources or JobResources()
        self.cluster = cluster
        self.max_resubmits = max_resubmits
        # A cluster's accounting database is slow and shared: poll it rarely. Local jobs are cheap to poll.
        self.poll_s = poll_s if poll_s is not None else (30.0 if cluster == "slurm" else 0.25)
        self.on_failure = on_failure
        self.ledger_dir = self.folder / "ledger"
        self.ledger_dir.mkdir(parents=True, exist_ok=True)
        self._executor = submitit.AutoExecutor(folder=self.folder / "jobs" / "%j", cluster=cluster)
        self._executor.update_parameters(name=job_name, **self.resources.submitit_parameters(cluster))
        self.workers = 1 << 30  # the scheduler decides how many run at once

    @property
    def parameters(self) -> dict[str, Any]:
        """The parameters the underlying submitit executor will submit with."""
        return dict(self._executor._executor.parameters)

    def _record(self, task: Any, attempt: dict[str, Any]) -> None:
        path = self.ledger_dir / f"{task_id(task)}.json"
        try:
            history = json.loads(path.read_text())
        except FileNotFoundError:
            history = {"task": repr(task), "attempts": []}
        history["attempts"].append(attempt)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(history, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def attempts(self, task: Any) -> list[dict[str, Any]]:
        """Every recorded attempt of a task (job id, state, outcome, reason)."""
        try:
            return json.loads((self.ledger_dir / f"{task_id(task)}.json").read_text())["attempts"]
        except FileNotFoundError:
            return []

    def _submit(self, fn: Callable, task: Any):
        job = self._executor.submit(_Call(fn), task)
        if self.cluster == "local":
            # submitit waits up to 15-30 s for a missing result file in case a network file system
            # lags; a local job that died has none coming, so do not wait on it.
            job._results_timeout_s = 1
        return job

    def imap(self, fn: Callable, tasks: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        pending = [(task, self._submit(fn, task), 0) for task in tasks]
        try:
            while pending:
                still = []
                for task, job, tries in pending:
                    if not job.done():
                        still.append((task, job, tries))
                        continue
                    try:
                        result = job.result()
                    except Exception:
                        reason = _job_failure_reason(job)
                        self._record(
                            task,
                            {
                                "job_id": job.job_id,
                                "state": str(job.state),
                                "outcome": "failed",
                                "reason": reason,
                                "at": time.time(),
                            },
                        )
                        if tries < self.max_resubmits:
                            still.append((task, self._submit(fn, task), tries + 1))
                            continue
                        if self.on_failure is None:
                            raise JobFailed(
                                f"task {task_id(task)} failed {tries + 1} time(s); last: {reason}"
                            ) from None
                        yield task, self.on_failure(task, f"{reason} (after {tries + 1} attempt(s))")
                        continue
                    self._record(
                        task, {"job_id": job.job_id, "state": str(job.state), "outcome": "ok", "at": time.time()}
                    )
                    yield task, result
                pending = still
                if pending:
                    time.sleep(self.poll_s)
        finally:
            for _, job, _ in pending:  # the caller stopped early (or raised): do not leave jobs behind
                try:
                    job.cancel(check=False)
                except Exception:
                    pass


class _Call:
    """The submitted callable. Checkpointable (submitit's protocol) so a preempted job is requeued
    with the same call; resuming is safe because completed pilot runs are read back from the store."""

    def __init__(self, fn: Callable):
        self.fn = fn

    def __call__(self, task):
        return self.fn(task)

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


# -- one job per pilot run --------------------------------------------------------------------------
@dataclass(frozen=True)
class PilotRunTask:
    runner: str
    suite_path: str
    spec: dict[str, Any]
    store: str = ""
    protocol_file: str = ""

    @property
    def key(self) -> str:
        return RunSpec.from_dict(self.spec).key


def run_pilot(task: PilotRunTask) -> dict[str, Any]:
    """Body of one job: build the runner where the GPUs are, run the spec, store the result."""
    from harness import suites
    from harness.runners import make_runner
    from harness.store import ResultStore

    spec = RunSpec.from_dict(task.spec)
    store = ResultStore(task.store) if task.store else None
    if store is not None:
        done = store.get(spec.key)
        if done is not None:  # a requeued job whose first life already finished the run
            return done.to_dict()
    # the protocol file travels in the task (an argument), and keys the suite's specs (gpu runner)
    suite = bind_protocol(suites.load(task.suite_path), task.runner, task.protocol_file or None)
    result = make_runner(task.runner, suite).run(spec)
    if store is not None:
        store.put(result)
    return result.to_dict()


class SubmittingRunner(Runner):
    """Runs each pilot run of an inner runner kind as one submitit job and waits for it."""

    def __init__(
        self, inner_kind: str, suite, executor: SubmititExecutor, store: str | Path = "", protocol_file: str | Path = ""
    ):
        self.kind = f"{inner_kind}@{executor.cluster}"
        self.inner_kind, self.suite, self.executor, self.store = inner_kind, suite, executor, str(store)
        self.protocol_file = str(protocol_file or "")
        self.executor.on_failure = self._failed

    def _failed(self, task: PilotRunTask, reason: str) -> dict[str, Any]:
        return RunResult.failed(RunSpec.from_dict(task.spec), reason, {"executor": self.executor.cluster}).to_dict()

    def run(self, spec: RunSpec) -> RunResult:
        task = PilotRunTask(self.inner_kind, str(self.suite.path), spec.to_dict(), self.store, self.protocol_file)
        for _, result in self.executor.imap(run_pilot, [task]):
            return RunResult.from_dict(result)
        raise RuntimeError("submitit executor returned no result")  # pragma: no cover - imap yields one per task


def check_executor(executor: str, protocol_file: str | Path | None = None) -> None:
    """Fail before any work when the executor cannot be used (unknown name, bad protocol, no submitit)."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; valid: local, {', '.join(EXECUTORS)}")
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ValueError(f"--executor {executor} needs submitit: pip install 'modomodo[slurm]'") from None
    if EXECUTORS[executor] == "slurm" and shutil.which("srun") is None:
        raise ValueError(
            f"--executor {executor} submits with SLURM, but srun is not on PATH here: run on the "
            f"cluster's login node, or rehearse on this machine with --executor submitit-local"
        )
    resources_for(protocol_file)


def submitting_runner(
    runner_kind: str,
    suite,
    executor: str,
    folder: str | Path,
    store: str | Path,
    protocol_file: str | Path | None = None,
) -> SubmittingRunner:
    """The runner a study uses when each pilot run is a submitit job (what `bench --executor` builds)."""
    check_executor(executor)
    if protocol_file or runner_kind != "gpu":
        resources = resources_for(protocol_file)
    else:  # the gpu runner's own protocol (the suite's) sizes its jobs
        resources = protocol_for_suite(suite).slurm
    if runner_kind == "gpu":  # refuse a protocol whose memory plan does not fit, before any job is submitted
        from harness.protocols.memory_plan import check_fits

        check_fits(protocol_for_suite(suite, protocol_file or None))
    pool = SubmititExecutor(Path(folder), resources, cluster=EXECUTORS[executor], job_name=f"modomodo-{suite.name}")
    return SubmittingRunner(runner_kind, suite, pool, store, protocol_file or "")


def resources_for(protocol_file: str | Path | None) -> JobResources:
    """Job resources from a protocol file's `slurm:` section (defaults: one CPU-only job of an hour)."""
    if not protocol_file:
        return JobResources()
    return load_protocol(protocol_file).slurm
