"""The study's handle on a strategy in its sandbox (`SandboxedStrategy`: the methods of a Strategy, plus
close()), and the description of a strategy file learned in a sandbox: the file is never imported here.
"""

from __future__ import annotations

import contextlib
from typing import Any

from harness.sandbox.process import acquire
from harness.sandbox.protocol import (
    StrategyError,
    StrategyTimeout,
    plain_budget,
    plain_history,
    plain_params,
    read_mixture,
)
from harness.sandbox.text import clean

MAX_TEXT = 2000


class SandboxedStrategy:
    """A strategy in its own sandboxed process, for one study; the same methods as a Strategy, plus close().

    `source` is the strategy's file (a `strategies.registry.FileSource`) or None for a built-in, which
    is then rebuilt by name in the child (isolation "process")."""

    mode = "sandbox"

    def __init__(
        self,
        name: str,
        space,
        seed: int,
        params: dict[str, Any],
        timeout_s: float | None,
        source=None,
        class_name: str = "",
    ):
        self.timeout_s = timeout_s
        self.child = acquire()
        self.sandboxed = self.child.sandboxed
        msg: dict[str, Any] = {
            "op": "new",
            "name": name,
            "space": space.to_plain(),
            "seed": int(seed),
            "params": plain_params(params),
        }
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
            raise StrategyTimeout(
                f"{what} exceeded the {self.timeout_s or 0:g} s time limit (strategy process stopped)"
            ) from None

    def propose(self, history, budget):
        reply = self._call(
            {"op": "propose", "history": plain_history(history), "budget": plain_budget(budget)}, "propose"
        )
        return read_mixture(reply, "propose")

    def recommend(self, history):
        return read_mixture(
            self._call({"op": "recommend", "history": plain_history(history)}, "recommend"), "recommend"
        )

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
        if not isinstance(d, dict) or not all(
            isinstance(d.get(k), str) for k in ("name", "class", "description", "citation", "family")
        ):
            raise StrategyError("the strategy process sent a malformed description")
        entry = {k: clean(d[k], limit=MAX_TEXT) for k in ("name", "class", "description", "citation", "family")}
        entry["kind"] = d.get("kind") if d.get("kind") in ("offline", "online") else "offline"
        out.append(entry)
    return out
