"""`RunSpec.key`, the same value, written out by hand: what the replay runner keys each answer with.

`RunSpec.key` (harness/spec.py) is the sha256 of the spec's identity in canonical JSON (keys sorted, compact, no
NaN). Its general encoder costs more than half of a replayed pilot the runner has not answered before; here the
same text is formatted directly (the json module's own string escaping, `float.__repr__` and `int.__repr__`, as its
encoder writes them), with each mixture's part remembered. Anything outside the common case (an online run, a
non-finite number) is left to `RunSpec.key` itself, so this can only ever give its value: tests/test_run_key.py
compares the two on every run record of the committed stores and on random specs.
"""

from __future__ import annotations

import hashlib
import math
from json.encoder import encode_basestring_ascii as _string

from harness.mixture import Mixture
from harness.spec import RunSpec

MIXTURE_PARTS_LIMIT = 100_000  # mixtures whose key text is remembered in one memo; past it the memo starts afresh


def mixture_part(mixture: Mixture) -> str | None:
    """The "mixture" value of the key's JSON (`[[name, weight], ...]` of `mixture.key()`), or None when a name or
    weight is not a plain string or finite float (then `RunSpec.key` decides: it raises on a non-finite weight)."""
    pairs = mixture.key()
    for n, w in pairs:
        if type(n) is not str or type(w) is not float or not math.isfinite(w):
            return None
    return "[" + ",".join([f"[{_string(n)},{float.__repr__(w)}]" for n, w in pairs]) + "]"


def run_key(spec: RunSpec, memo: dict | None = None) -> str:
    """`spec.key`. `memo`: a dict to remember each mixture's part in (a mixture's part depends only on its
    `key()`, which is what mixtures compare and hash by, so equal mixtures share it)."""
    fidelity = round(float(spec.fidelity), 9)
    if spec.online or not math.isfinite(fidelity) or type(spec.suite) is not str or type(spec.protocol) is not str:
        return spec.key
    part = None if memo is None else memo.get(spec.mixture)
    if part is None:
        part = mixture_part(spec.mixture)
        if part is None:
            return spec.key
        if memo is not None:
            if len(memo) >= MIXTURE_PARTS_LIMIT:
                memo.clear()
            memo[spec.mixture] = part
    text = (
        f'{{"fidelity":{float.__repr__(fidelity)},"mixture":{part},"protocol":{_string(spec.protocol)},'
        f'"seed":{int.__repr__(int(spec.seed))},"suite":{_string(spec.suite)}}}'
    )
    return hashlib.sha256(text.encode()).hexdigest()
