"""Replay with fidelity in the pool track (issue 16, second half): partial pilots from fidelities.csv,
budgets in run-equivalents, full-fidelity scoring of the recommendation, and the multi-fidelity
strategies, on suites written by tests/benchmarks/fidelity_table.py through export_suite."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import strategies
from harness import suites
from harness.mixture import MixtureSpace
from harness.runners import make_runner
from harness.sandbox import submission
from harness.spec import Budget, Observation, Proposal, UnknownFidelity, pilot_cost, spent
from harness.studies.study import Study
from harness.suites.errors import SuiteError
from strategies.base import Strategy
from tests.benchmarks.fidelity_table import make_fidelity_suite

MF = ("successive-halving", "hyperband", "bohb-gp")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """96 mixtures × 4 seeds, realistic rank correlations (0.6 / 0.85 between true effects)."""
    folder = make_fidelity_suite(tmp_path_factory.mktemp("fid"), n_mix=96, seeds=4)
    return suites.load(folder).judge("pool")


@pytest.fixture(scope="module")
def perfect(tmp_path_factory):
    """24 mixtures, no seed noise, low fidelity a monotone function of the full one (rank correlation 1)."""
    folder = make_fidelity_suite(
        tmp_path_factory.mktemp("perfect"), n_mix=24, seeds=3, rho=1.0, seed_sd=0.0, name="perfect"
    )
    return suites.load(folder).judge("pool")


class Scripted(Strategy):
    """Proposes a fixed list of (candidate index, fidelity), recommends candidate `rec`."""

    name = "scripted"
    plan: list = []
    rec = 0

    def propose(self, history, budget):
        if len(history) >= len(self.plan) or budget.remaining(history) <= 0:
            return None
        i, f = self.plan[len(history)]
        m = self.space.candidate_mixtures()[i]
        return m if f == 1.0 else Proposal(m, f)

    def recommend(self, history):
        return self.space.candidate_mixtures()[self.rec]


def scripted(plan, rec=0):
    return type("S", (Scripted,), {"plan": plan, "rec": rec})


def study(judge, cls, budget, seed=0, **kw):
    return Study(
        judge, cls, budget if isinstance(budget, Budget) else Budget(budget), seed, make_runner("replay", judge), **kw
    ).run()


def test_the_pool_offers_the_recorded_levels_and_other_tracks_none(table):
    assert table.space.fidelities == (0.25, 0.5, 1.0) and table.space.multi_fidelity
    assert suites.load("synth-bowl-5").judge().space.fidelities == ()
    with pytest.raises(UnknownFidelity, match="valid: 0.25, 0.5, 1"):
        table.check_fidelity(0.3)


def test_a_pilot_at_a_quarter_returns_the_quarter_score_and_costs_a_quarter(table):
    out = study(table, scripted([(5, 0.25)], rec=5), 4)
    assert out.status == "ok" and out.runs_used == 1 and out.cost_used == 0.25
    step = out.trajectory[0]
    assert step["fidelity"] == 0.25 and step["cost"] == 0.25
    m = table.space.candidate_mixtures()[5]
    seed = table.run_seed(0, 0, m, 0)
    quarter = table.suite.simulate_recorded(m, seed, 0.25)[table.metric]
    full = table.suite.simulate_recorded(m, seed, 1.0)[table.metric]
    assert step["value"] == pytest.approx(quarter) and quarter != pytest.approx(full)
    # the same value as the fidelities.csv row of that (mixture, seed, fidelity)
    assert quarter == pytest.approx(
        table.suite.recorded_at[0.25][m][table.suite.recorded_seeds[m].index(seed)][
            table.score_columns.index(table.metric)
        ]
    )


def test_a_promotion_continues_the_same_run_and_costs_the_difference(table):
    out = study(table, scripted([(3, 0.25), (3, 0.5), (3, 1.0), (3, 1.0)]), 10)
    assert [t["cost"] for t in out.trajectory] == [0.25, 0.25, 0.5, 1.0]
    assert out.cost_used == 2.0
    seeds = [table.suite.pool_seed(table.space.candidate_mixtures()[3], 0, k) for k in range(2)]
    # the first three pilots are one run (seed of occurrence 0); the fourth is a new run (occurrence 1)
    m = table.space.candidate_mixtures()[3]
    vals = [t["value"] for t in out.trajectory]
    for v, (f, s) in zip(vals, [(0.25, seeds[0]), (0.5, seeds[0]), (1.0, seeds[0]), (1.0, seeds[1])]):
        assert v == pytest.approx(table.suite.simulate_recorded(m, s, f)[table.metric])


def test_pilot_cost_rule_and_fractional_budgets():
    space = MixtureSpace(("a", "b"))
    m, n = space.uniform(), space.vertices()[0]
    h = [Observation(m, 0.1, {}, "ok", 0.25), Observation(m, 0.2, {}, "ok", 0.5), Observation(n, 0.3, {}, "ok", 1.0)]
    assert pilot_cost(h[:1], m, 0.5) == (0.25, True)
    assert pilot_cost(h, m, 0.25) == (0.25, False)  # the run already reached 0.5: a new run
    assert pilot_cost(h, n, 1.0) == (1.0, False)
    assert spent(h) == 1.5
    assert Budget(4.5).remaining(h) == 3 and Budget(4).remaining(h) == 2.5
    assert Budget(4.0).runs == 4 and isinstance(Budget(4.0).runs, int)
    failed = [Observation(m, None, {}, "failed", 0.25)]
    assert pilot_cost(failed, m, 0.5) == (0.5, False)  # a failed run is not continued
    with pytest.raises(ValueError, match="run-equivalents"):
        Budget(-0.5)


def test_an_unknown_fidelity_fails_the_study_with_a_named_error(table):
    out = study(table, scripted([(1, 0.3)]), 4)
    assert out.status == "failed" and "UnknownFidelity" in out.reason and "0.25, 0.5, 1" in out.reason
    synth = suites.load("synth-bowl-5").judge()

    class Half(Strategy):
        name = "half"

        def propose(self, history, budget):
            return Proposal(self.space.uniform(), 0.5) if budget.remaining(history) > 0 else None

    out = study(synth, Half, 2)
    assert out.status == "failed" and "UnknownFidelity" in out.reason and "single-fidelity" in out.reason


def test_a_pilot_the_budget_cannot_pay_ends_the_pilots(table):
    out = study(table, scripted([(1, 0.5), (2, 1.0)]), 1)
    assert out.status == "ok" and out.cost_used == 0.5 and out.runs_used == 1 and "0.5 left" in out.note


def test_the_recommendation_is_scored_by_its_full_fidelity_mean(table):
    out = study(table, scripted([(7, 0.25), (7, 0.5)], rec=7), 2)
    m = table.space.candidate_mixtures()[7]
    assert out.score == pytest.approx(float(table.suite.means[m][table.score_columns.index(table.metric)]))
    assert out.score_source == "recorded"
    assert all(t["best_so_far"] is None for t in out.trajectory)  # partial runs are no mixture's score


@pytest.mark.parametrize("name", MF + ("random", "gp-bo"))
@pytest.mark.parametrize("runs", (0.5, 1, 2.75, 4, 8, 16))
def test_the_budget_is_never_exceeded_in_run_equivalents(table, name, runs):
    out = study(table, strategies.get(name), runs, seed=3)
    assert out.status == "ok", out.reason
    assert out.cost_used <= runs + 1e-9
    assert out.cost_used == pytest.approx(sum(t["cost"] for t in out.trajectory))
    if name in MF and runs >= 4:
        assert {t["fidelity"] for t in out.trajectory} >= {0.25, 1.0}  # they do use partial runs
    if name in ("random", "gp-bo"):
        assert {t["fidelity"] for t in out.trajectory} <= {1.0}


@pytest.mark.parametrize("name,runs", [("successive-halving", 12), ("hyperband", 40), ("bohb-gp", 40)])
def test_multi_fidelity_strategies_find_the_best_when_low_fidelity_predicts_perfectly(perfect, name, runs):
    # SH at 12 run-equivalents starts all 24 candidates at 0.25 (cost 0.5 per candidate for the bracket);
    # Hyperband's first bracket gets a third of 40
    for seed in range(3):
        out = study(perfect, strategies.get(name), runs, seed=seed)
        assert out.status == "ok" and out.regret == pytest.approx(0.0, abs=1e-12), (seed, out.recommended)


def test_same_seed_same_study_and_resumable(table):
    for name in MF:
        a, b = (study(table, strategies.get(name), 8, seed=5) for _ in range(2))
        assert [t["run_key"] for t in a.trajectory] == [t["run_key"] for t in b.trajectory]
        assert a.recommended == b.recommended
        # a fresh instance given a prefix of the history proposes what the uninterrupted one did
        cls = strategies.get(name)
        s1 = cls(table.space, seed=5)
        hist, props = [], []
        for t in a.trajectory:
            p = s1.propose(tuple(hist), Budget(8))
            props.append(p)
            m = table.space.validate(table.space.mixture(t["mixture"]))
            hist.append(Observation(m, t["value"], {}, t["status"], t["fidelity"]))
        s2 = cls(table.space, seed=5)
        k = len(hist) // 2
        assert s2.propose(tuple(hist[:k]), Budget(8)) == props[k]


def test_a_tampered_fidelities_csv_is_refused(tmp_path):
    folder = make_fidelity_suite(tmp_path, n_mix=12, seeds=2, name="tamper")
    path = folder / "fidelities.csv"
    path.write_text(path.read_text().replace("0.25,", "0.26,", 1))
    with pytest.raises(SuiteError, match="sha256"):
        suites.load(folder)


def test_the_card_states_levels_and_rank_correlations(table):
    block = yaml.safe_load((table.path / "card.yaml").read_text())["fidelities"]
    assert block["levels"] == [0.25, 0.5, 1.0]
    rho = block["rank_correlation"]["0.25"][table.metric]["spearman_with_full"]
    assert 0.0 < rho < 1.0
    assert np.isfinite(block["signal"]["0.25"][table.metric]["snr_mean"])


def test_a_sandboxed_strategy_file_asks_for_fidelities_too(table, tmp_path):
    """A user's file runs in its sandbox: the space's fidelities, a Proposal and fractional budgets cross it."""
    f = tmp_path / "mf_user.py"
    f.write_text("""
from harness.spec import Proposal
from strategies.base import Strategy


class QuarterThenFull(Strategy):
    name = "quarter-then-full"

    def propose(self, history, budget):
        left = budget.remaining(history)
        if left <= 0:
            return None
        m = self.space.candidate_mixtures()[len(history) // 2]
        f = self.space.fidelities[0] if len(history) % 2 == 0 else 1.0
        return Proposal(m, f) if f < 1.0 else m
""")
    name = submission.load_file(f)[0]
    out = study(table, strategies.get(name), 2.5)
    assert out.status == "ok", out.reason
    # the third full run (0.75 more) no longer fits in what is left (0.25): the pilots end there
    assert [t["fidelity"] for t in out.trajectory] == [0.25, 1.0, 0.25, 1.0, 0.25]
    assert [t["cost"] for t in out.trajectory] == [0.25, 0.75, 0.25, 0.75, 0.25] and out.cost_used == 2.25
    assert "pilots ended" in out.note


def test_bench_runs_multi_fidelity_strategies_and_curves_count_run_equivalents(table, tmp_path):
    import pandas as pd

    from harness.bench.bench import bench
    from leaderboard.data import load_results
    from leaderboard.stats import study_curves

    bench(
        [str(table.path)],
        ["successive-halving", "random"],
        [4],
        2,
        tmp_path / "out",
        workers=1,
        progress=False,
        track="pool",
    )
    s = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert (s["status"] == "ok").all() and (s["cost_used"] <= 4 + 1e-9).all()
    t = pd.read_csv(tmp_path / "out" / "trajectories.csv")
    sh = t[t["strategy"] == "successive-halving"]
    assert len(sh) > 2 * 4 and sh["spent"].max() <= 4 + 1e-9 and set(sh["fidelity"]) == {0.25, 0.5, 1.0}
    curves = study_curves(load_results([tmp_path / "out"]))
    assert all(len(c) == 4 for c in curves.values()) and len(curves) == 4
    # SH at 4: 8 pilots at 0.25 (2.0 spent), 4 promoted to 0.5 (3.0), 2 to full (3.5, 4.0). The curve's
    # point t is after t + 1 run-equivalents, and stays at 1 until a full-fidelity pilot exists
    for key in (k for k in curves if k[1] == "successive-halving"):
        assert sh[(sh["seed"] == key[3]) & (sh["fidelity"] == 1.0)]["spent"].min() == 3.5
        assert list(curves[key][:3]) == [1.0, 1.0, 1.0] and curves[key][3] < 1.0


def test_bench_takes_fractional_budgets_in_run_equivalents_where_partial_runs_exist(table, tmp_path, run_cli):
    import pandas as pd

    out = tmp_path / "frac"
    run_cli(
        "bench",
        "--suite",
        table.path,
        "--track",
        "pool",
        "--strategy",
        "successive-halving,random",
        "--budget",
        "2.5,4",
        "--seeds",
        "2",
        "--out",
        out,
        "--quiet",
    )
    s = pd.read_csv(out / "summary.csv")
    assert sorted(set(s["budget"])) == [2.5, 4.0] and (s["status"] == "ok").all()
    assert (s[s.budget == 2.5]["cost_used"] <= 2.5 + 1e-9).all()
    bad = run_cli(
        "bench",
        "--suite",
        "minimodo-tiny",
        "--strategy",
        "random",
        "--budget",
        "2.5",
        "--seeds",
        "1",
        "--out",
        tmp_path / "bad",
        "--quiet",
        check=False,
    )
    assert (
        bad.returncode == 2 and "budget 2.5 is fractional, but suite 'minimodo-tiny' has no partial runs" in bad.stderr
    )
    bad = run_cli("bench", "--suite", "minimodo-tiny", "--budget", "four", "--out", tmp_path / "bad", check=False)
    assert bad.returncode == 2 and "--budget must be comma-separated numbers" in bad.stderr
