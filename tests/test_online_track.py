"""The online track's rules in one place (harness/suites/online_track.py): offers, admits, costs, reports.
The bench's one-line refusals end to end are in tests/test_online.py."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from harness import suites
from harness.suites import online_track
from harness.spec import RunResult


def test_only_suites_that_train_offer_the_track():
    live, replay = suites.load("minimodo-tiny-live"), suites.load("minimodo-tiny")
    assert online_track.offered_by(live) and "online" in live.tracks
    assert not online_track.offered_by(replay) and "online" not in replay.tracks
    assert replay.track_refusal("online") == online_track.refusal(replay)
    assert "a replay suite does not train" in online_track.refusal(replay)
    assert live.judge("online").track == "online"


def test_a_bench_is_online_or_offline_never_both():
    on, off = SimpleNamespace(name="a:online", track="online"), SimpleNamespace(name="b", track="pool")
    assert online_track.study_kind([on, on]) == "online" and online_track.study_kind([off]) == "offline"
    with pytest.raises(ValueError, match=r"cannot share a bench with other tracks \(online: a:online\)"):
        online_track.study_kind([on, off])
    with pytest.raises(
        ValueError,
        match="strategy 'random' is an offline strategy; the online track runs online "
        r"strategies \(dump, odm\)",
    ):
        online_track.check_strategy_kind("random", "offline", "online", "online", ["dump", "odm"])
    online_track.check_strategy_kind("dump", "online", "online", "online", ["dump"])


def test_admit_keeps_budget_one_and_refuses_the_rest():
    assert online_track.admit([], "cpu", "local") == [1] and online_track.admit([1], "cpu", "local") == [1]
    for args, message in [
        (([4], "cpu", "local"), "its budget is 1 (got --budget 4)"),
        (([1, 2], "cpu", "local"), "got --budget 1,2"),
        (([1], "replay", "local"), "use --runner cpu"),
        (([1], "cpu", "slurm"), "the online track runs on the local executor only"),
    ]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            online_track.admit(*args)
    with pytest.raises(ValueError, match="the replay runner cannot train online"):
        online_track.check_runner(SimpleNamespace(kind="replay"))
    online_track.check_runner(SimpleNamespace(kind="cpu", run_online=lambda request: None))


def _result(**cost) -> RunResult:
    return RunResult(key="k", spec={}, status="ok", cost=cost)


def test_cost_is_one_run_plus_the_measured_overhead():
    # 12 s of online machinery inside 60 s of training: 48 s of plain training, 1 + 12/48 = 1.25
    assert online_track.cost(_result(t_train=60.0, t_online=12.0)) == pytest.approx(1.25)
    assert online_track.cost(_result(t_train=0.0, t_online=0.0)) == 1.0  # nothing measured: one run
    assert online_track.cost(_result(t_train=5.0, t_online=9.0)) == 1.0  # inconsistent timings: never below one run


def test_reports_only_for_online_benches():
    record = {
        "suite": "s",
        "strategy": "dump",
        "seed": 0,
        "status": "ok",
        "track": "online",
        "score": 0.4,
        "cost_used": 1.1,
        "online": {
            "domains": ["a", "b"],
            "steps": [1, 0],
            "weights": [[0.3, 0.7], [0.5, 0.5]],
            "prompts": [[1, 1], [0, 2]],
            "t_online": 2.0,
            "t_train": 20.0,
            "scores": {"Out_Score": 0.4, "In_Score": 0.6},
        },
    }
    assert online_track.reports([{"suite": "s", "strategy": "random", "seed": 0, "track": "pool"}]) == {}
    frames = online_track.reports([record])
    steps, runs = frames["online.csv"], frames["online_runs.csv"]
    assert list(steps["step"]) == [0, 1] and list(steps["w:a"]) == [0.5, 0.3] and list(steps["n:b"]) == [2, 1]
    assert list(runs.columns[: len(online_track.RUN_COLUMNS)]) == online_track.RUN_COLUMNS
    assert runs.loc[0, "Out_Score"] == 0.4 and runs.loc[0, "t_online"] == 2.0
    assert isinstance(steps, pd.DataFrame) and len(runs) == 1
