"""Executors: where work runs. They never decide what to run.

One method, `imap(fn, tasks)`, yields `(task, result)` pairs in completion order, so the caller can
show progress and persist each result as soon as it exists. `fn` must be a picklable top-level
function for the process pool. A SLURM executor (submitit) provides the same method.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from typing import Any


class Executor:
    workers: int = 1

    def imap(self, fn: Callable, tasks: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class InProcessExecutor(Executor):
    """Runs tasks one after the other in this process (debuggable, no pickling)."""

    def imap(self, fn, tasks):
        for task in tasks:
            yield task, fn(task)


class LocalPoolExecutor(Executor):
    """A pool of worker processes on this machine.

    Uses the 'spawn' start method: workers start clean (no inherited threads or open files), the
    same way a SLURM job would, so anything that works here works there. `initializer` runs once
    per worker (e.g. to load a user's strategy file).
    """

    def __init__(self, workers: int, initializer: Callable | None = None, initargs: tuple = ()):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=initializer, initargs=initargs)

    def imap(self, fn, tasks):
        futures = {self._pool.submit(fn, t): t for t in tasks}
        try:
            for fut in cf.as_completed(futures):
                yield futures[fut], fut.result()
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_executor(workers: int, initializer: Callable | None = None, initargs: tuple = ()) -> Executor:
    if workers <= 1:
        if initializer:
            initializer(*initargs)
        return InProcessExecutor()
    return LocalPoolExecutor(workers, initializer, initargs)
