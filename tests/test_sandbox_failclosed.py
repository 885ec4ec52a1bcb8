"""The sandbox fails closed, and starts wherever the project and its venv live (issue 29, item 2).

Before: with the project or its venv under /tmp the private /tmp hid the bound venv, bwrap could not
start Python, and the bench ran every file strategy UNSANDBOXED after one warning line (a file then
read runs.csv, or SIGKILLed the bench); a start timeout under load did the same. Now a sandbox that
does not start is tried once more with a longer start timeout, then the study fails with the reason;
only `--allow-unsandboxed` runs strategies from files as plain processes.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import strategies.registry
from harness.sandbox import policy, process, submission
from harness.bench.bench import bench
from harness.sandbox.policy import TIMEOUT_ENV
from tests.conftest import ROOT
from tests.sandbox_attack_kit import SPACE, need_bwrap, study

HONEST = """
from strategies import Strategy


class Honest(Strategy):
    name = "fc-honest"
    description = "Proposes the uniform mixture until its budget is spent."

    def propose(self, history, budget):
        return self.space.uniform() if budget.remaining(history) > 0 else None
"""


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "30")
    before = dict(strategies.registry._REGISTRY)
    process._reset_for_tests()
    yield
    process._reset_for_tests()
    reg = strategies.registry._REGISTRY
    for name in set(reg) - set(before):
        del reg[name]


def honest_class(tmp_path: Path):
    path = tmp_path / "fc_honest.py"
    path.write_text(HONEST)
    (cls,) = submission.describe_file(path, timeout_s=60)
    return cls


def fake_bwrap(tmp_path: Path, body: str) -> Path:
    """A bwrap in front of the real one: `body` runs before it (except for --help, the option probe)."""
    real = shutil.which("bwrap")
    script = tmp_path / "fake-bwrap"
    script.write_text(
        f'#!/bin/sh\ncase "$1" in --help) exec {real} --help;; esac\n'
        f"n=$(cat {tmp_path}/starts 2>/dev/null || echo 0); echo $((n+1)) > {tmp_path}/starts\n"
        f'{body}\nexec {real} "$@"\n'
    )
    script.chmod(0o755)
    return script


def starts(tmp_path: Path) -> int:
    return int((tmp_path / "starts").read_text())


def test_a_slow_start_is_retried_with_a_longer_timeout(tmp_path, monkeypatch):
    need_bwrap()
    cls = honest_class(tmp_path)
    process._reset_for_tests()
    monkeypatch.setenv(policy.BWRAP_ENV, str(fake_bwrap(tmp_path, '[ "$n" = 0 ] && sleep 6')))
    monkeypatch.setenv(policy.START_TIMEOUT_ENV, "2")  # the first try gives up after 2 s, the retry waits 8 s
    kind, value = study(cls)
    assert kind == "mixture" and value == SPACE.uniform(), (kind, value)
    assert starts(tmp_path) >= 2  # the slow one, then the retry (and the next study's spare)
    assert policy.mode() == "bwrap"


def test_a_sandbox_that_never_starts_fails_the_study_and_runs_nothing_unsandboxed(tmp_path, monkeypatch):
    need_bwrap()
    cls = honest_class(tmp_path)
    process._reset_for_tests()
    monkeypatch.setenv(policy.BWRAP_ENV, str(fake_bwrap(tmp_path, "sleep 30")))
    monkeypatch.setenv(policy.START_TIMEOUT_ENV, "0.5")
    with pytest.raises(policy.SandboxUnavailable) as e:
        study(cls)
    msg = str(e.value)
    assert "tried twice" in msg and "0.5 s" in msg and "2 s" in msg and "--allow-unsandboxed" in msg, msg
    assert starts(tmp_path) == 2 and policy.mode() == "bwrap"


def test_a_bwrap_that_fails_fails_every_study_of_the_bench_with_the_reason(tmp_path, monkeypatch):
    need_bwrap()
    path = tmp_path / "fc_honest.py"
    path.write_text(HONEST)
    submission.load_file(path)  # described in a working sandbox
    process._reset_for_tests()
    monkeypatch.setenv(
        policy.BWRAP_ENV, str(fake_bwrap(tmp_path, 'echo "bwrap: setting up uid map: Permission denied" >&2; exit 1'))
    )
    report = bench(
        ["synth-bowl-5"], ["fc-honest", "uniform"], [4], 2, tmp_path / "out", strategy_files=[str(path)], progress=False
    )
    s = pd.read_csv(tmp_path / "out" / "summary.csv")
    mine = s[s["strategy"] == "fc-honest"]
    assert len(mine) == 2 and (mine["status"] == "failed").all(), mine
    assert mine["reason"].str.contains("could not start").all() and mine["reason"].str.contains("uid map").all()
    assert (s[s["strategy"] == "uniform"]["status"] == "ok").all()
    assert report.failed_studies == 2


@pytest.mark.parametrize("flag", [True, False])
def test_only_allow_unsandboxed_runs_a_file_strategy_without_a_sandbox(tmp_path, run_cli, flag):
    path = tmp_path / "fc_honest.py"
    path.write_text(HONEST)
    out = tmp_path / "out"
    args = [
        "bench",
        "--suite",
        "synth-bowl-5",
        "--strategy",
        "fc-honest",
        "--budget",
        "4",
        "--seeds",
        "1",
        "--out",
        out,
        "--quiet",
        "--strategy-file",
        path,
    ] + (["--allow-unsandboxed"] if flag else [])
    proc = run_cli(*args, check=False, env={policy.BWRAP_ENV: ""})  # as on a machine without bubblewrap
    if flag:
        assert proc.returncode == 0, proc.stderr
        s = pd.read_csv(out / "summary.csv")
        assert (s["status"] == "ok").all() and (s["sandboxed"] == "no").all()
        assert "UNSANDBOXED" in proc.stderr
    else:
        assert proc.returncode == 2 and "--allow-unsandboxed" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and not (out / "summary.csv").exists()


def test_a_project_and_venv_under_tmp_run_sandboxed(tmp_path):
    """A clone under /tmp with its own venv under /tmp (whose .pth adds the shared venv's packages)."""
    need_bwrap()
    assert str(tmp_path).startswith("/tmp/"), tmp_path
    clone = tmp_path / "clone"
    ignore = shutil.ignore_patterns("__pycache__")
    for part in ("harness", "strategies"):
        shutil.copytree(ROOT / part, clone / part, ignore=ignore)
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (pth,) = venv.glob("lib/python*/site-packages")
    (pth / "shared.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    (clone / "fc_honest.py").write_text(HONEST)
    code = textwrap.dedent("""
        import strategies
        from harness.sandbox import policy, submission
        from harness.sandbox.isolation import make_strategy
        from harness.mixture import MixtureSpace
        from harness.spec import Budget
        cls = strategies.get(submission.load_file("fc_honest.py")[0])
        s = make_strategy(cls, MixtureSpace(("a", "b")), 0)
        print("RESULT", s.sandboxed, policy.mode(), s.propose((), Budget(2)))
        s.close()
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "MODOMODO_SANDBOX"))}
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "PYTHONPATH": str(clone)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RESULT True bwrap a=0.5,b=0.5" in proc.stdout, (proc.stdout, proc.stderr[-2000:])
