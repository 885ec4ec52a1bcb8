"""Executors: where work runs. They never decide what to run.

One method, `imap(fn, tasks)`, yields `(task, result)` pairs in completion order, so the caller can
show progress and persist each result as soon as it exists. `fn` must be a picklable top-level
function for the process pool. A SLURM executor (submitit) provides the same method.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int, poll_s: float = 1.0) -> str:
    """Make this process end when `parent_pid` does, however the parent ends (SIGKILL included).

    Linux: prctl(PR_SET_PDEATHSIG, SIGKILL) through ctypes, so the kernel kills us the moment the
    parent dies. Elsewhere (or if prctl fails): a daemon thread that polls the parent pid. Either
    way, a parent that died before this ran is caught by the getppid() check. Returns the mechanism
    used. (The resource tracker multiprocessing starts exits by itself once every process holding
    its pipe, these workers included, is gone.) The death signal follows the *thread* that started
    the worker; ProcessPoolExecutor starts workers from the thread that submits, the main thread here."""
    how = "watchdog"
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
                how = "pdeathsig"
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent is already gone: we were re-parented
        os._exit(1)
    if how == "watchdog":

        def watch():
            while True:
                time.sleep(poll_s)
                if os.getppid() != parent_pid:
                    os._exit(1)

        threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
    return how


def _init_worker(parent_pid: int, initializer: Callable | None, initargs: tuple) -> None:
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


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
    per worker (e.g. to load a user's strategy file). Workers die with this process, even when it
    is SIGKILLed (`die_with_parent`): no orphan keeps training after its bench is gone.
    """

    def __init__(self, workers: int, initializer: Callable | None = None, initargs: tuple = ()):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._pool = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(os.getpid(), initializer, tuple(initargs)),
        )

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
