"""Issue 18: every bad input a clear error, no orphans, no silent drift between machines.

Each test here failed before the fix it guards. CLI cases run the real `modomodo` in a subprocess
and check the whole contract: status 2, one line, naming the bad value and what would be valid,
and nothing already stored lost."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from harness import suites
from harness.protocols.fields import result_fields, setting
from harness.training.config import PRESETS, ProtocolConfig

from .conftest import cli


def one_line_error(proc, *needles):
    """Status 2, exactly one line on stderr (no traceback), naming every needle."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# ---------------------------------------------------------------------------------------------- protocol hash
def test_fingerprint_covers_what_changes_results_and_nothing_else():
    base = ProtocolConfig.from_dict({"preset": "tiny", "beta": 0.15})
    # a default-off field, added later: at its off value the fingerprint does not move
    Later = dataclasses.make_dataclass(
        "Later",
        [("new_option", bool, setting(False, "a later default-off option", neutral=False))],
        bases=(ProtocolConfig,),
        frozen=True,
    )
    later = Later(**{f.name: getattr(base, f.name) for f in dataclasses.fields(ProtocolConfig)})
    assert later.fingerprint() == base.fingerprint()
    assert dataclasses.replace(later, new_option=True).fingerprint() != base.fingerprint()
    # the fields that existed as default-off options: eval_p_correct, reward_rule at format_kept
    assert "eval_p_correct" not in result_fields(base) and "reward_rule" not in result_fields(base)
    assert dataclasses.replace(base, eval_p_correct=True).fingerprint() != base.fingerprint()
    # labels are not results...
    assert "name" not in result_fields(base) and "name" in result_fields(base, labels=True)
    # every result-changing setting moves it
    for change in (
        {"beta": 0.04},
        {"temperature": 1.0},
        {"steps": 199},
        {"reward_rule": "paper"},
        {"reward_weights": (1.0, 1.0)},
        {"eval_n": 128},
    ):
        assert dataclasses.replace(base, **change).fingerprint() != base.fingerprint(), change
    assert (
        dataclasses.replace(base, base=dataclasses.replace(base.base, hidden=128)).fingerprint() != base.fingerprint()
    )


def test_every_stored_run_has_the_fingerprint_its_protocol_gives_today():
    """...but the fingerprint keeps them, so that the fingerprints stored in recorded runs, made
    before eval_p_correct, eval_checkpoints and reward_rule existed, are still what their protocol
    gives: a stored run says whether it was made with the protocol its suite defines now."""
    import collections
    import glob

    pytest.importorskip("trl")
    from harness.runners.cpu import protocol_config

    sweeps = suites.BASELINES_DIR / "sweeps"
    checked = 0
    for folder in sorted(p for p in sweeps.iterdir() if p.is_dir() and p.name in suites.registered()):
        live = suites.load(folder.name)
        stored = collections.Counter()
        for f in glob.glob(str(folder / "runs" / "*" / "*.json"))[:400]:
            rec = json.loads(Path(f).read_text())
            if rec["spec"]["protocol"] == live.protocol:
                stored[rec["provenance"].get("config_fingerprint")] += 1
        if stored:
            assert set(stored) == {protocol_config(live).fingerprint()}, (folder.name, stored)
            checked += 1
    assert checked >= 3


def test_paper_reward_rule_is_the_default_and_recorded_protocols_keep_theirs():
    assert ProtocolConfig().reward_rule == "paper" and PRESETS["smoke"].reward_rule == "paper"
    assert PRESETS["tiny"].reward_rule == PRESETS["tiny-h128"].reward_rule == "format_kept"
    assert ProtocolConfig.from_dict({"preset": "tiny", "reward_rule": "paper"}).reward_rule == "paper"
    with pytest.raises(ValueError, match="reward_rule 'papr' is unknown; valid: paper, format_kept"):
        ProtocolConfig.from_dict({"reward_rule": "papr"})
    from harness.runners.cpu import protocol_config

    for live in ("minimodo-tiny-live", "minimodo-tiny-h128-live", "minimodo-tiny-p-live", "minimodo-pool-live"):
        if live in suites.registered():
            assert protocol_config(suites.load(live)).reward_rule == "format_kept", live
    # the recorded suites say which rule they were made with
    for name in (
        "minimodo-tiny",
        "minimodo-tiny-in",
        "minimodo-tiny-h128",
        "minimodo-tiny-h128-in",
        "minimodo-tiny-p",
        "minimodo-pool",
    ):
        if name in suites.registered():
            card = yaml.safe_load((suites.registered()[name] / "card.yaml").read_text())
            assert card["protocol"]["reward_rule"] == "format_kept", name


# ---------------------------------------------------------------------------------------------- orphans
def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_pool_workers_and_resource_tracker_die_with_a_sigkilled_parent(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from .conftest import ROOT

    script = tmp_path / "parent.py"
    script.write_text(
        "import json, time, multiprocessing.resource_tracker as rt\n"
        "from harness.runners.executor import LocalPoolExecutor\n"
        "if __name__ == '__main__':\n"
        "    pool = LocalPoolExecutor(2)\n"
        "    futs = [pool._pool.submit(time.sleep, 120) for _ in range(2)]\n"
        "    while len(pool._pool._processes) < 2: time.sleep(0.05)\n"
        "    time.sleep(3)\n"  # the workers are up and running their task
        "    print(json.dumps({'workers': list(pool._pool._processes), 'tracker': rt._resource_tracker._pid}),\n"
        "          flush=True)\n"
        "    time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    pids: dict = {}
    try:
        pids = json.loads(proc.stdout.readline())
        children = [p for p in pids["workers"] + [pids["tracker"]] if p]
        assert len(children) >= 2 and all(_alive(p) for p in children)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.time() + 20
        while time.time() < deadline and any(_alive(p) for p in children):
            time.sleep(0.2)
        assert not [p for p in children if _alive(p)], "orphaned pool processes outlived their parent"
    finally:
        proc.kill()
        for p in pids.get("workers", []):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---------------------------------------------------------------------------------------------- sweep design
def test_a_huge_sweep_design_is_refused_in_one_line_without_building_it(tmp_path):
    import resource
    import subprocess
    import sys

    from .conftest import ROOT

    def limit():  # 3 GB of address space: the old code grew to 21.6 GB before the kernel killed it
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    store = tmp_path / "store"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "sweep",
            "--suite",
            "synth-bowl-5",
            "--runner",
            "replay",
            "--mixtures",
            "3",
            "--seeds",
            "0-1000000000",
            "--store",
            str(store),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        preexec_fn=limit,
    )
    one_line_error(proc, "3 mixtures x 1000000001 seeds", "at most 100,000", "--seeds")
    assert not store.exists()


@pytest.mark.parametrize("alpha", ["nan", "inf", "-1", "0"])
def test_sweep_alpha_must_be_finite_and_positive(tmp_path, alpha):
    proc = cli(
        "sweep",
        "--suite",
        "synth-bowl-5",
        "--runner",
        "replay",
        "--mixtures",
        "20",
        "--seeds",
        "0-1",
        f"--alpha={alpha}",
        "--store",
        tmp_path / "s",
        "--dry-run",
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) == 1, proc.stderr
    assert "alpha" in proc.stderr.lower()


def test_a_design_without_enough_distinct_draws_stops_with_a_reason():
    from harness.factory.sweep import SweepDesignError, design

    space = suites.load("synth-bowl-5").space
    with pytest.raises(SweepDesignError, match="distinct mixtures .* raise --alpha or lower --mixtures"):
        design(space, 40, alpha=1e-9)  # every draw rounds to a vertex: the old loop never ended
    assert len(design(space, 40)) == 40


# ---------------------------------------------------------------------------------------------- one-line errors
def test_suite_import_of_a_row_summing_to_1_2_names_the_columns_the_weights_and_the_line(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("w_a,w_b,acc\n0.5,0.5,0.3\n0.6,0.6,0.2\n1,0,0.1\n")
    out = tmp_path / "out"
    proc = cli(
        "suite",
        "import",
        table,
        "--name",
        "t",
        "--weights",
        "w_a,w_b",
        "--metric",
        "acc",
        "--goal",
        "max",
        "--out",
        out,
        check=False,
    )
    one_line_error(proc, "line 3 (data row 2)", "w_a=0.6, w_b=0.6", "sum to 1.2, not 1", "--normalize")
    assert not out.exists()


def _replay_suite(folder: Path, runs_text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "card.yaml").write_text(
        yaml.safe_dump(
            {
                "name": folder.name,
                "version": "1",
                "kind": "replay",
                "metric": "acc",
                "goal": "max",
                "datasets": ["a", "b"],
                "weight_columns": {"a": "w_a", "b": "w_b"},
                "score_columns": ["acc"],
            }
        )
    )
    (folder / "runs.csv").write_text(runs_text)
    return folder


@pytest.mark.parametrize(
    "runs_text, needles",
    [
        ("", ["runs.csv", "the file is empty", "header line"]),
        ("w_a,w_b,acc\n", ["runs.csv", "has a header but no runs"]),
        (
            "w_a,w_b,acc\n0.5,0.5,0.3\n1,0,high\n0,1,0.1\n",
            ["runs.csv", "column 'acc'", "line 3 (data row 2)", "'high'", "is not a number"],
        ),
        ("w_a,w_b,acc\n0.5,0.5,0.3\n1,zero,0.2\n", ["runs.csv", "column 'w_b'", "line 3 (data row 2)", "'zero'"]),
        ("w_a,w_b,acc\n0.5,0.5,0.3\n1,-1,0.2\n", ["runs.csv", "column 'w_b'", "line 3 (data row 2)", ">= 0"]),
    ],
)
def test_a_broken_runs_csv_is_one_line_naming_file_column_and_line(tmp_path, runs_text, needles):
    folder = _replay_suite(tmp_path / "bad-replay", runs_text)
    before = (folder / "runs.csv").read_bytes()
    proc = cli(
        "bench",
        "--suite",
        folder,
        "--strategy",
        "uniform",
        "--budget",
        "2",
        "--seeds",
        "1",
        "--out",
        tmp_path / "out",
        "--quiet",
        check=False,
    )
    one_line_error(proc, *needles)
    assert (folder / "runs.csv").read_bytes() == before


@pytest.mark.parametrize(
    "function, needles",
    [
        (None, ["needs `function:`", "bowl, bump, corner"]),
        ({"kind": "saddle", "dim": 3}, ["function.kind is 'saddle'", "valid: bowl, bump, corner"]),
        ({"kind": "bowl", "noise_sd": -1}, ["function.noise_sd is -1", ">= 0"]),
    ],
)
def test_a_synthetic_card_without_a_usable_function_is_one_line(tmp_path, function, needles):
    folder = tmp_path / "no-function"
    folder.mkdir()
    card = {
        "name": "no-function",
        "version": "1",
        "kind": "synthetic",
        "metric": "score",
        "goal": "max",
        "datasets": ["A", "B", "C"],
    }
    if function is not None:
        card["function"] = function
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    proc = cli(
        "bench",
        "--suite",
        folder,
        "--strategy",
        "uniform",
        "--budget",
        "2",
        "--seeds",
        "1",
        "--out",
        tmp_path / "out",
        "--quiet",
        check=False,
    )
    one_line_error(proc, "card.yaml", *needles)


def test_reproduce_paper_table_with_text_in_a_column_is_one_line(tmp_path):
    from .conftest import SHARED

    src = SHARED / "data" / "modomodo-paper" / "table2_runs.csv"
    if not src.is_file():
        pytest.skip("needs shared/data/modomodo-paper/table2_runs.csv")
    lines = src.read_text().splitlines()
    assert lines[3].startswith("2,Seed,Single,Single-LISA")
    cells = lines[3].split(",")
    cells[cells.index("0.4035")] = "n/a?"  # SAT of Single-LISA
    bad = tmp_path / "table2.csv"
    bad.write_text("\n".join(lines[:3] + [",".join(cells)] + lines[4:]) + "\n")
    one_line_error(
        cli("reproduce", "paper", "--table", bad, check=False),
        "table2.csv",
        "column 'SAT'",
        "line 4",
        "'n/a?' is not a number",
    )
    renamed = tmp_path / "renamed.csv"
    renamed.write_text("\n".join([lines[0].replace("group", "grp", 1)] + lines[1:]) + "\n")
    one_line_error(cli("reproduce", "paper", "--table", renamed, check=False), "column 'group' is missing")


@pytest.mark.parametrize("damage", ["truncate", "list", "no-spec"])
def test_suite_from_sweep_on_a_corrupt_store_is_one_line_naming_the_record(tmp_path, damage):
    store = tmp_path / "store"
    cli(
        "sweep",
        "--suite",
        "synth-bowl-5",
        "--runner",
        "replay",
        "--mixtures",
        "4",
        "--seeds",
        "0-2",
        "--workers",
        "1",
        "--store",
        store,
        "--quiet",
    )
    records = sorted((store / "runs").glob("*/*.json"))
    assert len(records) == 12
    victim = records[5]
    text = victim.read_text()
    victim.write_text(
        {
            "truncate": text[: len(text) // 2],
            "list": "[1, 2]",
            "no-spec": json.dumps({k: v for k, v in json.loads(text).items() if k != "spec"}),
        }[damage]
    )
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    for extra in (["--check"], ["--name", "from-corrupt", "--out", tmp_path / "suite"]):
        proc = cli("suite", "from-sweep", "--store", store, "--suite", "synth-bowl-5", *extra, check=False)
        one_line_error(proc, "corrupt store record", victim.name, "move it out of the store")
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "suite").exists()


# ---------------------------------------------------------------------------------------------- leaderboard
@pytest.fixture(scope="module")
def small_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "r"
    cli(
        "bench",
        "--suite",
        "synth-bowl-5",
        "--strategy",
        "uniform,random",
        "--budget",
        "4",
        "--seeds",
        "3",
        "--out",
        out,
        "--quiet",
    )
    return out


def _damaged(src: Path, dst: Path, name: str, fn) -> Path:
    import shutil

    shutil.copytree(src, dst)
    (dst / name).write_text(fn((src / name).read_text()))
    return dst


def _text_in_score(text: str) -> str:
    lines = text.splitlines()
    head = lines[0].split(",")
    cells = lines[2].split(",")
    cells[head.index("score")] = "0.5x"
    return "\n".join(lines[:2] + [",".join(cells)] + lines[3:]) + "\n"


@pytest.mark.parametrize(
    "name, damage, needles",
    [
        ("summary.csv", lambda t: "", ["summary.csv", "the file is empty"]),
        ("summary.csv", lambda t: t[:100], ["summary.csv", "cut short"]),
        ("summary.csv", lambda t: "suite,strategy\nx,y\n", ["summary.csv", "lacks columns"]),
        (
            "summary.csv",
            lambda t: t[: t.index("\n", t.index("\n", t.index("\n") + 1) + 1) + 40],
            ["summary.csv", "cut short"],
        ),
        ("summary.csv", lambda t: t.replace(",ok,", ",,", 1), ["summary.csv", "line 2 (data row 1) has no 'status'"]),
        (
            "summary.csv",
            _text_in_score,
            ["summary.csv", "column 'score'", "line 3 (data row 2)", "'0.5x' is not a number"],
        ),
        ("trajectories.csv", lambda t: t[: len(t) // 2], ["trajectories.csv", "cut short"]),
        (
            "trajectories.csv",
            lambda t: "\n".join(t.splitlines()[:3]) + "\n",
            ["trajectories.csv", "holds 2 pilot runs of the study", "which used 4"],
        ),
        (
            "trajectories.csv",
            lambda t: t.replace(",analytic,", "x,analytic,", 1),
            ["trajectories.csv", "column 'best_so_far'", "line 2 (data row 1)", "is not a number"],
        ),
    ],
)
@pytest.mark.parametrize("command", ["render", "table"])
def test_leaderboard_on_damaged_results_is_one_line(small_bench, tmp_path, name, damage, needles, command):
    folder = _damaged(small_bench, tmp_path / "r", name, damage)
    before = (folder / name).read_bytes()
    args = ["--out", tmp_path / "site"] if command == "render" else []
    proc = cli("leaderboard", command, "--results", folder, *args, check=False)
    one_line_error(proc, *needles)
    assert (folder / name).read_bytes() == before
    assert not (tmp_path / "site").exists()


def test_a_killed_render_leaves_nothing_behind_the_next_render(small_bench, tmp_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    site = tmp_path / "site"
    leftovers = [
        tmp_path / f".site.tmp-{dead.pid}-abc123",
        tmp_path / f".site.old-{dead.pid}",
        tmp_path / ".site.k3j_x9q2",
    ]  # the older, pid-less name of a build folder
    for p in leftovers:
        (p / "suites").mkdir(parents=True)
        (p / "index.html").write_text("half a site")
    import os

    os.utime(leftovers[2], (0, 0))  # old enough to be a leftover, not a build in progress
    running = tmp_path / f".site.tmp-{os.getpid()}-live"  # a render of this (living) process: kept
    running.mkdir()
    other = tmp_path / f".othersite.tmp-{dead.pid}-zzz"  # another site's: not ours to clean
    other.mkdir()
    cli("leaderboard", "render", "--results", small_bench, "--out", site)
    assert (site / "index.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["site", running.name, other.name])


# ---------------------------------------------------------------------------------------------- verify
@pytest.fixture(scope="module")
def recorded_synth(tmp_path_factory):
    """A recorded suite made the way real ones are (sweep a live protocol, then from-sweep), with the
    replay runner of synth-bowl-5 (noise sd 0.01) standing in for training: seconds, not minutes."""
    root = tmp_path_factory.mktemp("recorded")
    cli(
        "sweep",
        "--suite",
        "synth-bowl-5",
        "--runner",
        "replay",
        "--mixtures",
        "12",
        "--seeds",
        "0-3",
        "--workers",
        "1",
        "--store",
        root / "store",
        "--quiet",
    )
    cli(
        "suite",
        "from-sweep",
        "--store",
        root / "store",
        "--suite",
        "synth-bowl-5",
        "--name",
        "rec-synth",
        "--out",
        root / "rec-synth",
    )
    return root / "rec-synth"


def test_verify_reruns_recorded_pairs_and_finds_them_consistent(recorded_synth):
    proc = cli("verify", "--suite", recorded_synth, "--runs", "3", "--runner", "replay")
    out = proc.stdout
    assert "3 recorded (mixture, seed) pairs re-run with synth-bowl-5@1" in out
    assert "A=0.2,B=0.2,C=0.2,D=0.2,E=0.2 seed 0:" in out  # uniform, seed 0 first
    assert out.count(" z ") == 3 and "bit for bit: 3 of 3 re-runs" in out
    assert "Fisher's combination over 3 runs" in out and "CONSISTENT with the recording" in out
    rep = json.loads(cli("verify", "--suite", recorded_synth, "--runs", "5", "--runner", "replay", "--json").stdout)
    assert len(rep["reruns"]) == 5 and len({(json.dumps(r["mixture"]), r["seed"]) for r in rep["reruns"]}) == 5
    assert all(r["bit_for_bit"] and r["z"] is not None for r in rep["reruns"]) and rep["consistent"]


def test_verify_calls_a_drifted_recording_inconsistent(recorded_synth, tmp_path):
    import shutil

    import pandas as pd

    drifted = tmp_path / "drifted"
    shutil.copytree(recorded_synth, drifted)
    runs = pd.read_csv(drifted / "runs.csv")
    runs["score"] = runs["score"] + 0.1  # ten seed-sds away from what the protocol gives
    runs.to_csv(drifted / "runs.csv", index=False, float_format="%.15g")
    proc = cli("verify", "--suite", drifted, "--runs", "3", "--runner", "replay", check=False)
    assert proc.returncode == 1, proc.stderr
    assert "bit for bit: 0 of 3" in proc.stdout and "NOT consistent with the recording" in proc.stdout


def test_verify_bad_input_is_one_line(recorded_synth, tmp_path):
    import shutil

    orphan = tmp_path / "orphan"
    shutil.copytree(recorded_synth, orphan)
    card = yaml.safe_load((orphan / "card.yaml").read_text())
    card["protocol"]["recorded_from"] = "gone-live"
    (orphan / "card.yaml").write_text(yaml.safe_dump(card))
    one_line_error(
        cli("verify", "--suite", orphan, "--runner", "replay", check=False),
        "recorded from 'gone-live'",
        "pass --live FOLDER",
    )
    one_line_error(
        cli("verify", "--suite", orphan, "--runner", "replay", "--live", "synth-bump-8", check=False),
        "is suite 'synth-bump-8'",
        "recorded from 'gone-live'",
    )
    one_line_error(cli("verify", "--suite", "synth-bowl-5", check=False), "not a recorded suite", "recorded suites:")
    one_line_error(
        cli("verify", "--suite", recorded_synth, "--runs", "0", "--runner", "replay", check=False),
        "--runs must be an integer >= 1, got 0",
    )
    one_line_error(cli("verify", "--suite", recorded_synth, check=False), "names a runner", "--runner")
    one_line_error(cli("verify", "--suite", "minimodo-tnyi", check=False), "did you mean")


def test_cpu_runs_record_what_decides_bit_for_bit_reproduction(tmp_path):
    from harness.provenance import machine_provenance, weights_sha256

    torch = pytest.importorskip("torch")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "config.json").write_text("{}")
    prov = machine_provenance(tmp_path)
    assert prov["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert prov["base_weights_sha256"] == weights_sha256(tmp_path) and len(prov["base_weights_sha256"]) == 64
    (tmp_path / "config.json").write_text('{"a": 1}')  # not weights: the hash stays
    assert weights_sha256(tmp_path) == prov["base_weights_sha256"]
    (tmp_path / "model.safetensors").write_bytes(b"weightz")
    assert weights_sha256(tmp_path) != prov["base_weights_sha256"]
    assert weights_sha256(tmp_path / "missing") is None
