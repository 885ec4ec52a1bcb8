"""A live suite is given its runner and oracle store by the execution layer (harness/runners/own_runs.py); the
judge (harness/suites/live.py) builds neither."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from harness import suites
from harness.mixture import Mixture
from harness.runners.own_runs import give_own_runner
from harness.spec import RunResult, RunSpec, derive_seed
from harness.suites import SuiteError

ROOT = Path(__file__).resolve().parent.parent


def planted(mixture: Mixture, seed: int) -> float:
    """The planted truth the runner below reports: a known function of the weights plus a seed offset."""
    w = np.array([mixture[d] for d in sorted(mixture)])
    return float(0.5 - np.sum((w - 0.3) ** 2) + (seed % 7) * 1e-3)


class PlantedRunner:
    """Answers every run with `planted` (no training), and counts the runs it was asked for."""

    def __init__(self, suite):
        self.suite, self.calls = suite, 0

    def run(self, spec: RunSpec) -> RunResult:
        self.calls += 1
        value = planted(spec.mixture, spec.seed)
        return RunResult(spec.key, spec.to_dict(), "ok", {self.suite.metric: value}, self.suite.metric, "trained")


@pytest.fixture
def live(tmp_path, monkeypatch):
    monkeypatch.setenv("MODOMODO_ORACLE_STORE", str(tmp_path / "oracle"))
    folder = tmp_path / "tiny-live"
    shutil.copytree(ROOT / "baselines" / "minimodo-tiny-live", folder)
    return suites.load(folder)


def test_a_live_suite_loaded_alone_has_no_runner_and_says_who_gives_it_one(live):
    assert live.runner is None
    with pytest.raises(SuiteError, match="give_own_runner"):
        live.oracle(live.space.uniform())


def test_the_given_runner_trains_the_oracle_runs_through_the_oracle_store(live, tmp_path):
    judge = live.judge("continuous")
    runner = PlantedRunner(live)
    assert give_own_runner(judge, runner) is judge
    assert live.runner is runner
    m = live.space.uniform()
    expected = np.mean([planted(m, derive_seed("oracle", k)) for k in range(len(live.oracle_seeds))])
    assert judge.uniform_score == pytest.approx(expected, abs=1e-12)
    assert runner.calls == len(live.oracle_seeds)
    assert len(list((tmp_path / "oracle" / "runs").rglob("*.json"))) == len(live.oracle_seeds)
    # a second suite object (another process) finds the runs in the store: none is trained again
    again = suites.load_folder(live.path)
    second = PlantedRunner(again)
    give_own_runner(again, second)
    assert again.oracle(m)[0] == pytest.approx(expected, abs=1e-12) and second.calls == 0


def test_default_runner_is_the_cards_kind_built_once_and_a_passed_runner_replaces_it(live):
    give_own_runner(live)
    first = live.runner
    assert type(first).__name__ == "CpuRunner" and live.card["runner"] == "cpu"
    give_own_runner(live)
    assert live.runner is first  # kept: built once per suite object
    mine = PlantedRunner(live)
    give_own_runner(live, mine)
    assert live.runner is mine


def test_suites_without_runs_of_their_own_are_left_as_they_are():
    for name in ("synth-bowl-5", "minimodo-tiny"):
        s = suites.load(name)
        assert give_own_runner(s, PlantedRunner(s)) is s
        assert "runner" not in vars(s)
