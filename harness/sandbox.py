"""The sandbox that strategies from a user's file run in.

A benchmark that takes strategies from strangers must make it impossible for a submission to read
the answers, change the results or stop the benchmark. So a strategy loaded with `--strategy-file`
is never imported into the bench process or its workers: its source is read (and hashed) there, and
it runs only in a child process that hosts one strategy for one study and then ends (a strategy
that lived across studies could pool pilot runs of several seeds and see beyond its budget).

Under bubblewrap that process is a fork of a *zygote*: one sandbox per bench process (or worker)
holds an interpreter with numpy and the strategy interface imported and no user code ever run, and
forks a fresh process for each study (milliseconds instead of the ~0.2-0.3 s of a new interpreter).
Before each fork the zygote kills everything the last study left running and empties /tmp and
/dev/shm, and it is not dumpable (no writing into its memory through /proc), so nothing passes from
one study to the next. A study that must be killed (a time limit) takes the zygote with it; the next
study gets a new one. `MODOMODO_SANDBOX_ZYGOTE=0` starts a fresh bwrap per study instead.

On Linux the child runs under bubblewrap (`bwrap`):
- a read-only view of the system libraries, the Python installation and the project's `harness/` and
  `strategies/` code (to import the Strategy interface) only: no `baselines/`, no results folder or
  store, no home folder; `/tmp` is a private tmpfs; the strategy's source arrives over the pipe;
- its own PID namespace with a fresh `/proc` (it can neither see nor signal the bench), no network,
  a new session (no terminal), an empty environment, and it dies with its parent;
- no capabilities, uid 65534 (nobody), no nested user namespaces, a seccomp filter that denies
  ptrace, reading other processes' memory, kernel keyrings, System V IPC, perf and bpf;
- resource limits set inside before the strategy's code runs: address space, CPU seconds, open
  files, and the size of what it writes (its stdout and stderr go to a file the parent reads with a
  cap, so 100 MB printed never reach the bench's output); /tmp and /dev/shm hold 64 MB;
- every call (building the strategy, propose, recommend) under the strategy timeout: a child that
  does not answer in time is killed with its whole namespace.
The two talk in JSON lines over two pipes (see harness/sandbox_child.py): mixture weights, plain
observations, the budget, the space as plain data (bounds, candidates); never pickled objects. The
parent checks every reply (types, sizes, finite numbers, a valid Mixture) before the study sees it.

Where `bwrap` is missing or cannot start (another OS, a container without user namespaces), the
same child runs as a plain process with the same limits and protocol, a warning is printed once,
and its results are marked unsandboxed (`sandboxed = no` in summary.csv and on the leaderboard).
`MODOMODO_SANDBOX=require` refuses to run unsandboxed instead; `off` never tries bwrap.

Cost (tests/benchmarks/sandbox_overhead.py): a fork per study (tens of milliseconds; a fresh
interpreter where there is no zygote, about 0.2-0.3 s, started one study ahead) and a pipe round trip
per call (about a millisecond at 64 observations).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import math
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the project: harness/ and strategies/ live here
CHILD_SCRIPT = Path(__file__).resolve().parent / "sandbox_child.py"
INSIDE_ROOT = "/modomodo"  # where the sandbox sees harness/ and strategies/

SANDBOX_ENV = "MODOMODO_SANDBOX"           # auto (default) | require | off
RESOLVED_ENV = "MODOMODO_SANDBOX_RESOLVED"  # set by the first process that decided, for its workers
BWRAP_ENV = "MODOMODO_BWRAP"               # path of bwrap (default: found on PATH)
MEMORY_ENV = "MODOMODO_STRATEGY_MEMORY_MB"
CPU_ENV = "MODOMODO_STRATEGY_CPU_S"
OUTPUT_ENV = "MODOMODO_STRATEGY_OUTPUT_BYTES"
START_TIMEOUT_ENV = "MODOMODO_SANDBOX_START_TIMEOUT"

DEFAULT_MEMORY_MB = 4096
DEFAULT_CPU_S = 1800
DEFAULT_OUTPUT_BYTES = 1 << 20
OPEN_FILES = 256
TMP_BYTES = 64 << 20  # the private /tmp and /dev/shm (tmpfs: memory that RLIMIT_AS does not count)
DEFAULT_START_TIMEOUT_S = 120.0  # Python + numpy on a loaded machine; not the strategy's time
MAX_REPLY_BYTES = 1 << 20
MAX_NAME = 64
MAX_TEXT = 2000


class StrategyTimeout(Exception):
    """A strategy call ran past its time limit."""


class StrategyError(Exception):
    """A strategy failed in its sandbox (the message carries the original error, or how it died)."""


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
            "output_bytes": int(_env_number(OUTPUT_ENV, DEFAULT_OUTPUT_BYTES))}


# -- which mode: bwrap or a plain process --------------------------------------------------------
_STATE: dict[str, Any] = {"mode": None, "warned": False, "proven": False}


def _warn(text: str) -> None:
    if not _STATE["warned"]:
        _STATE["warned"] = True
        print(f"modomodo: warning: {text}", file=sys.stderr, flush=True)


def _bwrap() -> str | None:
    path = os.environ.get(BWRAP_ENV)
    if path is not None:
        return path if path and os.access(path, os.X_OK) else None
    return shutil.which("bwrap") if sys.platform.startswith("linux") else None


def _fallback(reason: str) -> str:
    if os.environ.get(SANDBOX_ENV, "auto") == "require":
        raise SandboxUnavailable(f"{reason}, and {SANDBOX_ENV}=require forbids running strategies from files "
                                 f"unsandboxed")
    _warn(f"{reason}: strategies from files run in a plain child process, UNSANDBOXED (they can read your files); "
          f"their results are marked sandboxed=no. Install bubblewrap (apt-get install bubblewrap) to sandbox them.")
    _STATE["mode"] = "plain"
    os.environ[RESOLVED_ENV] = "plain"
    return "plain"


def mode() -> str:
    """'bwrap' or 'plain': how this process runs strategies from files (decided once)."""
    if _STATE["mode"] is None:
        wanted = os.environ.get(SANDBOX_ENV, "auto")
        resolved = os.environ.get(RESOLVED_ENV)
        if wanted == "off":
            _STATE["mode"] = "plain"
        elif resolved == "plain" and wanted != "require":
            _STATE["mode"], _STATE["warned"] = "plain", True  # the parent process warned already
        elif _bwrap() is None:
            _fallback("bubblewrap (bwrap) was not found")
        else:
            _STATE["mode"] = "bwrap"
    return _STATE["mode"]


def sandboxed() -> bool:
    """Whether strategies from files run under bwrap in this process (as far as decided so far)."""
    return mode() == "bwrap"


def _reset_for_tests() -> None:
    _shutdown()
    _STATE.update(mode=None, warned=False, proven=False, no_zygote=False)
    os.environ.pop(RESOLVED_ENV, None)


# -- the command line of the child --------------------------------------------------------------------
def _python_dirs() -> list[str]:
    """The Python installation: the venv (as named and resolved), its base installation, the interpreter."""
    dirs: set[str] = set()
    for d in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix):
        dirs.update({os.path.abspath(d), os.path.realpath(d)})
    dirs.add(os.path.dirname(os.path.realpath(sys.executable)))
    dirs = {d for d in dirs if os.path.isdir(d) and d != "/"}
    return sorted(d for d in dirs if not any(o != d and _inside(d, o) for o in dirs))


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


@functools.lru_cache(maxsize=4)
def _bwrap_options(bwrap: str) -> frozenset[str]:
    """The options this bwrap knows (older ones lack --disable-userns, --size, --clearenv)."""
    try:
        text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(w for w in text.split() if w.startswith("--"))


def bwrap_command(bwrap: str) -> list[str]:
    # --cap-drop ALL: run as root, bwrap would otherwise keep every capability inside its user namespace,
    # and with CAP_SYS_ADMIN a strategy can remount a read-only bind read-write and write through to the
    # host (tried: it rewrote a bound file). So: no capabilities, an unprivileged uid, no nested namespaces.
    has = _bwrap_options(bwrap)
    args = [bwrap, "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL",
            "--die-with-parent", "--new-session"]
    args += [o for o in ("--disable-userns", "--clearenv") if o in has]  # bwrap >= 0.8 / 0.5
    bound: list[str] = []
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
            bound.append(top)
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime"):
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    pydirs = [d for d in _python_dirs() if not any(_inside(d, b) for b in bound)]
    for d in pydirs:
        args += ["--ro-bind", d, d]
        bound.append(d)
    # The project (baselines/, results folders) and the current folder must not show through a bound
    # folder (a Python installed above the project): hide them, then re-bind any Python folder inside.
    hidden = [p for p in {str(ROOT), os.getcwd()} if any(_inside(p, b) for b in bound)]
    for h in sorted(hidden, key=len):
        args += ["--tmpfs", h]
        for d in pydirs:
            if _inside(d, h) and d != h:
                args += ["--ro-bind", d, d]
    args += ["--ro-bind", str(ROOT / "harness"), f"{INSIDE_ROOT}/harness",
             "--ro-bind", str(ROOT / "strategies"), f"{INSIDE_ROOT}/strategies",
             "--proc", "/proc", "--dev", "/dev",
             *(["--size", str(TMP_BYTES)] if "--size" in has else []), "--tmpfs", "/tmp",
             *(["--size", str(TMP_BYTES)] if "--size" in has else []), "--tmpfs", "/dev/shm",
             "--chdir", "/tmp"]
    for k, v in _child_env().items():
        args += ["--setenv", k, v]
    return args + ["--"]


def _child_env() -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = "1"  # one thread: small matrices, and a strategy must not take the machine
    return env


BOOT = "import runpy,sys;runpy.run_path(sys.argv[2],run_name='__modomodo_sandbox__')"


def _wait_fd(fd: int, write: bool, timeout_s: float | None) -> bool:
    """Whether fd became ready (readable, or writable) within timeout_s (poll: no FD_SETSIZE limit)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT if write else select.POLLIN)
    return bool(poller.poll(None if timeout_s is None else int(math.ceil(timeout_s * 1000))))


class Channel:
    """The two pipes and the output file of one strategy process (standalone, or forked by the zygote)."""

    sandboxed = False

    def __init__(self, w: int, r: int, log, limits_: dict):
        self.w, self.r, self.log, self.limits = w, r, log, limits_
        os.set_blocking(self.w, False)
        self.buf = b""
        self.ready = False
        self.dead = False

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
        deadline = self._deadline(timeout_s)
        self.send(msg, deadline, what)
        reply = self.recv(deadline, what)
        if not reply["ok"]:
            raise StrategyError(_text(reply.get("error"), "the strategy failed without a message"))
        return reply

    # -- ending -------------------------------------------------------------------------------------
    def alive(self) -> bool:
        return not self.dead

    def output_tail(self, n: int = 300) -> str:
        """The last line the strategy printed (capped), for a failure reason."""
        try:
            size = self.log.seek(0, os.SEEK_END)
            self.log.seek(max(0, size - 4096))
            text = self.log.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return lines[-1][:n] if lines else ""

    def output_size(self) -> int:
        try:
            return os.fstat(self.log.fileno()).st_size
        except (OSError, ValueError):
            return 0

    def _exit_code(self) -> int | None:
        raise NotImplementedError

    def _terminate(self) -> None:
        raise NotImplementedError

    def _timeout(self, what: str) -> StrategyTimeout:
        self.kill()
        return StrategyTimeout(what)

    def _died(self, what: str) -> StrategyError:
        code = None
        with contextlib.suppress(Exception):
            code = self._exit_code()
        size = self.output_size()
        tail = self.output_tail()
        self.kill()
        signum = -code if code is not None and code < 0 else code - 128 if code is not None and code > 128 else None
        if code is None:
            how = "died"
        elif signum == 24:  # SIGXCPU
            how = f"was stopped at its CPU time limit ({self.limits['cpu_s']} s, signal 24)"
        elif signum is not None:  # killed by a signal (bwrap reports 128 + the signal)
            how = f"was killed by signal {signum}"
        else:
            how = f"exited with status {code}"
        extra = ""
        if size >= self.limits["output_bytes"]:
            extra = f" (it wrote {self.limits['output_bytes']} bytes of output, the limit)"
        elif tail:
            extra = f" (last output: {tail})"
        return StrategyError(f"the strategy process {how} during {what}{extra}")

    def _release(self) -> None:
        self.dead = True
        for fd in (self.w, self.r):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(Exception):
            self.log.close()

    def kill(self) -> None:
        if self.dead:
            return
        with contextlib.suppress(Exception):
            self._terminate()
        self._release()

    def close(self) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        """End it without waiting (a handle garbage-collected without close())."""
        self.kill()


class Child(Channel):
    """A strategy process of its own (under bwrap, or plain)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.sandboxed = kind == "bwrap"
        lim = limits()
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        log = tempfile.TemporaryFile(prefix="modomodo-strategy-")
        root = INSIDE_ROOT if self.sandboxed else str(ROOT)
        script = f"{INSIDE_ROOT}/harness/sandbox_child.py" if self.sandboxed else str(CHILD_SCRIPT)
        config = {"fd_in": req_r, "fd_out": rep_w, "root": root, "limits": lim, "sandboxed": self.sandboxed,
                  "parent": os.getpid()}
        argv = [sys.executable, "-I", "-B", "-c", BOOT, json.dumps(config), script]
        if self.sandboxed:
            argv = bwrap_command(_bwrap() or "bwrap") + argv
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         pass_fds=(req_r, rep_w), close_fds=True, start_new_session=True,
                                         env=_child_env(), cwd="/")
        except OSError as e:
            for fd in (req_r, req_w, rep_r, rep_w):
                os.close(fd)
            log.close()
            raise SandboxUnavailable(f"cannot start the strategy process: {e}") from None
        os.close(req_r)
        os.close(rep_w)
        super().__init__(req_w, rep_r, log, lim)

    def wait_ready(self, timeout_s: float) -> None:
        if self.ready:
            return
        reply = self.recv(self._deadline(timeout_s), "start-up")
        if not reply["ok"]:
            self.kill()
            raise SandboxUnavailable(_text(reply.get("error"), "the sandbox could not start"))
        self.ready = True

    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    def _exit_code(self) -> int | None:
        return self.proc.wait(5)

    def _terminate(self) -> None:
        with contextlib.suppress(Exception):
            os.killpg(self.proc.pid, 9)
        with contextlib.suppress(Exception):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(5)

    def close(self) -> None:
        if self.dead:
            return
        with contextlib.suppress(Exception):
            self.send({"op": "close"}, self._deadline(2.0), "close")
            self.proc.wait(2)
        self.kill()


ZYGOTE_ENV = "MODOMODO_SANDBOX_ZYGOTE"  # 0: a fresh bwrap per study instead of a fork of the zygote
ZYGOTE_TIMEOUT_S = 20.0  # a fork or a status: milliseconds; more means the zygote was stopped


class Zygote:
    """One bwrap sandbox holding a warm interpreter that forks a fresh process per study (see
    harness/sandbox_child.py: zygote). Saves the interpreter and numpy start-up of every study; before
    each fork the zygote kills what the last study left and empties /tmp and /dev/shm."""

    def __init__(self):
        self.ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.log = tempfile.TemporaryFile(prefix="modomodo-zygote-")
        self.busy = False
        self.dead = False
        config = {"zygote": True, "ctl": theirs.fileno(), "root": INSIDE_ROOT, "sandboxed": True,
                  "parent": os.getpid()}
        argv = bwrap_command(_bwrap() or "bwrap") + [sys.executable, "-I", "-B", "-c", BOOT, json.dumps(config),
                                                     f"{INSIDE_ROOT}/harness/sandbox_child.py"]
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                         pass_fds=(theirs.fileno(),), close_fds=True, start_new_session=True,
                                         env=_child_env(), cwd="/")
        except OSError as e:
            self.ctl.close()
            self.log.close()
            self.dead = True
            raise SandboxUnavailable(f"cannot start the strategy sandbox: {e}") from None
        finally:
            theirs.close()

    def _recv(self, timeout_s: float, what: str) -> dict:
        self.ctl.settimeout(timeout_s)
        try:
            data = self.ctl.recv(1 << 16)
        except (OSError, socket.timeout):
            data = None
        if not data:
            self.kill()
            raise SandboxUnavailable(f"the strategy sandbox stopped answering ({what})")
        reply = json.loads(data)
        if not reply.get("ok"):
            self.kill()
            raise SandboxUnavailable(_text(reply.get("error"), "the strategy sandbox failed"))
        return reply

    def _request(self, msg: dict, fds=(), timeout_s: float | None = None) -> dict:
        timeout_s = ZYGOTE_TIMEOUT_S if timeout_s is None else timeout_s
        self.ctl.settimeout(timeout_s)
        try:
            socket.send_fds(self.ctl, [json.dumps(msg).encode()], list(fds))
        except (OSError, socket.timeout):
            self.kill()
            raise SandboxUnavailable(f"the strategy sandbox stopped answering ({msg['op']})") from None
        return self._recv(timeout_s, msg["op"])

    def hello(self, timeout_s: float) -> None:
        self._recv(timeout_s, "start-up")

    def fork(self) -> ZygoteChild:
        lim = limits()
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        log = tempfile.TemporaryFile(prefix="modomodo-strategy-")
        try:
            reply = self._request({"op": "fork", "limits": lim}, (req_r, rep_w, log.fileno()))
        except BaseException:
            for fd in (req_w, rep_r):
                os.close(fd)
            log.close()
            raise
        finally:
            os.close(req_r)
            os.close(rep_w)
        self.busy = True
        child = ZygoteChild(self, int(reply["pid"]), req_w, rep_r, log, lim)
        hello = child.recv(child._deadline(ZYGOTE_TIMEOUT_S), "start-up")
        if not hello["ok"]:
            child.kill()
            raise SandboxUnavailable(_text(hello.get("error"), "the strategy process could not start"))
        return child

    def exit_code(self, pid: int) -> int | None:
        if self.dead:
            return None
        code = self._request({"op": "wait", "pid": pid, "timeout": 5.0}).get("code")
        return code if isinstance(code, int) else None

    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    def kill(self) -> None:
        if self.dead:
            return
        self.dead = True
        with contextlib.suppress(Exception):
            os.killpg(self.proc.pid, 9)
        with contextlib.suppress(Exception):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(5)
        with contextlib.suppress(Exception):
            self.ctl.close()
        with contextlib.suppress(Exception):
            self.log.close()


class ZygoteChild(Channel):
    """A study's process forked by the zygote. Killing it (a time limit) takes the whole sandbox down:
    its PID is not visible from here, and the next study gets a new zygote."""

    sandboxed = True
    kind = "bwrap"

    def __init__(self, zygote: Zygote, pid: int, w: int, r: int, log, limits_: dict):
        self.zygote, self.pid = zygote, pid
        super().__init__(w, r, log, limits_)
        self.ready = True

    def alive(self) -> bool:
        return not self.dead and self.zygote.alive()

    def _exit_code(self) -> int | None:
        return self.zygote.exit_code(self.pid)

    def _terminate(self) -> None:
        self.zygote.kill()

    def _release(self) -> None:
        super()._release()
        self.zygote.busy = False

    def close(self) -> None:
        if self.dead:
            return
        with contextlib.suppress(Exception):
            self.send({"op": "close"}, self._deadline(2.0), "close")
        self._release()  # the zygote ends whatever is left of it before the next study

    def discard(self) -> None:
        self.close()  # killing would take the zygote down; the next fork ends what is left


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a finite number")


def _text(value, default: str) -> str:
    if not isinstance(value, str) or not value:
        return default
    value = " ".join(value.split())
    return value if len(value) <= 500 else value[:497] + "..."


# -- starting children --------------------------------------------------------------------------------
# Under bwrap: a fork of the zygote per study (a few milliseconds). Without a usable zygote (or while a
# study of it is still open, or plain mode): a process of its own, with one warm spare started ahead so
# that the next study's start-up overlaps the current one.
_SPARE: Child | None = None
_ZYGOTE: Zygote | None = None


def start_timeout() -> float:
    return _env_number(START_TIMEOUT_ENV, DEFAULT_START_TIMEOUT_S)


def _prove() -> None:
    _STATE["proven"] = True
    os.environ[RESOLVED_ENV] = "bwrap"


def _zygote_wanted() -> bool:
    return (mode() == "bwrap" and os.environ.get(ZYGOTE_ENV, "1") != "0" and not _STATE.get("no_zygote")
            and hasattr(socket, "send_fds") and hasattr(socket, "SOCK_SEQPACKET"))


def _from_zygote() -> Channel | None:
    global _ZYGOTE
    if not _zygote_wanted():
        return None
    if _ZYGOTE is not None and _ZYGOTE.alive() and _ZYGOTE.busy:
        return None  # a study of the zygote is still open: this one gets a sandbox of its own
    for _ in range(2):
        if _ZYGOTE is None or not _ZYGOTE.alive():
            if _ZYGOTE is not None:
                _ZYGOTE.kill()
            try:
                _ZYGOTE = Zygote()
                _ZYGOTE.hello(start_timeout())
            except (StrategyError, OSError, ValueError):
                if _ZYGOTE is not None:
                    _ZYGOTE.kill()
                _ZYGOTE = None
                _STATE["no_zygote"] = True  # the standalone path decides (and falls back, if bwrap cannot run)
                return None
        try:
            child = _ZYGOTE.fork()
        except (StrategyError, OSError, ValueError):
            _ZYGOTE.kill()
            _ZYGOTE = None
            continue
        _prove()
        return child
    _STATE["no_zygote"] = True
    return None


def acquire() -> Channel:
    """A started strategy process that has said hello, never used before. Falls back to a plain process
    (once, with a warning) where bwrap cannot start at all."""
    global _SPARE
    if mode() == "bwrap":
        child = _from_zygote()
        if child is not None:
            return child
    child, _SPARE = _SPARE, None
    if child is not None and (child.limits != limits() or child.kind != mode() or not child.alive()):
        child.kill()
        child = None
    for attempt in range(2):
        if child is None:
            child = Child(mode())
        try:
            child.wait_ready(start_timeout())
            break
        except StrategyError as e:
            reason = str(e)
            if child.sandboxed and not _STATE["proven"]:
                tail = child.output_tail() or reason
                child.kill()
                child = None
                _fallback(f"bubblewrap could not start ({tail})")
                continue
            child.kill()
            if attempt == 1 or isinstance(e, StrategyTimeout):
                raise SandboxUnavailable(f"the strategy process did not start: {reason}") from None
            child = None
    if child.sandboxed:
        _prove()
    if not _zygote_wanted():  # the next study will want a process of its own too: start it now
        try:
            _SPARE = Child(mode())
        except StrategyError:
            _SPARE = None
    return child


@atexit.register
def _shutdown() -> None:
    global _SPARE, _ZYGOTE
    if _SPARE is not None:
        _SPARE.kill()
        _SPARE = None
    if _ZYGOTE is not None:
        _ZYGOTE.kill()
        _ZYGOTE = None


# -- plain data both ways ---------------------------------------------------------------------------
def plain_history(history) -> list[dict]:
    return [{"mixture": [[n, float(w)] for n, w in o.mixture.items()],
             "objective": None if o.objective is None else float(o.objective),
             "scores": {str(k): (float(v) if isinstance(v, (int, float)) else v) for k, v in dict(o.scores).items()},
             "status": str(o.status), "fidelity": float(o.fidelity)} for o in history]


def plain_budget(budget) -> dict:
    plain = {"runs": budget.runs, "gpu_hours": None if budget.gpu_hours is None else float(budget.gpu_hours)}
    if getattr(budget, "cost_model", None) is not None:  # a scales suite's costs (harness.spec.ScaleCosts)
        plain["cost_model"] = budget.cost_model.to_plain()
    return plain


def plain_params(params: dict) -> dict:
    try:
        text = json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"strategy parameters must be plain data (numbers, strings, lists, dicts): {e}") from None
    return json.loads(text)


def _foreign(type_name: str, text: str):
    """An object standing for a non-Mixture value the strategy returned: the study's message names its
    type and repr just as it would in-process."""
    name = "".join(c for c in type_name if c.isalnum() or c == "_")[:60] or "object"
    return type(name, (), {"__repr__": lambda self: text, "__slots__": ()})()


def read_mixture(reply: dict, what: str):
    from harness.mixture import InvalidMixture, Mixture

    if "other" in reply:
        other = reply["other"] if isinstance(reply["other"], dict) else {}
        return _foreign(_text(other.get("type"), "object"), _text(other.get("repr"), "?"))
    pairs = reply.get("mixture")
    if pairs is None:
        return None
    if "fidelity" in reply:  # a Proposal (a pilot at a fidelity)
        f = reply["fidelity"]
        if isinstance(f, bool) or not isinstance(f, (int, float)):
            raise StrategyError(f"{what} sent a malformed fidelity")
        from harness.spec import Proposal

        return Proposal(read_mixture({"mixture": pairs}, what), float(f))
    if not isinstance(pairs, list) or not 0 < len(pairs) <= 10_000:
        raise StrategyError(f"{what} sent a malformed mixture")
    weights: dict[str, float] = {}
    for p in pairs:
        if (not isinstance(p, list) or len(p) != 2 or not isinstance(p[0], str) or isinstance(p[1], bool)
                or not isinstance(p[1], (int, float)) or p[0] in weights):
            raise StrategyError(f"{what} sent a malformed mixture")
        weights[p[0]] = float(p[1])
    try:
        return Mixture(weights)
    except InvalidMixture as e:
        raise StrategyError(f"{what} returned an invalid mixture: {e}") from None


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
        entry = {k: d[k][:MAX_TEXT] for k in ("name", "class", "description", "citation", "family")}
        entry["kind"] = d.get("kind") if d.get("kind") in ("offline", "online") else "offline"
        out.append(entry)
    return out
