"""The sandbox that strategies from a user's file run in.

A benchmark that takes strategies from strangers must make it impossible for a submission to read
the answers, change the results, stop the benchmark, or carry anything from one study to the next (a
strategy that kept its pilot runs across the seeds of a bench would see far beyond its budget). So a
strategy loaded with `--strategy-file` is never imported into the bench process or its workers: its
source is read (and hashed) there, and it runs only in a sandbox of its own that hosts one strategy
for one study and then ends, with everything it started.

**A fresh sandbox for every study.** Each study (and each description of a file) gets a new bwrap
sandbox (harness/sandbox_bwrap.py): a read-only root, read-only binds of the system, the Python
installation and the project's `harness/` and `strategies/`, a private 64 MB /tmp and /dev/shm (the
only writable places, gone with the sandbox), its own user, PID, IPC, network, UTS and cgroup
namespaces, uid 65534, no capabilities, no nested user namespaces, an empty environment, no terminal.
Nothing writable and no IPC object is shared between two studies, and when a study ends its
sandbox's init dies and the kernel kills every process in it. The next study's sandbox is started
while the current one runs (a spare that has never run any code of a strategy), so its start-up of
bwrap, Python and numpy overlaps the study. (Until issue 29 a zygote forked every study of a bench
process from one sandbox: its /var/tmp, root and IPC namespace carried state from one study to the
next, and even its PID counter was a channel between them.)

Inside, before the strategy's code runs (harness/sandbox_child.py): resource limits on each process
(address space, CPU seconds, open files, output size, and RLIMIT_NPROC, which the kernel counts per
user namespace: a limit on the sandbox's processes and threads together), and a seccomp filter that
refuses ptrace, reading other processes' memory, kernel keyrings, System V IPC, POSIX message
queues, perf, bpf, and every system call of another ABI (i386 through `int 0x80`, x32). From outside,
harness/sandbox_watch.py sums the memory of all the sandbox's processes and kills the sandbox above
its limit. Every call (building the strategy, propose, recommend) runs under the strategy timeout;
a sandbox that does not answer in time is killed.

The two sides talk in JSON lines over two pipes (harness/sandbox_child.py, harness/sandbox_protocol.py):
plain data only, every reply checked before the study sees it; every text from inside (failure
reasons, names, output) is cleaned of control characters and escape sequences and capped
(harness/sandbox_text.py) before it reaches a terminal or a file.

**Fail closed.** Where bwrap is missing, or exists but no sandbox starts (after a second try with a
longer start timeout), a file strategy's studies fail with the reason; nothing runs unsandboxed
unless the operator asks for it: `--allow-unsandboxed` (or `MODOMODO_SANDBOX=allow-unsandboxed`) runs
the same child as a plain process with the same limits and protocol, with a warning, its results
marked `sandboxed = no`; `MODOMODO_SANDBOX=off` never tries bwrap.

Cost (tests/benchmarks/sandbox_overhead.py, tests/benchmarks/fresh_sandbox_cost.py): a sandbox per
study (bwrap, Python, numpy: a few hundred milliseconds of CPU, started one study ahead) and a pipe
round trip per call (about a millisecond at 64 observations).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.sandbox_cgroup import make as make_cgroup
from harness.sandbox_bwrap import INSIDE_ROOT, TMP_BYTES, bwrap_command, child_env, launch_user  # noqa: F401
from harness.sandbox_protocol import (StrategyError, plain_budget, plain_history, plain_params,  # noqa: F401
                                      read_mixture)
from harness.sandbox_text import clean
from harness.sandbox_watch import WATCHDOG, Watched

ROOT = Path(__file__).resolve().parent.parent  # the project: harness/ and strategies/ live here
CHILD_SCRIPT = Path(__file__).resolve().parent / "sandbox_child.py"

SANDBOX_ENV = "MODOMODO_SANDBOX"           # auto = require (default) | allow-unsandboxed | off
ALLOW = "allow-unsandboxed"
RESOLVED_ENV = "MODOMODO_SANDBOX_RESOLVED"  # set by the first process that decided, for its workers
BWRAP_ENV = "MODOMODO_BWRAP"               # path of bwrap (default: found on PATH)
MEMORY_ENV = "MODOMODO_STRATEGY_MEMORY_MB"
CPU_ENV = "MODOMODO_STRATEGY_CPU_S"
OUTPUT_ENV = "MODOMODO_STRATEGY_OUTPUT_BYTES"
PROCESSES_ENV = "MODOMODO_STRATEGY_PROCESSES"
START_TIMEOUT_ENV = "MODOMODO_SANDBOX_START_TIMEOUT"

DEFAULT_MEMORY_MB = 4096
DEFAULT_CPU_S = 1800
DEFAULT_OUTPUT_BYTES = 1 << 20
DEFAULT_PROCESSES = 32  # processes and threads of one sandbox together (its init and host included)
OPEN_FILES = 256
DEFAULT_START_TIMEOUT_S = 30.0  # Python + numpy on a loaded machine; the retry waits RETRY_FACTOR times longer
RETRY_FACTOR = 4.0
MAX_REPLY_BYTES = 1 << 20
MAX_TEXT = 2000


class StrategyTimeout(Exception):
    """A strategy call ran past its time limit."""


class SandboxUnavailable(StrategyError):
    """The sandbox could not be started (and running unsandboxed was not allowed)."""


def _env_number(name: str, default: float) -> float:
    try:
        v = float(os.environ.get(name, default))
    except ValueError:
        return default
    return v if math.isfinite(v) and v > 0 else default


def limits() -> dict[str, int]:
    return {"memory_bytes": int(_env_number(MEMORY_ENV, DEFAULT_MEMORY_MB) * (1 << 20)),
            "cpu_s": int(_env_number(CPU_ENV, DEFAULT_CPU_S)),
            "open_files": OPEN_FILES,
            "output_bytes": int(_env_number(OUTPUT_ENV, DEFAULT_OUTPUT_BYTES)),
            "processes": int(_env_number(PROCESSES_ENV, DEFAULT_PROCESSES))}


def _text(value, default: str) -> str:
    return clean(value, default=default)


# -- which mode: bwrap or (only when allowed) a plain process ---------------------------------------------
_STATE: dict[str, Any] = {"mode": None, "warned": False}
INSTALL_HINT = ("install bubblewrap (apt-get install bubblewrap), or pass --allow-unsandboxed to run them "
                "unsandboxed (they can then read your files; results are marked sandboxed=no)")


def _warn(text: str) -> None:
    if not _STATE["warned"]:
        _STATE["warned"] = True
        print(f"modomodo: warning: {text}", file=sys.stderr, flush=True)


def _bwrap() -> str | None:
    path = os.environ.get(BWRAP_ENV)
    if path is not None:
        return path if path and os.access(path, os.X_OK) else None
    return shutil.which("bwrap") if sys.platform.startswith("linux") else None


def allow_unsandboxed() -> bool:
    return os.environ.get(SANDBOX_ENV, "auto") in (ALLOW, "off")


def _fallback(reason: str) -> str:
    """Run unsandboxed from now on, where the operator allowed it; else refuse (fail closed)."""
    if not allow_unsandboxed():
        raise SandboxUnavailable(f"{reason}; strategies from files run only in a sandbox: {INSTALL_HINT}")
    _warn(f"{reason}: strategies from files run in a plain child process, UNSANDBOXED (they can read your files), "
          f"as {SANDBOX_ENV}={os.environ.get(SANDBOX_ENV)} allows; their results are marked sandboxed=no.")
    _STATE["mode"] = "plain"
    os.environ[RESOLVED_ENV] = "plain"
    return "plain"


def mode() -> str:
    """'bwrap' or 'plain': how this process runs strategies from files (decided once). Raises
    SandboxUnavailable where bwrap is missing and running unsandboxed was not allowed."""
    if _STATE["mode"] is None:
        wanted = os.environ.get(SANDBOX_ENV, "auto")
        if wanted == "off":  # the operator's explicit choice (tests, benchmarks): results say sandboxed=no
            _STATE["mode"] = "plain"
        elif os.environ.get(RESOLVED_ENV) == "plain" and wanted == ALLOW:
            _STATE["mode"], _STATE["warned"] = "plain", True  # the parent process warned already
        elif _bwrap() is None:
            _fallback("bubblewrap (bwrap) was not found")
        else:
            _STATE["mode"] = "bwrap"
    return _STATE["mode"]


def sandboxed() -> bool:
    """Whether strategies from files run under bwrap in this process (as far as decided so far)."""
    try:
        return mode() == "bwrap"
    except SandboxUnavailable:
        return False


def _reset_for_tests() -> None:
    _shutdown()
    _STATE.update(mode=None, warned=False)
    os.environ.pop(RESOLVED_ENV, None)


BOOT = "import runpy,sys;runpy.run_path(sys.argv[2],run_name='__modomodo_sandbox__')"


def _wait_fd(fd: int, write: bool, timeout_s: float | None) -> bool:
    """Whether fd became ready (readable, or writable) within timeout_s (poll: no FD_SETSIZE limit)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT if write else select.POLLIN)
    return bool(poller.poll(None if timeout_s is None else int(math.ceil(timeout_s * 1000))))


class Child:
    """One strategy process in a sandbox of its own (bwrap), or, where allowed, a plain process: its two
    pipes, its output file, and its whole process tree, which ends with it."""

    def __init__(self, kind: str):
        self.kind = kind
        self.sandboxed = kind == "bwrap"
        self.limits = lim = limits()
        self.buf = b""
        self.ready = False
        self.dead = False
        self.stopped_because: str | None = None  # set by the watchdog before it kills the sandbox
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        self.log = tempfile.TemporaryFile(prefix="modomodo-strategy-")
        root = INSIDE_ROOT if self.sandboxed else str(ROOT)
        script = f"{INSIDE_ROOT}/harness/sandbox_child.py" if self.sandboxed else str(CHILD_SCRIPT)
        config = {"fd_in": req_r, "fd_out": rep_w, "root": root, "limits": lim, "sandboxed": self.sandboxed,
                  "parent": os.getpid()}
        argv = [sys.executable, "-I", "-B", "-c", BOOT, json.dumps(config), script]
        extra: dict = {}
        self.cgroup = None
        try:
            if self.sandboxed:
                argv = bwrap_command(_bwrap() or "bwrap", str(ROOT)) + argv
                # the cgroup holds bwrap and its namespace's init too: two processes beyond the strategy's
                self.cgroup = make_cgroup(lim["processes"] + 2, lim["memory_bytes"])
                if self.cgroup is not None:
                    argv = self.cgroup.wrap(argv)
                else:  # no cgroup: RLIMIT_NPROC, which needs a uid other than root's
                    extra = launch_user(str(ROOT))
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                         pass_fds=(req_r, rep_w), close_fds=True, start_new_session=True,
                                         env=child_env(), cwd="/", **extra)
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            for fd in (req_r, req_w, rep_r, rep_w):
                os.close(fd)
            self.log.close()
            self.dead = True
            if self.cgroup is not None:
                self.cgroup.remove()
            raise SandboxUnavailable(f"cannot start the strategy process: {clean(str(e))}") from None
        for fd in (req_r, rep_w):
            os.close(fd)
        self.w, self.r = req_w, rep_r
        os.set_blocking(self.w, False)

    def watch(self) -> None:
        """From now on (its study's start: a spare runs no strategy code) the watchdog sums its processes."""
        WATCHDOG.add(Watched(self.proc.pid, self.limits["memory_bytes"], self.limits["processes"], self._stop,
                             self.cgroup.oom_kills if self.cgroup is not None else None))

    # -- io -------------------------------------------------------------------------------------------
    @staticmethod
    def _deadline(timeout_s: float | None) -> float | None:
        return None if timeout_s is None else time.monotonic() + timeout_s

    @staticmethod
    def _left(deadline: float | None) -> float | None:
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    def send(self, msg: dict, deadline: float | None, what: str) -> None:
        data = memoryview((json.dumps(msg, separators=(",", ":")) + "\n").encode())
        while data:
            if not _wait_fd(self.w, True, self._left(deadline)):
                raise self._timeout(what)
            try:
                n = os.write(self.w, data)
            except BlockingIOError:
                continue
            except OSError:
                raise self._died(what) from None
            data = data[n:]

    def recv(self, deadline: float | None, what: str) -> dict:
        while b"\n" not in self.buf:
            if not _wait_fd(self.r, False, self._left(deadline)):
                raise self._timeout(what)
            chunk = os.read(self.r, 1 << 16)
            if not chunk:
                raise self._died(what)
            self.buf += chunk
            if len(self.buf) > MAX_REPLY_BYTES:
                self.kill()
                raise StrategyError(f"the strategy process sent more than {MAX_REPLY_BYTES} bytes during {what}")
        line, _, self.buf = self.buf.partition(b"\n")
        try:
            reply = json.loads(line, parse_constant=_reject_constant)
        except ValueError as e:
            self.kill()
            raise StrategyError(f"the strategy process sent a malformed reply during {what}: {e}") from None
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            self.kill()
            raise StrategyError(f"the strategy process sent a malformed reply during {what}")
        return reply

    def call(self, msg: dict, timeout_s: float | None, what: str) -> dict:
        if self.stopped_because is not None or self.dead:
            raise self._died(what)  # the watchdog ended it between two calls
        deadline = self._deadline(timeout_s)
        self.send(msg, deadline, what)
        reply = self.recv(deadline, what)
        if not reply["ok"]:
            raise StrategyError(_text(reply.get("error"), "the strategy failed without a message"))
        return reply

    def wait_ready(self, timeout_s: float) -> None:
        if self.ready:
            return
        reply = self.recv(self._deadline(timeout_s), "start-up")
        if not reply["ok"]:
            self.kill()
            raise SandboxUnavailable(_text(reply.get("error"), "the sandbox could not start"))
        self.ready = True

    # -- ending -------------------------------------------------------------------------------------
    def alive(self) -> bool:
        return not self.dead and self.stopped_because is None and self.proc.poll() is None

    def output_tail(self, n: int = 300) -> str:
        """The last line the strategy printed (cleaned and capped), for a failure reason."""
        try:
            size = self.log.seek(0, os.SEEK_END)
            self.log.seek(max(0, size - 4096))
            text = self.log.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        lines = [ln for ln in (clean(x, limit=n) for x in text.splitlines()) if ln]
        return lines[-1] if lines else ""

    def output_size(self) -> int:
        try:
            return os.fstat(self.log.fileno()).st_size
        except (OSError, ValueError):
            return 0

    def _timeout(self, what: str) -> StrategyTimeout:
        self.kill()
        return StrategyTimeout(what)

    def _died(self, what: str) -> StrategyError:
        code = None
        with contextlib.suppress(Exception):
            code = self.proc.wait(5)
        size = self.output_size()
        tail = self.output_tail()
        oom = self.cgroup is not None and self.cgroup.oom_kills() > 0
        self.kill()
        if self.stopped_because is None and oom:
            self.stopped_because = (f"its processes together reached the sandbox's memory limit of "
                                    f"{self.limits['memory_bytes'] >> 20} MB (the kernel killed one of them)")
        if self.stopped_because is not None:
            return StrategyError(f"the strategy's sandbox was stopped during {what}: {self.stopped_because}")
        signum = -code if code is not None and code < 0 else code - 128 if code is not None and code > 128 else None
        if code is None:
            how = "died"
        elif signum == 24:  # SIGXCPU
            how = f"was stopped at its CPU time limit ({self.limits['cpu_s']} s, signal 24)"
        elif signum is not None:  # killed by a signal (bwrap reports 128 + the signal)
            how = f"was killed by signal {signum}"
        else:  # os._exit(n), or sys.exit outside a call
            how = f"exited with status {code}"
        extra = ""
        if size >= self.limits["output_bytes"]:
            extra = f" (it wrote {self.limits['output_bytes']} bytes of output, the limit)"
        elif tail:
            extra = f" (last output: {tail})"
        return StrategyError(f"the strategy process {how} during {what}{extra}")

    def _stop(self, reason: str) -> None:
        """From the watchdog's thread: end the sandbox's processes (the pipes stay open until the study's
        thread sees them close and reports the reason)."""
        self.stopped_because = reason
        self._terminate()

    def _terminate(self) -> None:
        with contextlib.suppress(Exception):
            os.killpg(self.proc.pid, 9)  # bwrap; its init dies with it, and the kernel ends the namespace
        with contextlib.suppress(Exception):
            self.proc.kill()

    def kill(self) -> None:
        if self.dead:
            return
        self.dead = True
        WATCHDOG.remove(self.proc.pid)
        self._terminate()
        with contextlib.suppress(Exception):
            self.proc.wait(5)
        if self.cgroup is not None:
            self.cgroup.remove()
        for fd in (self.w, self.r):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(Exception):
            self.log.close()

    def close(self) -> None:
        """End the study: ask the host to stop, then end the sandbox and everything still running in it."""
        if self.dead:
            return
        with contextlib.suppress(Exception):
            self.send({"op": "close"}, self._deadline(1.0), "close")
            self.proc.wait(1.0)
        self.kill()

    def discard(self) -> None:
        """End it without waiting (a handle garbage-collected without close())."""
        self.kill()


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a finite number")


# -- starting children --------------------------------------------------------------------------------
# A fresh sandbox per study, with SPARES sandboxes started ahead so that the next studies' start-up
# (bwrap, Python, numpy: about 0.2 s of CPU, more wall time on a loaded machine) overlaps the current
# one. A spare has never run any code of a strategy; it is used once.
SPARES_ENV = "MODOMODO_SANDBOX_SPARES"
DEFAULT_SPARES = 2
_SPARES: list[Child] = []


def start_timeout() -> float:
    return _env_number(START_TIMEOUT_ENV, DEFAULT_START_TIMEOUT_S)


def _spares_wanted() -> int:
    try:
        return max(0, min(8, int(os.environ.get(SPARES_ENV, DEFAULT_SPARES))))
    except ValueError:
        return DEFAULT_SPARES


def _fresh(kind: str, timeout_s: float) -> Child:
    child = Child(kind)
    try:
        child.wait_ready(timeout_s)
    except StrategyTimeout:
        child.kill()
        raise SandboxUnavailable(f"it did not start within {timeout_s:g} s") from None
    except StrategyError as e:
        tail = child.output_tail()
        child.kill()
        raise SandboxUnavailable(clean(f"{e}" + (f" ({tail})" if tail and tail not in str(e) else ""))) from None
    return child


def _take_spare(kind: str) -> Child | None:
    """The oldest spare still fit to use (started for this mode and these limits, alive)."""
    lim = limits()
    while _SPARES:
        child = _SPARES.pop(0)
        if child.limits == lim and child.kind == kind and child.alive():
            return child
        child.kill()
    return None


def _top_up(kind: str) -> None:
    while len(_SPARES) < _spares_wanted():
        try:
            _SPARES.append(Child(kind))  # the next studies' sandboxes, starting while this one runs
        except StrategyError:
            return


def acquire() -> Child:
    """A started strategy process that has said hello, never used before. Under bwrap a sandbox that does
    not start is tried once more with RETRY_FACTOR times the start timeout; then the study fails (or,
    where the operator allowed it, strategies run unsandboxed from then on)."""
    kind = mode()
    child = _take_spare(kind)
    reasons = []
    for timeout_s in (start_timeout(), start_timeout() * RETRY_FACTOR):
        try:
            if child is None:
                child = _fresh(kind, timeout_s)
            else:
                child.wait_ready(timeout_s)
            break
        except StrategyError as e:  # SandboxUnavailable, or the spare died: its reason
            if child is not None:
                child.kill()
            child = None
            reasons.append(clean(str(e), limit=300))
        except StrategyTimeout:
            child.kill()
            child = None
            reasons.append(f"it did not start within {timeout_s:g} s")
    if child is None:
        _shutdown()  # spares of a sandbox that does not start would not either
        what = "the strategy sandbox" if kind == "bwrap" else "the strategy process"
        why = f"{what} could not start (tried twice: {'; then '.join(reasons)})"
        if kind == "bwrap":
            _fallback(why)  # raises unless the operator allowed unsandboxed runs
            return acquire()
        raise SandboxUnavailable(why)
    child.watch()
    _top_up(kind)
    return child


@atexit.register
def _shutdown() -> None:
    while _SPARES:
        _SPARES.pop().kill()


class SandboxedStrategy:
    """A strategy in its own sandboxed process, for one study; the same methods as a Strategy, plus close().

    `source` is the strategy's file (a `strategies.registry.FileSource`) or None for a built-in, which
    is then rebuilt by name in the child (isolation "process")."""

    mode = "sandbox"

    def __init__(self, name: str, space, seed: int, params: dict[str, Any], timeout_s: float | None,
                 source=None, class_name: str = ""):
        self.timeout_s = timeout_s
        self.child = acquire()
        self.sandboxed = self.child.sandboxed
        msg: dict[str, Any] = {"op": "new", "name": name, "space": space.to_plain(), "seed": int(seed),
                               "params": plain_params(params)}
        if source is None:
            msg["builtin"] = name
        else:
            msg.update(source=source.text, filename=source.filename, **{"class": class_name})
        try:
            self._call(msg, "building the strategy")
        except BaseException:
            self.child.kill()
            raise

    def _call(self, msg: dict, what: str) -> dict:
        try:
            return self.child.call(msg, self.timeout_s, what)
        except StrategyTimeout:
            raise StrategyTimeout(f"{what} exceeded the {self.timeout_s or 0:g} s time limit (strategy process "
                                  f"stopped)") from None

    def propose(self, history, budget):
        reply = self._call({"op": "propose", "history": plain_history(history), "budget": plain_budget(budget)},
                           "propose")
        return read_mixture(reply, "propose")

    def recommend(self, history):
        return read_mixture(self._call({"op": "recommend", "history": plain_history(history)}, "recommend"),
                            "recommend")

    # an online strategy (strategies/online.py): the first weights, then new weights after each step
    def start(self):
        return read_mixture(self._call({"op": "start"}, "start"), "start")

    def update(self, signals):
        return read_mixture(self._call({"op": "update", "signals": signals.to_plain()}, "update"), "update")

    def close(self) -> None:
        self.child.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.child.discard()


def describe_source(text: str, filename: str, timeout_s: float | None) -> list[dict]:
    """What a strategy file defines (name, class, description, citation, family of each Strategy
    subclass), learned from a sandboxed child: the file is never imported here."""
    child = acquire()
    try:
        reply = child.call({"op": "describe", "source": text, "filename": filename}, timeout_s, "importing the file")
    except StrategyTimeout:
        raise StrategyTimeout(f"importing it exceeded the {timeout_s or 0:g} s time limit") from None
    finally:
        child.close()
    found = reply.get("strategies")
    if not isinstance(found, list) or len(found) > 100:
        raise StrategyError("the strategy process sent a malformed description")
    out = []
    for d in found:
        if not isinstance(d, dict) or not all(isinstance(d.get(k), str) for k in
                                              ("name", "class", "description", "citation", "family")):
            raise StrategyError("the strategy process sent a malformed description")
        entry = {k: clean(d[k], limit=MAX_TEXT) for k in ("name", "class", "description", "citation", "family")}
        entry["kind"] = d.get("kind") if d.get("kind") in ("offline", "online") else "offline"
        out.append(entry)
    return out
