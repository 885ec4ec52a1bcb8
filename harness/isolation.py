"""Running strategies apart from the runner, with a time limit on every call.

Two modes, chosen per strategy class by `mode="auto"` (the default):

- **in-process** (built-in strategies, and classes defined in code that imports modomodo): the
  strategy runs in the study's process, each call under a wall-clock limit enforced with
  SIGALRM (in the main thread; elsewhere the call runs unlimited). The alarm raises a
  BaseException inside the strategy, so a bare `except Exception` in it cannot swallow the
  timeout. Overhead: one setitimer per call (microseconds).
- **process** (strategies loaded from a user's file with `--strategy-file`, or `mode="process"`):
  the strategy lives in a separate, long-lived "strategy server" process (one per worker
  process, started with the 'spawn' method so it inherits no suite, table or runner from the
  worker's memory). The server hosts one strategy at a time; each propose/recommend is one
  message over a pipe (the history goes over, a mixture comes back). In the server, the suite
  and runner entry points of the API (`harness.suites.load`, `load_folder`, `registered`,
  `harness.runners.make_runner`) raise PermissionError: a strategy cannot read a replay table
  through the API. A call that exceeds the limit kills the server; the study is recorded as
  failed and the next study starts a fresh server. This is isolation from the harness's
  objects, not a security sandbox: the process can still read files the user can.

Why not a process for every strategy: measured in the issue note, a process per strategy call
or per study costs far more than the strategies themselves on the replay suites; one server per
worker keeps the cost to a pipe round trip per call.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import multiprocessing
import os
import signal
import threading
import traceback
from typing import Any

from harness.mixture import MixtureSpace

DEFAULT_TIMEOUT_S = 60.0
TIMEOUT_ENV = "MODOMODO_STRATEGY_TIMEOUT"  # seconds per propose/recommend call (0 or less: none)
MODE_ENV = "MODOMODO_STRATEGY_ISOLATION"  # auto | process | none
MODES = ("auto", "process", "none")
USER_MODULE_PREFIX = "modomodo_user_"  # strategies.registry.load_file names user modules so


class StrategyTimeout(Exception):
    """A strategy call ran past its time limit."""


class StrategyError(Exception):
    """A strategy failed inside its server process (the message carries the original error)."""


class _Alarm(BaseException):
    """Raised inside the strategy by SIGALRM; a BaseException so `except Exception` cannot eat it."""


def default_timeout() -> float | None:
    try:
        t = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    except ValueError:
        t = DEFAULT_TIMEOUT_S
    return t if t > 0 else None


def default_mode() -> str:
    mode = os.environ.get(MODE_ENV, "auto")
    return mode if mode in MODES else "auto"


def is_user_strategy(cls) -> bool:
    """True for classes loaded from a user's file (strategies.load_file)."""
    return str(getattr(cls, "__module__", "")).startswith(USER_MODULE_PREFIX)


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str):
    """Raise StrategyTimeout if the block runs longer than `seconds` (main thread only)."""
    usable = (seconds is not None and seconds > 0 and hasattr(signal, "SIGALRM")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def handler(signum, frame):
        raise _Alarm()

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    except _Alarm:
        raise StrategyTimeout(f"{what} exceeded the {seconds:g} s time limit") from None
    finally:
        while True:  # an alarm landing right here must not escape as a BaseException
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                break
            except _Alarm:
                continue


class InProcessStrategy:
    """The strategy in this process, every call under `time_limit`."""

    mode = "none"

    def __init__(self, cls, space: MixtureSpace, seed: int, params: dict[str, Any], timeout_s: float | None):
        self.timeout_s = timeout_s
        with time_limit(timeout_s, "building the strategy"):
            self.strategy = cls(space, seed=seed, **params)

    def propose(self, history, budget):
        with time_limit(self.timeout_s, "propose"):
            return self.strategy.propose(history, budget)

    def recommend(self, history):
        with time_limit(self.timeout_s, "recommend"):
            return self.strategy.recommend(history)

    def close(self) -> None:
        pass


# -- the strategy server ----------------------------------------------------------------------------
def _deny(*args, **kwargs):
    raise PermissionError("a strategy cannot load suites or runners: it sees only its own history")


def _sandbox_api() -> None:
    import harness.runners
    import harness.suites

    for name in ("load", "load_folder", "registered", "_load_cached"):
        setattr(harness.suites, name, _deny)
    harness.runners.make_runner = _deny


def _describe(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


def _server_main(conn) -> None:  # pragma: no cover - runs in the child (covered by the isolation tests)
    import pickle

    import strategies

    _sandbox_api()
    loaded: set[str] = set()
    strategy = None
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        op = msg[0]
        try:
            if op == "close":
                return
            if op == "new":
                _, file, name, space, seed, params = msg
                if file and file not in loaded:
                    strategies.load_file(file)
                    loaded.add(file)
                strategy = strategies.get(name)(MixtureSpace.from_plain(space), seed=seed, **params)
                reply = ("ok", None)
            elif op == "propose":
                reply = ("ok", strategy.propose(msg[1], msg[2]))
            elif op == "recommend":
                reply = ("ok", strategy.recommend(msg[1]))
            elif op == "end":
                strategy = None
                reply = ("ok", None)
            else:
                reply = ("err", f"unknown request {op!r}")
        except Exception as e:  # the strategy's own error, reported to the study
            reply = ("err", _describe(e))
        try:
            conn.send(reply)
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            conn.send(("err", f"{op} returned an object that cannot leave the strategy process: {_describe(e)}"))


class _Server:
    """One strategy-server process and its pipe."""

    def __init__(self):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        daemon = not multiprocessing.current_process().daemon
        self.proc = ctx.Process(target=_server_main, args=(child,), daemon=daemon, name="modomodo-strategy")
        self.proc.start()
        child.close()

    def call(self, msg, timeout_s: float | None, what: str):
        self.conn.send(msg)
        if not self.conn.poll(timeout_s):
            self.kill()
            raise StrategyTimeout(f"{what} exceeded the {timeout_s:g} s time limit (strategy process stopped)")
        try:
            status, value = self.conn.recv()
        except (EOFError, OSError):
            self.kill()
            raise StrategyError(f"the strategy process died during {what}") from None
        if status != "ok":
            raise StrategyError(value)
        return value

    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
            self.proc.join(5)
        with contextlib.suppress(Exception):
            self.conn.close()


_SERVER: _Server | None = None
# Starting a server can take a second (imports); that is not the strategy's time.
SERVER_START_TIMEOUT_S = 120.0


def _server() -> _Server:
    global _SERVER
    if _SERVER is None or not _SERVER.alive():
        _SERVER = _Server()
    return _SERVER


@atexit.register
def _shutdown() -> None:
    global _SERVER
    if _SERVER is not None:
        with contextlib.suppress(Exception):
            _SERVER.conn.send(("close",))
            _SERVER.proc.join(2)
        _SERVER.kill()
        _SERVER = None


class ProcessStrategy:
    """The strategy in the strategy server; same methods as a Strategy, plus close()."""

    mode = "process"

    def __init__(self, cls, space: MixtureSpace, seed: int, params: dict[str, Any], timeout_s: float | None):
        self.timeout_s = timeout_s
        import strategies

        file = None
        name = getattr(cls, "name", "") or cls.__name__.lower()
        if is_user_strategy(cls):
            file = inspect.getfile(cls)
        elif strategies.get(name) is not cls:
            raise ValueError(f"{cls.__qualname__} is neither registered nor loaded from a file: the strategy process "
                             f"cannot rebuild it (run it with isolation 'none', or register it)")
        self.server = _server()
        first = self.server.call(("new", file, name, space.to_plain(), int(seed), dict(params)),
                                 max(SERVER_START_TIMEOUT_S, timeout_s or 0), "building the strategy")
        del first

    def propose(self, history, budget):
        return self.server.call(("propose", tuple(history), budget), self.timeout_s, "propose")

    def recommend(self, history):
        return self.server.call(("recommend", tuple(history)), self.timeout_s, "recommend")

    def close(self) -> None:
        if self.server.alive():
            with contextlib.suppress(Exception):
                self.server.call(("end",), 10.0, "end")


def make_strategy(cls, space: MixtureSpace, seed: int, params: dict[str, Any] | None = None,
                  mode: str | None = None, timeout_s: float | None | str = "default"):
    """Build the strategy the way `mode` says (auto: a process for user files, else in-process)."""
    mode = mode or default_mode()
    if mode not in MODES:
        raise ValueError(f"unknown isolation mode {mode!r}; valid: {', '.join(MODES)}")
    timeout = default_timeout() if timeout_s == "default" else timeout_s
    use_process = mode == "process" or (mode == "auto" and is_user_strategy(cls))
    if use_process:
        return ProcessStrategy(cls, space, seed, params or {}, timeout)
    return InProcessStrategy(cls, space, seed, params or {}, timeout)
