"""The study loop and the starting strategies: budgets respected, failures recorded, optima found."""

import numpy as np
import pytest

import strategies
from harness import suites
from harness.runners import ReplayRunner
from harness.spec import Budget, RunResult
from harness.store import ResultStore
from harness.studies.study import Study
from strategies.base import seed_designs
from tests.conftest import write_synthetic_suite


def _study(suite, name, budget, seed=0, runner=None, store=None):
    return Study(suite, strategies.get(name), Budget(budget), seed, runner or ReplayRunner(suite), store).run()


def test_seed_strategy_spends_exactly_the_eleven_designs():
    s = suites.load("paper-qwen2vl-2b")
    out = _study(s, "seed", 24)
    assert out.runs_used == 11 and out.status == "ok"
    proposed = {tuple(sorted(t["mixture"].items())) for t in out.trajectory}
    assert proposed == {tuple(sorted(m.as_dict().items())) for m in seed_designs(s.space)}
    assert all(t["source"] == "recorded" for t in out.trajectory)
    assert out.recommended["COCO"] == 0.0 and out.score == pytest.approx(0.5146)  # Exclude-COCO is best
    assert out.regret == pytest.approx(0.0)


@pytest.mark.parametrize("name", ["uniform", "random", "seed", "quadratic"])
@pytest.mark.parametrize("budget", [0, 1, 4, 13])
def test_budget_is_never_exceeded(name, budget):
    s = suites.load("synth-corner-6")
    out = _study(s, name, budget)
    assert out.status == "ok" and out.runs_used <= budget
    assert abs(sum(out.recommended.values()) - 1) < 1e-9


def test_same_seed_same_study():
    s = suites.load("synth-bump-8")
    a, b = _study(s, "quadratic", 20, seed=3), _study(s, "quadratic", 20, seed=3)
    assert a.trajectory == b.trajectory and a.recommended == b.recommended
    assert _study(s, "random", 20, seed=4).trajectory != a.trajectory


def test_quadratic_finds_the_optimum_of_a_known_quadratic(tmp_path):
    s = suites.load(write_synthetic_suite(tmp_path / "q3", kind="bowl", dim=3, noise=0.0))
    regrets = [_study(s, "quadratic", 24, seed=seed).normalized_regret for seed in range(10)]
    assert max(regrets) < 2e-3
    seed_only = [_study(s, "seed", 24, seed=seed).normalized_regret for seed in range(10)]
    assert np.mean(regrets) < np.mean(seed_only) / 10


class FlakyRunner(ReplayRunner):
    """A real replay runner whose every third run fails, as a crashed job would."""

    def run(self, spec):
        result = super().run(spec)
        if spec.seed % 3 == 0:
            return RunResult.failed(spec, "node lost")
        return result


def test_failed_pilot_runs_stay_in_history_and_are_not_cached(tmp_path):
    s = suites.load("synth-bowl-5")
    store = ResultStore(tmp_path)
    out = _study(s, "random", 30, runner=FlakyRunner(s), store=store)
    assert out.status == "ok" and out.runs_used == 30 and out.runs_failed > 0
    assert len(store) == 30 - out.runs_failed
    assert len(list(store.failures())) == out.runs_failed


class ExplodingRunner(ReplayRunner):
    def run(self, spec):
        raise RuntimeError("CUDA out of memory")


def test_a_runner_that_raises_is_recorded_as_failed_runs():
    s = suites.load("synth-bowl-5")
    out = _study(s, "seed", 5, runner=ExplodingRunner(s))
    assert out.status == "ok" and out.runs_failed == 5
    assert out.recommended == s.space.uniform().as_dict(), "nothing succeeded: fall back to uniform"
