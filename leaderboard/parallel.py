"""Run a render's independent pieces over the machine's cores, with the same results as one after another.

    a, b, c = run_all([lambda: f(x), lambda: g(y), lambda: h(z)])

The pieces are zero-argument callables; each runs in a forked worker process, which sees everything the
parent had built before the call (the results, the statistics so far) without copying it, and sends back
only its return value (pickled: the same numbers, bit for bit). Results come back in the order of the
pieces, whichever worker ran them, so the caller assembles exactly what a loop would have; pieces that
write files write distinct ones. Order the pieces costliest first: workers take the next piece as they
free up.

One process, the pieces in order, where forking is not possible or not wanted: no `fork` start method
(Windows), inside a daemonic process (a pool's worker cannot have children), one piece, or one worker
(`MODOMODO_RENDER_WORKERS=1`; by default the CPUs this process may use).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

WORKERS_ENV = "MODOMODO_RENDER_WORKERS"


class WorkersError(ValueError):
    """A worker count that is not a whole number of processes, 1 or more."""


_PIECES: Sequence[Callable[[], Any]] | None = None  # the pieces of the running call, inherited by forked workers


def workers() -> int:
    """Worker processes for a render: $MODOMODO_RENDER_WORKERS, else the CPUs this process may run on."""
    text = os.environ.get(WORKERS_ENV, "").strip()
    if text:
        try:
            n = int(text)
        except ValueError:
            n = 0
        if n < 1:
            raise WorkersError(f"{WORKERS_ENV}={text!r}: expected a whole number of processes, 1 or more")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _run_piece(i: int) -> Any:
    assert _PIECES is not None
    return _PIECES[i]()


def run_all(pieces: Sequence[Callable[[], Any]], n_workers: int | None = None) -> list[Any]:
    """Every piece's return value, in the pieces' order. An exception in a piece is raised here."""
    global _PIECES
    n = min(workers() if n_workers is None else n_workers, len(pieces))
    forkable = "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon
    if n <= 1 or not forkable or _PIECES is not None:  # (a piece that itself asks for pieces: in its process)
        return [p() for p in pieces]
    _PIECES = pieces
    try:
        # workers are forked at the first submit, after _PIECES is set; a worker that dies raises BrokenProcessPool
        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_run_piece, range(len(pieces))))
    finally:
        _PIECES = None
