"""Submissions that cannot cheat (issue 13): every attack a hostile strategy file tried is a test.

Each attack runs in a real bench (paper-qwen2vl-2b, a replay suite whose table sits in baselines/,
budget 4, 2 seeds) beside honest strategies: two built-ins in-process and an honest file strategy in
its sandbox. In each, the bench ends normally, the hostile studies are recorded as failed (or scored
exactly as the honest strategy they pretend to be, never better), and the honest strategies'
summary rows and trajectories are byte-identical to a clean run's (wall time aside).

Tests marked `needs_bwrap` run only where bubblewrap works (they would harm the machine, or cannot
hold, unsandboxed); `make test` installs bubblewrap and sets MODOMODO_REQUIRE_SANDBOX_TESTS=1, so in
CI they fail instead of skipping.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import strategies
import strategies.registry
from harness.sandbox import policy, process, protocol, proxy, submission
from harness.sandbox.isolation import make_strategy
from harness.bench.bench import bench
from harness.sandbox.policy import TIMEOUT_ENV
from harness.store import ResultStore
from tests.conftest import ROOT, cli, write_synthetic_suite

SUITE = "paper-qwen2vl-2b"
HONEST = ["random", "uniform", "honest"]
BUDGET, SEEDS = 4, 2

HONEST_SRC = """
import numpy as np
from strategies import Strategy


class Honest(Strategy):
    name = "honest"
    description = "An honest strategy from a file: Dirichlet samples, recommends the best seen."
    family = "user"

    def propose(self, history, budget):
        if budget.remaining(history) <= 0:
            return None
        rng = np.random.default_rng([self.seed, len(history)])
        return self.space.from_vector(rng.dirichlet(np.ones(self.space.dim)), normalize=True)
"""


@pytest.fixture(autouse=True)
def _clean_registry_and_env(monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "20")
    before = dict(strategies.registry._REGISTRY)
    yield
    _restore(before)


def _restore(before: dict) -> None:
    """Forget the file strategies a test registered (built-ins imported meanwhile stay)."""
    reg = strategies.registry._REGISTRY
    for name in list(reg):
        if name not in before and name not in strategies.registry.BUILTIN:
            del reg[name]
    reg.update(before)


def _need_bwrap():
    try:
        if policy.mode() == "bwrap":
            proxy.describe_source(HONEST_SRC, "probe.py", 60)  # proves bwrap starts
        works = policy.mode() == "bwrap"
    except policy.SandboxUnavailable:  # no bwrap, or none starts: nothing runs (issue 29: fail closed)
        works = False
    if not works:
        if os.environ.get("MODOMODO_REQUIRE_SANDBOX_TESTS"):
            pytest.fail("bubblewrap does not work here, and MODOMODO_REQUIRE_SANDBOX_TESTS is set")
        pytest.skip("bubblewrap (bwrap) is not available or cannot start here")


@pytest.fixture
def needs_bwrap():
    _need_bwrap()


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def run_bench(out: Path, extra_names=(), extra_files=(), suite=SUITE):
    files = [write(out.parent, "honest_strategy.py", HONEST_SRC), *extra_files]
    for f in files:
        submission.load_file(f)
    # the hostile strategy's studies come first: what they leave behind would meet the honest ones
    return bench(
        [suite],
        list(extra_names) + HONEST,
        [BUDGET],
        SEEDS,
        out,
        strategy_files=[str(f) for f in files],
        progress=False,
    )


def honest_view(out: Path, names=HONEST) -> tuple[str, str]:
    """The honest strategies' summary rows (without wall time) and trajectories, as exact text."""
    s = pd.read_csv(out / "summary.csv", dtype=str, keep_default_na=False)
    s = s[s["strategy"].isin(names)].drop(columns=["wall_s"])
    t = pd.read_csv(out / "trajectories.csv", dtype=str, keep_default_na=False)
    t = t[t["strategy"].isin(names)]
    return s.to_csv(index=False), t.to_csv(index=False)


def rows(out: Path, name: str) -> pd.DataFrame:
    s = pd.read_csv(out / "summary.csv", keep_default_na=False, na_values=[""])
    return s[s["strategy"] == name].sort_values("seed").reset_index(drop=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The honest strategies benched alone: what every attacked bench must reproduce."""
    out = tmp_path_factory.mktemp("clean") / "out"
    before = dict(strategies.registry._REGISTRY)
    try:
        report = run_bench(out)
    finally:
        _restore(before)
    assert report.failed_studies == 0
    return honest_view(out), out


def assert_contained(out: Path, clean, hostile: str, report, *, failed_with: str | None = None) -> pd.DataFrame:
    """The bench ended, honest results are byte-identical to the clean run's, and the hostile
    studies failed (with `failed_with` in the reason) or scored exactly as uniform (what they pretend to be)."""
    assert report.studies == len(HONEST + [hostile]) * SEEDS
    assert honest_view(out) == clean[0], "an honest strategy's results changed"
    h = rows(out, hostile)
    assert len(h) == SEEDS
    if failed_with is not None:
        assert (h["status"] == "failed").all(), h[["status", "reason"]]
        assert h["reason"].str.contains(failed_with, regex=False).all(), list(h["reason"])
    uniform = rows(out, "uniform")
    for i, r in h.iterrows():
        if r["status"] == "ok":  # never better than the honest strategy it pretends to be
            assert r["normalized_regret"] >= uniform.loc[i, "normalized_regret"] - 1e-12, r
    assert (h["sandboxed"] == "yes").all() or policy.mode() != "bwrap"
    return h


# -- the attacks ------------------------------------------------------------------------------------
READ_TABLE = """
import csv
from pathlib import Path
from strategies import Strategy


class Reader(Strategy):
    name = "evil-read"
    description = "Reads the suite's recorded runs and recommends the best row, spending no pilot run."

    def propose(self, history, budget):
        return None

    def recommend(self, history):
        import harness
        tried = []
        for root in (Path({root!r}), Path(harness.__file__).resolve().parents[1], Path.cwd(), Path("/")):
            path = root / "baselines" / "paper-qwen2vl-2b" / "runs.csv"
            tried.append(str(path))
            try:
                rows = list(csv.DictReader(open(path)))
            except OSError:
                continue
            best = max(rows, key=lambda r: float(r["Out_Score"]))
            return self.space.mixture({{d: float(best["w_" + d]) for d in self.space.datasets}})
        raise FileNotFoundError("no table at " + ", ".join(tried))
"""


@pytest.mark.usefixtures("needs_bwrap")
def test_reading_the_recorded_table_with_open_fails(tmp_path, clean):
    evil = write(tmp_path, "evil_read.py", READ_TABLE.format(root=str(ROOT)))
    report = run_bench(tmp_path / "out", ["evil-read"], [evil])
    assert_contained(tmp_path / "out", clean, "evil-read", report, failed_with="FileNotFoundError: no table at")


RELOAD_ORACLE = """
import importlib
import numpy as np
from strategies import Strategy


class Reloader(Strategy):
    name = "evil-reload"
    description = "Re-imports the harness to undo its guard and asks the suite's oracle for the best mixture."

    def propose(self, history, budget):
        return None

    def recommend(self, history):
        import harness.suites
        import harness.suites.loading
        importlib.reload(harness.suites.loading)
        importlib.reload(harness.suites)
        try:
            suite = harness.suites.load("paper-qwen2vl-2b")
        except Exception as first:
            try:
                suite = harness.suites.loading.load_folder({folder!r})
            except Exception as second:
                raise RuntimeError(f"oracle out of reach: {{type(first).__name__}}: {{first}} / "
                                   f"{{type(second).__name__}}: {{second}}")
        rng = np.random.default_rng(0)
        cands = [self.space.from_vector(v, normalize=True) for v in rng.dirichlet(np.ones(self.space.dim), 2000)]
        return max(cands, key=lambda m: suite.oracle(m)[0])
"""


@pytest.mark.usefixtures("needs_bwrap")
def test_reloading_the_harness_does_not_reach_the_oracle(tmp_path, clean):
    evil = write(tmp_path, "evil_reload.py", RELOAD_ORACLE.format(folder=str(ROOT / "baselines" / SUITE)))
    report = run_bench(tmp_path / "out", ["evil-reload"], [evil])
    assert_contained(tmp_path / "out", clean, "evil-reload", report, failed_with="oracle out of reach")


PATCH_STUDY = """
import harness.studies.study
from strategies import Strategy

_real_run = harness.studies.study.Study.run


def _run(self):
    out = _real_run(self)
    if out.score is not None:
        out.score, out.regret, out.normalized_regret = out.best_known, 0.0, 0.0
    return out


harness.studies.study.Study.run = _run  # at import: in the bench process, this would rewrite every study's score


class Pretender(Strategy):
    name = "evil-patch"
    description = "Uniform in disguise; its module patches Study.run to report the best score."

    def propose(self, history, budget):
        return None
"""


@pytest.mark.usefixtures("needs_bwrap")
def test_module_level_patching_does_not_reach_the_bench(tmp_path, clean):
    from harness.studies.study import Study

    run_before = Study.run
    evil = write(tmp_path, "evil_patch.py", PATCH_STUDY)
    report = run_bench(tmp_path / "out", ["evil-patch"], [evil])
    assert Study.run is run_before
    h = assert_contained(tmp_path / "out", clean, "evil-patch", report)
    uniform = rows(tmp_path / "out", "uniform")
    assert (h["status"] == "ok").all() and list(h["score"]) == list(uniform["score"]), "scored as the uniform it is"


KILL_PARENT = """
import os
import signal
from strategies import Strategy


class Killer(Strategy):
    name = "evil-kill"
    description = "Kills its parent process from propose."

    def propose(self, history, budget):
        os.kill(os.getppid(), signal.SIGKILL)
        return None
"""


@pytest.mark.usefixtures("needs_bwrap")
def test_killing_the_parent_does_not_stop_the_bench(tmp_path, clean):
    evil = write(tmp_path, "evil_kill.py", KILL_PARENT)
    report = run_bench(tmp_path / "out", ["evil-kill"], [evil])  # we are the parent: still here
    assert_contained(tmp_path / "out", clean, "evil-kill", report)


EXIT_AT_IMPORT = """
import os
os._exit(0)
"""

EXIT_WHEN_BUILT = '''
import os
import sys
from strategies import Strategy



def _building() -> bool:
    """True when a study (not the bench's description request) imports this file."""
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "op_new":
            return True
        frame = frame.f_back
    return False


# Behaves while the bench asks what the file defines; exits when a study imports it for real.
if _building():
    os._exit(0)


class Quitter(Strategy):
    name = "evil-exit"
    description = "Exits with status 0 when a study imports it."

    def propose(self, history, budget):
        return None
'''


def test_exit_at_import_is_one_clear_error(tmp_path, run_cli):
    evil = write(tmp_path, "evil_exit0.py", EXIT_AT_IMPORT)
    proc = run_cli(
        "bench",
        "--suite",
        SUITE,
        "--strategy",
        "random",
        "--strategy-file",
        evil,
        "--budget",
        "4",
        "--seeds",
        "1",
        "--out",
        tmp_path / "out",
        "--quiet",
        check=False,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("modomodo: warning")]
    assert len(lines) == 1 and "evil_exit0.py" in lines[0] and "exited with status 0" in lines[0], proc.stderr


def test_exit_at_import_during_a_study_fails_that_study_only(tmp_path, clean):
    evil = write(tmp_path, "evil_exit.py", EXIT_WHEN_BUILT)
    report = run_bench(tmp_path / "out", ["evil-exit"], [evil])
    assert_contained(tmp_path / "out", clean, "evil-exit", report, failed_with="exited with status 0 during building")


REWRITE_STORE = """
import glob
import json
import os
from strategies import Strategy


def _out_folders():
    found = []
    try:
        args = open(f"/proc/{{os.getppid()}}/cmdline", "rb").read().split(b"\\0")
        args = [a.decode() for a in args]
        if "--out" in args:
            found.append(args[args.index("--out") + 1])
    except OSError:
        pass
    found.append({out!r})  # even knowing the path outright
    return [f for f in found if os.path.isdir(os.path.join(f, "store"))]


class Tamperer(Strategy):
    name = "evil-store"
    description = "Finds the bench's --out on its parent's command line and rewrites the store's records."

    def propose(self, history, budget):
        folders = _out_folders()
        if not folders:
            raise RuntimeError("store not found")
        for out in folders:
            for path in glob.glob(os.path.join(out, "store", "*", "*", "*.json")):
                with open(path) as f:
                    rec = json.load(f)
                for k in ("score", "regret", "normalized_regret"):
                    if k in rec:
                        rec[k] = {{"score": 9.0}}.get(k, 0.0)
                if "scores" in rec:
                    rec["scores"] = {{k: 9.0 for k in rec["scores"]}}
                with open(path, "w") as f:
                    json.dump(rec, f)
        return None
"""


@pytest.mark.usefixtures("needs_bwrap")
def test_rewriting_the_store_via_the_parents_command_line_fails(tmp_path, clean):
    out = tmp_path / "out"
    evil = write(tmp_path, "evil_store.py", REWRITE_STORE.format(out=str(out)))
    honest = write(tmp_path, "honest_strategy.py", HONEST_SRC)
    common = [
        "--suite",
        SUITE,
        "--budget",
        str(BUDGET),
        "--seeds",
        str(SEEDS),
        "--out",
        out,
        "--quiet",
        "--strategy-file",
        honest,
    ]
    cli("bench", "--strategy", ",".join(HONEST), *common)
    first = honest_view(out)
    proc = cli("bench", "--strategy", ",".join(HONEST + ["evil-store"]), "--strategy-file", evil, *common, codes=(1,))
    assert "integrity" not in proc.stderr
    h = rows(out, "evil-store")
    assert (h["status"] == "failed").all() and h["reason"].str.contains("store not found").all(), list(h["reason"])
    again = cli("bench", "--strategy", ",".join(HONEST + ["evil-store"]), "--strategy-file", evil, *common, codes=(1,))
    assert "integrity" not in again.stderr, "nothing was tampered with"
    assert honest_view(out) == first == clean[0]
    assert ResultStore(out / "store").quarantined() == 0


def test_a_tampered_record_is_redone_not_served(tmp_path):
    """Whatever writes into the store behind the bench's back (here: the test itself), a record whose
    content does not match its hash is quarantined, counted, warned about and done again on resume."""
    # a suite standing in for a slow runner: its runs are stored, as real runs are (an instant replay's
    # answers come from memory and only its finished studies are stored: harness/runners/replay.py)
    slow = str(write_synthetic_suite(tmp_path / "slow-bowl", dim=5, delay=0.001))
    run_bench(tmp_path / "reference", suite=slow)
    clean_view = honest_view(tmp_path / "reference")
    out = tmp_path / "out"
    run_bench(out, suite=slow)
    store = ResultStore(out / "store")
    study = next(p for p in (out / "store" / "studies").glob("*/*.json") if json.loads(p.read_text())["trajectory"])
    rec = json.loads(study.read_text())
    run_key = rec["trajectory"][0]["run_key"]
    rec["score"], rec["normalized_regret"] = 9.0, 0.0
    study.write_text(json.dumps(rec))
    run = out / "store" / "runs" / run_key[:2] / f"{run_key}.json"
    rec = json.loads(run.read_text())
    rec["scores"] = {k: 9.0 for k in rec["scores"]}
    run.write_text(json.dumps(rec))
    report = run_bench(out, suite=slow)
    assert report.records_rejected >= 2 and store.quarantined() >= 2
    assert report.studies_resumed < report.studies, "the tampered study was done again"
    assert honest_view(out) == clean_view, "the resumed results are the clean ones"
    assert json.loads(run.read_text())["scores"] != {k: 9.0 for k in rec["scores"]}, "the run was redone"


SHADOW = """
from strategies import Strategy, register


@register("random")
class Impostor(Strategy):
    description = "Registers under a built-in's name."

    def propose(self, history, budget):
        return None
"""


def test_shadowing_a_builtin_is_refused_naming_both(tmp_path, run_cli):
    evil = write(tmp_path, "evil_shadow.py", SHADOW)
    with pytest.raises(submission.StrategyFileError) as e:
        submission.load_file(evil)
    assert "'random'" in str(e.value) and str(evil) in str(e.value) and "strategies.random_search" in str(e.value)
    from strategies.random_search import RandomSearch

    assert strategies.get("random") is RandomSearch
    proc = run_cli(
        "bench",
        "--suite",
        SUITE,
        "--strategy",
        "random",
        "--strategy-file",
        evil,
        "--budget",
        "4",
        "--seeds",
        "1",
        "--out",
        tmp_path / "out",
        "--quiet",
        check=False,
    )
    assert proc.returncode == 2 and "evil_shadow.py" in proc.stderr and "random_search" in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "summary.csv").exists()


def test_two_files_with_one_name_are_refused_naming_both(tmp_path):
    a = write(tmp_path, "a_strategy.py", HONEST_SRC)
    b = write(tmp_path, "b_strategy.py", HONEST_SRC)
    submission.load_file(a)
    assert submission.load_file(a) == ["honest"], "the same file again is fine"
    with pytest.raises(ValueError) as e:
        submission.load_file(b)
    assert str(a) in str(e.value) and str(b) in str(e.value)


HANG_INIT = """
from strategies import Strategy


class Hang(Strategy):
    name = "evil-hang"
    description = "Hangs in __init__."

    def __init__(self, space, seed=0, **params):
        super().__init__(space, seed, **params)
        while True:
            try:
                pass
            except BaseException:
                pass
"""


def test_a_hang_in_init_is_stopped(tmp_path, clean, monkeypatch):
    evil = write(tmp_path, "evil_hang.py", HANG_INIT)
    submission.load_file(evil)  # the description does not build the strategy
    monkeypatch.setenv(TIMEOUT_ENV, "2")
    t0 = time.perf_counter()
    report = run_bench(tmp_path / "out", ["evil-hang"], [evil])
    assert time.perf_counter() - t0 < 60
    assert_contained(
        tmp_path / "out", clean, "evil-hang", report, failed_with="building the strategy exceeded the 2 s time limit"
    )


EAT_MEMORY = """
from strategies import Strategy


class Glutton(Strategy):
    name = "evil-memory"
    description = "Allocates memory until something gives."

    def propose(self, history, budget):
        hoard = []
        for _ in range(256):  # 16 GB
            hoard.append(bytearray(64 << 20))
        return None
"""


def test_exhausting_memory_fails_the_study_only(tmp_path, clean, monkeypatch):
    monkeypatch.setenv(policy.MEMORY_ENV, "512")
    evil = write(tmp_path, "evil_memory.py", EAT_MEMORY)
    report = run_bench(tmp_path / "out", ["evil-memory"], [evil])
    assert_contained(tmp_path / "out", clean, "evil-memory", report, failed_with="MemoryError")


BURN_CPU = """
from strategies import Strategy


class Burner(Strategy):
    name = "evil-cpu"
    description = "Spins, catching everything."

    def propose(self, history, budget):
        while True:
            try:
                sum(range(10 ** 6))
            except BaseException:
                pass
"""


def test_a_cpu_limit_ends_a_spinning_strategy(tmp_path, clean, monkeypatch):
    monkeypatch.setenv(policy.CPU_ENV, "1")
    evil = write(tmp_path, "evil_cpu.py", BURN_CPU)
    t0 = time.perf_counter()
    report = run_bench(tmp_path / "out", ["evil-cpu"], [evil])
    assert time.perf_counter() - t0 < 60, "well before the 20 s wall-clock limit of each study"
    assert_contained(tmp_path / "out", clean, "evil-cpu", report, failed_with="was stopped at its CPU time limit (1 s")


FLOOD = """
import os
import sys
from strategies import Strategy


class Flood(Strategy):
    name = "evil-flood"
    description = "Prints 100 MB."

    def propose(self, history, budget):
        chunk = "x" * (1 << 20)
        for _ in range(100):
            sys.stdout.write(chunk)
            sys.stderr.write(chunk)
        sys.stdout.flush()
        return None


class PipeFlood(Strategy):
    name = "evil-pipe"
    description = "Writes 8 MB into every file descriptor it has."

    def propose(self, history, budget):
        for fd in range(3, 32):
            try:
                os.write(fd, b"{" * (8 << 20))
            except OSError:
                pass
        return None
"""


def test_flooding_the_output_does_not_reach_the_bench(tmp_path, clean, capfd):
    evil = write(tmp_path, "evil_flood.py", FLOOD)
    submission.load_file(evil)
    report = run_bench(tmp_path / "out", ["evil-flood"], [evil])
    captured = capfd.readouterr()
    assert len(captured.out) + len(captured.err) < 100_000
    assert_contained(tmp_path / "out", clean, "evil-flood", report, failed_with="File too large")
    report = run_bench(tmp_path / "out2", ["evil-pipe"], [evil])
    captured = capfd.readouterr()
    assert len(captured.out) + len(captured.err) < 100_000
    assert_contained(tmp_path / "out2", clean, "evil-pipe", report, failed_with="the strategy process")


LEAVE_STATE = """
import os
import time
from strategies import Strategy

STUDIES_SEEN_HERE = [0]  # module state: a strategy that lived across studies would count them


class Squatter(Strategy):
    name = "evil-state"
    description = "Leaves files and a process behind for its next study, and looks for them."

    def propose(self, history, budget):
        STUDIES_SEEN_HERE[0] += 1
        me, parent = os.getpid(), os.getppid()
        found = [p for p in ("/tmp/evil-state", "/dev/shm/evil-state") if os.path.exists(p)]
        others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me, parent)]
        if found or others or STUDIES_SEEN_HERE[0] > 1:
            raise RuntimeError(f"LEAK: files {found}, processes {others}, studies {STUDIES_SEEN_HERE[0]}")
        for p in ("/tmp/evil-state", "/dev/shm/evil-state"):
            open(p, "w").write("pilot runs of the last study")
        if os.fork() == 0:  # a daemon that would carry what this study saw to the next one
            os.setsid()
            time.sleep(120)
            os._exit(0)
        return None
"""


@pytest.mark.usefixtures("needs_bwrap")
def test_no_state_passes_from_one_study_to_the_next(tmp_path, clean):
    evil = write(tmp_path, "evil_state.py", LEAVE_STATE)
    report = run_bench(tmp_path / "out", ["evil-state"], [evil])
    h = assert_contained(tmp_path / "out", clean, "evil-state", report)
    assert (h["status"] == "ok").all(), list(h["reason"])


WRITE_THROUGH = """
import ctypes
import json
import os
from strategies import Strategy


class Writer(Strategy):
    name = "evil-write"
    description = "Tries to write into the project's code and into the process that forked it."

    def propose(self, history, budget):
        import harness.studies.study
        errors = {{}}
        target = harness.studies.study.__file__
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mount(None, os.path.dirname(target).encode(), None, 32 | 4096, None)  # MS_REMOUNT | MS_BIND, rw
        errors["remount"] = os.strerror(ctypes.get_errno())
        for what, path, mode in (("code", target, "a"), ("project", {root!r} + "/harness/studies/study.py", "a"),
                                 ("parent memory", f"/proc/{{os.getppid()}}/mem", "r+b")):
            try:
                with open(path, mode) as f:
                    f.write("# pwned" if "b" not in mode else b"pwned")
                errors[what] = "WROTE"
            except OSError as e:
                errors[what] = type(e).__name__
        raise RuntimeError("TRIED" + json.dumps(errors))
"""


@pytest.mark.usefixtures("needs_bwrap")
def test_a_study_cannot_write_into_the_project_or_the_process_that_forked_it(tmp_path, clean):
    target = ROOT / "harness" / "studies" / "study.py"
    before = target.read_bytes()
    evil = write(tmp_path, "evil_write.py", WRITE_THROUGH.format(root=str(ROOT)))
    try:
        report = run_bench(tmp_path / "out", ["evil-write"], [evil])
    finally:
        if target.read_bytes() != before:  # never leave the checkout damaged, even when the test fails
            target.write_bytes(before)
            pytest.fail("a strategy wrote into harness/studies/study.py")
    h = assert_contained(tmp_path / "out", clean, "evil-write", report, failed_with="TRIED")
    tried = json.loads(h["reason"][0].split("TRIED", 1)[1].rsplit(" at evil_write.py", 1)[0])
    assert "WROTE" not in tried.values(), tried
    assert tried["remount"] != "Success", tried


STOP_ZYGOTE = """
import os
import signal
from strategies import Strategy


class Stopper(Strategy):
    name = "evil-stop"
    description = "Stops the process that forked it (SIGSTOP)."

    def propose(self, history, budget):
        os.kill(os.getppid(), signal.SIGSTOP)
        return None
"""


@pytest.mark.usefixtures("needs_bwrap")
def test_stopping_the_process_that_forked_it_changes_nothing(tmp_path, clean, monkeypatch):
    evil = write(tmp_path, "evil_stop.py", STOP_ZYGOTE)
    report = run_bench(tmp_path / "out", ["evil-stop"], [evil])
    assert_contained(tmp_path / "out", clean, "evil-stop", report)


# -- what the sandbox sees, and what it is told -------------------------------------------------------
PROBE = """
import json
import os
from strategies import Strategy


class Probe(Strategy):
    name = "probe"
    description = "Reports what it can see."

    def propose(self, history, budget):
        import resource
        seen = {{
            "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            "env": sorted(os.environ),
            "baselines": os.path.exists({baselines!r}),
            "outside": os.path.exists({outside!r}),
            "net": [l.split()[0] for l in open("/proc/net/dev").read().splitlines()[2:]],
            "as": resource.getrlimit(resource.RLIMIT_AS)[0],
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "sid": os.getsid(0) == os.getpid() or os.getsid(0) == 1,
            "history": [[o.mixture.as_dict(), o.objective, o.status] for o in history],
            "space": list(self.space.datasets),
        }}
        raise RuntimeError("SEEN" + json.dumps(seen))
"""


@pytest.mark.usefixtures("needs_bwrap")
def test_what_the_sandbox_sees(tmp_path):
    from harness.mixture import MixtureSpace
    from harness.spec import Budget, Observation

    f = write(tmp_path, "probe.py", PROBE.format(baselines=str(ROOT / "baselines"), outside=str(tmp_path)))
    cls = strategies.get(submission.load_file(f)[0])
    space = MixtureSpace(("A", "B", "C"))
    s = make_strategy(cls, space, 0)
    hist = (
        Observation(space.uniform(), 0.5, {"score": 0.5, "odd": float("nan")}, "ok"),
        Observation(space.vertices()[0], None, {}, "failed"),
    )
    with pytest.raises(protocol.StrategyError) as e:
        s.propose(hist, Budget(4))
    s.close()
    seen = json.loads(str(e.value).split("SEEN", 1)[1].rsplit(" at probe.py", 1)[0])
    assert 1 <= len(seen["pids"]) <= 3 and max(seen["pids"]) < 10, seen["pids"]  # its own PID namespace
    assert not seen["baselines"] and not seen["outside"]
    assert seen["net"] == ["lo:"], seen["net"]
    assert set(seen["env"]) <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "LC_CTYPE",
        "PWD",
    }, seen["env"]
    assert seen["as"] == policy.limits()["memory_bytes"] and seen["nofile"] == policy.OPEN_FILES
    assert seen["space"] == ["A", "B", "C"]
    assert seen["history"] == [[space.uniform().as_dict(), 0.5, "ok"], [space.vertices()[0].as_dict(), None, "failed"]]


def test_the_space_arrives_whole_bounds_and_candidates(tmp_path):
    """Whatever the space carries (bounds, a candidate pool) reaches the strategy as plain data."""
    from harness.mixture import MixtureSpace
    from harness.spec import Budget

    src = """
    from strategies import Strategy


    class Echo(Strategy):
        name = "echo"
        description = "Proposes the last candidate of its pool."

        def propose(self, history, budget):
            assert self.space.lower == (0.1, 0.0, 0.0) and self.space.is_pool
            return self.space.candidate_mixtures()[-1]
    """
    cls = strategies.get(submission.load_file(write(tmp_path, "echo.py", src))[0])
    space = MixtureSpace(("A", "B", "C"), lower=(0.1, 0.0, 0.0), candidates=((0.2, 0.4, 0.4), (0.6, 0.2, 0.2)))
    s = make_strategy(cls, space, 0)
    try:
        assert s.propose((), Budget(2)) == space.candidate_mixtures()[-1]
    finally:
        s.close()


def test_garbage_replies_become_the_studys_usual_errors(tmp_path):
    from harness import suites
    from harness.runners.replay import ReplayRunner
    from harness.spec import Budget
    from harness.studies.study import Study
    from tests.conftest import write_synthetic_suite

    src = """
    import numpy as np
    from strategies import Strategy


    class Dict(Strategy):
        name = "g-dict"
        description = "returns a dict"

        def propose(self, history, budget):
            return {"D0": 2.0}


    class Nan(Strategy):
        name = "g-nan"
        description = "returns nan weights via a numpy vector"

        def propose(self, history, budget):
            return self.space.from_vector(np.array([np.nan] * self.space.dim))


    class Unknown(Strategy):
        name = "g-unknown"
        description = "returns a mixture of unknown datasets"

        def propose(self, history, budget):
            from harness.mixture import Mixture
            return Mixture({"nope": 1.0})
    """
    submission.load_file(write(tmp_path, "garbage.py", src))
    suite = suites.load_folder(write_synthetic_suite(tmp_path / "g-suite", dim=4))
    reasons = {}
    for name in ("g-dict", "g-nan", "g-unknown"):
        out = Study(suite, strategies.get(name), Budget(3), 0, ReplayRunner(suite)).run()
        assert out.status == "failed"
        reasons[name] = out.reason
    assert "invalid mixture" in reasons["g-dict"] and "got dict" in reasons["g-dict"]
    assert "InvalidMixture" in reasons["g-nan"] and "finite" in reasons["g-nan"]
    assert "unknown dataset 'nope'" in reasons["g-unknown"]


# -- where bubblewrap is missing ------------------------------------------------------------------------
@pytest.fixture
def no_bwrap(monkeypatch):
    process._reset_for_tests()
    monkeypatch.setenv(policy.BWRAP_ENV, "")
    monkeypatch.setenv(policy.SANDBOX_ENV, policy.ALLOW)  # --allow-unsandboxed: else nothing runs (issue 29)
    yield
    monkeypatch.delenv(policy.BWRAP_ENV)
    process._reset_for_tests()


@pytest.mark.usefixtures("no_bwrap")
def test_without_bwrap_it_runs_unsandboxed_warns_once_and_says_so(tmp_path, capfd):
    out = tmp_path / "out"
    report = run_bench(out)
    assert report.failed_studies == 0
    err = capfd.readouterr().err
    assert err.count("UNSANDBOXED") == 1, err
    honest = rows(out, "honest")
    assert (honest["sandboxed"] == "no").all() and (honest["strategy_file"] == "honest_strategy.py").all()
    assert honest["strategy_sha256"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert rows(out, "random")["sandboxed"].isna().all(), "built-ins run in-process, as before"
    meta = json.loads((out / "bench.json").read_text())
    entry = next(s for s in meta["strategies"] if s["name"] == "honest")
    assert entry["sandboxed"] == "no" and entry["sha256"] == honest["strategy_sha256"][0]
    from leaderboard.site import render

    site = tmp_path / "site"
    render([out], site)
    page = next((site / "strategies").glob("honest*.html")).read_text()
    assert "unsandboxed" in page and entry["sha256"] in page and "honest_strategy.py" in page
    assert "not importable" not in page


def test_a_bwrap_that_cannot_start_falls_back_only_where_allowed(tmp_path, monkeypatch, capfd):
    process._reset_for_tests()
    monkeypatch.setenv(policy.BWRAP_ENV, "/bin/false")
    monkeypatch.setenv(policy.SANDBOX_ENV, policy.ALLOW)
    try:
        names = submission.load_file(write(tmp_path, "h.py", HONEST_SRC))
        assert names == ["honest"] and policy.mode() == "plain"
        assert "sandbox could not start" in capfd.readouterr().err
    finally:
        process._reset_for_tests()


@pytest.mark.parametrize("setting", ["require", "auto", None])
def test_without_a_sandbox_nothing_runs_unless_allowed(tmp_path, monkeypatch, setting):
    process._reset_for_tests()
    monkeypatch.setenv(policy.BWRAP_ENV, "")
    if setting is None:
        monkeypatch.delenv(policy.SANDBOX_ENV, raising=False)
    else:
        monkeypatch.setenv(policy.SANDBOX_ENV, setting)
    try:
        with pytest.raises(submission.StrategyFileError, match="--allow-unsandboxed"):
            submission.load_file(write(tmp_path, "h.py", HONEST_SRC))
        assert not policy.sandboxed()
    finally:
        process._reset_for_tests()


@pytest.mark.usefixtures("needs_bwrap")
def test_sandboxed_provenance_in_summary_and_bench_json(tmp_path):
    out = tmp_path / "out"
    run_bench(out)
    honest = rows(out, "honest")
    assert (honest["sandboxed"] == "yes").all()
    meta = json.loads((out / "bench.json").read_text())
    entry = next(s for s in meta["strategies"] if s["name"] == "honest")
    source = (out.parent / "honest_strategy.py").read_bytes()
    import hashlib

    assert entry == {
        **entry,
        "sandboxed": "yes",
        "file": "honest_strategy.py",
        "sha256": hashlib.sha256(source).hexdigest(),
    }


# -- issue 18: a broken strategy file is one line, status 2 ----------------------------------------------
@pytest.mark.parametrize(
    "body, needle",
    [
        ("from strategies import Strategy\nclass X(Strategy)\n    pass\n", "SyntaxError: expected ':' (line 2)"),
        ("import no_such_module_for_modomodo\n", "ModuleNotFoundError: No module named 'no_such_module_for_modomodo'"),
        ("x = 1\n", "defines no Strategy subclass"),
    ],
)
def test_a_broken_strategy_file_is_one_line_with_status_2(tmp_path, run_cli, body, needle):
    f = tmp_path / "broken_strategy.py"
    f.write_text(body)
    for cmd in (
        ["strategies"],
        [
            "bench",
            "--suite",
            "synth-bowl-5",
            "--strategy",
            "random",
            "--budget",
            "4",
            "--seeds",
            "1",
            "--out",
            tmp_path / "out",
            "--quiet",
        ],
    ):
        proc = run_cli(*cmd, "--strategy-file", f, check=False)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("modomodo: warning")]
        assert proc.returncode == 2 and len(lines) == 1, (proc.returncode, proc.stderr)
        assert "broken_strategy.py" in lines[0] and needle in lines[0], lines[0]
        assert "Traceback" not in proc.stderr


def test_the_bench_process_never_imports_the_file(tmp_path):
    """Module-level code of a strategy file runs only in its sandbox (here: it would leave a mark)."""
    mark = tmp_path / "imported-here"
    src = f"""
    import os
    from strategies import Strategy
    if os.getpid() == {os.getpid()}:
        open({str(mark)!r}, "w").write("imported in the bench process")


    class Quiet(Strategy):
        name = "quiet"
        description = "Does nothing."

        def propose(self, history, budget):
            return None
    """
    submission.load_file(write(tmp_path, "quiet.py", src))
    assert not mark.exists()
    assert not any(m.startswith("modomodo_user_") for m in sys.modules)
