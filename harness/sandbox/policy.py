"""The sandbox's policy: the time limit of every strategy call, whether the project's own strategies run
in-process or sandboxed too, the sandbox's resource limits, and whether strategies from files run under
bubblewrap or, only where the operator allowed it, as a plain process (decided once per process, and told
to its workers).

Fail closed: where bwrap is missing, a file strategy's studies fail with the reason unless
`--allow-unsandboxed` (or `MODOMODO_SANDBOX=allow-unsandboxed`) was given; `MODOMODO_SANDBOX=off` never
tries bwrap. Either way the results say `sandboxed = no`.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from typing import Any

from harness.sandbox.protocol import StrategyError

SANDBOX_ENV = "MODOMODO_SANDBOX"  # auto = require (default) | allow-unsandboxed | off
ALLOW = "allow-unsandboxed"
RESOLVED_ENV = "MODOMODO_SANDBOX_RESOLVED"  # set by the first process that decided, for its workers
BWRAP_ENV = "MODOMODO_BWRAP"  # path of bwrap (default: found on PATH)
MEMORY_ENV = "MODOMODO_STRATEGY_MEMORY_MB"
CPU_ENV = "MODOMODO_STRATEGY_CPU_S"
OUTPUT_ENV = "MODOMODO_STRATEGY_OUTPUT_BYTES"
PROCESSES_ENV = "MODOMODO_STRATEGY_PROCESSES"
START_TIMEOUT_ENV = "MODOMODO_SANDBOX_START_TIMEOUT"
DEFAULT_TIMEOUT_S = 60.0
TIMEOUT_ENV = "MODOMODO_STRATEGY_TIMEOUT"  # seconds per propose/recommend call (0 or less: none)
MODE_ENV = "MODOMODO_STRATEGY_ISOLATION"  # auto | process | none
MODES = ("auto", "process", "none")  # process: built-ins too in the sandbox; none: built-ins in-process

DEFAULT_MEMORY_MB = 4096
DEFAULT_CPU_S = 1800
DEFAULT_OUTPUT_BYTES = 1 << 20
DEFAULT_PROCESSES = 32  # processes and threads of one sandbox together (its init and host included)
OPEN_FILES = 256
DEFAULT_START_TIMEOUT_S = 30.0  # Python + numpy on a loaded machine; the retry waits RETRY_FACTOR times longer
RETRY_FACTOR = 4.0


class SandboxUnavailable(StrategyError):
    """The sandbox could not be started (and running unsandboxed was not allowed)."""


def _env_number(name: str, default: float) -> float:
    try:
        v = float(os.environ.get(name, default))
    except ValueError:
        return default
    return v if math.isfinite(v) and v > 0 else default


def limits() -> dict[str, int]:
    return {
        "memory_bytes": int(_env_number(MEMORY_ENV, DEFAULT_MEMORY_MB) * (1 << 20)),
        "cpu_s": int(_env_number(CPU_ENV, DEFAULT_CPU_S)),
        "open_files": OPEN_FILES,
        "output_bytes": int(_env_number(OUTPUT_ENV, DEFAULT_OUTPUT_BYTES)),
        "processes": int(_env_number(PROCESSES_ENV, DEFAULT_PROCESSES)),
    }


def default_timeout() -> float | None:
    try:
        t = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    except ValueError:
        t = DEFAULT_TIMEOUT_S
    return t if t > 0 else None


def default_mode() -> str:
    mode = os.environ.get(MODE_ENV, "auto")
    return mode if mode in MODES else "auto"


def start_timeout() -> float:
    return _env_number(START_TIMEOUT_ENV, DEFAULT_START_TIMEOUT_S)


# -- which mode: bwrap or (only when allowed) a plain process ---------------------------------------------
_STATE: dict[str, Any] = {"mode": None, "warned": False}
INSTALL_HINT = (
    "install bubblewrap (apt-get install bubblewrap), or pass --allow-unsandboxed to run them "
    "unsandboxed (they can then read your files; results are marked sandboxed=no)"
)


def _warn(text: str) -> None:
    if not _STATE["warned"]:
        _STATE["warned"] = True
        print(f"modomodo: warning: {text}", file=sys.stderr, flush=True)


def bwrap_path() -> str | None:
    path = os.environ.get(BWRAP_ENV)
    if path is not None:
        return path if path and os.access(path, os.X_OK) else None
    return shutil.which("bwrap") if sys.platform.startswith("linux") else None


def allow_unsandboxed() -> bool:
    return os.environ.get(SANDBOX_ENV, "auto") in (ALLOW, "off")


def fall_back_or_refuse(reason: str) -> str:
    """Run unsandboxed from now on, where the operator allowed it; else refuse (fail closed)."""
    if not allow_unsandboxed():
        raise SandboxUnavailable(f"{reason}; strategies from files run only in a sandbox: {INSTALL_HINT}")
    _warn(
        f"{reason}: strategies from files run in a plain child process, UNSANDBOXED (they can read your files), "
        f"as {SANDBOX_ENV}={os.environ.get(SANDBOX_ENV)} allows; their results are marked sandboxed=no."
    )
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
        elif bwrap_path() is None:
            fall_back_or_refuse("bubblewrap (bwrap) was not found")
        else:
            _STATE["mode"] = "bwrap"
    return _STATE["mode"]


def sandboxed() -> bool:
    """Whether strategies from files run under bwrap in this process (as far as decided so far)."""
    try:
        return mode() == "bwrap"
    except SandboxUnavailable:
        return False


def reset() -> None:
    """Decide the mode afresh (tests)."""
    _STATE.update(mode=None, warned=False)
    os.environ.pop(RESOLVED_ENV, None)
