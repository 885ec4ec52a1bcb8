"""Issue 29, items 5, 6 and 8: the pool track never crashes on re-rounded weights; a harness error fails one
study, the bench goes on, says so, exits non-zero, and a resume retries it; summary.csv keeps every bench run
into one folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import strategies
from harness.cli import main
from harness.factory.importer import import_table
from tests.conftest import write_synthetic_suite


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _flips(W: np.ndarray) -> np.ndarray:
    """Rows whose 9-digit rounding changes once the (already normalised) row is normalised again: the old
    pool key's failure, computed here with plain numpy (not the code under test)."""
    once = W / W.sum(axis=1, keepdims=True)
    twice = once / once.sum(axis=1, keepdims=True)
    return (np.round(once, 9) != np.round(twice, 9)).any(axis=1)


@pytest.fixture(scope="module")
def ten_decimal_suite(tmp_path_factory):
    """A 6-domain table written with 10-decimal weights (as RegMix's normalised table is) in which some row's
    weights round differently at 9 digits after one more normalisation."""
    root = tmp_path_factory.mktemp("tendec")
    for seed in range(200):
        rng = np.random.default_rng(seed)
        W = np.round(rng.dirichlet(np.ones(6), size=60), 3)
        W = W / W.sum(axis=1, keepdims=True)
        path = root / "runs.csv"
        df = pd.DataFrame(W, columns=[f"w_d{j}" for j in range(6)])
        df["loss"] = (W**2).sum(axis=1) + rng.normal(0, 0.01, len(W))
        df.to_csv(path, index=False, float_format="%.10f")
        reread = pd.read_csv(path)[[f"w_d{j}" for j in range(6)]].to_numpy()
        if _flips(reread).any():
            break
    else:  # pragma: no cover
        pytest.fail("no table with a rounding flip in 200 draws")
    return import_table(
        path, "tendec", ",".join(f"w_d{j}" for j in range(6)), "loss", "min", root / "suite", normalize=True
    )


def test_every_candidate_is_admitted_and_answered_however_it_is_rebuilt(ten_decimal_suite):
    from harness import suites

    judge = suites.load(ten_decimal_suite).judge("pool")
    space = judge.space
    for i, c in enumerate(space.candidate_matrix):
        for m in (
            space.candidate(i),
            space.from_vector(c, normalize=True),
            space.from_vector(c * (1 + 1e-10), normalize=True),
        ):
            got = judge.check_proposal(m)
            assert space.candidate_index(got) == i
            seed = judge.run_seed(0, 0, got, 0)
            assert judge.simulate(got, seed)[1] == "recorded"
            assert judge.oracle(got)[0] == pytest.approx(float(judge.suite.means[judge.suite._keys[i]][0]))


def test_pool_bench_of_model_based_strategies_runs_to_the_end(ten_decimal_suite, tmp_path):
    r = invoke(
        "bench",
        "--suite",
        ten_decimal_suite,
        "--track",
        "pool",
        "--strategy",
        "random,gp-bo,quadratic-bo,regmix",
        "--budget",
        "12",
        "--seeds",
        "4",
        "--out",
        tmp_path / "o",
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    summary = pd.read_csv(tmp_path / "o" / "summary.csv")
    assert len(summary) == 16 and (summary.status == "ok").all(), summary[["strategy", "reason"]]


@pytest.fixture
def flaky(monkeypatch):
    """The study loop itself raising (a harness bug) for study seed 1 while state["fail"] is set."""
    import harness.bench.task
    from harness.studies.study import Study

    state = {"fail": True}

    class FlakyStudy(Study):
        def run(self):
            if state["fail"] and self.seed == 1:
                raise KeyError("planted harness error")
            return super().run()

    monkeypatch.setattr(harness.bench.task, "Study", FlakyStudy)
    return state


def test_a_harness_error_fails_one_study_the_bench_goes_on_and_a_resume_retries_it(flaky, tmp_path):
    out = tmp_path / "o"
    args = (
        "bench",
        "--suite",
        "synth-bowl-5",
        "--strategy",
        "random,uniform",
        "--budget",
        "4",
        "--seeds",
        "3",
        "--out",
        out,
        "--quiet",
    )
    r = invoke(*args)
    assert r.exit_code == 1, r.output
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 6
    failed = summary[summary.status != "ok"]
    assert sorted(failed.seed) == [1, 1] and failed.reason.str.contains("harness error: KeyError").all()
    assert "2 studies failed in this bench" in r.stderr and "run the same command again to retry" in r.stderr
    flaky["fail"] = False
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert "4 already done, 2 retried after failing in an earlier bench" in again.stderr
    assert (pd.read_csv(out / "summary.csv").status == "ok").all()


def test_a_strategy_error_is_a_failed_study_and_exit_1(tmp_path):
    from strategies.base import Strategy

    @strategies.register("raises-on-seed-0")
    class Raises(Strategy):
        description = "test: raises at seed 0"

        def propose(self, history, budget):
            if self.seed == 0:
                raise RuntimeError("boom")
            return None if history else self.space.uniform()

    try:
        r = invoke(
            "bench",
            "--suite",
            "synth-bowl-5",
            "--strategy",
            "raises-on-seed-0",
            "--budget",
            "2",
            "--seeds",
            "2",
            "--out",
            tmp_path / "o",
            "--quiet",
        )
    finally:
        strategies.registry._REGISTRY.pop("raises-on-seed-0", None)
    assert r.exit_code == 1
    assert "1 x propose raised RuntimeError: boom" in r.stderr


def test_two_benches_on_one_folder_keep_both_in_summary(tmp_path):
    out = tmp_path / "o"
    base = ("--suite", "synth-bowl-5", "--budget", "4", "--seeds", "2", "--out", out, "--quiet")
    assert invoke("bench", "--strategy", "uniform", *base).exit_code == 0
    r = invoke("bench", "--strategy", "random", *base)
    assert r.exit_code == 0 and "also keeps 2 studies of earlier benches" in r.stderr
    summary = pd.read_csv(out / "summary.csv")
    assert sorted(set(summary.strategy)) == ["random", "uniform"] and len(summary) == 4
    import json

    meta = json.loads((out / "bench.json").read_text())
    assert {s["name"] for s in meta["strategies"]} == {"uniform", "random"} and len(meta["benches"]) == 2
    # a third bench redoing one of them does not duplicate its rows
    assert invoke("bench", "--strategy", "uniform", *base).exit_code == 0
    assert len(pd.read_csv(out / "summary.csv")) == 4


def test_a_damaged_study_record_is_quarantined_and_redone_on_resume(tmp_path):
    out = tmp_path / "o"
    # a suite that stands in for a slow runner (simulated delay): its runs go through the store, as real runs
    # do (an instant replay's answers come from memory, harness/runners/replay.py)
    suite = write_synthetic_suite(tmp_path / "slow-bowl", dim=5, delay=0.001)
    args = ("bench", "--suite", suite, "--strategy", "random", "--budget", "4", "--seeds", "2", "--out", out, "--quiet")
    assert invoke(*args).exit_code == 0
    first = pd.read_csv(out / "summary.csv")
    studies = sorted((out / "store" / "studies").glob("*/*.json"))
    runs = sorted((out / "store" / "runs").glob("*/*.json"))
    for study in studies:
        study.write_bytes(study.read_bytes()[:40])  # truncated: every study is done again ...
    runs[0].write_bytes(b"")  # ... and meets an empty run record
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    assert "store records quarantined" in r.stderr
    assert len(list((out / "store" / "quarantine").rglob("*.json"))) == len(studies) + 1
    assert "runs executed: 1," in r.stderr, "only the emptied run is trained again"
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv").drop(columns="wall_s"), first.drop(columns="wall_s"))
