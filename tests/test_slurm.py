"""The SLURM executor, exercised for real through submitit's local executor (a subprocess per job).

The cluster path differs only in how jobs are submitted (sbatch) and polled (sacct); the job
description it would submit is checked on the sbatch script submitit writes.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from pathlib import Path

import pandas as pd
import pytest

submitit = pytest.importorskip("submitit")
import cloudpickle  # noqa: E402  (a submitit dependency)

from click.testing import CliRunner  # noqa: E402

from harness import suites  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.protocols.gpu import JobResources, load_protocol  # noqa: E402
from harness.runners.slurm import (
    JobFailed,
    PilotRunTask,
    SubmititExecutor,
    SubmittingRunner,  # noqa: E402
    run_pilot,
)
from harness.spec import RunSpec  # noqa: E402
from harness.store import ResultStore  # noqa: E402

# Jobs unpickle this module's helpers in a fresh interpreter that cannot import tests/: ship them by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

FAST = JobResources(timeout_min=2, cpus_per_task=1, mem_gb=1)


def square(x):
    return x * x


def killed_on_first_attempt(marker: str):
    """Dies like a preempted or OOM-killed job the first time, succeeds the second."""
    if not os.path.exists(marker):
        Path(marker).write_text("attempted")
        os.kill(os.getpid(), signal.SIGKILL)
    return "second attempt ran"


def always_raises(x):
    raise RuntimeError(f"bad task {x}")


def test_one_job_per_task_results_in_completion_order(tmp_path):
    ex = SubmititExecutor(tmp_path, FAST, cluster="local")
    got = dict(ex.imap(square, [1, 2, 3]))
    assert got == {1: 1, 2: 4, 3: 9}
    # one job folder per task, and each attempt is on the ledger
    assert len([p for p in (tmp_path / "jobs").iterdir() if p.name.isdigit()]) == 3
    assert [a["outcome"] for a in ex.attempts(2)] == ["ok"]


def test_killed_job_is_recorded_and_resubmitted_once(tmp_path):
    marker = str(tmp_path / "marker")
    ex = SubmititExecutor(tmp_path / "jobs", FAST, cluster="local")
    [(task, result)] = list(ex.imap(killed_on_first_attempt, [marker]))
    assert result == "second attempt ran"
    attempts = ex.attempts(marker)
    assert [a["outcome"] for a in attempts] == ["failed", "ok"]
    assert attempts[0]["job_id"] != attempts[1]["job_id"]
    assert "state" in attempts[0]["reason"]


def test_job_failing_twice_is_reported_not_retried_forever(tmp_path):
    ex = SubmititExecutor(tmp_path, FAST, cluster="local")
    with pytest.raises(JobFailed, match="failed 2 time"):
        list(ex.imap(always_raises, [7]))
    assert [a["outcome"] for a in ex.attempts(7)] == ["failed", "failed"]
    assert "bad task 7" in ex.attempts(7)[-1]["reason"]

    ex = SubmititExecutor(
        tmp_path / "b", FAST, cluster="local", max_resubmits=0, on_failure=lambda task, reason: ("FAILED", task, reason)
    )
    [(_, out)] = list(ex.imap(always_raises, [8]))
    assert out[0] == "FAILED" and "bad task 8" in out[2] and "1 attempt" in out[2]


def test_pilot_runs_as_jobs_write_the_shared_store(tmp_path):
    suite = suites.load("synth-bowl-5")
    store = ResultStore(tmp_path / "store")
    specs = [RunSpec(suite.id, suite.protocol, suite.space.uniform(), seed=s) for s in range(3)]
    # three jobs at once, all writing the same store
    tasks = [PilotRunTask("replay", str(suite.path), sp.to_dict(), str(store.root)) for sp in specs]
    pool = SubmititExecutor(tmp_path / "many", FAST, cluster="local")
    done = {t.key: r for t, r in pool.imap(run_pilot, tasks)}
    assert len(store) == 3 and all(store.get(sp.key).scores == done[sp.key]["scores"] for sp in specs)
    # the runner wrapper: one job per pilot run, the same numbers as the same run done in this process
    runner = SubmittingRunner("replay", suite, SubmititExecutor(tmp_path / "jobs", FAST, cluster="local"), store.root)
    spec = RunSpec(suite.id, suite.protocol, suite.space.vertices()[0], seed=3)
    result = runner.run(spec)
    assert result.ok and result.key == spec.key
    assert store.get(spec.key).scores == result.scores
    local = run_pilot(PilotRunTask("replay", str(suite.path), spec.to_dict()))
    assert local["scores"] == result.scores


def test_failed_pilot_job_becomes_a_failed_run_result(tmp_path):
    suite = suites.load("synth-bowl-5")
    runner = SubmittingRunner(
        "no-such-runner", suite, SubmititExecutor(tmp_path / "jobs", FAST, cluster="local", max_resubmits=0)
    )
    result = runner.run(RunSpec(suite.id, suite.protocol, suite.space.uniform(), seed=0))
    assert not result.ok and "unknown runner" in result.reason


def test_sbatch_script_carries_the_protocol_resources(tmp_path, monkeypatch):
    # submitit refuses to build a SLURM executor unless `srun` is on PATH; nothing is submitted here,
    # we only read the sbatch script it would submit.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    res = load_protocol("paper-qwen2vl-2b").slurm
    res = JobResources(
        **{**res.__dict__, "partition": "gpu", "account": "lab", "qos": "high", "setup": ("module load cuda",)}
    )
    ex = SubmititExecutor(tmp_path, res, cluster="slurm")
    script = ex._executor._executor._make_submission_file_text("python -m job", "uid")
    for line in (
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --time=720",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=lab",
        "#SBATCH --qos=high",
        "#SBATCH --cpus-per-task=32",
        "#SBATCH --mem=256GB",
        "#SBATCH --nodes=1",
        "module load cuda",
    ):
        assert line in script, line


def test_bench_through_submitit_matches_local_bench(tmp_path):
    args = ["bench", "--suite", "synth-bowl-5", "--strategy", "random", "--budget", "2", "--seeds", "1", "--quiet"]
    cli = CliRunner()
    local = cli.invoke(main, args + ["--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    jobs = cli.invoke(main, args + ["--out", str(tmp_path / "jobs"), "--executor", "submitit-local"])
    assert jobs.exit_code == 0, jobs.output
    cols = ["suite", "strategy", "budget", "seed", "score", "recommended", "runs_used"]
    a = pd.read_csv(tmp_path / "local" / "summary.csv")[cols]
    b = pd.read_csv(tmp_path / "jobs" / "summary.csv")[cols]
    pd.testing.assert_frame_equal(a, b)
    assert len(list((tmp_path / "jobs" / "jobs" / "ledger").glob("*.json"))) == 2  # one job per pilot run
    assert len(ResultStore(tmp_path / "jobs" / "store")) == 2


def test_bench_rejects_a_broken_protocol_file_before_any_work(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("datasets: {train: {A: x}}\nslurm: {gpus_per_nod: 4}\n")
    out = CliRunner().invoke(
        main,
        [
            "bench",
            "--suite",
            "synth-bowl-5",
            "--strategy",
            "random",
            "--budget",
            "1",
            "--seeds",
            "1",
            "--out",
            str(tmp_path / "o"),
            "--executor",
            "submitit-local",
            "--protocol-file",
            str(bad),
        ],
    )
    assert out.exit_code == 2
    assert "gpus_per_nod" in out.output and "gpus_per_node" in out.output


def test_slurm_executor_without_slurm_says_how_to_rehearse(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun here
    out = CliRunner().invoke(
        main,
        [
            "bench",
            "--suite",
            "synth-bowl-5",
            "--strategy",
            "random",
            "--budget",
            "1",
            "--seeds",
            "1",
            "--out",
            str(tmp_path / "o"),
            "--executor",
            "slurm",
        ],
    )
    assert out.exit_code == 2 and "srun" in out.output and "submitit-local" in out.output


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="this machine has vLLM")
def test_gpu_pilot_runs_go_to_jobs_and_fail_cleanly_without_a_gpu(tmp_path):
    """The whole path up to the launch: bench -> study -> one job per pilot run -> gpu runner in the job,
    which finds no GPU: the job is recorded, resubmitted once, and the run stored as failed with the reason."""
    out = CliRunner().invoke(
        main,
        [
            "bench",
            "--suite",
            "paper-qwen2vl-2b",
            "--strategy",
            "random",
            "--budget",
            "1",
            "--seeds",
            "1",
            "--runner",
            "gpu",
            "--executor",
            "submitit-local",
            "--quiet",
            "--out",
            str(tmp_path),
        ],
    )
    assert out.exit_code == 0, out.output
    [failed] = list(ResultStore(tmp_path / "store").failures())
    assert "modomodo[gpu]" in failed.reason and "after 2 attempt" in failed.reason
    [ledger] = list((tmp_path / "jobs" / "ledger").glob("*.json"))
    assert '"outcome": "failed"' in ledger.read_text()
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary.loc[0, "runs_failed"] == 1
