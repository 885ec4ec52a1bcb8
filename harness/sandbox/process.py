"""One strategy process in a sandbox of its own (`Child`): its two pipes, its output file, its whole process
tree, which ends with it; and the spares, started one study ahead so that their start-up overlaps the
current study. A study's handle on it is `harness.sandbox.proxy.SandboxedStrategy`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.sandbox.bwrap import INSIDE_ROOT, bwrap_command, child_env, launch_user
from harness.sandbox.cgroup import make as make_cgroup
from harness.sandbox import policy
from harness.sandbox.policy import (
    RETRY_FACTOR,
    SandboxUnavailable,
    bwrap_path,
    fall_back_or_refuse,
    limits,
    mode,
    start_timeout,
)
from harness.sandbox.protocol import StrategyError, StrategyTimeout
from harness.sandbox.text import clean
from harness.sandbox.watch import WATCHDOG, Watched

ROOT = Path(__file__).resolve().parents[2]  # the project: harness/ and strategies/ live here
CHILD_SCRIPT = Path(__file__).resolve().parent / "child.py"
MAX_REPLY_BYTES = 1 << 20


def _text(value, default: str) -> str:
    return clean(value, default=default)


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
        script = f"{INSIDE_ROOT}/harness/sandbox/child.py" if self.sandboxed else str(CHILD_SCRIPT)
        config = {
            "fd_in": req_r,
            "fd_out": rep_w,
            "root": root,
            "limits": lim,
            "sandboxed": self.sandboxed,
            "parent": os.getpid(),
        }
        argv = [sys.executable, "-I", "-B", "-c", BOOT, json.dumps(config), script]
        extra: dict = {}
        self.cgroup = None
        try:
            if self.sandboxed:
                argv = bwrap_command(bwrap_path() or "bwrap", str(ROOT)) + argv
                # the cgroup holds bwrap and its namespace's init too: two processes beyond the strategy's
                self.cgroup = make_cgroup(lim["processes"] + 2, lim["memory_bytes"])
                if self.cgroup is not None:
                    argv = self.cgroup.wrap(argv)
                else:  # no cgroup: RLIMIT_NPROC, which needs a uid other than root's
                    extra = launch_user(str(ROOT))
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=self.log,
                pass_fds=(req_r, rep_w),
                close_fds=True,
                start_new_session=True,
                env=child_env(),
                cwd="/",
                **extra,
            )
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
        WATCHDOG.add(
            Watched(
                self.proc.pid,
                self.limits["memory_bytes"],
                self.limits["processes"],
                self._stop,
                self.cgroup.oom_kills if self.cgroup is not None else None,
            )
        )

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
            self.stopped_because = (
                f"its processes together reached the sandbox's memory limit of "
                f"{self.limits['memory_bytes'] >> 20} MB (the kernel killed one of them)"
            )
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
            fall_back_or_refuse(why)  # raises unless the operator allowed unsandboxed runs
            return acquire()
        raise SandboxUnavailable(why)
    child.watch()
    _top_up(kind)
    return child


@atexit.register
def _shutdown() -> None:
    while _SPARES:
        _SPARES.pop().kill()


def _reset_for_tests() -> None:
    _shutdown()
    policy.reset()
