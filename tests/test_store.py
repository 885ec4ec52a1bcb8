"""The result store: atomic records, concurrent writers, kill-and-resume for real."""

import json
import multiprocessing
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.mixture import Mixture
from harness.spec import STATUS_OK, RunResult, RunSpec
from harness.store import ResultStore
from tests.conftest import ROOT, cli, write_synthetic_suite


def _result(i: int, status=STATUS_OK) -> RunResult:
    spec = RunSpec("toy@1", "p", Mixture({"A": i / 100, "B": 1 - i / 100}), seed=i)
    return RunResult(
        key=spec.key, spec=spec.to_dict(), status=status, scores={"score": i / 10}, metric="score", source="analytic"
    )


def test_put_get_roundtrip_and_failed_runs_kept_apart(tmp_path):
    store = ResultStore(tmp_path)
    ok, bad = _result(1), RunResult.failed(RunSpec("toy@1", "p", Mixture({"A": 1.0, "B": 0.0}), 0), "boom")
    store.put(ok)
    store.put(bad)
    assert store.get(ok.key).scores == {"score": 0.1}
    assert store.get(bad.key) is None, "a failed run is never served as a result: it is retried on resume"
    assert [f.reason for f in store.failures()] == ["boom"]
    assert len(store) == 1 and ok.key in store
    assert not list(tmp_path.rglob("*.tmp")), "no temporary file survives a completed write"


@pytest.mark.parametrize("damage", ["truncated", "empty", "unhashed", "not-an-object", "tampered"])
def test_untrustworthy_record_is_quarantined_not_served(tmp_path, damage, capsys):
    store = ResultStore(tmp_path)
    r = _result(2)
    store.put(r)
    path = next(tmp_path.glob("runs/*/*.json"))
    original = path.read_bytes()
    record = json.loads(original)
    if damage == "truncated":
        path.write_bytes(original[: len(original) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "unhashed":  # the attack of issue 29: drop the hash, change a value
        del record["_sha256"]
        record["scores"]["score"] = 99.0
        path.write_text(json.dumps(record))
    elif damage == "not-an-object":
        path.write_text("[1, 2]")
    else:
        record["scores"]["score"] = 99.0
        path.write_text(json.dumps(record))
    assert store.get(r.key) is None and r.key not in store
    assert not path.exists() and store.quarantined() == 1, "moved aside, never deleted"
    kept = next(tmp_path.glob("quarantine/*/*.json"))
    assert kept.read_bytes() != b"" or damage == "empty"
    assert "will be done again" in capsys.readouterr().err
    store.put(r)  # the re-run writes a whole, hashed record again
    assert store.get(r.key).scores == {"score": 0.2}


def test_seal_vouches_for_records_written_before_hashes(tmp_path):
    store = ResultStore(tmp_path)
    r = _result(3)
    store.put(r)
    path = next(tmp_path.glob("runs/*/*.json"))
    record = json.loads(path.read_bytes())
    del record["_sha256"]
    path.write_text(json.dumps(record))
    out = subprocess.run(
        [sys.executable, "-m", "harness.store", "seal", str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0 and "sealed 1 records" in out.stdout
    assert ResultStore(tmp_path).get(r.key).scores == {"score": 0.3}


def test_committed_sweep_stores_are_sealed():
    """Every committed record carries its hash, so none is quarantined (and re-trained) on a fresh clone."""
    records = list((ROOT / "baselines").glob("**/runs/*/*.json"))
    assert len(records) > 1000
    unhashed = [p for p in records if "_sha256" not in json.loads(p.read_bytes())]
    assert not unhashed, unhashed[:3]


def test_dataframe_export(tmp_path):
    store = ResultStore(tmp_path)
    for i in range(5):
        store.put(_result(i))
    df = store.to_dataframe()
    assert len(df) == 5 and {"w_A", "w_B", "score", "source"} <= set(df.columns)


def _hammer(root: str, worker: int, n: int) -> None:
    store = ResultStore(root)
    for rep in range(3):
        for i in range(n):
            r = _result(i)
            # Same key from every worker, different payload: last rename wins, always whole.
            store.put(RunResult(**{**r.__dict__, "provenance": {"worker": worker, "rep": rep}}))
            got = store.get(_result((i * 7) % n).key)
            assert got is None or got.scores["score"] == ((i * 7) % n) / 10


def test_concurrent_writers_never_corrupt(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), w, 60)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = ResultStore(tmp_path)
    records = list(store.results())
    assert len(records) == 60
    assert all(json.loads(p.read_text())["status"] == "ok" for p in tmp_path.glob("runs/*/*.json"))
    assert not list(tmp_path.rglob("*.tmp"))


def _summary(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "summary.csv").drop(columns=["wall_s"])


BENCH_ARGS = ["--strategy", "random,seed,quadratic", "--budget", "6,12", "--seeds", "4", "--quiet"]


@pytest.mark.slow
def test_killed_bench_resumes_without_repeating_a_completed_run(tmp_path):
    suite = write_synthetic_suite(tmp_path / "slow-suite", delay=0.03)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "harness.cli", "bench", "--suite", str(suite), "--out", str(out), *BENCH_ARGS]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    runs_dir = out / "store" / "runs"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(runs_dir.glob("*/*.json"))) < 25:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up: the harshest crash
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = {p.name: p.read_bytes() for p in runs_dir.glob("*/*.json")}
    assert 25 <= len(before) < 3 * 2 * 4 * 12, "killed mid-sweep"
    assert not (out / "summary.csv").exists()

    resumed = cli("bench", "--suite", suite, "--out", out, *BENCH_ARGS)
    after = {p.name: p.read_bytes() for p in runs_dir.glob("*/*.json")}
    # Nothing completed was lost or rewritten ...
    assert all(after[k] == v for k, v in before.items())
    # ... and nothing completed was run again: the resumed process executed exactly the missing runs.
    executed = int(resumed.stderr.split("runs executed: ")[1].split(",")[0])
    assert executed == len(after) - len(before)

    reference = tmp_path / "reference"
    cli("bench", "--suite", suite, "--out", reference, *BENCH_ARGS)
    pd.testing.assert_frame_equal(_summary(out), _summary(reference))

    again = cli("bench", "--suite", suite, "--out", out, *BENCH_ARGS)
    assert "runs executed: 0" in again.stderr and "(24 already done)" in again.stderr


@pytest.mark.slow
def test_two_processes_on_one_store(tmp_path):
    suite = write_synthetic_suite(tmp_path / "shared-suite", delay=0.005)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "harness.cli", "bench", "--suite", str(suite), "--out", str(out), *BENCH_ARGS]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    reference = tmp_path / "reference"
    cli("bench", "--suite", suite, "--out", reference, *BENCH_ARGS)
    pd.testing.assert_frame_equal(_summary(out), _summary(reference))
    store = ResultStore(out / "store")
    assert len(list(store.results())) == len(ResultStore(reference / "store"))
