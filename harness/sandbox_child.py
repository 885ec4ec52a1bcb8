"""The inside of a strategy sandbox: one process that hosts one strategy (harness/sandbox.py starts it).

It is run as a script (`runpy.run_path`), inside bubblewrap where available, so it imports nothing of
the harness at module level: `main()` first sets the resource limits, then builds a bare `harness`
package (the real `harness/__init__.py` imports pandas, scipy and the suites: half a second per
study for nothing), then imports the strategy interface and says hello.

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
DENIED = {"harness.suites": ("load", "load_folder", "registered"),
          "harness.suites.loading": ("load", "load_folder", "registered", "_load_cached"),
          "harness.runners": ("make_runner",)}


def _set_limits(limits: dict) -> None:
    import resource

    for name, value in (("RLIMIT_AS", limits.get("memory_bytes")), ("RLIMIT_CPU", limits.get("cpu_s")),
                        ("RLIMIT_NOFILE", limits.get("open_files")), ("RLIMIT_FSIZE", limits.get("output_bytes")),
                        ("RLIMIT_CORE", 0)):
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
# tracing and reading other processes' memory, kernel keyrings and System V IPC (state that survives
# the process), perf and bpf. Numbers per architecture; elsewhere no filter is installed.
_DENIED_SYSCALLS = {
    0xC000003E: {"ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "add_key": 248,  # x86_64
                 "request_key": 249, "keyctl": 250, "shmget": 29, "semget": 64, "msgget": 68,
                 "perf_event_open": 298, "bpf": 321, "userfaultfd": 323, "kcmp": 312},
    0xC00000B7: {"ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "add_key": 217,  # aarch64
                 "request_key": 218, "keyctl": 219, "shmget": 194, "semget": 190, "msgget": 186,
                 "perf_event_open": 241, "bpf": 280, "userfaultfd": 282, "kcmp": 272},
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
    prog = [(ld_abs, 0, 0, 4),                      # A = seccomp_data.arch
            (jeq, 1, 0, arch),                      # our architecture: go on
            (ret, 0, 0, allow),                     # another ABI (i386 on x86_64): let the kernel decide
            (ld_abs, 0, 0, 0)]                      # A = seccomp_data.nr
    if arch == 0xC000003E:
        prog.append((jge, len(nrs) + 1, 0, 0x40000000))  # x32 system calls: denied
    for i, nr in enumerate(nrs):
        prog.append((jeq, len(nrs) - i, 0, nr))     # jump to the EPERM below
    prog += [(ret, 0, 0, allow), (ret, 0, 0, eperm)]
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(38, 1, None, 0, 0) != 0:           # PR_SET_NO_NEW_PRIVS
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


def _bare_harness_package(root: str) -> None:
    """`harness` as a namespace for its submodules, without running harness/__init__.py (which would
    import the suites, pandas and scipy). Attributes of the real package load on first use."""
    import types

    pkg = types.ModuleType("harness")
    pkg.__path__ = [os.path.join(root, "harness")]
    pkg.__file__ = os.path.join(root, "harness", "__init__.py")
    pkg.__package__ = "harness"

    def __getattr__(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        with open(pkg.__file__) as f:
            code = compile(f.read(), pkg.__file__, "exec")
        exec(code, pkg.__dict__)
        del pkg.__dict__["__getattr__"]
        return getattr(pkg, attr)

    pkg.__getattr__ = __getattr__
    sys.modules["harness"] = pkg


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


def _describe_error(e: BaseException) -> str:
    if isinstance(e, SyntaxError):
        return f"SyntaxError: {e.msg} (line {e.lineno})"
    tb = traceback.extract_tb(e.__traceback__)
    where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
    text = f"{type(e).__name__}: {e}{where}"
    return text if len(text) <= 500 else text[:497] + "..."


class Host:
    def __init__(self, fd_in: int, fd_out: int):
        self.fin = os.fdopen(fd_in, "rb", buffering=1 << 16)
        self.fd_out = fd_out
        self.strategy = None
        self.modules: dict[str, object] = {}
        from harness.mixture import Mixture, MixtureSpace
        from harness.spec import Budget, Observation, Proposal, ScaleCosts

        import strategies
        from strategies.base import Strategy, StrategyBase
        from strategies.online import OnlineStrategy

        self.Mixture, self.MixtureSpace, self.Budget, self.Observation = Mixture, MixtureSpace, Budget, Observation
        self.Proposal, self.ScaleCosts = Proposal, ScaleCosts
        self.strategies, self.Strategy, self.StrategyBase = strategies, Strategy, StrategyBase
        self.bases = (StrategyBase, Strategy, OnlineStrategy)  # the interfaces, not strategies
        from harness.spec import StepSignals

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
                reply = getattr(self, "op_" + str(op))(msg) if op in ("describe", "new", "propose", "recommend", "start", "update") \
                    else {"ok": False, "error": f"unknown request {op!r}"}
            except Exception as e:  # the strategy's own error, reported to the study
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
            found.append({"name": str(cls.__dict__.get("name") or cls.__name__.lower()), "class": cls.__qualname__,
                          "description": str(cls.description or ""), "citation": str(cls.citation or ""),
                          "family": str(cls.family or "other"), "kind": str(getattr(cls, "kind", "offline"))})
        return {"ok": True, "strategies": found}

    def op_new(self, msg: dict) -> dict:
        if msg.get("builtin"):
            cls = self.strategies.get(msg["builtin"])
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
        M, O = self.Mixture, self.Observation
        return tuple(O(M(dict(o["mixture"])), o["objective"], dict(o["scores"]), o["status"], o["fidelity"])
                     for o in items)

    def answer(self, value) -> dict:
        if value is None:
            return {"ok": True, "mixture": None}
        if isinstance(value, self.Mixture):
            return {"ok": True, "mixture": [[str(n), float(w)] for n, w in value.items()]}
        if isinstance(value, self.Proposal) and isinstance(value.mixture, self.Mixture):
            return {"ok": True, "mixture": [[str(n), float(w)] for n, w in value.mixture.items()],
                    "fidelity": float(value.fidelity)}
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001
            text = "<unprintable>"
        return {"ok": True, "other": {"type": type(value).__name__[:60], "repr": text[:200]}}

    def op_propose(self, msg: dict) -> dict:
        if self.strategy is None:
            raise RuntimeError("no strategy built")
        b = msg["budget"]
        return self.answer(self.strategy.propose(self.history(msg["history"]), self.Budget(b["runs"], b.get("gpu_hours"),
                                                                                   self.ScaleCosts.from_card(b.get("cost_model")))))

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


def _prctl(option: int, arg: int) -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0)


def _serve_study(fd_in: int, fd_out: int, limits: dict, sandboxed: bool, parent: int) -> None:
    """Become the host of one strategy: limits, system-call filter, then the protocol. Never returns."""
    _set_limits(limits)
    if not sandboxed:
        _die_with_parent(parent)
    try:
        _seccomp()
    except Exception:  # noqa: BLE001 - defence in depth; the sandbox does not rest on it
        pass
    try:
        host = Host(fd_in, fd_out)
    except BaseException as e:  # the interface itself failed to import: say so on the pipe, then go
        os.write(fd_out, (json.dumps({"ok": False, "error": "the sandbox could not start: " + _describe_error(e)})
                          + "\n").encode())
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
    _bare_harness_package(root)
    _deny_data_entry_points()


def main(config_json: str) -> None:
    cfg = json.loads(config_json)
    if cfg.get("zygote"):
        return zygote(cfg)
    _prepare(cfg["root"])
    _serve_study(int(cfg["fd_in"]), int(cfg["fd_out"]), cfg.get("limits") or {}, bool(cfg.get("sandboxed")),
                 int(cfg["parent"]))


# -- the zygote: one sandbox per bench process, one fresh fork per study ------------------------------
OWN_PID_LIMIT = 100  # in its own PID namespace the zygote is PID 2; anything large means it is not


def _wipe(folder: str) -> None:
    import shutil
    import stat

    def unlock(func, path, exc_info):
        os.chmod(os.path.dirname(path), stat.S_IRWXU)
        os.chmod(path, stat.S_IRWXU) if not os.path.islink(path) else None
        func(path)

    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            os.chmod(entry.path, stat.S_IRWXU)
            shutil.rmtree(entry.path, onerror=unlock)
        else:
            os.unlink(entry.path)


def _clean_slate(statuses: dict) -> None:
    """Before each study: no process but init and the zygote is left (whatever the last study left
    running is killed), and /tmp and /dev/shm are empty. Raises if that cannot be made so."""
    import signal
    import time

    me = os.getpid()
    deadline = time.monotonic() + 2.0
    while True:
        try:
            os.kill(-1, signal.SIGKILL)  # every process of this namespace but init and ourselves
        except ProcessLookupError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            statuses[pid] = status
        others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
        if not others:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {others} survive the clean-up")
        time.sleep(0.005)
    for folder in ("/tmp", "/dev/shm"):
        if os.path.isdir(folder):
            _wipe(folder)


def zygote(cfg: dict) -> None:
    """A warm interpreter (numpy and the strategy interface imported, no user code ever run here) that
    forks one process per study on request. The parent sends {"op": "fork", "limits"} with three file
    descriptors (the study's request pipe, reply pipe and output file); the fork hosts that study and
    nothing else; before every fork the zygote kills whatever is left and empties /tmp and /dev/shm, so
    no state passes from one study to the next. The zygote is not dumpable: a study cannot write into
    its memory through /proc."""
    import socket

    ctl = socket.socket(fileno=int(cfg["ctl"]))
    if os.getpid() >= OWN_PID_LIMIT:  # never kill(-1) outside a PID namespace
        ctl.send(json.dumps({"ok": False, "error": "the zygote is not in its own PID namespace"}).encode())
        os._exit(3)
    _prepare(cfg["root"])
    try:
        import numpy  # noqa: F401 - the point of the zygote: imported once

        import strategies  # noqa: F401
        from harness.mixture import Mixture  # noqa: F401
        from harness.spec import Observation  # noqa: F401
    except BaseException as e:
        ctl.send(json.dumps({"ok": False, "error": "the sandbox could not start: " + _describe_error(e)}).encode())
        raise
    _prctl(4, 0)  # PR_SET_DUMPABLE 0
    statuses: dict[int, int] = {}
    ctl.send(json.dumps({"ok": True, "hello": os.getpid()}).encode())
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 3)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)  # the parent is gone
        try:
            req = json.loads(msg)
            op = req.get("op")
            if op == "fork":
                if len(fds) != 3:
                    raise ValueError("fork needs three file descriptors")
                _clean_slate(statuses)
                statuses.clear()
                pid = os.fork()
                if pid == 0:
                    try:
                        ctl.close()
                        fd_in, fd_out, log = fds
                        os.dup2(log, 1)
                        os.dup2(log, 2)
                        os.close(log)
                        _prctl(1, 9)  # PR_SET_PDEATHSIG SIGKILL: die with the zygote
                        _prctl(4, 1)  # dumpable again (its own /proc), ptrace is filtered anyway
                        _serve_study(fd_in, fd_out, req.get("limits") or {}, True, 0)
                    finally:
                        os._exit(1)
                reply = {"ok": True, "pid": pid}
            elif op == "wait":
                import time

                pid, deadline = int(req["pid"]), time.monotonic() + float(req.get("timeout", 5.0))
                status = statuses.get(pid)
                while status is None and time.monotonic() < deadline:
                    try:
                        got, st = os.waitpid(pid, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if got:
                        status = statuses[pid] = st
                        break
                    time.sleep(0.005)
                code = None
                if status is not None:
                    code = os.waitstatus_to_exitcode(status)
                reply = {"ok": True, "code": code}
            else:
                reply = {"ok": False, "error": f"unknown request {op!r}"}
        except Exception as e:  # noqa: BLE001
            reply = {"ok": False, "error": _describe_error(e)}
        finally:
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
        ctl.send(json.dumps(reply).encode())


if __name__ == "__modomodo_sandbox__":
    main(sys.argv[1])
