"""harness/run_key.py gives `RunSpec.key`'s value, and harness/studies/record.py the store's text of a trajectory,
byte for byte (issue 30 item 7: the replay path made lighter without moving a key or a stored byte)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import strategies
from harness import suites
from harness.mixture import Mixture
from harness.run_key import run_key
from harness.runners.replay import ReplayRunner
from harness.spec import Budget, RunSpec
from harness.store import INTEGRITY_FIELD, ResultStore, content_hash, sealed_text
from harness.studies.study import Study

BASELINES = Path(__file__).resolve().parent.parent / "baselines"


def test_the_run_key_of_every_committed_run_record_is_its_stored_key():
    """Every run record of every committed store (sweeps, online, the demo's pools): run_key of its spec is the
    key it is stored under (RunSpec.key's value: tests/test_recorded_suites.py holds the stores to it)."""
    checked, memo = 0, {}
    for path in sorted(BASELINES.glob("**/runs/*/*.json")):
        spec = RunSpec.from_dict(json.loads(path.read_text())["spec"])
        assert run_key(spec, memo) == path.stem, path  # the memo shared: each mixture's part remembered once
        checked += 1
    assert checked > 0, "the committed stores hold run records"


def test_the_run_key_equals_the_spec_key_on_awkward_specs():
    rng = np.random.default_rng(0)
    names = ["a", "b\u00e9", 'q"uote', "back\\slash", "z" * 40]
    memo: dict = {}
    for i in range(300):
        w = rng.dirichlet(np.full(len(names), 0.3))
        w[rng.integers(len(names))] = 0.0
        m = Mixture.normalized(dict(zip(names, w)))
        spec = RunSpec(
            f"suite-{i % 3}\u2013x", f"proto{i % 2}", m, int(rng.integers(0, 2**31)), [1.0, 0.25, 1 / 3][i % 3]
        )
        assert run_key(spec, memo) == spec.key
    online = RunSpec("s", "p", m, 1, 1.0, online="dump@abc:def")
    assert run_key(online) == online.key  # left to RunSpec.key itself
    with pytest.raises(ValueError):
        RunSpec("s", "p", m, 1, float("nan")).key  # the spec's own refusal
    with pytest.raises(ValueError):
        run_key(RunSpec("s", "p", m, 1, float("nan")))


@pytest.mark.parametrize(
    "name,track,strategy",
    [
        ("regmix-1m", None, "random"),
        ("paper-qwen2vl-2b", None, "seed"),
        ("minimodo-pool", None, "hyperband"),
        ("synth-bowl-5", None, "random"),
    ],
)
def test_a_study_record_written_step_by_step_is_the_same_text(name, track, strategy, tmp_path):
    """The trajectory text a study builds as it goes, spliced into its record, is byte for byte the store's own
    encoding of the record; the stored file reads back with its integrity hash."""
    judge = suites.load(name).judge(track)
    for budget, seed in ((8, 0), (11, 3)):
        out = Study(judge, strategies.get(strategy), Budget(budget), seed, ReplayRunner(judge)).run()
        assert out.status == "ok" and out.trajectory
        encoded = out.encoded_fields()
        assert set(encoded) == {"trajectory"}
        assert encoded["trajectory"] == json.dumps(out.trajectory, sort_keys=True, separators=(",", ":"))
        record = out.to_dict()
        assert sealed_text(record, encoded) == sealed_text(record)
        store = ResultStore(tmp_path / f"{budget}")
        store.put_study("ab" * 32, record, encoded=encoded)
        stored = json.loads(next((tmp_path / f"{budget}" / "studies").glob("*/*.json")).read_text())
        assert stored.pop(INTEGRITY_FIELD) == content_hash(stored) == content_hash(record)
        assert store.get_study("ab" * 32) == json.loads(json.dumps(record))


def test_a_step_the_fast_writer_cannot_write_leaves_the_record_to_the_store(tmp_path):
    judge = suites.load("synth-bowl-5").judge(None)
    out = Study(judge, strategies.get("random"), Budget(4), 1, ReplayRunner(judge)).run()
    out.trajectory.append({"step": 99, "odd": (1, 2)})  # appended outside the study: its text no longer matches
    assert out.encoded_fields() == {}
    built = out._trajectory_text
    built.add({"step": 5, "value": float("inf")}, judge.space.uniform())  # not plain JSON: it gives up
    assert built.text(out.trajectory) is None
    record = out.to_dict()
    # a record holding the splice's own placeholder string elsewhere is encoded whole
    record["note"] = "\x00modomodo: encoded apart\x00"
    fake = {"trajectory": "[]"}
    assert sealed_text(record, fake) == sealed_text(record)


def test_the_step_writer_gives_json_text_or_gives_up_on_every_kind_of_value():
    """Each step is json.dumps's text (keys sorted, compact) or, for a value that is not a plain finite JSON scalar,
    nothing (the store then encodes the record itself): exact types, subclasses, non-finite floats, and strings
    that look like them."""
    import numpy as np

    from harness.studies.record import TrajectoryText

    judge = suites.load("synth-bowl-5").judge(None)
    mixture = judge.space.uniform()
    plain = ["ok", 'a "quoted" ü', "x:nan,", "y:inf}", 0, -7, 2**70, 0.1, -1e-300, 1e22, None, True, False]
    other = [float("inf"), float("-inf"), float("nan"), np.float64(0.5), np.int64(3), (1, 2), [1.0]]
    for v in plain + other:
        step = {"step": 1, "mixture": mixture.as_dict(), "value": v, "cost": 1.0}
        built = TrajectoryText(judge)
        built.add(step, mixture)
        text = built.text([step])
        if any(v is o for o in other):
            assert text is None, v
        elif isinstance(v, str) and (":nan," in v or ":inf}" in v):
            assert text in (None, json.dumps([step], sort_keys=True, separators=(",", ":"))), v
        else:
            assert text == json.dumps([step], sort_keys=True, separators=(",", ":")), v
