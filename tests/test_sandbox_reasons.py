"""Failure reasons from a strategy's sandbox are safe to print and store (issue 29, item 3).

A hostile strategy's exception message reached the operator's terminal raw (erase the screen, write the
clipboard through OSC 52, conceal text), a 200,000-character message went whole into summary.csv, and a
raising or hanging `__str__`, SystemExit and os._exit were reported only as "exited with status 1".
Here every such failure runs in a real sandbox; its reason must be one printable line, capped, with the
exception's type and (where it has one) its message.
"""

from __future__ import annotations

import unicodedata

import pytest

from harness.sandbox import process
from harness.sandbox.policy import TIMEOUT_ENV
from harness.sandbox.text import MAX_REASON, clean
from tests.sandbox_attack_kit import hostile, need_bwrap, study

ESC = "\x1b"
NASTY = (
    "\x1b[2J\x1b[H"  # erase the screen, cursor home
    "\x1b]52;c;cm0gLXJmIH4K\x07"  # write the clipboard (OSC 52)
    "\x1b[8mconcealed\x1b[0m"  # concealed text
    "\x9b31m\u202eoverride\u202c\x00\x08\x7f"
)  # 8-bit CSI, a bidi override, NUL, backspace, DEL

FAILING = (
    """
import os, time
from strategies import Strategy

NASTY = %r


class RaisingStr(Exception):
    def __str__(self):
        raise ValueError("no message for you")


class HangingStr(Exception):
    def __str__(self):
        time.sleep(3600)
        return "never"


EscapeName = type("Bad" + NASTY.replace("\\x00", ""), (Exception,), {})


class Failing(Strategy):
    name = "evil-failing"
    description = "Fails in the way its parameter asks."

    def __init__(self, space, seed=0, how="escapes"):
        super().__init__(space, seed)
        self.how = how

    def propose(self, history, budget):
        how = self.how
        if how == "escapes":
            raise ValueError("boom " + NASTY + " end")
        if how == "huge":
            raise ValueError("x" * 200_000)
        if how == "raising-str":
            raise RaisingStr()
        if how == "hanging-str":
            raise HangingStr()
        if how == "system-exit":
            raise SystemExit(3)
        if how == "keyboard-interrupt":
            raise KeyboardInterrupt()
        if how == "escape-name":
            raise EscapeName("named badly")
        if how == "os-exit":
            print("last words " + NASTY, flush=True)
            os._exit(7)
        raise AssertionError(how)
"""
    % NASTY
)


def assert_clean(reason: str) -> None:
    assert ESC not in reason and "\x9b" not in reason and "\x07" not in reason
    assert all(unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp") for ch in reason), repr(reason)
    assert len(reason) <= MAX_REASON + 100  # the sandbox's words around the strategy's (capped) message


@pytest.mark.parametrize(
    "how, expected",
    [
        ("escapes", ["ValueError: boom", "concealed", "override", "end"]),
        ("huge", ["ValueError: xxxx", "..."]),
        ("raising-str", ["RaisingStr", "its message raised ValueError"]),
        ("hanging-str", ["HangingStr", "did not come within"]),
        ("system-exit", ["SystemExit: 3"]),
        ("keyboard-interrupt", ["KeyboardInterrupt"]),
        ("escape-name", ["Bad", "named badly"]),
        ("os-exit", ["exited with status 7", "last words"]),
    ],
)
def test_every_failure_reason_is_one_clean_capped_line(tmp_path, monkeypatch, how, expected):
    monkeypatch.setenv(TIMEOUT_ENV, "30")
    need_bwrap()
    try:
        kind, reason = study(hostile(tmp_path, "evil_failing.py", FAILING), how=how)
    finally:
        process._reset_for_tests()
    assert kind == "failed", (kind, reason)
    assert_clean(reason)
    for piece in expected:
        assert piece in reason, (piece, reason)


def test_clean_removes_whole_sequences_and_caps():
    # expected values written by hand, not computed by the code under test
    assert clean("a\x1b[31mred\x1b[0m b") == "a red b"
    assert clean("x\x1b]52;c;SGVsbG8=\x07y") == "x y"
    assert clean("x\x1b]0;title\x1b\\y") == "x y"
    assert clean("tab\there\nnew\rline") == "tab here new line"
    assert clean("\u202eevil\u202c") == "evil"
    assert clean("a" * 1000) == "a" * (MAX_REASON - 3) + "..."
    assert clean(None, default="d") == "d" and clean("\x1b[2J") == ""


def test_the_bench_prints_and_stores_only_the_clean_reason(tmp_path, run_cli):
    """End to end: the bench's terminal output and summary.csv carry no escape of the strategy's message."""
    need_bwrap()
    path = tmp_path / "evil_failing.py"
    path.write_text(FAILING)
    out = tmp_path / "out"
    proc = run_cli(
        "bench",
        "--suite",
        "synth-bowl-5",
        "--strategy",
        "evil-failing,uniform",
        "--budget",
        "4",
        "--seeds",
        "1",
        "--out",
        out,
        "--strategy-file",
        path,
        check=False,
    )
    assert ESC not in proc.stdout + proc.stderr and "\x9b" not in proc.stdout + proc.stderr
    import pandas as pd

    s = pd.read_csv(out / "summary.csv")
    (reason,) = s[s["strategy"] == "evil-failing"]["reason"]
    assert_clean(reason)
    assert "ValueError: boom" in reason and "concealed" in reason
    raw = (out / "summary.csv").read_text()
    assert ESC not in raw and "\u202e" not in raw
