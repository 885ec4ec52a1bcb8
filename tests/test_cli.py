"""The CLI contract: command names, flags, outputs and error messages."""

import json
import textwrap

import pandas as pd
import pytest

from tests.conftest import cli

UNIFORM = "COCO=0.2,LISA=0.2,GeoQAV=0.2,SAT=0.2,ScienceQA=0.2"


def test_suites_and_strategies_list_one_line_each():
    out = cli("suites").stdout.splitlines()
    assert any(line.startswith("paper-qwen2vl-2b ") for line in out) and len(out) >= 4
    names = [line.split()[0] for line in cli("strategies").stdout.splitlines()]
    assert {"uniform", "random", "seed", "quadratic"} <= set(names)


def test_run_prints_the_run_result_as_json():
    result = json.loads(cli("run", "--suite", "paper-qwen2vl-2b", "--mixture", UNIFORM).stdout)
    assert result["scores"]["Out_Score"] == 0.4609 and result["source"] == "recorded" and result["status"] == "ok"
    assert result["provenance"]["protocol"] == result["spec"]["protocol"]


def test_run_normalize_and_choice_options_list_their_values():
    result = json.loads(
        cli(
            "run",
            "--suite",
            "paper-qwen2vl-2b",
            "--normalize",
            "--mixture",
            "COCO=20,LISA=20,GeoQAV=20,SAT=20,ScienceQA=20",
        ).stdout
    )
    assert (
        result["scores"]["Out_Score"] == 0.4609
        and "Mixture.normalized"
        not in cli("run", "--suite", "paper-qwen2vl-2b", "--mixture", "COCO=0.5,LISA=0.6", check=False).stderr
    )
    from harness.cli.common import RUNNER_KINDS
    from harness.runners import RUNNERS

    assert sorted(RUNNERS) == RUNNER_KINDS
    for cmd in ("run", "bench", "sweep"):
        assert "[cpu|gpu|replay]" in cli(cmd, "--help").stdout, cmd


def test_bench_seeds_take_a_count_or_a_range(tmp_path):
    """`--seeds 3` (0..2), `--seeds 0-2` and `--seeds 0,1,2` are the same studies; `--seeds 5-6` two others."""
    base = ["bench", "--suite", "synth-bowl-5", "--strategy", "uniform,random", "--budget", "4", "--quiet"]
    outs = {}
    for spec in ("3", "0-2", "0,1,2", "5-6"):
        out = tmp_path / spec.replace(",", "_")
        cli(*base, "--seeds", spec, "--out", out)
        outs[spec] = pd.read_csv(out / "summary.csv")
        assert json.loads((out / "bench.json").read_text())["seeds"] == ([5, 6] if spec == "5-6" else [0, 1, 2])
    cols = ["suite", "strategy", "budget", "seed", "score"]
    for spec in ("0-2", "0,1,2"):
        pd.testing.assert_frame_equal(outs[spec][cols], outs["3"][cols])
    assert sorted(set(outs["5-6"].seed)) == [5, 6]


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--suite", "paper-qwen2vl-2b", "--mixture", "COCO=0.5,LISA=0.6"], "weights sum to 1.1, not 1"),
        (["run", "--suite", "paper-qwen2vl-2b", "--mixture", "COCO=0.5,LISA=0.6"], "pass --normalize to rescale"),
        (["run", "--suite", "paper-qwen2vl-2b", "--mixture", UNIFORM, "--runner", "replya"], "'replya' is not one of"),
        (["bench", "--suite", "synth-bowl-5", "--seeds", "3-1", "--out", "/tmp/never"], "the range is empty"),
        (["bench", "--suite", "synth-bowl-5", "--seeds", "0", "--out", "/tmp/never"], "at least 1"),
        (["bench", "--suite", "synth-bowl-5", "--seeds", "x", "--out", "/tmp/never"], "--seeds"),
        (["run", "--suite", "paper-qwen2vl-2b", "--mixture", "COCO=-0.5,LISA=1.5"], "'COCO' is negative"),
        (["run", "--suite", "paper-qwen2vl-2b", "--mixture", "COCO=nan,LISA=1"], "'COCO' is nan"),
        (
            ["run", "--suite", "paper-qwen2vl-2b", "--mixture", "COCOA=1"],
            "unknown dataset 'COCOA'; did you mean 'COCO'",
        ),
        (["run", "--suite", "paper-qwen", "--mixture", "A=1"], "unknown suite 'paper-qwen'"),
        (
            ["bench", "--suite", "synth-bowl-5", "--strategy", "quadratik", "--out", "/tmp/never"],
            "unknown strategy 'quadratik'; did you mean 'quadratic'",
        ),
        (
            ["bench", "--suite", "synth-bowl-5", "--budget", "4,x", "--out", "/tmp/never"],
            "--budget must be comma-separated",
        ),
        (
            ["bench", "--suite", "synth-bowl-5", "--strategy-file", "/nonexistent.py", "--out", "/tmp/never"],
            "/nonexistent.py",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_bad_value(args, message):
    proc = cli(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


BAD_STRATEGIES = textwrap.dedent('''
    import numpy as np
    from strategies import Strategy, register

    @register("raiser")
    class Raiser(Strategy):
        description = "raises on its third proposal"
        def propose(self, history, budget):
            if len(history) == 2:
                raise RuntimeError("bug in user code")
            return self.space.uniform()

    @register("garbage")
    class Garbage(Strategy):
        def propose(self, history, budget):
            return {"not": "a mixture"}

    @register("nan-vector")
    class NanVector(Strategy):
        def propose(self, history, budget):
            return self.space.from_vector(np.full(self.space.dim, np.nan))

    class MyDirichlet(Strategy):
        """Undecorated: registered under its lower-cased class name."""
        def propose(self, history, budget):
            rng = np.random.default_rng([self.seed, len(history)])
            return self.space.from_vector(rng.dirichlet(np.ones(self.space.dim)), normalize=True)
''')


def test_strategy_file_and_failing_strategies_are_recorded_not_fatal(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text(BAD_STRATEGIES)
    listed = cli("strategies", "--strategy-file", f).stdout
    assert "mydirichlet" in listed and "raiser" in listed
    out = tmp_path / "out"
    proc = cli(
        "bench",
        "--suite",
        "synth-bowl-5",
        "--strategy",
        "raiser,garbage,nan-vector,mydirichlet,uniform",
        "--budget",
        "4",
        "--seeds",
        "2",
        "--out",
        out,
        "--strategy-file",
        f,
        "--workers",
        "2",
        "--quiet",
        codes=(1,),
    )
    s = pd.read_csv(out / "summary.csv")
    assert len(s) == 10
    by = s.set_index(["strategy", "seed"])
    assert (by.loc["raiser", "status"] == "failed").all()
    reason = by.loc[("raiser", 0), "reason"]
    assert reason.startswith("propose raised") and "RuntimeError: bug in user code" in reason
    assert "expected a Mixture or None, got dict" in by.loc[("garbage", 1), "reason"]
    assert "InvalidMixture: weight of dataset 'A' is nan" in by.loc[("nan-vector", 0), "reason"]
    assert (by.loc["mydirichlet", "status"] == "ok").all() and (by.loc["uniform", "status"] == "ok").all()
    assert "failed studies: 6" in proc.stderr and "6 studies failed in this bench" in proc.stderr


def test_bench_writes_the_summary_contract(tmp_path):
    out = tmp_path / "b"
    cli(
        "bench",
        "--suite",
        "paper-qwen2vl-2b",
        "--suite",
        "synth-corner-6",
        "--strategy",
        "all",
        "--budget",
        "4,11",
        "--seeds",
        "3",
        "--out",
        out,
        "--quiet",
    )
    s = pd.read_csv(out / "summary.csv")
    required = "suite,strategy,budget,seed,score,regret,normalized_regret,uniform_score,best_known".split(",")
    assert set(required) <= set(s.columns)
    listed = [line.split() for line in cli("strategies").stdout.splitlines()]
    n_strategies = sum(1 for parts in listed if parts[1] == "offline")  # "all" in an offline track: the offline ones
    assert n_strategies >= 19 and {p[0] for p in listed if p[1] == "online"} >= {"dump", "odm", "aioli", "constant"}
    assert len(s) == 2 * n_strategies * 2 * 3
    uni = s[s.strategy == "uniform"]
    assert (uni.score == uni.uniform_score).all()
    assert (s.normalized_regret.dropna() >= -1e-9).all()
    meta = json.loads((out / "bench.json").read_text())
    assert {x["name"] for x in meta["suites"]} == {"paper-qwen2vl-2b", "synth-corner-6"}
    t = pd.read_csv(out / "trajectories.csv")
    assert (
        set(t.strategy) <= set(s.strategy)
        and (t.groupby(["suite", "strategy", "budget", "seed"]).size() <= t.budget.max()).all()
    )
