"""Verdicts within one suite (leaderboard/within_suite.py), the pool track's best-so-far statistic and fractional
budgets end to end, against independent computations (scipy's exact permutation test, hand-computed Holm, the
suite's runs.csv read with pandas)."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from leaderboard import evidence as ev
from leaderboard import within_suite as ws
from leaderboard.data import load_results
from leaderboard.stats import compute, study_curves
from tests.conftest import cli


def _studies(regret: dict[str, list[float]], suite="s", budget=8):
    rows = []
    for strat, vals in regret.items():
        for seed, v in enumerate(vals):
            rows.append(
                {
                    "suite": suite,
                    "strategy": strat,
                    "budget": budget,
                    "seed": seed,
                    "ok": True,
                    "normalized_regret": v,
                    "oriented": -v,
                }
            )
    return pd.DataFrame(rows)


def _exact_p(d):
    return sps.permutation_test((np.asarray(d, float),), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue


def test_comparisons_with_random_are_exact_permutation_tests_with_holm():
    rng = np.random.default_rng(4)
    n = 10
    rand = rng.uniform(0.3, 0.6, n)
    regret = {
        "random": rand,
        "good": rand - 0.2 + rng.normal(0, 0.02, n),
        "same": rand + rng.normal(0, 0.1, n),
        "bad": rand + 0.15 + rng.normal(0, 0.02, n),
    }
    _, pairs = ws.suite_verdicts(_studies(regret), "s", 8, can_rank=True)
    got = {p["strategy"]: p for p in pairs}
    raw = {k: _exact_p(np.asarray(regret[k]) - rand) for k in ("bad", "good", "same")}
    order = sorted(raw, key=raw.get)
    holm, run = {}, 0.0
    for i, k in enumerate(order):
        run = max(run, min(1.0, (3 - i) * raw[k]))
        holm[k] = run
    for k in raw:
        assert got[k]["p"] == pytest.approx(raw[k]) and got[k]["p_holm"] == pytest.approx(holm[k])
    assert got["good"]["verdict"] == "beats" and got["bad"]["verdict"] == "loses to" and got["same"]["verdict"] == "—"
    ci = sps.ttest_rel(regret["good"], rand).confidence_interval(0.95)
    assert got["good"]["diff_lo"] == pytest.approx(ci.low) and got["good"]["diff_hi"] == pytest.approx(ci.high)


def test_best_is_marked_only_when_separable_and_only_on_a_suite_that_can_rank():
    rng = np.random.default_rng(5)
    n = 12
    base = rng.uniform(0.2, 0.5, n)
    clear = {"a": base - 0.15, "b": base, "c": base + 0.05}
    row, _ = ws.suite_verdicts(_studies(clear), "s", 8, can_rank=True)
    assert row["best"] == "a" and row["runner_up"] == "b" and row["best_p_holm"] < 0.05
    row, _ = ws.suite_verdicts(_studies(clear), "s", 8, can_rank=False)
    assert row["best"] == ""  # same numbers, a suite that cannot rank: no mark
    close = {"a": base - 0.001 + rng.normal(0, 0.05, n), "b": base, "c": base + 0.3}
    row, _ = ws.suite_verdicts(_studies(close), "s", 8, can_rank=True)
    assert row["best"] == ""  # the lowest mean is within noise of the runner-up
    tie = {"a": np.zeros(n), "b": np.zeros(n), "c": base}  # two strategies that always find the best
    row, _ = ws.suite_verdicts(_studies(tie), "s", 8, can_rank=True)
    assert row["best"] == ""


def test_minimum_detectable_difference_from_the_pooled_paired_sd():
    rng = np.random.default_rng(6)
    n = 8
    regret = {k: rng.uniform(0, 1, n) for k in "abc"}
    row, _ = ws.suite_verdicts(_studies(regret), "s", 8, can_rank=True)
    var = [np.var(regret[x] - regret[y], ddof=1) for x, y in (("a", "b"), ("a", "c"), ("b", "c"))]
    sd = float(np.sqrt(np.mean(var)))
    assert row["sd_pair"] == pytest.approx(sd) and row["n_seeds"] == n
    # independent: the difference detected with 80% power by simulation of the paired t-test
    x = rng.normal(row["mdd"], sd, size=(6000, n))
    assert (sps.ttest_1samp(x, 0, axis=1).pvalue < 0.05).mean() == pytest.approx(0.8, abs=0.02)
    assert row["seeds_for_target"] == ev.seeds_needed(sd, 0.01) and row["seeds_for_target"] > n


@pytest.fixture(scope="module")
def pool_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("poolb") / "b"
    cli(
        "bench",
        "--suite",
        "minimodo-tiny-in",
        "--strategy",
        "random,uniform,seed",
        "--budget",
        "4,8",
        "--seeds",
        "6",
        "--out",
        out,
        "--quiet",
    )
    return out


def test_pool_best_so_far_curves_use_the_per_mixture_mean_and_never_dip_below_zero(pool_bench):
    res = load_results([pool_bench])
    curves = study_curves(res)
    assert curves and min(c.min() for c in curves.values()) >= 0.0
    # one study by hand: the recorded per-mixture means from runs.csv, the best pilot so far by its own score
    from harness.suites import registered

    runs = pd.read_csv(registered()["minimodo-tiny-in"] / "runs.csv")
    wcols = [c for c in runs.columns if c.startswith("w_")]
    means = runs.groupby(wcols)["In_Score"].mean()
    best, worst = means.max(), means.min()
    traj = pd.read_csv(pool_bench / "trajectories.csv")
    t = traj[(traj.strategy == "random") & (traj.budget == 8) & (traj.seed == 2)].sort_values("step")
    expect, chosen, top = [], None, -np.inf
    for _, r in t.iterrows():
        if r["value"] > top:
            top, chosen = r["value"], json.loads(r["mixture"])
        key = tuple(float(chosen[c[2:]]) for c in wcols)
        m = (
            means.loc[key]
            if key in means.index
            else means[np.isclose(np.array(means.index.tolist()), key).all(1)].iloc[0]
        )
        expect.append((best - m) / (best - worst))
    assert curves[("minimodo-tiny-in", "random", 8, 2)] == pytest.approx(expect)


def test_fractional_budgets_end_to_end(tmp_path):
    """2.5 and 2 are two budgets everywhere: the table, the rankings, the labels (never cast to int and merged)."""
    out = tmp_path / "frac"
    cli(
        "bench",
        "--suite",
        "minimodo-pool",
        "--strategy",
        "successive-halving,random",
        "--budget",
        "2,2.5",
        "--seeds",
        "3",
        "--out",
        out,
        "--quiet",
    )
    st = compute(load_results([out]))
    assert sorted(set(st.table["budget"])) == [2.0, 2.5]
    assert (st.table["n_seeds"] == 3).all() and len(st.table) == 4
    assert {r.budget for r in st.rankings} == {2.0, 2.5}
    assert set(st.suite_evidence["budget"]) == {2.0, 2.5}
    table = cli("leaderboard", "table", "--results", out, "--budget", "2.5").stdout
    assert "budget 2.5" in table and "budget 2 " not in table
    site = tmp_path / "site"
    cli("leaderboard", "render", "--results", out, "--out", site)
    page = next((site / "suites").glob("minimodo-pool-*.html")).read_text()
    assert '<td data-sort="2.5" class="num">2.5</td>' in page and '<td data-sort="2.0" class="num">2</td>' in page


def test_index_ranks_per_suite_family_and_notes_budgets_near_the_pool_size(tmp_path):
    """Two pool suites of different families (a copy of minimodo-tiny-in carded `family: lm-pretraining`): the index
    shows the ranking per family beside the overall one, and says where the budget is not well below the pool."""
    import re
    import shutil

    from harness.suites import registered

    copy = tmp_path / "tiny-lm"
    shutil.copytree(registered()["minimodo-tiny-in"], copy)
    card = (copy / "card.yaml").read_text()
    card = re.sub(r"^name: .*$", "name: tiny-lm", card, count=1, flags=re.M) + "family: lm-pretraining\n"
    (copy / "card.yaml").write_text(card)
    out = tmp_path / "b"
    cli(
        "bench",
        "--suite",
        "minimodo-tiny-in",
        "--suite",
        copy,
        "--strategy",
        "random,uniform,seed",
        "--budget",
        "16",
        "--seeds",
        "3",
        "--out",
        out,
        "--quiet",
    )
    site = tmp_path / "site"
    cli("leaderboard", "render", "--results", out, "--out", site)
    index = (site / "index.html").read_text()
    assert 'id="families-pool"' in index and "Public language-model pretraining runs" in index
    assert "Real RLVR runs (this machine" in index
    assert "budget 16 is over half the pool of 24 candidates" in index
    ranks = pd.read_csv(site / "data" / "overall_rank.csv")
    assert set(ranks["suite_family"]) == {"all", "rlvr", "lm-pretraining"}
