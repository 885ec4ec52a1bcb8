"""Limits on a sandbox as a whole: the memory and the number of processes of all its processes together.

Resource limits (setrlimit) are per process: three processes of one sandbox held 4.7 GB against a 4 GB
limit. cgroup v2 would account them together, but it is seldom delegated to an unprivileged bench (here:
a v1 hierarchy, the unified one has no memory or pids controller). So the bench process watches: a
daemon thread that, every TICK_S, reads the process table, finds every process descended from each
live sandbox's bwrap (a process that forks and lets its parent die is re-parented to the sandbox's
init, still inside the tree), sums their private resident memory and counts them, and kills the whole
sandbox once the sum exceeds the memory limit or the count the process limit. It runs outside the
sandbox, so nothing a strategy does can stop it. Between two ticks a sandbox can overshoot by what
its processes touch in TICK_S; RLIMIT_AS still caps each process, and RLIMIT_NPROC (per sandbox: the
kernel counts it per user namespace) stops a fork bomb at once.

Cost: one read of /proc/PID/stat per process on the machine per tick while a study's sandbox is open
(3.5 ms of CPU per tick with 140 processes on the machine: about 1.4% of a core), nothing between
studies (spares started ahead run no strategy code and are not watched).
"""

from __future__ import annotations

import os
import threading
from typing import Callable

TICK_S = 0.25
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def process_table() -> dict[int, list[int]]:
    """Children of every process, from /proc/PID/stat (readable for every process, unlike ns links)."""
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rpartition(b")")[2].split()  # the name may hold spaces and parentheses
        if len(fields) > 1:
            kids.setdefault(int(fields[1]), []).append(int(entry.name))
    return kids


def descendants(root: int, kids: dict[int, list[int]]) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


def private_bytes(pid: int) -> int:
    """Resident memory not shared with other processes (statm: resident - shared pages)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            fields = f.read().split()
        return max(0, int(fields[1]) - int(fields[2])) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


class Watched:
    """One sandbox under watch: its root process, its limits, and what to call to end it."""

    def __init__(
        self,
        pid: int,
        memory_bytes: int,
        processes: int,
        stop: Callable[[str], None],
        oom_kills: Callable[[], int] | None = None,
    ):
        self.pid, self.memory_bytes, self.processes, self.stop = pid, memory_bytes, processes, stop
        self.oom_kills = oom_kills  # the cgroup's count of processes the kernel killed at its memory limit
        self.peak_bytes = 0

    def check(self, kids: dict[int, list[int]]) -> None:
        pids = descendants(self.pid, kids)
        used = sum(private_bytes(p) for p in pids)
        self.peak_bytes = max(self.peak_bytes, used)
        # the tree holds bwrap itself and the namespace's init besides the strategy's processes
        if self.oom_kills is not None and self.oom_kills() > 0:
            self.stop(
                f"its processes together reached the sandbox's memory limit of {self.memory_bytes >> 20} MB "
                f"(the kernel killed one of them)"
            )
        elif used > self.memory_bytes:
            self.stop(
                f"its processes together used {used >> 20} MB, more than the sandbox's memory limit of "
                f"{self.memory_bytes >> 20} MB"
            )
        elif len(pids) - 2 > self.processes:
            self.stop(f"it ran {len(pids) - 2} processes, more than the sandbox's limit of {self.processes}")


class Watchdog:
    def __init__(self):
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.watched: dict[int, Watched] = {}
        self.thread: threading.Thread | None = None

    def add(self, w: Watched) -> None:
        with self.lock:
            self.watched[w.pid] = w
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="modomodo-sandbox-watchdog", daemon=True)
                self.thread.start()
            self.wake.notify()

    def remove(self, pid: int) -> None:
        with self.lock:
            self.watched.pop(pid, None)

    def check_now(self) -> None:
        with self.lock:
            watched = list(self.watched.values())
        if watched:
            kids = process_table()
            for w in watched:
                w.check(kids)

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.watched:
                    self.wake.wait()
            try:
                self.check_now()
            except Exception:  # noqa: BLE001 - the watchdog must outlive a vanished /proc entry
                pass
            with self.lock:
                self.wake.wait(TICK_S)


WATCHDOG = Watchdog()
