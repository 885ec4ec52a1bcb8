"""A finished study's trajectory as the store writes it, built one step at a time as the study goes.

The store writes a record as canonical JSON (harness/store.py: keys sorted, compact; its sha256 is the record's
integrity hash). A study's trajectory is most of that text: one entry per pilot, each with the pilot's mixture
(every dataset's weight, a float whose repr is the costly part of the encoding). In the pool track the same
candidate mixtures come back study after study, so their text is built once per candidate and remembered; each
step's few scalars are written directly. The text is exactly what `json.dumps(trajectory, sort_keys=True,
separators=(",", ":"))` gives (tests/test_study_record.py compares them byte for byte on real studies), so the
stored record, its hash and every reader are unchanged; a step holding anything but plain JSON scalars (a
non-finite float, another type) gives up, and the store encodes the whole record itself as before.
"""

from __future__ import annotations

import math
import re
from json.encoder import encode_basestring_ascii as _string

from harness.mixture import Mixture

MIXTURE_TEXTS = ("study record", "mixture texts")  # where in the judge's cache: id(mixture) -> (mixture, text)
MIXTURE_TEXTS_LIMIT = 100_000  # past it the memo starts afresh


def mixture_text(mixture: Mixture) -> str | None:
    """`mixture.as_dict()` as the store encodes it, or None when a weight or name is not a plain JSON scalar."""
    pairs = sorted(mixture.items_())  # the names are distinct: sorted by name, as json's sort_keys sorts
    for name, w in pairs:
        if type(name) is not str or type(w) is not float or not math.isfinite(w):
            return None
    return "{" + ",".join([f"{_string(n)}:{float.__repr__(w)}" for n, w in pairs]) + "}"


def _order(keys: tuple) -> tuple[tuple[str, str], ...] | None:
    """A step's keys (in the order the study writes them) sorted, each with its JSON text and colon; None when
    one is not a string. Remembered: every step of every study has the same keys."""
    got = _ORDERS.get(keys)
    if got is None:
        if not all(type(k) is str for k in keys):
            return None
        got = _ORDERS[keys] = tuple((k, _string(k) + ":") for k in sorted(keys))
    return got


_ORDERS: dict[tuple, tuple[tuple[str, str], ...]] = {}
# a plain scalar's JSON text by its exact type (a subclass is not among them: `_scalar` decides); a float is
# written by its repr, and one that is not finite (repr inf, -inf or nan) is found in the step's text afterwards
_FAST = {
    str: _string,
    float: float.__repr__,
    int: int.__repr__,
    type(None): lambda v: "null",
    bool: lambda v: "true" if v else "false",
}
_NOT_WRITTEN = "\x00"  # stands for a value with no plain JSON text: never in a JSON text (escaped there)
# a non-finite float as its repr writes it, in a value's place (a string holding this text is only written slower)
_NON_FINITE = re.compile(r":(?:-?inf|nan)[,}]")


def _scalar(v) -> str | None:
    """The JSON text of a plain scalar, as the json module's encoder writes it (None for anything else)."""
    t = type(v)
    if t is str:
        return _string(v)
    if t is float:
        return float.__repr__(v) if math.isfinite(v) else None
    if t is int:
        return int.__repr__(v)
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    return None


class TrajectoryText:
    """The trajectory's canonical JSON, step by step (`add`), or None once a step could not be written."""

    def __init__(self, judge):
        self._steps: list[str] | None = []
        # the pool track proposes the same candidate objects again and again: their text is remembered on the judge
        self._memo = judge._cache.setdefault(MIXTURE_TEXTS, {}) if judge.is_pool else None

    def _mixture(self, mixture: Mixture) -> str | None:
        memo = self._memo
        if memo is None:
            return mixture_text(mixture)
        got = memo.get(id(mixture))
        if got is not None and got[0] is mixture:
            return got[1]
        text = mixture_text(mixture)
        if len(memo) >= MIXTURE_TEXTS_LIMIT:
            memo.clear()
        memo[id(mixture)] = (mixture, text)  # the mixture kept alive: its id is not reused while remembered
        return text

    def add(self, step: dict, mixture: Mixture) -> None:
        """Append `step` (a trajectory entry whose "mixture" is `mixture.as_dict()`)."""
        if self._steps is None:
            return
        order = _order(tuple(step))
        if order is not None:
            mixed = self._mixture(mixture) or _NOT_WRITTEN
            try:  # each scalar by its exact type's own repr: _scalar's rule without a call per value
                parts = [head + (mixed if k == "mixture" else _FAST[type(step[k])](step[k])) for k, head in order]
            except KeyError:  # a value of another type: _scalar says whether (and how) it is written
                parts = [head + (mixed if k == "mixture" else _scalar(step[k]) or _NOT_WRITTEN) for k, head in order]
            text = "{" + ",".join(parts) + "}"
            if _NOT_WRITTEN not in text and not _NON_FINITE.search(text):
                self._steps.append(text)
                return
        self._steps = None

    def text(self, trajectory: list) -> str | None:
        """The JSON of `trajectory` (the list the steps were added to), or None (a step not written, or the list
        changed length since)."""
        if self._steps is None or len(self._steps) != len(trajectory):
            return None
        return "[" + ",".join(self._steps) + "]"
