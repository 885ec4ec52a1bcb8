"""A store never mixes runs of one protocol trained from different base weights (harness/store.py)."""

import hashlib

import pytest

from harness.spec import STATUS_OK, RunResult
from harness.store import MixedBaseError, ResultStore


def _run(n: int, protocol: str, base: str | None) -> RunResult:
    key = hashlib.sha256(f"{protocol}-{n}".encode()).hexdigest()
    prov = {} if base is None else {"base_weights_sha256": base}
    spec = {"suite": "s-live@1", "protocol": protocol, "seed": n, "mixture": {"a": 0.5, "b": 0.5}}
    return RunResult(key=key, spec=spec, status=STATUS_OK, scores={"m": 0.1 * n}, metric="m", provenance=prov)


def test_a_run_from_another_base_is_refused_and_the_store_keeps_what_it_had(tmp_path):
    store = ResultStore(tmp_path)
    store.put(_run(0, "p1", "a" * 64))
    store.put(_run(1, "p1", "a" * 64))
    with pytest.raises(MixedBaseError, match="bbbbbbbbbbbb.*aaaaaaaaaaaa"):
        store.put(_run(2, "p1", "b" * 64))
    assert len(store) == 2 and _run(2, "p1", "b" * 64).key not in store


def test_the_refusal_holds_for_a_new_process_reading_the_store_from_disk(tmp_path):
    ResultStore(tmp_path).put(_run(0, "p1", "a" * 64))
    with pytest.raises(MixedBaseError):
        ResultStore(tmp_path).put(_run(1, "p1", "b" * 64))


def test_other_protocols_failed_runs_and_runs_without_a_recorded_base_are_free(tmp_path):
    store = ResultStore(tmp_path)
    store.put(_run(0, "p1", "a" * 64))
    store.put(_run(1, "p2", "b" * 64))  # another protocol: its own base
    store.put(_run(2, "p1", None))  # replay answers and old records carry no base
    store.put(_run(3, "p1", "not recorded"))
    failed = RunResult.failed(
        type("S", (), {"key": "c" * 64, "to_dict": lambda self: {"suite": "s", "protocol": "p1"}})(),
        "oom",
        {"base_weights_sha256": "d" * 64},
    )
    store.put(failed)  # a failed run is kept for inspection whatever its base
    assert len(store) == 4
