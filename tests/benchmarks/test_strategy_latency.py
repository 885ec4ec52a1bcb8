"""Performance: one propose (and one recommend) of every registered strategy at 64 observations.

The conformance suite asserts the 200 ms bar (tests/strategy_conformance.py); this measures it
with pytest-benchmark (`make bench-speed`) so regressions show in the table. The history is the
same for every strategy: 64 Dirichlet mixtures of 5 datasets on a smooth objective, one failed.
"""

from __future__ import annotations

import numpy as np
import pytest

import strategies
import strategies.registry
from harness.mixture import MixtureSpace
from harness.spec import Budget
from strategies.bo_common import _MEMO
from tests.strategy_conformance import observe

SPACE = MixtureSpace(tuple("ABCDE"))


def history(n: int = 64):
    rng = np.random.default_rng(0)
    obs = [observe(SPACE, SPACE.from_vector(rng.dirichlet(np.ones(5)), normalize=True)) for _ in range(n)]
    obs[7] = observe(SPACE, obs[7].mixture, failed=True)
    return tuple(obs)


@pytest.mark.parametrize("name", strategies.registry.builtin_names("offline"))  # online: tests/online_conformance.py
def test_propose_latency_at_64_observations(benchmark, name):
    cls = strategies.get(name)
    h, budget = history(), Budget(80)

    def propose():
        _MEMO.clear()  # measure the computation, not the cross-study memo (strategies/bo_common.py)
        return cls(SPACE, seed=0).propose(h, budget)

    benchmark(propose)
    # the bar is on the median (warm); one cold call may import a library
    assert benchmark.stats is None or benchmark.stats.stats.median < 0.2


@pytest.mark.parametrize("name", strategies.registry.builtin_names("offline"))  # online: tests/online_conformance.py
def test_recommend_latency_at_64_observations(benchmark, name):
    cls = strategies.get(name)
    h = history()
    benchmark(lambda: cls(SPACE, seed=0).recommend(h))
