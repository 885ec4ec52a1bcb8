"""Performance of the strategy sandbox (issue 13): propose at 64 observations sandboxed and in-process,
and the start-up of a study's sandboxed process. `python -m tests.benchmarks.sandbox_overhead` prints
these side by side with the bench wall times (sandboxed, unsandboxed, in-process)."""

from __future__ import annotations

import pytest

import strategies
import strategies.registry
from harness.sandbox import policy
from harness.sandbox.isolation import make_strategy
from harness.spec import Budget
from harness.sandbox import submission
from tests.benchmarks.sandbox_overhead import history64, in_process_class, user_file


@pytest.fixture(scope="module")
def boxed_cls():
    before = dict(strategies.registry._REGISTRY)
    cls = strategies.get(submission.load_file(user_file())[0])
    yield cls
    for name in set(strategies.registry._REGISTRY) - set(before):
        strategies.registry._REGISTRY.pop(name)


@pytest.mark.parametrize("where", ["in-process", "sandboxed"])
def test_propose_latency_at_64_observations_sandbox(benchmark, boxed_cls, where):
    space, hist = history64()
    s = in_process_class()(space, seed=0) if where == "in-process" else make_strategy(boxed_cls, space, 0)
    budget = Budget(80)
    try:
        s.propose(hist, budget)
        benchmark.pedantic(s.propose, args=(hist, budget), rounds=50, iterations=1)
    finally:
        if where == "sandboxed":
            s.close()
    assert benchmark.stats is None or benchmark.stats.stats.median < 0.05


def test_study_start_up_in_the_sandbox(benchmark, boxed_cls):
    space, _ = history64()
    make_strategy(boxed_cls, space, 0).close()  # the spare is starting: what every study after the first pays
    benchmark.pedantic(lambda: make_strategy(boxed_cls, space, 0).close(), rounds=10, iterations=1)
    benchmark.extra_info.update(mode=policy.mode())
    assert benchmark.stats is None or benchmark.stats.stats.median < 2.0
