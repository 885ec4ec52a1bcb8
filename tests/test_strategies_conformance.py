"""Every registered strategy, and one loaded from a file (the --strategy-file path), passes the
conformance suite in tests/strategy_conformance.py. New built-ins are picked up automatically."""

from __future__ import annotations

import tempfile
from pathlib import Path

import strategies
from harness.sandbox import submission
from tests.strategy_conformance import StrategyConformance

USER_STRATEGY = '''
import numpy as np
from strategies import Strategy


class CoordinateNudge(Strategy):
    """A user's strategy: start at uniform, then nudge weight towards the best dataset seen so far."""
    name = "user-nudge"
    description = "Test strategy loaded from a file: nudges the best mixture towards a random vertex."
    family = "user"

    def propose(self, history, budget):
        if budget.remaining(history) <= 0:
            return None
        if not history:
            return self.space.uniform()
        best = max((o for o in history if o.ok), key=lambda o: o.objective, default=None)
        x = self.space.to_vector(best.mixture) if best else np.full(self.space.dim, 1 / self.space.dim)
        rng = np.random.default_rng([self.seed, len(history)])
        v = np.eye(self.space.dim)[rng.integers(self.space.dim)]
        return self.space.from_vector(0.8 * x + 0.2 * v, normalize=True)
'''

USER_FILE = Path(tempfile.mkdtemp(prefix="modomodo-conformance-")) / "user_nudge.py"


def _load_user_strategy() -> str:
    # A real file on disk, loaded the way --strategy-file loads it.
    USER_FILE.write_text(USER_STRATEGY)
    return submission.load_file(USER_FILE)[0]


USER_NAME = _load_user_strategy()

from strategies.base import strategy_kind  # noqa: E402

# offline strategies here; the online ones have their own suite (tests/test_online.py)
for _name in strategies.names("offline"):
    _cls_name = "TestConformance_" + "".join(c if c.isalnum() else "_" for c in _name)
    globals()[_cls_name] = type(_cls_name, (StrategyConformance,), {"strategy_name": _name})


def test_every_builtin_is_covered():
    covered = {v.strategy_name for k, v in globals().items() if k.startswith("TestConformance_")}
    offline = {n for n in strategies.registry.BUILTIN if strategy_kind(strategies.get(n)) == "offline"}
    assert offline <= covered and len(offline) >= 19
    assert USER_NAME in covered
