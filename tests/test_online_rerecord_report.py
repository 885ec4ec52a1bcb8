"""The pre-registered online re-record analysis (tests/benchmarks/online_rerecord_report.py) on planted data:
expected values are computed here by hand / from the textbook formulas, not by the code under test."""

import math

import numpy as np
import pandas as pd
import pytest

from tests.benchmarks import online_rerecord_report as rep


def _runs(shift: dict[str, float], seeds=range(16), suites=("a:online", "b:online"), noise=0.0):
    rng = np.random.default_rng(3)
    rows = []
    for suite in suites:
        base = rng.normal(0.4, 0.02, size=len(seeds))
        for strat in ("constant", *rep.METHODS):
            for i, s in enumerate(seeds):
                v = base[i] + shift.get(strat, 0.0) + (rng.normal(0, noise) if strat != "constant" else 0.0)
                rows.append(
                    {
                        "suite": suite,
                        "strategy": strat,
                        "seed": s,
                        "status": "ok",
                        "In_Score": v,
                        "Out_Score": v / 2,
                        "t_online_strategy": 0.1,
                    }
                )
    return pd.DataFrame(rows)


def test_a_planted_gain_on_every_seed_is_found_on_both_suites_and_nothing_else_is():
    frame = rep.analyse(_runs({"aioli": 0.05}, noise=0.01))
    aioli = frame[frame["method"] == "aioli"]
    # 16 positive paired differences: the exact two-sided signed-rank p is 2 / 2**16
    assert np.allclose(aioli["p_wilcoxon"], 2 / 2**16)
    # Holm over the 8 comparisons: the two smallest p are multiplied by 8 and then by 7 (monotone step-down)
    assert np.allclose(sorted(aioli["p_holm"]), [8 * 2 / 2**16, 8 * 2 / 2**16])
    assert set(aioli["verdict"]) == {"better"}
    assert rep.overall(frame)["aioli"] == "better"
    others = frame[frame["method"] != "aioli"]
    assert (others["verdict"] == "no difference").all()


def test_intervals_match_the_textbook_t_and_cover_the_planted_mean():
    d = np.array([0.01, 0.03, -0.02, 0.04, 0.00, 0.02])
    m, lo, hi = rep.t_interval(d)
    se = d.std(ddof=1) / math.sqrt(6)
    assert m == pytest.approx(0.01333333, abs=1e-7)
    assert hi - m == pytest.approx(2.570582 * se, rel=1e-5)  # t_{0.975, 5} = 2.570582
    blo, bhi = rep.bootstrap_interval(d)
    assert blo < m < bhi


def test_a_gain_on_one_suite_only_is_not_an_overall_win():
    runs = _runs({}, noise=0.01)
    mask = (runs["suite"] == "a:online") & (runs["strategy"] == "dump")
    runs.loc[mask, "In_Score"] += 0.05
    frame = rep.analyse(runs)
    got = frame.set_index(["suite", "method"])["verdict"]
    assert got[("a:online", "dump")] == "better" and got[("b:online", "dump")] == "no difference"
    assert rep.overall(frame)["dump"] == "not shown"


def test_pairs_are_matched_by_seed_not_by_position():
    runs = _runs({"odm": 0.0})
    runs = runs[~((runs["strategy"] == "odm") & (runs["seed"] == 0))]  # odm lacks seed 0
    d = rep.paired(runs, "a:online", "odm", "In_Score")
    assert d.size == 15 and np.allclose(d, 0.0)


def test_runs_from_two_different_bases_are_refused(tmp_path):
    import json

    for i, sha in enumerate(["aaa", "aaa", "bbb"]):
        d = tmp_path / "store" / "runs" / f"0{i}"
        d.mkdir(parents=True)
        (d / f"0{i}.json").write_text(
            json.dumps({"spec": {"suite": "s-live@1:online"}, "provenance": {"base_weights_sha256": sha}})
        )
    assert rep.bases_by_suite(tmp_path) == {"s-live": {"aaa", "bbb"}}
    with pytest.raises(SystemExit, match="different base weights"):
        rep.check_one_base(tmp_path)
