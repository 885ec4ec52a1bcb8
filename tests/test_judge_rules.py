"""The judge's regret and can-rank rules are one function each (harness/suites), and the leaderboard asks them."""

from __future__ import annotations

import numpy as np
import pytest

from harness import suites
from harness.suites.base import normalised_regret
from harness.suites.tracks import ranking_status, verdict_of_kind
from leaderboard.ranking import suite_can_rank
from leaderboard.stats import best_so_far_curve


def test_normalised_regret_by_hand():
    # max suite, best 0.8, worst 0.2: score 0.5 is 0.3 short of the best over a span of 0.6
    assert normalised_regret(0.5, 0.8, 0.2, True) == (pytest.approx(0.3), pytest.approx(0.5))
    # min suite (a loss), best 2.0, worst 4.0: score 2.5 is 0.5 above the best over a span of 2
    assert normalised_regret(2.5, 2.0, 4.0, False) == (pytest.approx(0.5), pytest.approx(0.25))
    # best = worst: no span, normalised regret 0 (a scalar stays a scalar, an array an array)
    assert normalised_regret(1.0, 1.0, 1.0, True) == (0.0, 0.0)
    r, n = normalised_regret(np.array([0.8, 0.2, 0.9]), 0.8, 0.2, True)
    np.testing.assert_allclose(n, [0.0, 1.0, -1 / 6])
    np.testing.assert_array_equal(normalised_regret(np.array([3.0, 4.0]), 5.0, 5.0, False)[1], [0.0, 0.0])


def test_suite_regret_and_the_leaderboards_curve_use_the_same_rule():
    s = suites.load("synth-bowl-5")
    score = s.best_known - 0.25 * (s.best_known - s.worst_known)  # a quarter of the span short of the best
    assert s.regret(score)[1] == pytest.approx(0.25)
    # the leaderboard's best-so-far curve: 1 before the first pilot, then the normalised regret of the best
    curve = best_so_far_curve((np.array([1.0]), np.array([score])), 3, s.best_known, s.worst_known, True)
    np.testing.assert_allclose(curve, [1.0, 0.25, 0.25])


def test_the_leaderboard_takes_the_judges_verdict_where_bench_recorded_none():
    assert verdict_of_kind("synthetic") == (True, "analytic: exact scores")
    assert verdict_of_kind("live")[0] is False and verdict_of_kind("replay") is None
    for kind in ("synthetic", "live"):
        assert suite_can_rank({"kind": kind}) == verdict_of_kind(kind)
        assert suite_can_rank({"card": {"kind": kind}}) == verdict_of_kind(kind)
    ok, why = suite_can_rank({"card": {"kind": "replay", "signal": {"score": {"can_rank": True}}}})
    assert not ok and "no verdict of the judge" in why  # a card's own figure never decides
    # bench.json's verdict (the judge's, measured) is taken as written
    assert suite_can_rank({"kind": "replay", "can_rank": True, "ranking_reason": "x"}) == (True, "x")
    # and the judge's own rule for a loaded analytic suite agrees with the kind's verdict
    assert ranking_status(suites.load("synth-bowl-5"), "continuous") == verdict_of_kind("synthetic")
