"""Issue 29, item 4: every bad input it lists is a one-line status-2 error naming the bad value (duplicates:
de-duplicated with a note), and loses nothing already stored. In-process through click's runner (the real
command functions, the real loaders), so each case costs milliseconds, not an interpreter start."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main

BOWL = ["--suite", "synth-bowl-5", "--strategy", "uniform", "--quiet"]


def invoke(*args, cwd: Path | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def one_line(result, *needles) -> str:
    """Status 2, one line on stderr, naming every needle."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# -- bench ------------------------------------------------------------------------------------------------
def test_a_huge_seed_range_is_refused_before_it_is_built(tmp_path):
    one_line(
        invoke("bench", *BOWL, "--budget", "4", "--seeds", "0-100000000", "--out", tmp_path / "o"),
        "100,000,001 seeds",
        "at most 100,000",
    )
    one_line(
        invoke("bench", *BOWL, "--budget", "4", "--seeds", "100000000", "--out", tmp_path / "o"), "at most 100,000"
    )


@pytest.mark.parametrize(
    "flag, value, needle",
    [
        ("--budget", "", "--budget must name at least one budget, got ''"),
        ("--budget", "1_0", "'1_0' is not one"),
        ("--budget", "inf", "'inf' is not one"),
        ("--budget", "20000", "at most 10,000"),
        ("--seeds", "1_0", "'1_0'"),
        ("--seeds", "1_0-2", "'1_0-2'"),
    ],
)
def test_bench_numbers_are_plain_and_bounded(tmp_path, flag, value, needle):
    args = {"--budget": "4", "--seeds": "1"} | {flag: value}
    one_line(
        invoke("bench", *BOWL, "--budget", args["--budget"], "--seeds", args["--seeds"], "--out", tmp_path / "o"),
        needle,
    )


def test_duplicates_are_run_once_with_a_note(tmp_path):
    out = tmp_path / "o"
    r = invoke(
        "bench",
        "--suite",
        "synth-bowl-5",
        "--suite",
        "synth-bowl-5",
        "--strategy",
        "uniform,uniform",
        "--budget",
        "4,4",
        "--seeds",
        "1,1,2",
        "--out",
        out,
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    for flag in ("--suite synth-bowl-5", "--strategy uniform", "--budget 4", "--seeds 1"):
        assert f"note: {flag} given more than once; each is run once" in r.stderr
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 2 and sorted(summary.seed) == [1, 2]


@pytest.mark.parametrize("make", ["file-in-the-way", "proc"])
def test_an_unwritable_out_is_one_line_before_any_work(tmp_path, make):
    if make == "file-in-the-way":
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "results"
    else:
        out = Path("/proc/modomodo-results")
    one_line(invoke("bench", *BOWL, "--budget", "4", "--seeds", "1", "--out", out), "cannot write to", str(out))
    one_line(
        invoke(
            "sweep",
            "--suite",
            "synth-bowl-5",
            "--runner",
            "replay",
            "--mixtures",
            "2",
            "--seeds",
            "1",
            "--store",
            out,
            "--quiet",
        ),
        "cannot write to",
    )


def test_a_binary_protocol_file_is_refused(tmp_path):
    f = tmp_path / "protocol.yaml"
    f.write_bytes(b"\x00\x01\x02binary\xff")
    one_line(
        invoke("bench", *BOWL, "--budget", "4", "--seeds", "1", "--protocol-file", f, "--out", tmp_path / "o"),
        "--protocol-file",
        "not a text file",
    )
    f.write_text("- just\n- a list\n")
    one_line(
        invoke("run", "--suite", "synth-bowl-5", "--mixture", "A=0.2,B=0.2,C=0.2,D=0.2,E=0.2", "--protocol-file", f),
        "not a mapping",
    )


# -- run ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mixture, needles",
    [
        ("A=1_0,B=0,C=0,D=0,E=0", ["'1_0'", "not a plain number"]),
        ("A=0.5,B=0.5", ["gives no weight to C, D, E", "=0"]),
    ],
)
def test_run_mixture_is_plain_and_complete(mixture, needles):
    one_line(invoke("run", "--suite", "synth-bowl-5", "--mixture", mixture), *needles)


def test_run_on_a_pool_only_suite_refuses_an_unrecorded_mixture_at_once():
    line = one_line(
        invoke("run", "--suite", "paper-qwen2vl-2b", "--mixture", "COCO=0.3,LISA=0.1,GeoQAV=0.2,SAT=0.2,ScienceQA=0.2"),
        "is not recorded in 'paper-qwen2vl-2b'",
        "fails the fidelity gate",
        "the nearest is",
    )
    assert "COCO=" in line.split("the nearest is")[1]
    ok = invoke("run", "--suite", "paper-qwen2vl-2b", "--mixture", "COCO=0.2,LISA=0.2,GeoQAV=0.2,SAT=0.2,ScienceQA=0.2")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["scores"]["Out_Score"] == 0.4609  # the paper's uniform run


# -- suite folders and suite import: one validator -------------------------------------------------------
def _folder(root: Path, runs: str, seed_column: str | None = "seed") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    card = {
        "name": root.name,
        "version": "1",
        "kind": "replay",
        "metric": "acc",
        "goal": "max",
        "datasets": ["a", "b"],
        "weight_columns": {"a": "w_a", "b": "w_b"},
        "score_columns": ["acc"],
    }
    if seed_column:
        card["seed_column"] = seed_column
    (root / "card.yaml").write_text(yaml.safe_dump(card))
    (root / "runs.csv").write_text(runs)
    return root


GOOD = "w_a,w_b,seed,acc\n0.5,0.5,0,0.3\n1,0,0,0.2\n0,1,0,0.1\n"
BAD_TABLES = [
    ("sum-1.7", GOOD.replace("1,0,0,0.2", "1,0.7,0,0.2"), ["line 3 (data row 2)", "sum to 1.7, not 1"]),
    ("dup-mixture-seed", GOOD + "0.5,0.5,0,0.35\n", ["line 5 (data row 4)", "repeats a mixture and seed"]),
    ("huge-score", GOOD.replace("0.3\n", "1e308\n", 1), ["column 'acc'", "line 2", "1e+308", "magnitude"]),
    ("inf-score", GOOD.replace("0.3\n", "inf\n", 1), ["column 'acc'", "line 2", "inf"]),
    (
        "fractional-seed",
        GOOD.replace("1,0,0,0.2", "1,0,1.5,0.2"),
        ["seed column 'seed'", "line 3", "1.5", "whole number"],
    ),
    ("one-mixture", "w_a,w_b,seed,acc\n0.5,0.5,0,0.3\n0.5,0.5,1,0.31\n", ["1 mixture", "at least 2"]),
    ("dup-column", "w_a,w_b,w_b,seed,acc\n0.5,0.5,0.5,0,0.3\n1,0,0,0,0.2\n", ["column 'w_b' appears 2 times"]),
]


@pytest.mark.parametrize("name, runs, needles", BAD_TABLES, ids=[b[0] for b in BAD_TABLES])
def test_a_suite_folder_is_refused_for_what_import_refuses(tmp_path, name, runs, needles):
    folder = _folder(tmp_path / name, runs)
    before = (folder / "runs.csv").read_bytes()
    one_line(invoke("run", "--suite", folder, "--mixture", "a=0.5,b=0.5"), "runs.csv", *needles)
    assert (folder / "runs.csv").read_bytes() == before
    table = tmp_path / f"{name}.csv"
    table.write_text(runs)
    one_line(
        invoke(
            "suite",
            "import",
            table,
            "--name",
            name,
            "--weights",
            "w_a,w_b",
            "--metric",
            "acc",
            "--goal",
            "max",
            "--seed-col",
            "seed",
            "--out",
            tmp_path / "imported",
        ),
        *needles,
    )
    assert not (tmp_path / "imported").exists()


def test_a_binary_table_is_refused(tmp_path):
    table = tmp_path / "t.csv"
    table.write_bytes(b"w_a,w_b,acc\n\x00\x00\x00")
    one_line(
        invoke(
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
            tmp_path / "s",
        ),
        "not a text CSV file",
    )


def test_import_refuses_a_registered_name(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text(GOOD)
    one_line(
        invoke(
            "suite",
            "import",
            table,
            "--name",
            "synth-bowl-5",
            "--weights",
            "w_a,w_b",
            "--metric",
            "acc",
            "--goal",
            "max",
            "--out",
            tmp_path / "s",
        ),
        "'synth-bowl-5' is already registered",
    )


# -- verify -------------------------------------------------------------------------------------------------
def test_verify_refuses_replay_on_a_live_recording_and_caps_runs():
    one_line(
        invoke("verify", "--suite", "minimodo-tiny", "--runner", "replay"),
        "--runner replay cannot re-run 'minimodo-tiny'",
        "minimodo-tiny-live",
    )
    one_line(invoke("verify", "--suite", "minimodo-tiny", "--runs", "100000"), "at most 1000")
    one_line(invoke("verify", "--suite", "minimodo-tiny", "--runs", "999"), "records 192", "at most that many")
