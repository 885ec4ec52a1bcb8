"""The replay fast path (issue 30, item 7): replayed pilots are answered from memory, validated once and priced
by a running ledger, with the same outcomes as before; the store keeps real runs and finished studies."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import strategies
from harness import suites
from harness.mixture import InvalidMixture, Mixture
from harness.runners.replay import ReplayRunner
from harness.spec import FULL_FIDELITY, Budget, CostModel, Ledger, Observation, RunSpec, pilot_cost, spent
from harness.store import ResultStore
from harness.studies.study import Study, admit
from tests.conftest import cli, write_pool_suite, write_synthetic_suite
from tests.replay_reference import CASES, decided, run_case

REFERENCE = Path(__file__).parent / "data" / "replay_outcomes_before_fast_path.json"


class StoredReplay(ReplayRunner):
    """The replay runner through the store, as every replayed pilot went before the fast path."""

    answers_from_memory = False


def _same(a, b, path="outcome"):
    """Exact equality, except floats within 1e-12 relative (another BLAS may round the model-based strategies'
    fits differently in the last bits); the first difference is named."""
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(a.keys() ^ b.keys())} differ"
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} != {len(b)} entries"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.mark.parametrize("i", range(len(CASES)), ids=["-".join(map(str, c)) for c in CASES])
def test_outcomes_match_the_code_before_the_fast_path(i):
    """Every case's recommendation, score, regret, cost and history as main's code (413353d) decided them."""
    before = json.loads(REFERENCE.read_text())
    assert [e["case"] for e in before] == [list(c) for c in CASES], "the reference was written for these cases"
    _same(decided(run_case(CASES[i]).to_dict()), before[i]["outcome"], path=str(CASES[i]))


def _without_counters(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("wall_s", "runs_executed", "runs_reused")}


@pytest.mark.parametrize(
    "case",
    [
        ("paper-qwen2vl-2b", None, "random", 24, 3),
        ("minimodo-pool", None, "hyperband", 16, 2),
        ("regmix-1m-to-60m", None, "successive-halving", 11, 0),
        ("regmix-60m", "continuous", "random", 8, 1),
        ("synth-bump-8", None, "quadratic", 16, 4),
    ],
)
def test_memory_answers_equal_the_stored_path_bit_for_bit(case, tmp_path):
    name, track, *_ = case
    judge = suites.load(name).judge(track)
    store = ResultStore(tmp_path / "stored")
    stored = run_case(case, StoredReplay(judge), store)
    fast_store = ResultStore(tmp_path / "fast")
    fast = run_case(case, ReplayRunner(judge), fast_store)
    assert _without_counters(fast.to_dict()) == _without_counters(stored.to_dict())  # run keys included
    assert fast.runs_executed == fast.runs_used and fast.runs_reused == 0
    assert len(fast_store) == 0, "a replayed pilot is not written to the store"
    assert len(store) == len({t["run_key"] for t in stored.trajectory})
    # the run keys are the store's keys of the runs the history names
    assert {t["run_key"] for t in fast.trajectory} == {r.key for r in store.results()}


def test_a_repeated_candidate_draws_its_next_recorded_seed(tmp_path):
    """On a pool with several seeds per mixture, proposing a candidate again draws a seed not seen yet: the
    remembered seed order answers as the store path did."""
    folder = write_pool_suite(tmp_path / "unused", n_mix=5, dim=3, seeds=3)
    judge = suites.load(folder).judge(None)
    cls = strategies.get("random")
    fast = Study(judge, cls, Budget(15), 7, ReplayRunner(judge)).run()
    stored = Study(judge, cls, Budget(15), 7, StoredReplay(judge), ResultStore(tmp_path / "s")).run()
    assert _without_counters(fast.to_dict()) == _without_counters(stored.to_dict())
    by_mixture: dict[str, list[float]] = {}
    for t in fast.trajectory:
        by_mixture.setdefault(json.dumps(t["mixture"], sort_keys=True), []).append(t["value"])
    assert len(by_mixture) == 5 and all(len(v) == 3 for v in by_mixture.values())
    # three proposals of a candidate: its three recorded seeds, each once (the table's rows, read by pandas)
    table = pd.read_csv(Path(folder) / "runs.csv")
    wcols = [judge.weight_columns[d] for d in judge.space.datasets]
    for key, values in by_mixture.items():
        w = np.array([json.loads(key)[d] for d in judge.space.datasets])
        rows = table[np.isclose(table[wcols].to_numpy(float), w, atol=1e-9).all(axis=1)]
        assert sorted(values) == sorted(rows[judge.metric].astype(float)), key


def test_only_the_replay_runners_own_instant_answers_skip_the_store(tmp_path):
    bowl = suites.load("synth-bowl-5").judge(None)
    assert ReplayRunner(bowl).answers_from_memory
    slow = suites.load(write_synthetic_suite(tmp_path / "slow", delay=0.001)).judge(None)
    assert not ReplayRunner(slow).answers_from_memory, "a card simulating a slow runner keeps the store path"

    class Flaky(ReplayRunner):  # a stand-in for a real runner: its answers are not the table's alone
        def run(self, spec):
            return super().run(spec)

    assert not Flaky(bowl).answers_from_memory


def test_the_memo_keeps_successful_answers_only():
    judge = suites.load("paper-qwen2vl-2b").judge(None)
    runner = ReplayRunner(judge)
    m = judge.space.candidate(0)
    spec = RunSpec(judge.id, judge.protocol, m, judge.run_seed(0, 0, m, 0))
    first = runner.answer(spec)
    assert first.ok and runner.answer(spec) is first, "a second ask is the remembered result"
    fresh = runner.run(spec)  # the runner's plain run, not remembered
    assert (fresh.key, fresh.scores, fresh.source, fresh.status) == (spec.key, first.scores, first.source, first.status)
    bad = RunSpec(judge.id, judge.protocol, m, 10_000)  # a seed the table does not hold: the runner raises
    with pytest.raises(KeyError):
        runner.answer(bad)
    assert bad not in judge._cache[("replay", "answers")]


def test_admit_remembers_pool_candidates_and_refuses_others_each_time():
    judge = suites.load("paper-qwen2vl-2b").judge(None)
    c = judge.space.candidate(3)
    reordered = Mixture(dict(reversed(list(c.as_dict().items()))))  # the same weights, another dataset order
    assert admit(judge, reordered) == judge.check_proposal(reordered) == c
    assert list(admit(judge, reordered)) == list(judge.space.datasets)
    outside = judge.space.from_vector([0.31, 0.29, 0.2, 0.1, 0.1])  # no recorded design (the pool is 13 designs)
    assert judge.space.candidate_index(outside) is None
    for _ in range(2):
        with pytest.raises(InvalidMixture, match="not a candidate of the pool"):
            admit(judge, outside)


def _hand_spent(history, cm: CostModel) -> float:
    """The documented rule (harness/spec.py pilot_cost), written out here: a pilot continues the mixture's
    latest successful run when that stopped at a lower fidelity (not under `scales`), else starts a new one."""
    total, latest = 0.0, {}
    for o in history:
        f0 = latest.get(o.mixture)
        if cm.kind != "scales" and f0 is not None and f0 < o.fidelity:
            start = f0
        else:
            start = 0.0
        if cm.kind == "fraction":
            total += round(o.fidelity - start, 9)
        elif cm.kind == "checkpoints":
            total += round(
                ((o.fidelity - start) * cm.train_seconds + cm.eval_seconds) / (cm.train_seconds + cm.eval_seconds), 9
            )
        else:
            total += dict(cm.cost)[o.fidelity]
        latest[o.mixture] = o.fidelity if o.ok else None
    return round(total, 9)


@pytest.mark.parametrize(
    "cm",
    [
        CostModel(),
        CostModel("checkpoints", 90.0, 10.0),
        CostModel("scales", cost=((0.25, 0.1), (0.5, 0.3), (1.0, 1.0))),
    ],
)
def test_the_running_ledger_prices_and_sums_as_the_history_does(cm):
    rng = np.random.default_rng(5)
    mixtures = [Mixture({"a": w, "b": 1 - w}) for w in (0.1, 0.5, 0.9)]
    for _ in range(30):
        history, ledger = [], Ledger(cm)
        budget = Budget(12, cost_model=cm)
        for _ in range(int(rng.integers(1, 15))):
            m = mixtures[int(rng.integers(3))]
            f = float(rng.choice([0.25, 0.5, 1.0]))
            cost = ledger.price(m, f)
            assert cost == pilot_cost(history, m, f, cm)
            ok = bool(rng.random() > 0.2)
            o = Observation(m, 0.5 if ok else None, {}, "ok" if ok else "failed", f)
            history.append(o)
            ledger.add_observation(o, cost[0])
            assert ledger.spent == spent(history, cm) == _hand_spent(history, cm)
            assert budget.left(ledger) == budget.remaining(history)
    full = Ledger()
    for m in mixtures * 2:
        full.add(m, FULL_FIDELITY, True)
    assert full.all_full and full.count == 6 and Budget(8).left(full) == 2


def test_a_cached_mixture_key_changes_nothing_it_is_used_for():
    m = Mixture({"b": 2 / 3, "a": 1 / 3})
    assert m.key() == (("a", round(1 / 3, 9)), ("b", round(2 / 3, 9))) and m.key(3) == (("a", 0.333), ("b", 0.667))
    back = pickle.loads(pickle.dumps(m))
    assert back == m and hash(back) == hash(m) and back.key() == m.key() and back.as_dict() == m.as_dict()
    assert Mixture({"a": 0.3333333333, "b": 0.6666666667}) == m  # equal to 9 digits, as before


def test_a_replayed_bench_stores_its_studies_not_its_pilots_and_resumes(tmp_path):
    out = tmp_path / "out"
    args = (
        "bench",
        "--suite",
        "paper-qwen2vl-2b",
        "--strategy",
        "random,seed",
        "--budget",
        "4,8",
        "--seeds",
        "2",
        "--out",
        out,
        "--quiet",
    )
    first = cli(*args)
    assert "runs executed: 48, reused from store: 0" in first.stderr  # 2 strategies x (4 + 8) x 2 seeds
    assert not list((out / "store" / "runs").rglob("*.json"))
    assert len(list((out / "store" / "studies").rglob("*.json"))) == 8
    summary = pd.read_csv(out / "summary.csv").drop(columns="wall_s")
    again = cli(*args)
    assert "(8 already done)" in again.stderr and "runs executed: 0" in again.stderr
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv").drop(columns="wall_s"), summary)


def _round_trip_hash(record: dict) -> str:
    """The store's content hash as it was defined before the fast path: a JSON round trip, then sorted compact."""
    import hashlib

    body = json.loads(json.dumps({k: v for k, v in record.items() if k != "_sha256"}))
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@pytest.mark.parametrize(
    "record",
    [
        {"b": 1, "a": [1.5, None, True, "x"], "t": (1, 2, (3.25,)), "n": float("nan")},
        {"trajectory": [{"mixture": {"z": 0.1, "a": 0.9}, "step": 0}], "_sha256": "ignored"},
        {"ints": {10: "ten", 2: "two"}},  # int keys: sorted as numbers here, as strings once read back
        {"mixed": [{"k": {True: 1, None: 2}}]},
        {"np": np.float64(0.1) + 0.2, "sub": {"deep": [[{"x": 1e-300}]]}},
        {"ordered": __import__("collections").OrderedDict([("b", 1), ("a", {3: 4})])},
    ],
)
def test_the_content_hash_is_the_round_trip_hash(record):
    from harness.store import content_hash

    assert content_hash(record) == _round_trip_hash(record)


def test_a_real_study_record_hashes_as_before(tmp_path):
    from harness.store import content_hash

    judge = suites.load("regmix-1m").judge(None)
    rec = Study(judge, strategies.get("random"), Budget(8), 3, ReplayRunner(judge)).run().to_dict()
    assert content_hash(rec) == _round_trip_hash(rec)


def test_validation_in_the_space_order_keeps_the_mixture_and_elsewhere_reorders():
    from harness.mixture import MixtureSpace

    space = MixtureSpace(("a", "b", "c"))
    m = Mixture({"a": 0.2, "b": 0.3, "c": 0.5})
    assert space.validate(m) is m
    other = space.validate(Mixture({"c": 0.5, "a": 0.5}))
    assert list(other.items()) == [("a", 0.5), ("b", 0.0), ("c", 0.5)]
    assert other["b"] == 0.0 and "b" in other and other.get("zz", 7) == 7 and "zz" not in other
    with pytest.raises(InvalidMixture, match="unknown dataset 'd'"):
        space.validate(Mixture({"a": 0.5, "d": 0.5}))
    bounded = space.restricted(lower=(0.1, 0.1, 0.1), upper=(0.6, 0.6, 0.6))
    with pytest.raises(InvalidMixture, match="outside this space's bounds"):
        bounded.validate(Mixture({"a": 0.05, "b": 0.45, "c": 0.5}))  # in order, still bounds-checked
    pool = space.restricted(candidates=[(0.2, 0.3, 0.5), (0.5, 0.25, 0.25)])
    assert pool.candidate(1) is pool.candidate(1) and pool.candidate(1) == Mixture({"a": 0.5, "b": 0.25, "c": 0.25})
    assert pool.candidate_index(Mixture({"c": 0.25, "b": 0.25, "a": 0.5})) == 1


def test_a_stored_record_is_one_serialisation_that_reads_back_with_its_hash(tmp_path):
    from harness.store import INTEGRITY_FIELD, content_hash, sealed_text

    judge = suites.load("paper-qwen2vl-2b").judge(None)
    rec = Study(judge, strategies.get("random"), Budget(4), 1, ReplayRunner(judge)).run().to_dict()
    text = sealed_text(rec)
    assert json.loads(text) == json.loads(json.dumps({**rec, INTEGRITY_FIELD: content_hash(rec)}))
    assert json.loads(sealed_text({})) == {INTEGRITY_FIELD: content_hash({})}
    store = ResultStore(tmp_path)
    store.put_study("ab" * 32, rec)
    assert store.get_study("ab" * 32) == json.loads(json.dumps(rec)) and store.quarantined() == 0


def test_a_pickled_mixture_carries_no_hash_of_this_process(tmp_path):
    """String hashes are salted per process: a mixture sent to a worker must hash as the worker's own do."""
    import subprocess
    import sys

    m = Mixture({"b": 0.25, "a": 0.75})
    hash(m)  # remembered here
    blob = tmp_path / "m.pickle"
    blob.write_bytes(pickle.dumps({m: "found"}))
    code = (
        "import pickle, sys; from harness.mixture import Mixture; "
        f"d = pickle.loads(open({str(blob)!r}, 'rb').read()); "
        "print(d.get(Mixture({'a': 0.75, 'b': 0.25})))"
    )
    for seed in ("1", "2"):
        env = {**__import__("os").environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        assert out.stdout.strip() == "found"


@pytest.mark.parametrize("suite", ["minimodo-pool", "regmix-1m", "minimodo8"])
def test_pool_order_seed_is_derive_seed_on_every_recorded_mixture(suite):
    """The pool's seed-order seed written out directly equals `derive_seed`'s general encoder, on every recorded
    mixture and a spread of study seeds (the seed of a recorded table's permutation must never move)."""
    from harness.spec import derive_seed
    from harness.suites.replay import pool_order_seed

    table = suites.load(suite).judge("pool").suite
    for i, m in enumerate(table.recorded_seeds):
        for seed in (0, 1, 19, 10_000 + i, 2**31 - 1):
            assert pool_order_seed(seed, m) == derive_seed(seed, "pool", [list(k) for k in m.key()])
