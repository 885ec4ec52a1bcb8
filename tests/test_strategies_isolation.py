"""Strategies run apart from the runner (harness/sandbox/isolation.py): timeouts stop a hanging strategy,
a strategy loaded from a user's file runs in its own (sandboxed) process and cannot load a suite
through the API, and neither case takes the study down. The attacks of issue 13 are in
tests/test_sandbox.py."""

from __future__ import annotations

import os
import textwrap
import time

import pytest

import strategies
import strategies.registry
from harness import suites
from harness.runners.replay import ReplayRunner
from harness.sandbox import submission
from harness.sandbox.isolation import is_user_strategy
from harness.spec import Budget
from harness.studies.study import Study
from strategies.random_search import RandomSearch
from tests.conftest import write_synthetic_suite


@pytest.fixture(autouse=True)
def _forget_user_strategies():
    """Strategies these tests register (some hang on purpose) leave the registry afterwards."""
    before = set(strategies.registry._REGISTRY)
    yield
    for name in set(strategies.registry._REGISTRY) - before - set(strategies.registry.BUILTIN):
        strategies.registry._REGISTRY.pop(name, None)


@pytest.fixture
def suite(tmp_path):
    return suites.load_folder(write_synthetic_suite(tmp_path / "iso-suite", dim=4))


def study(suite, cls, budget=5, **kw):
    return Study(suite, cls, Budget(budget), 0, ReplayRunner(suite), **kw).run()


class Sleeper(RandomSearch):
    def propose(self, history, budget):
        if len(history) == 2:
            time.sleep(30)
        return super().propose(history, budget)


class Stubborn(RandomSearch):
    """Swallows every Exception: the timeout must still stop it."""

    def propose(self, history, budget):
        if len(history) == 1:
            while True:
                try:
                    time.sleep(30)
                except Exception:
                    pass
        return super().propose(history, budget)


@pytest.mark.parametrize("cls", [Sleeper, Stubborn])
def test_a_hanging_strategy_is_stopped_in_process(suite, cls):
    t0 = time.perf_counter()
    out = study(suite, cls, timeout_s=0.5)
    assert time.perf_counter() - t0 < 10
    assert out.status == "failed" and "time limit" in out.reason, out.reason


def test_a_slow_recommend_is_stopped(suite):
    class SlowRecommend(RandomSearch):
        def recommend(self, history):
            time.sleep(30)

    out = study(suite, SlowRecommend, timeout_s=0.5)
    assert out.status == "failed" and "recommend" in out.reason and "time limit" in out.reason


def test_no_timeout_for_a_normal_study(suite):
    assert study(suite, RandomSearch, timeout_s=5).status == "ok"


def _user_file(tmp_path, body: str, name: str) -> type:
    path = tmp_path / f"{name.replace('-', '_')}.py"
    path.write_text(textwrap.dedent(body))
    added = submission.load_file(path)
    return strategies.get(added[0])


SPY = """
import os
from strategies import Strategy


class Spy(Strategy):
    name = "iso-spy"
    description = "tries to read a replay table through the API"

    def propose(self, history, budget):
        import harness.suites
        harness.suites.load("paper-qwen2vl-2b")
        return self.space.uniform()
"""

WHERE = """
import os
from strategies import Strategy


class Where(Strategy):
    name = "iso-where"
    description = "reports the process it runs in"

    def propose(self, history, budget):
        raise RuntimeError(f"pid={os.getpid()}")
"""

HANG = """
import time
from strategies import Strategy


class Hang(Strategy):
    name = "iso-hang"
    description = "hangs in propose"

    def propose(self, history, budget):
        time.sleep(60)
"""

GOOD = """
import numpy as np
from strategies import Strategy


class Good(Strategy):
    name = "iso-good"
    description = "Dirichlet samples from the seed"

    def propose(self, history, budget):
        if budget.remaining(history) <= 0:
            return None
        rng = np.random.default_rng([self.seed, len(history)])
        return self.space.from_vector(rng.dirichlet(np.ones(self.space.dim)), normalize=True)
"""


def test_user_strategy_runs_in_another_process(suite, tmp_path):
    cls = _user_file(tmp_path, WHERE, "iso-where")
    assert is_user_strategy(cls)
    out = study(suite, cls)
    assert out.status == "failed" and "pid=" in out.reason
    pid = int(out.reason.split("pid=")[1].split()[0].rstrip(",:"))
    assert pid != os.getpid()


def test_user_strategy_cannot_load_a_suite(suite, tmp_path):
    out = study(suite, _user_file(tmp_path, SPY, "iso-spy"))
    assert out.status == "failed" and "cannot load suites" in out.reason, out.reason


def test_hanging_user_strategy_is_stopped_and_the_next_study_runs(suite, tmp_path):
    hang = _user_file(tmp_path, HANG, "iso-hang")
    good = _user_file(tmp_path, GOOD, "iso-good")
    t0 = time.perf_counter()
    out = study(suite, hang, timeout_s=1.0)
    assert out.status == "failed" and "time limit" in out.reason
    assert time.perf_counter() - t0 < 30
    after = study(suite, good)
    assert after.status == "ok", after.reason


def test_sandboxed_and_in_process_runs_agree(suite, tmp_path):
    """The same source, run in its sandbox (plain data over a pipe) and imported here by hand (what
    modomodo never does with a user's file), makes the same study to the last bit."""
    good = _user_file(tmp_path, GOOD, "iso-good")
    namespace: dict = {}
    exec(compile(textwrap.dedent(GOOD), "iso_good_here.py", "exec"), namespace)
    here = namespace["Good"]
    a = study(suite, good, budget=6)
    b = study(suite, here, budget=6, isolation="none")
    assert a.status == b.status == "ok"
    assert a.recommended == b.recommended and a.trajectory == b.trajectory and a.score == b.score


def test_isolation_none_does_not_import_a_users_file(suite, tmp_path):
    out = study(suite, _user_file(tmp_path, WHERE, "iso-where"), isolation="none")
    assert out.status == "failed" and int(out.reason.split("pid=")[1].split()[0].rstrip(",:")) != os.getpid()


def test_builtin_in_a_process_on_request(suite):
    a = study(suite, strategies.get("gp-bo"), budget=6, isolation="process")
    b = study(suite, strategies.get("gp-bo"), budget=6, isolation="none")
    assert a.status == "ok" and a.recommended == b.recommended


@pytest.mark.slow
def test_cli_bench_with_a_strategy_file(tmp_path, run_cli):
    folder = write_synthetic_suite(tmp_path / "cli-iso", dim=3)
    f = tmp_path / "my_strategy.py"
    f.write_text(textwrap.dedent(GOOD).replace("iso-good", "cli-good"))
    proc = run_cli(
        "bench",
        "--suite",
        folder,
        "--strategy",
        "cli-good,random",
        "--strategy-file",
        f,
        "--budget",
        "3",
        "--seeds",
        "2",
        "--out",
        tmp_path / "out",
        "--quiet",
    )
    assert "failed studies: 0" in proc.stderr, proc.stderr


def test_a_file_stand_in_is_built_only_through_make_strategy(suite, tmp_path):
    """No constructor returns another type: the stand-in refuses to be built here (its code is not in this
    process), and the factory returns the sandboxed handle, which runs the file's code."""
    from harness.sandbox.isolation import make_strategy
    from harness.sandbox.proxy import SandboxedStrategy

    cls = _user_file(tmp_path, GOOD, "iso-good")
    with pytest.raises(TypeError, match="make_strategy"):
        cls(suite.space, seed=0)
    handle = make_strategy(cls, suite.space, 3)
    try:
        assert type(handle) is SandboxedStrategy
        import numpy as np

        # what Good's code computes for seed 3 and an empty history, computed here from its formula
        want = suite.space.from_vector(
            np.random.default_rng([3, 0]).dirichlet(np.ones(suite.space.dim)), normalize=True
        )
        assert handle.propose((), Budget(2)) == want
    finally:
        handle.close()
