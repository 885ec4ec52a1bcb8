"""Helpers for the attack tests of the strategy sandbox (tests/test_sandbox_attacks*.py, issue 29).

A hostile strategy file reports what it saw by raising `RuntimeError("REPORT " + json)`: the study's
failure reason carries it back through the sandbox's pipe, cleaned like every reason. `study()` runs
one study's worth of a strategy (a fresh sandbox: build, one propose, close) and returns that report,
the mixture it proposed, or the failure reason.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.sandbox import policy, process, protocol, submission
from harness.mixture import MixtureSpace
from harness.sandbox.bwrap import bwrap_command
from harness.sandbox.isolation import make_strategy
from harness.spec import Budget

SPACE = MixtureSpace(("a", "b", "c"))
REPORT = re.compile(r"REPORT (\{.*\})")


def need_bwrap() -> None:
    process._reset_for_tests()
    try:
        ok = policy.mode() == "bwrap"
    except policy.SandboxUnavailable:
        ok = False
    if not ok:
        if os.environ.get("MODOMODO_REQUIRE_SANDBOX_TESTS"):
            pytest.fail("bubblewrap does not work here, and MODOMODO_REQUIRE_SANDBOX_TESTS is set")
        pytest.skip("bubblewrap (bwrap) is not available here")


_CLASSES: dict[str, type] = {}


def hostile(tmp_path: Path, filename: str, body: str):
    """The stand-in of the (single) strategy a hostile file defines, described in a sandbox (cached by source)."""
    src = textwrap.dedent(body)
    if src not in _CLASSES:
        path = tmp_path / filename
        path.write_text(src)
        (cls,) = submission.describe_file(path, timeout_s=60)
        _CLASSES[src] = cls
    return _CLASSES[src]


def study(cls, seed: int = 0, calls: int = 1, **params):
    """One study: a fresh sandbox, `calls` proposals, closed. Returns (kind, value): ("report", dict),
    ("mixture", Mixture) or ("failed", reason)."""
    s = make_strategy(cls, SPACE, seed, params)
    try:
        out = None
        for _ in range(calls):
            out = s.propose((), Budget(4))
        return "mixture", out
    except (protocol.StrategyError, protocol.StrategyTimeout) as e:
        m = REPORT.search(str(e))
        return ("report", json.loads(m.group(1))) if m else ("failed", str(e))
    finally:
        s.close()


def report(cls, seed: int = 0, calls: int = 1, **params) -> dict:
    kind, value = study(cls, seed, calls, **params)
    assert kind == "report", (kind, value)
    return value


def run_in_bwrap_without_filter(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`code` in a sandbox built like a study's (same bwrap command line), but without the limits and the
    system-call filter the strategy host installs: the control that shows an attack works when unfiltered."""
    argv = bwrap_command(policy.bwrap_path() or "bwrap", str(process.ROOT)) + [sys.executable, "-I", "-c", code]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def host_comms() -> dict[int, str]:
    """The name (comm) of every process on the machine."""
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out[int(pid)] = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                pass
    return out
