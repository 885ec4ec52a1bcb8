"""The inside of a strategy sandbox: one process that hosts one strategy (harness/sandbox/process.py starts it).

It is run as a script (`runpy.run_path`), inside bubblewrap where available, so it imports nothing of
the harness at module level: `main()` first sets the resource limits, then imports the strategy interface
(harness.mixture, harness.spec, strategies.base: the `harness` and `harness.sandbox` packages import nothing
themselves, so no suite, pandas or scipy comes with them) and says hello.

The protocol is JSON lines over two inherited pipes (requests in, replies out); the process's own
stdout and stderr go to a file the parent reads with a cap, so whatever the strategy prints never
mixes with the protocol or reaches the bench's output. Requests:

  {"op": "describe", "source": TEXT, "filename": NAME}      -> {"ok": true, "strategies": [{name, class, ...}]}
  {"op": "new", "source"/"filename"/"class" or "builtin", "name", "space", "seed", "params"} -> {"ok": true}
  {"op": "propose", "history": [OBS...], "budget": {"runs", "gpu_hours"}} -> {"ok": true, "mixture": ...}
  {"op": "recommend", "history": [OBS...]}                  -> {"ok": true, "mixture": ...}
  {"op": "close"}

OBS = {"mixture": [[name, weight], ...], "objective", "scores", "status", "fidelity"}; a returned
mixture is [[name, weight], ...], null (None), or {"type", "repr"} for anything that is not a
Mixture (the study rejects it with the same words as in-process). Errors: {"ok": false, "error": "..."}.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

USER_MODULE_PREFIX = "modomodo_user_"
SUBMISSION_DIR = "/submission"  # the (virtual) folder the strategy's source claims to live in
# Parts of the harness that reach data or results. A strategy has no business with them; inside
# the sandbox their files are not there anyway (this guard also holds where bwrap is missing).
DENIED = {
    "harness.suites": ("load", "load_folder", "registered"),
    "harness.suites.loading": ("load", "load_folder", "registered", "_load_cached"),
    "harness.runners": ("make_runner",),
}


def _set_limits(limits: dict, sandboxed: bool) -> None:
    """Per-process limits; RLIMIT_NPROC only in a sandbox, where the kernel counts it per user namespace (the
    sandbox's processes and threads), not across all the user's processes."""
    import resource

    for name, value in (
        ("RLIMIT_AS", limits.get("memory_bytes")),
        ("RLIMIT_CPU", limits.get("cpu_s")),
        ("RLIMIT_NOFILE", limits.get("open_files")),
        ("RLIMIT_FSIZE", limits.get("output_bytes")),
        ("RLIMIT_CORE", 0),
        ("RLIMIT_NPROC", limits.get("processes") if sandboxed else None),
    ):
        if value is None or not hasattr(resource, name):
            continue
        which = getattr(resource, name)
        soft, hard = resource.getrlimit(which)
        value = int(value)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        # CPU: SIGXCPU at the soft limit (a clear signal), SIGKILL two seconds later if it is caught
        top = value + 2 if name == "RLIMIT_CPU" and (hard == resource.RLIM_INFINITY or value + 2 <= hard) else value
        try:
            resource.setrlimit(which, (value, top))
        except (ValueError, OSError):
            resource.setrlimit(which, (value, hard))


# System calls a strategy has no use for, which could reach other processes or outlive the study:
# tracing and reading other processes' memory, kernel keyrings, System V IPC and POSIX message queues
# (objects that outlive the process), perf and bpf. Numbers per architecture; elsewhere no filter is
# installed. A system call of any other ABI (i386 through `int 0x80` or x32 on x86_64, arm32 on aarch64)
# is refused whole: the i386 ABI has its own numbers (shmget is 395 there, and ipc(2) multiplexes all of
# System V IPC), and a filter that let it through let shared memory through.
_DENIED_SYSCALLS = {
    0xC000003E: {
        "ptrace": 101,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "add_key": 248,  # x86_64
        "request_key": 249,
        "keyctl": 250,
        "shmget": 29,
        "shmat": 30,
        "shmctl": 31,
        "shmdt": 67,
        "semget": 64,
        "semop": 65,
        "semctl": 66,
        "semtimedop": 220,
        "msgget": 68,
        "msgsnd": 69,
        "msgrcv": 70,
        "msgctl": 71,
        "mq_open": 240,
        "mq_unlink": 241,
        "mq_timedsend": 242,
        "mq_timedreceive": 243,
        "mq_notify": 244,
        "mq_getsetattr": 245,
        "perf_event_open": 298,
        "bpf": 321,
        "userfaultfd": 323,
        "kcmp": 312,
    },
    0xC00000B7: {
        "ptrace": 117,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "add_key": 217,  # aarch64
        "request_key": 218,
        "keyctl": 219,
        "mq_open": 180,
        "mq_unlink": 181,
        "mq_timedsend": 182,
        "mq_timedreceive": 183,
        "mq_notify": 184,
        "mq_getsetattr": 185,
        "msgget": 186,
        "msgctl": 187,
        "msgrcv": 188,
        "msgsnd": 189,
        "semget": 190,
        "semctl": 191,
        "semtimedop": 192,
        "semop": 193,
        "shmget": 194,
        "shmctl": 195,
        "shmat": 196,
        "shmdt": 197,
        "perf_event_open": 241,
        "bpf": 280,
        "userfaultfd": 282,
        "kcmp": 272,
    },
}


def _seccomp() -> bool:
    """Install a seccomp filter that makes the denied system calls fail with EPERM (Linux only)."""
    import ctypes
    import platform
    import struct

    arch = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}.get(platform.machine())
    if arch is None or not sys.platform.startswith("linux"):
        return False
    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, eperm = 0x7FFF0000, 0x00050000 | 1
    nrs = sorted(_DENIED_SYSCALLS[arch].values())
    prog = [
        (ld_abs, 0, 0, 4),  # A = seccomp_data.arch
        (jeq, 1, 0, arch),  # our architecture: go on
        (ret, 0, 0, eperm),  # another ABI (i386 via int 0x80 on x86_64): refused
        (ld_abs, 0, 0, 0),
    ]  # A = seccomp_data.nr
    if arch == 0xC000003E:
        prog.append((jge, len(nrs) + 1, 0, 0x40000000))  # x32 system calls: refused
    for i, nr in enumerate(nrs):
        prog.append((jeq, len(nrs) - i, 0, nr))  # jump to the EPERM below
    prog += [(ret, 0, 0, allow), (ret, 0, 0, eperm)]
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(38, 1, None, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    return libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


def _die_with_parent(parent: int) -> None:
    """Outside bwrap (which has --die-with-parent): ask the kernel for SIGKILL when the parent goes."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the closed pipe still ends the process
        pass
    if os.getppid() != parent:
        os._exit(3)


def _deny_data_entry_points() -> None:
    """Whenever harness.suites or harness.runners is imported (or reloaded), its entry points that load
    suites or runners raise PermissionError. Defence in depth: the sandbox's file system is the wall."""
    import importlib.abc
    import importlib.machinery

    def deny(*args, **kwargs):
        raise PermissionError("a strategy cannot load suites or runners: it sees only its own history")

    class Loader(importlib.abc.Loader):
        def __init__(self, inner):
            self.inner = inner

        def create_module(self, spec):
            return self.inner.create_module(spec)

        def exec_module(self, module):
            self.inner.exec_module(module)
            for attr in DENIED[module.__name__]:
                if hasattr(module, attr):
                    setattr(module, attr, deny)

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname not in DENIED:
                return None
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is not None and spec.loader is not None:
                spec.loader = Loader(spec.loader)
            return spec

    sys.meta_path.insert(0, Finder())


MESSAGE_TIMEOUT_S = 2.0  # for the exception's __str__: a strategy's code, which may hang


class _MessageTimeout(BaseException):
    pass


def _message(e: BaseException) -> str:
    """str(e), guarded: a __str__ that raises or hangs still leaves the exception's type in the reason."""
    import signal

    def alarm(signum, frame):
        raise _MessageTimeout()

    previous = None
    try:
        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, MESSAGE_TIMEOUT_S)
    except (ValueError, OSError):  # not the main thread: no guard against a hang
        previous = None
    try:
        text = str(e)
        if not isinstance(text, str):
            raise TypeError("__str__ returned a non-string")
        return text
    except _MessageTimeout:
        return f"<its message did not come within {MESSAGE_TIMEOUT_S:g} s>"
    except BaseException as inner:  # noqa: BLE001 - SystemExit from __str__ included
        return f"<its message raised {_type_name(inner)}>"
    finally:
        if previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _type_name(e: BaseException) -> str:
    try:
        name = type(e).__name__
        return name if isinstance(name, str) else "Exception"
    except BaseException:  # noqa: BLE001 - a metaclass with a hostile __name__
        return "Exception"


def _describe_error(e: BaseException) -> str:
    """'Type: message at file:line', one line, cleaned of control characters and escapes, capped.
    Any exception, SystemExit and KeyboardInterrupt included; never raises."""
    from harness.sandbox.text import clean

    try:
        if isinstance(e, SyntaxError) and isinstance(e.msg, str):
            return clean(f"SyntaxError: {e.msg} (line {e.lineno})")
        where = ""
        try:
            tb = traceback.extract_tb(e.__traceback__)
            where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
        except BaseException:  # noqa: BLE001
            pass
        name, message = _type_name(e), _message(e)
        return clean(f"{name}: {message}{where}" if message else f"{name}{where}", default=name)
    except BaseException:  # noqa: BLE001 - last resort
        return "Exception: <unprintable>"


class Host:
    def __init__(self, fd_in: int, fd_out: int):
        self.fin = os.fdopen(fd_in, "rb", buffering=1 << 16)
        self.fd_out = fd_out
        self.strategy = None
        self.modules: dict[str, object] = {}
        from harness.mixture import Mixture, MixtureSpace
        from harness.spec import Budget, Observation, Proposal

        from strategies import registry
        from strategies.base import Strategy, StrategyBase
        from strategies.online import OnlineStrategy

        self.Mixture, self.MixtureSpace, self.Budget, self.Observation = Mixture, MixtureSpace, Budget, Observation
        self.Proposal = Proposal
        self.registry, self.Strategy, self.StrategyBase = registry, Strategy, StrategyBase
        self.bases = (StrategyBase, Strategy, OnlineStrategy)  # the interfaces, not strategies
        from harness.online_signals import StepSignals

        self.StepSignals = StepSignals

    # -- io ---------------------------------------------------------------------------------------
    def send(self, obj: dict) -> None:
        data = (json.dumps(obj, allow_nan=False, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            n = os.write(self.fd_out, view)
            view = view[n:]

    def serve(self) -> None:
        self.send({"ok": True, "hello": os.getpid()})
        for line in self.fin:
            try:
                msg = json.loads(line)
                op = msg.get("op")
                if op == "close":
                    return
                reply = (
                    getattr(self, "op_" + str(op))(msg)
                    if op in ("describe", "new", "propose", "recommend", "start", "update")
                    else {"ok": False, "error": f"unknown request {op!r}"}
                )
            except BaseException as e:  # the strategy's own error (SystemExit and Ctrl-C too), for the study
                reply = {"ok": False, "error": _describe_error(e)}
            try:
                self.send(reply)
            except ValueError as e:  # a NaN or inf in a reply: not a valid answer
                self.send({"ok": False, "error": f"{op} returned a value that is not plain finite data: {e}"})

    # -- the strategy's file ------------------------------------------------------------------------
    def load_source(self, source: str, filename: str):
        if filename in self.modules:
            return self.modules[filename]
        import linecache
        import types

        stem = os.path.splitext(os.path.basename(filename))[0]
        module_name = USER_MODULE_PREFIX + "".join(c if c.isalnum() else "_" for c in stem)
        path = os.path.join(SUBMISSION_DIR, os.path.basename(filename))
        module = types.ModuleType(module_name)
        module.__file__ = path
        linecache.cache[path] = (len(source), None, source.splitlines(True), path)
        sys.modules[module_name] = module
        exec(compile(source, path, "exec"), module.__dict__)
        self.modules[filename] = module
        return module

    def classes(self, module) -> list:
        import inspect

        out = []
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, self.StrategyBase) and obj not in self.bases and obj.__module__ == module.__name__:
                out.append(obj)
        return out

    def op_describe(self, msg: dict) -> dict:
        module = self.load_source(msg["source"], msg["filename"])
        found = []
        for cls in self.classes(module):
            found.append(
                {
                    "name": str(cls.__dict__.get("name") or cls.__name__.lower()),
                    "class": cls.__qualname__,
                    "description": str(cls.description or ""),
                    "citation": str(cls.citation or ""),
                    "family": str(cls.family or "other"),
                    "kind": str(getattr(cls, "kind", "offline")),
                }
            )
        return {"ok": True, "strategies": found}

    def op_new(self, msg: dict) -> dict:
        if msg.get("builtin"):
            cls = self.registry.get(msg["builtin"])
        else:
            module = self.load_source(msg["source"], msg["filename"])
            matches = [c for c in self.classes(module) if c.__qualname__ == msg["class"]]
            if not matches:
                raise LookupError(f"the file defines no Strategy class {msg['class']!r}")
            cls = matches[0]
        space = self.MixtureSpace.from_plain(msg["space"])
        self.strategy = cls(space, seed=int(msg["seed"]), **(msg.get("params") or {}))
        return {"ok": True}

    # -- the calls --------------------------------------------------------------------------------
    def history(self, items: list) -> tuple:
        M, Obs = self.Mixture, self.Observation
        return tuple(
            Obs(M(dict(o["mixture"])), o["objective"], dict(o["scores"]), o["status"], o["fidelity"]) for o in items
        )

    def answer(self, value) -> dict:
        if value is None:
            return {"ok": True, "mixture": None}
        if isinstance(value, self.Mixture):
            return {"ok": True, "mixture": [[str(n), float(w)] for n, w in value.items()]}
        if isinstance(value, self.Proposal) and isinstance(value.mixture, self.Mixture):
            return {
                "ok": True,
                "mixture": [[str(n), float(w)] for n, w in value.mixture.items()],
                "fidelity": float(value.fidelity),
            }
        try:
            text = repr(value)
        except BaseException:  # noqa: BLE001
            text = "<unprintable>"
        return {"ok": True, "other": {"type": _type_name(value)[:60], "repr": str(text)[:200]}}

    def op_propose(self, msg: dict) -> dict:
        if self.strategy is None:
            raise RuntimeError("no strategy built")
        b = msg["budget"]
        return self.answer(
            self.strategy.propose(
                self.history(msg["history"]), self.Budget(b["runs"], b.get("gpu_hours"), b.get("cost_model"))
            )
        )

    def op_recommend(self, msg: dict) -> dict:
        if self.strategy is None:
            raise RuntimeError("no strategy built")
        return self.answer(self.strategy.recommend(self.history(msg["history"])))

    # -- an online strategy's calls (strategies/online.py) --------------------------------------------
    def op_start(self, msg: dict) -> dict:
        if self.strategy is None:
            raise RuntimeError("no strategy built")
        return self.answer(self.strategy.start())

    def op_update(self, msg: dict) -> dict:
        if self.strategy is None:
            raise RuntimeError("no strategy built")
        return self.answer(self.strategy.update(self.StepSignals.from_plain(msg["signals"])))


def _serve_study(fd_in: int, fd_out: int, limits: dict, sandboxed: bool, parent: int) -> None:
    """Become the host of one strategy: limits, system-call filter, then the protocol. Never returns."""
    _set_limits(limits, sandboxed)
    if not sandboxed:
        _die_with_parent(parent)
    try:
        filtered = _seccomp()
    except Exception:  # noqa: BLE001
        filtered = False
    import platform

    if sandboxed and not filtered and platform.machine() in ("x86_64", "aarch64"):
        # the refusal of IPC and of other ABIs rests on the filter: no filter, no sandbox (fail closed)
        os.write(fd_out, b'{"ok": false, "error": "the sandbox could not install its system-call filter"}\n')
        os._exit(3)
    try:
        host = Host(fd_in, fd_out)
    except BaseException as e:  # the interface itself failed to import: say so on the pipe, then go
        os.write(
            fd_out,
            (json.dumps({"ok": False, "error": "the sandbox could not start: " + _describe_error(e)}) + "\n").encode(),
        )
        raise
    host.serve()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _prepare(root: str) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.path.insert(0, root)
    _deny_data_entry_points()


def main(config_json: str) -> None:
    cfg = json.loads(config_json)
    _prepare(cfg["root"])
    _serve_study(
        int(cfg["fd_in"]), int(cfg["fd_out"]), cfg.get("limits") or {}, bool(cfg.get("sandboxed")), int(cfg["parent"])
    )


if __name__ == "__modomodo_sandbox__":
    main(sys.argv[1])
