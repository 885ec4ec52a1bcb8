"""Issue 27, item 6: the cross-base table (leaderboard/cross_base.py).

Each suite's base model and task set come from its card (the committed cards below, whose bases the issue and
baselines/sweeps/README.md name); the pairs are the rankable RLVR suites' rank correlations, labelled by what
varies; on hand-made numbers the correlations equal scipy's on the per-strategy means."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from leaderboard.cross_base import (
    ACROSS_BASE,
    COLUMNS,
    ACROSS_TASK_SET,
    OTHER_BOTH_DIFFER,
    OTHER_SAME_BOTH,
    OTHER_UNKNOWN,
    SuiteIdentity,
    cross_base_markdown,
    cross_base_table,
    identity,
    pair_kind,
)
from leaderboard.data import Results
from leaderboard.descriptions import card_for
from leaderboard.stats import compute
from tests.leaderboard_fixtures import lb_bench, lb_site  # noqa: F401 - fixtures

FIVE = ("grounding", "referring", "geometry", "spatial", "science")
EIGHT = (*FIVE, "tally", "bars", "maze")


@pytest.mark.parametrize(
    "suite, family, width, task_set, datasets",
    [
        ("minimodo-tiny-in", "qwen2vl", 64, "minimodo", FIVE),  # recorded cards: protocol.protocol_config
        ("minimodo-tiny-h128-in", "qwen2vl", 128, "minimodo", FIVE),
        ("minimodo-pool", "qwen2vl", 64, "minimodo", FIVE),
        ("minimodo8-live", "qwen2vl", 64, "minimodo8", EIGHT),  # issue 27's live cards: their own protocol_config
        ("minimodo8-h128-live", "qwen2vl", 128, "minimodo8", EIGHT),
        ("minimodo-idf-live", "idefics3", 64, "minimodo", FIVE),
        ("minimodo8-idf-live", "idefics3", 64, "minimodo8", EIGHT),
        ("paper-qwen2vl-2b", "Qwen2-VL-2B-Instruct", None, "", ("COCO", "LISA", "GeoQAV", "SAT", "ScienceQA")),
    ],
)
def test_base_and_task_set_come_from_the_committed_card(suite, family, width, task_set, datasets):
    card, _ = card_for({"name": suite})
    ident = identity({"name": suite, "card": card})
    assert (ident.family, ident.width, ident.task_set, ident.datasets) == (family, width, task_set, datasets)
    assert ident.metric == card["metric"]


def test_the_name_never_decides():
    """A card named like the h128 suite whose protocol is the h64 preset is h64; a card naming no protocol and no
    model is unknown, whatever its name says."""
    card, _ = card_for({"name": "minimodo-tiny-h128-in"})
    card = {**card, "protocol": {**card["protocol"], "protocol_config": {"preset": "tiny"}, "base_model": ""}}
    ident = identity({"name": "minimodo-tiny-h128-in", "card": card})
    assert (ident.family, ident.width, ident.base) == ("qwen2vl", 64, "tiny-h64-cur")
    bare = identity({"name": "minimodo8-h128-idf", "card": {"datasets": list(FIVE)}})
    assert bare.family == "" and bare.width is None and pair_kind(bare, ident) == OTHER_UNKNOWN


def test_pair_labels():
    def ident(family, width, task_set, datasets=FIVE, metric="m"):
        return SuiteIdentity(family, width, f"{family}-{width}", task_set, datasets, metric)

    h64, h128 = ident("qwen2vl", 64, "minimodo"), ident("qwen2vl", 128, "minimodo")
    idf = ident("idefics3", 64, "minimodo")
    h64_8 = ident("qwen2vl", 64, "minimodo8", EIGHT)
    assert pair_kind(h64, h128) == pair_kind(h64, idf) == ACROSS_BASE  # width, family
    assert pair_kind(h64, h64_8) == ACROSS_TASK_SET
    assert pair_kind(h128, h64_8) == pair_kind(idf, h64_8) == OTHER_BOTH_DIFFER
    assert pair_kind(h64, ident("qwen2vl", 64, "minimodo", metric="other")) == OTHER_SAME_BOTH
    # the same domains in another order are the same task set; another set of domains is not
    assert pair_kind(h64, ident("qwen2vl", 128, "minimodo", FIVE[::-1])) == ACROSS_BASE
    assert pair_kind(h64, ident("qwen2vl", 64, "minimodo", FIVE[:4])) == ACROSS_TASK_SET


# -- a generated case: five suites, six strategies, three seeds, hand-made regrets -------------------------------
STRATEGIES = [f"s{i}" for i in range(6)]
# per suite: seeds x strategies normalised regrets (no ties between strategy means)
REGRETS = {
    "qa": [
        [0.10, 0.20, 0.35, 0.40, 0.60, 0.90],
        [0.12, 0.25, 0.30, 0.45, 0.55, 0.80],
        [0.08, 0.22, 0.33, 0.41, 0.62, 0.85],
    ],
    "qb": [
        [0.15, 0.10, 0.40, 0.30, 0.70, 0.60],
        [0.20, 0.12, 0.42, 0.35, 0.66, 0.58],
        [0.18, 0.11, 0.39, 0.33, 0.71, 0.61],
    ],
    "qc": [
        [0.90, 0.10, 0.50, 0.20, 0.30, 0.70],
        [0.85, 0.12, 0.52, 0.25, 0.28, 0.75],
        [0.88, 0.15, 0.49, 0.22, 0.31, 0.72],
    ],
    "qd": [
        [0.50, 0.40, 0.30, 0.20, 0.10, 0.00],
        [0.52, 0.41, 0.33, 0.21, 0.12, 0.02],
        [0.51, 0.43, 0.31, 0.22, 0.11, 0.01],
    ],
    "syn": [
        [0.10, 0.20, 0.30, 0.40, 0.50, 0.60],
        [0.11, 0.21, 0.31, 0.41, 0.51, 0.61],
        [0.12, 0.22, 0.32, 0.42, 0.52, 0.62],
    ],
}
# the suites' cards: qa h64 x five, qb h128 x five, qc h64 x eight (rankable); qd Idefics3 x eight cannot rank;
# syn is analytic. Names say nothing of the base: only the cards do.
PRESETS = {"qa": "tiny", "qb": "tiny-h128", "qc": "tiny8", "qd": "tiny8-idf"}


def _entry(name):
    can = name != "qd"
    if name == "syn":
        card = {"name": name, "kind": "synthetic", "datasets": ["A", "B"], "metric": "score"}
    else:
        domains = list(EIGHT if PRESETS[name].startswith("tiny8") else FIVE)
        card = {
            "name": name,
            "kind": "replay",
            "datasets": domains,
            "metric": "In_Score_p",
            "protocol": {"protocol_config": {"preset": PRESETS[name]}},
        }
    return {
        "name": name,
        "goal": "max",
        "best_known": 1.0,
        "worst_known": 0.0,
        "protocol": f"p-{name}",
        "track": "continuous" if name == "syn" else "pool",
        "can_rank": can,
        "ranking_reason": "planted",
        "card": card,
    }


def _results() -> Results:
    rows = []
    for su, table in REGRETS.items():
        for seed, regrets in enumerate(table):
            for strat, r in zip(STRATEGIES, regrets):
                rows.append(
                    {
                        "suite": su,
                        "strategy": strat,
                        "budget": 8,
                        "seed": seed,
                        "score": 1.0 - r,
                        "status": "ok",
                        "normalized_regret": r,
                        "uniform_score": 0.5,
                        "best_known": 1.0,
                        "worst_known": 0.0,
                        "protocol": f"p-{su}",
                        "recommended": "",
                    }
                )
    traj = pd.DataFrame(columns=["suite", "strategy", "budget", "seed", "step", "best_so_far"])
    strategies = {
        n: {"name": n, "family": "other", "description": "", "citation": "", "source": "x"} for n in STRATEGIES
    }
    return Results(pd.DataFrame(rows), traj, [], [], {n: _entry(n) for n in REGRETS}, strategies)


@pytest.fixture(scope="module")
def generated():
    res = _results()
    return res, cross_base_table(compute(res).rank_corr, res.suites)


def test_only_rankable_rlvr_pairs_labelled_with_scipys_correlations(generated):
    _, table = generated
    got = {(r.suite_a, r.suite_b): r for r in table.itertuples()}
    # qd cannot rank, syn is analytic: neither is in any pair
    assert set(got) == {("qa", "qb"), ("qa", "qc"), ("qb", "qc")}
    assert got[("qa", "qb")].pair == ACROSS_BASE and got[("qa", "qc")].pair == ACROSS_TASK_SET
    assert got[("qb", "qc")].pair == OTHER_BOTH_DIFFER
    assert list(table["pair"]) == [ACROSS_BASE, ACROSS_TASK_SET, OTHER_BOTH_DIFFER]  # across bases first
    assert (got[("qa", "qb")].base_a, got[("qa", "qb")].base_b) == ("qwen2vl h64", "qwen2vl h128")
    assert got[("qa", "qc")].task_set_b == "minimodo8 (8 domains)"
    for (a, b), r in got.items():
        ma, mb = np.mean(REGRETS[a], axis=0), np.mean(REGRETS[b], axis=0)
        assert r.n_shared == 6
        assert r.spearman == pytest.approx(sps.spearmanr(ma, mb).statistic, abs=1e-9)
        assert r.spearman_p == pytest.approx(sps.spearmanr(ma, mb).pvalue, rel=1e-6)
        assert r.kendall == pytest.approx(sps.kendalltau(ma, mb).statistic, abs=1e-9)
        assert r.spearman_lo <= r.spearman <= r.spearman_hi
    # by hand: qb swaps three adjacent pairs of qa's ranks (1 2 3 4 5 6 -> 2 1 4 3 6 5), so the squared rank
    # differences sum to 6 and rho = 1 - 6 * 6 / (6 * (36 - 1)) = 29/35
    assert got[("qa", "qb")].spearman == pytest.approx(29 / 35)


def test_markdown_and_the_cli_subset_give_the_same_numbers(generated):
    from leaderboard.cross_base import compute_cross_base

    res, table = generated
    text = cross_base_markdown(table)
    assert text.count("\n| ") == 3 and "| across base, same task set | qa (qwen2vl h64, minimodo (5 domains))" in text
    assert f"{table.spearman.iloc[0]:.2f} [" in text
    assert "qd" not in text and "syn" not in text
    sub = compute_cross_base(res)  # what `leaderboard cross-base` prints: the same rows, computed on the subset
    pd.testing.assert_frame_equal(sub, table)
    assert "no cross-base pair" in cross_base_markdown(table.iloc[0:0])
    assert math.isfinite(table.spearman_lo.iloc[0])


def test_descriptive_pairs_add_the_suites_that_cannot_rank_and_say_so(generated):
    from leaderboard.cross_base import compute_cross_base

    res, rankable = generated
    table = cross_base_table(compute(res).rank_corr, res.suites, descriptive=True)
    got = {(r.suite_a, r.suite_b): r for r in table.itertuples()}
    # qd (cannot rank) now pairs with the three rankable suites; syn (analytic) still pairs with none
    assert set(got) == {("qa", "qb"), ("qa", "qc"), ("qb", "qc"), ("qa", "qd"), ("qb", "qd"), ("qc", "qd")}
    assert (got[("qc", "qd")].ranks_a, got[("qc", "qd")].ranks_b) == (True, False)
    assert got[("qc", "qd")].pair == ACROSS_BASE and got[("qa", "qd")].pair == OTHER_BOTH_DIFFER  # tiny8 vs tiny8-idf
    # qd = s5 best ... s0 worst: exactly the reverse of qa's order, so rho = -1 by hand
    assert got[("qa", "qd")].spearman == pytest.approx(-1.0)
    for key in [("qa", "qb"), ("qa", "qc"), ("qb", "qc")]:  # the rankable pairs' numbers do not move
        old = rankable[(rankable.suite_a == key[0]) & (rankable.suite_b == key[1])].iloc[0]
        assert got[key].spearman == old.spearman and got[key].spearman_lo == old.spearman_lo
    text = cross_base_markdown(table)
    assert "can rank (A, B)" in text and "| no, no |" not in text and "| yes, no |" in text
    assert "descriptive" in text and "syn" not in text
    assert "can rank (A, B)" not in cross_base_markdown(rankable)  # the default table has no verdict column
    pd.testing.assert_frame_equal(compute_cross_base(res, descriptive=True), table)


# -- the site (the leaderboard tests' session bench: the paper's suite, which cannot rank, and an analytic one) ----
def test_site_has_the_cross_base_page_and_shows_the_preregistration(lb_site):
    from tests.leaderboard_fixtures import PREREGISTRATION

    page = (lb_site / "cross-base.html").read_text()
    assert "Across base models and task sets" in page and "no pair to correlate" in page  # no rankable RLVR suite
    assert 'href="cross-base.html"' in (lb_site / "index.html").read_text()
    assert list(pd.read_csv(lb_site / "data" / "cross_base.csv").columns) == COLUMNS
    toy = next((lb_site / "suites").glob("lb-toy-*.html")).read_text()
    assert 'id="preregistration"' in toy and 'id="preregistered"' in toy
    assert PREREGISTRATION["preregistered"] in toy and PREREGISTRATION["rankability_rule"] in toy
    assert "&lt;b&gt;bench&lt;/b&gt;" in toy and "<b>bench</b>" not in toy  # a command is text, escaped
    paper = next((lb_site / "suites").glob("paper-qwen2vl-2b-*.html")).read_text()
    assert 'id="preregistration"' not in paper  # a card without the block shows none
    assert f"pre-registered {PREREGISTRATION['preregistered']}" in (lb_site / "index.html").read_text()
