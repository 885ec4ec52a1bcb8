"""Running strategies apart from the runner, with a time limit on every call.

Two ways, chosen per strategy class by `mode="auto"` (the default):

- **in-process** (the project's own strategies, and classes defined in code that imports
  modomodo): the strategy runs in the study's process, each call under a wall-clock limit enforced
  with SIGALRM (in the main thread; elsewhere the call runs unlimited). The alarm raises a
  BaseException inside the strategy, so a bare `except Exception` in it cannot swallow the
  timeout. Overhead: one setitimer per call (microseconds).
- **sandbox** (every strategy loaded from a user's file with `--strategy-file`, always; a built-in
  with `mode="process"`): the strategy runs in its own sandboxed process for one study
  (harness/sandbox/: bubblewrap where available, resource limits, plain data over a pipe, every
  call under the same time limit). A call that exceeds the limit kills the process; the study is
  recorded as failed and the benchmark goes on.
"""

from __future__ import annotations

import _signal  # signal.signal without its enum conversions (~30 us a call, more than a replayed pilot)
import signal
import threading
from typing import Any

from harness.mixture import MixtureSpace
from harness.sandbox.policy import MODES, default_mode, default_timeout
from harness.sandbox.protocol import StrategyTimeout
from harness.sandbox.proxy import SandboxedStrategy
from harness.sandbox.submission import FileStrategy
from strategies import registry


class _Alarm(BaseException):
    """Raised inside the strategy by SIGALRM; a BaseException so `except Exception` cannot eat it."""


def _raise_alarm(signum, frame):
    raise _Alarm()


_HAS_ALARM = hasattr(signal, "SIGALRM")


def is_user_strategy(cls) -> bool:
    """True for strategies loaded from a user's file (harness.sandbox.submission.load_file): they run only in a sandbox."""
    return isinstance(cls, type) and issubclass(cls, FileStrategy)


def call_with_limit(seconds: float | None, what: str, method, *args):
    """`method(*args)`, raising StrategyTimeout if it runs longer than `seconds` (main thread only). A plain call,
    not a generator-based context manager: that cost more than the rest of a replayed pilot's harness."""
    if not (
        seconds is not None and seconds > 0 and _HAS_ALARM and threading.current_thread() is threading.main_thread()
    ):
        return method(*args)
    previous = _signal.signal(signal.SIGALRM, _raise_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        return method(*args)
    except _Alarm:
        raise StrategyTimeout(f"{what} exceeded the {seconds:g} s time limit") from None
    finally:
        while True:  # an alarm landing right here must not escape as a BaseException
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                _signal.signal(signal.SIGALRM, previous)
                break
            except _Alarm:
                continue


class InProcessStrategy:
    """The strategy in this process, every call under `call_with_limit`."""

    mode = "none"

    def __init__(self, cls, space: MixtureSpace, seed: int, params: dict[str, Any], timeout_s: float | None):
        self.timeout_s = timeout_s
        self.strategy = call_with_limit(timeout_s, "building the strategy", lambda: cls(space, seed=seed, **params))

    def propose(self, history, budget):
        return call_with_limit(self.timeout_s, "propose", self.strategy.propose, history, budget)

    def recommend(self, history):
        return call_with_limit(self.timeout_s, "recommend", self.strategy.recommend, history)

    # an online strategy (strategies/online.py)
    def start(self):
        return call_with_limit(self.timeout_s, "start", self.strategy.start)

    def update(self, signals):
        return call_with_limit(self.timeout_s, "update", self.strategy.update, signals)

    def close(self) -> None:
        pass


def make_strategy(
    cls,
    space: MixtureSpace,
    seed: int,
    params: dict[str, Any] | None = None,
    mode: str | None = None,
    timeout_s: float | None | str = "default",
):
    """Build the strategy: in its sandbox for a user's file (always) or a built-in under mode "process";
    in-process otherwise. The one way to build a strategy for a study: a file's stand-in class cannot be
    built directly (its code is not in this process)."""
    mode = mode or default_mode()
    if mode not in MODES:
        raise ValueError(f"unknown isolation mode {mode!r}; valid: {', '.join(MODES)}")
    timeout = default_timeout() if timeout_s == "default" else timeout_s
    params = dict(params or {})
    if is_user_strategy(cls):
        if "source_class" not in cls.__dict__:
            raise ValueError(
                f"{cls.__qualname__} subclasses the strategy {cls.name!r} from a file in this process; a "
                f"file's strategies run only in their sandbox: define the subclass in a strategy file"
            )
        return SandboxedStrategy(cls.name, space, seed, params, timeout, source=cls.source, class_name=cls.source_class)
    if mode == "process":
        name = getattr(cls, "name", "") or cls.__name__.lower()
        try:
            registered = registry.get(name)
        except KeyError:
            registered = None
        if registered is not cls:
            raise ValueError(
                f"{cls.__qualname__} is neither registered nor loaded from a file: the strategy process "
                f"cannot rebuild it (run it with isolation 'none', or register it)"
            )
        return SandboxedStrategy(name, space, seed, params, timeout)
    return InProcessStrategy(cls, space, seed, params, timeout)
