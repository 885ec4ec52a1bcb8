"""A cgroup per sandbox, where this process may make one: the kernel's own limit on the processes (pids.max)
and the memory (memory.max / memory.limit_in_bytes, swap included) of a sandbox as a whole.

cgroup v2 where its pids and memory controllers are enabled for the folder this process is in; else
the v1 `pids` and `memory` hierarchies where their folders are writable (a root bench on a hybrid
host, as here); else none: the sandbox then relies on RLIMIT_NPROC (counted per user namespace) and
the watchdog (watch.py), which also runs alongside a cgroup. bwrap joins the cgroup
before it starts (a two-line shell in front of it writes its own pid into cgroup.procs and execs bwrap),
so every process of the sandbox is born inside it. The folder is removed when the sandbox ends.
`MODOMODO_SANDBOX_CGROUP=0` turns this off.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time

ENV = "MODOMODO_SANDBOX_CGROUP"
_COUNTER = itertools.count()
_JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(fstype, mount point, options) of the cgroup mounts this process sees."""
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                pre, _, post = line.partition(" - ")
                fields, tail = pre.split(), post.split()
                if len(fields) > 4 and len(tail) > 2 and tail[0] in ("cgroup", "cgroup2"):
                    out.append((tail[0], fields[4], set(tail[2].split(","))))
    except OSError:
        pass
    return out


def _own_paths() -> dict[str, str]:
    """The cgroup path of this process per v1 controller ('pids', 'memory') and for v2 ('')."""
    out = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for c in controllers.split(",") if controllers else [""]:
                    out[c] = path
    except (OSError, ValueError):
        pass
    return out


def _writable(folder: str) -> bool:
    return os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)


def _plan() -> list[tuple[str, str]] | None:
    """[(kind, parent folder)] for the cgroups a sandbox would get: ('v2', dir) or ('pids', dir), ('memory', dir)."""
    mounts, own = _mounts(), _own_paths()
    for fstype, point, _ in mounts:
        if fstype == "cgroup2" and "" in own:
            parent = os.path.join(point, own[""].lstrip("/"))
            try:
                with open(os.path.join(parent, "cgroup.subtree_control")) as f:
                    enabled = set(f.read().split())
            except OSError:
                continue
            if {"pids", "memory"} <= enabled and _writable(parent):
                return [("v2", parent)]
    plan = []
    for controller in ("pids", "memory"):
        for fstype, point, options in mounts:
            if fstype == "cgroup" and controller in options and controller in own:
                parent = os.path.join(point, own[controller].lstrip("/"))
                if _writable(parent):
                    plan.append((controller, parent))
                    break
    return plan if len(plan) == 2 else None


class Cgroup:
    """The cgroup folders of one sandbox, its limits written, ready for bwrap to join."""

    def __init__(self, plan: list[tuple[str, str]], processes: int, memory_bytes: int):
        name = f"modomodo-sandbox-{os.getpid()}-{next(_COUNTER)}"
        self.kind = plan[0][0]
        self.dirs: list[str] = []
        try:
            for kind, parent in plan:
                d = os.path.join(parent, name)
                os.mkdir(d)
                self.dirs.append(d)
                if kind == "v2":
                    self._write(d, "pids.max", processes)
                    self._write(d, "memory.max", memory_bytes)
                    with contextlib.suppress(OSError):
                        self._write(d, "memory.swap.max", 0)
                elif kind == "pids":
                    self._write(d, "pids.max", processes)
                else:
                    self._write(d, "memory.limit_in_bytes", memory_bytes)
                    with contextlib.suppress(OSError):  # absent without swap accounting
                        self._write(d, "memory.memsw.limit_in_bytes", memory_bytes)
        except OSError:
            self.remove()
            raise

    @staticmethod
    def _write(d: str, name: str, value: int) -> None:
        with open(os.path.join(d, name), "w") as f:
            f.write(str(int(value)))

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` started inside this cgroup."""
        return [
            "/bin/sh",
            "-c",
            _JOIN,
            "modomodo-cgroup",
            *[os.path.join(d, "cgroup.procs") for d in self.dirs],
            "--",
            *argv,
        ]

    def oom_kills(self) -> int:
        """How many processes the kernel killed for this cgroup's memory limit."""
        for d in self.dirs:
            for name in ("memory.events", "memory.oom_control"):
                with contextlib.suppress(OSError, ValueError):
                    with open(os.path.join(d, name)) as f:
                        for line in f:
                            key, _, value = line.partition(" ")
                            if key == "oom_kill":
                                return int(value)
        return 0

    def remove(self) -> None:
        """Remove the folders (empty once the sandbox's processes are gone: retried for a moment)."""
        for d in reversed(self.dirs):
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
        self.dirs = []


_PLAN: dict[str, list | None] = {}


def _sweep(parent: str) -> None:
    """Remove the empty cgroups that bench processes no longer alive left behind (one killed before it could
    remove its sandbox's)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if name.startswith("modomodo-sandbox-") and len(parts) == 4 and parts[2].isdigit():
            if not os.path.exists(f"/proc/{parts[2]}"):
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(parent, name))


def make(processes: int, memory_bytes: int) -> Cgroup | None:
    """A cgroup for a new sandbox, or None where none can be made here."""
    if os.environ.get(ENV, "1") == "0":
        return None
    if "plan" not in _PLAN:
        _PLAN["plan"] = _plan()
        for _, parent in _PLAN["plan"] or ():
            _sweep(parent)
    plan = _PLAN["plan"]
    if not plan:
        return None
    try:
        return Cgroup(plan, processes, memory_bytes)
    except OSError:
        _PLAN["plan"] = None  # not here after all: do not try again in this process
        return None
