"""The cpu runner for real: tiny Qwen2-VL, TRL GRPO, evaluation, through `modomodo run` and `bench`.

The end-to-end test builds the smoke base model from an empty cache (unless $MODOMODO_CACHE is
set, so that a developer's repeated runs reuse it), trains a few GRPO steps and evaluates on a few
examples per benchmark.
"""

import json
import os
from pathlib import Path

import pytest
import yaml

pytest.importorskip("trl")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = [
    "grounding",
    "referring",
    "geometry",
    "spatial",
    "science",
    "counting",
    "chart",
    "novel_referring",
    "column",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return os.environ.get("MODOMODO_CACHE") or str(tmp_path_factory.mktemp("modomodo-cache"))


def smoke_suite(folder: Path, name="minimodo-smoke", **overrides) -> Path:
    card = yaml.safe_load((ROOT / "baselines" / "minimodo-tiny-live" / "card.yaml").read_text())
    card["name"] = name
    card["protocol_config"] = {"preset": "smoke", **overrides}
    card["oracle"] = {"seeds": 1}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    return folder


def test_run_trains_and_evaluates_for_real(run_cli, tmp_path, cache):
    suite = smoke_suite(tmp_path / "smoke")
    env = {"MODOMODO_CACHE": cache, "MODOMODO_ORACLE_STORE": str(tmp_path / "oracle")}
    proc = run_cli(
        "run",
        "--suite",
        suite,
        "--runner",
        "cpu",
        "--mixture",
        "grounding=0,referring=0,geometry=0,spatial=0.5,science=0.5",
        "--seed",
        "3",
        env=env,
        timeout=240,
    )
    res = json.loads(proc.stdout)  # stdout is the RunResult and nothing else
    assert res["status"] == "ok" and res["source"] == "trained" and res["metric"] == "Out_Score"
    for b in BENCHMARKS + ["In_Score", "Out_Score"]:
        assert 0.0 <= res["scores"][b] <= 1.0, b
    assert res["scores"]["In_Score"] == pytest.approx(sum(res["scores"][b] for b in BENCHMARKS[:5]) / 5)
    assert res["scores"]["Out_Score"] == pytest.approx(sum(res["scores"][b] for b in BENCHMARKS[5:]) / 4)
    assert res["cost"]["rollouts"] == 4 * 2 * 4  # steps × prompts × generations
    assert res["cost"]["t_train"] > 0 and res["cost"]["seconds"] < 120
    assert res["provenance"]["base_model"].startswith("tiny-h64@")
    # what decides bit-for-bit reproduction elsewhere (issue 18), and the paper's reward rule (smoke's default)
    import torch

    assert res["provenance"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert len(res["provenance"]["base_weights_sha256"]) == 64 and res["provenance"]["reward_rule"] == "paper"
    assert list(Path(cache, "models").glob("tiny-h64-*/base_info.json")), "the base model is cached"

    # Same seed, same mixture, second process: the cached base is reused and the result is identical.
    again = json.loads(
        run_cli(
            "run",
            "--suite",
            suite,
            "--runner",
            "cpu",
            "--mixture",
            "grounding=0,referring=0,geometry=0,spatial=0.5,science=0.5",
            "--seed",
            "3",
            env=env,
            timeout=240,
        ).stdout
    )
    assert again["cost"]["t_build"] < 15
    assert {k: v for k, v in again["scores"].items()} == res["scores"]


def test_failed_training_is_a_failed_run_not_a_crash(run_cli, tmp_path, cache):
    suite = smoke_suite(tmp_path / "bad")
    card = yaml.safe_load((suite / "card.yaml").read_text())
    card["protocol_config"]["loss_type"] = "no-such-loss"
    (suite / "card.yaml").write_text(yaml.safe_dump(card))
    proc = run_cli(
        "run",
        "--suite",
        suite,
        "--runner",
        "cpu",
        "--mixture",
        "grounding=0,referring=0,geometry=0,spatial=0,science=1",
        check=False,
        env={"MODOMODO_CACHE": cache},
        timeout=240,
    )
    assert proc.returncode == 1
    res = json.loads(proc.stdout)
    assert res["status"] == "failed" and "training failed" in res["reason"]


def test_cpu_runner_rejects_suites_without_protocol(run_cli):
    proc = run_cli("run", "--suite", "synth-bowl-5", "--runner", "cpu", "--mixture", "A=1,B=0,C=0,D=0,E=0", check=False)
    assert proc.returncode == 2 and "protocol_config" in proc.stderr


def test_bench_with_cpu_runner_is_resumable(run_cli, tmp_path, cache):
    suite = smoke_suite(tmp_path / "smoke")
    env = {"MODOMODO_CACHE": cache, "MODOMODO_ORACLE_STORE": str(tmp_path / "oracle")}
    out = tmp_path / "bench"
    args = (
        "bench",
        "--suite",
        suite,
        "--runner",
        "cpu",
        "--strategy",
        "uniform,random",
        "--budget",
        "1",
        "--seeds",
        "1",
        "--out",
        out,
        "--quiet",
    )
    first = run_cli(*args, env=env, timeout=400)
    assert "failed studies: 0" in first.stderr
    import pandas as pd

    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["strategy"]) == {"uniform", "random"} and (summary["status"] == "ok").all()
    assert summary["score"].between(0, 1).all()
    # the uniform study's recommendation is scored by the oracle: the mean of K runs, stored and reused
    assert len(list((tmp_path / "oracle" / "runs").rglob("*.json"))) >= 1
    second = run_cli(*args, env=env, timeout=400)
    assert "2 studies (2 already done)" in second.stderr
    assert pd.read_csv(out / "summary.csv")["score"].tolist() == summary["score"].tolist()


def test_sweep_trains_for_real_and_exports_a_recorded_suite(run_cli, tmp_path, cache):
    """The path that recorded minimodo-tiny, at smoke scale: sweep with the cpu runner in two worker
    processes, resume, export, benchmark on the export."""
    import pandas as pd

    suite = smoke_suite(tmp_path / "smoke", name="minimodo-smoke-live", eval_p_correct=True)
    env = {"MODOMODO_CACHE": cache}
    store = tmp_path / "store"
    args = (
        "sweep",
        "--suite",
        suite,
        "--mixtures",
        "3",
        "--seeds",
        "0-1",
        "--workers",
        "2",
        "--store",
        store,
        "--quiet",
    )
    first = run_cli(*args, env=env, timeout=900)  # builds the smoke base when this test runs alone
    assert "3 mixtures x 2 seeds = 6 runs, 0 already" in first.stderr and "ran 6 (0 failed)" in first.stderr
    assert "ran 0" in run_cli(*args, env=env, timeout=120).stderr
    out = tmp_path / "rec"
    run_cli("suite", "from-sweep", "--store", store, "--suite", suite, "--name", "smoke-rec", "--out", out, env=env)
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 6 and set(runs["seed"]) == {0, 1} and runs["Out_Score"].between(0, 1).all()
    # the p_correct twins travel from the runs into the suite and its signal block; format/train logs do not
    assert runs["Out_Score_p"].between(0, 1).all() and "p_correct_counting" in runs.columns
    assert not [c for c in runs.columns if "/" in c]
    card = yaml.safe_load((out / "card.yaml").read_text())
    assert {"Out_Score", "In_Score", "Out_Score_p", "In_Score_p"} <= set(card["signal"])
    assert card["protocol"]["reward_rule"] == "paper" and "bit for bit" in card["reproducibility"]
    assert list(card["sweep_provenance"]["cpu_capability"].values()) == [6]
    assert len(card["sweep_provenance"]["base_weights_sha256"]) == 1
    # same machine, same weights: a re-run reproduces its recorded row bit for bit
    verified = run_cli("verify", "--suite", out, "--live", suite, "--runs", "1", env=env, timeout=300).stdout
    assert "bit for bit: 1 of 1 re-runs" in verified and "CONSISTENT" in verified
    bench = run_cli(
        "bench",
        "--suite",
        out,
        "--strategy",
        "seed,uniform",
        "--budget",
        "2",
        "--seeds",
        "2",
        "--out",
        tmp_path / "b",
        "--quiet",
        env=env,
    )
    assert "failed studies: 0" in bench.stderr


def test_p_correct_is_the_probability_of_the_gold_completion(cache, monkeypatch):
    """answer_probability on the real (warmed-up) smoke base: the batched, left-padded value equals
    the product of next-token probabilities computed one token at a time; disjoint answers sum to
    at most 1; an answer with probability above 1/2 is the greedy answer."""
    import torch

    from harness.training.config import PRESETS
    from harness.training.evaluate import answer_probability, evaluate_rows, generate
    from harness.training.model import render_prompts
    from harness.training.run import load_base
    from tasks.minimodo import test_split
    from tasks.prompts import make_completion

    monkeypatch.setenv("MODOMODO_CACHE", cache)
    model, processor, _, _ = load_base(PRESETS["smoke"])
    rows = test_split("science", 12) + test_split("counting", 12)
    p = answer_probability(model, processor, rows, batch=8)
    assert all(0.0 < v <= 1.0 for v in p)
    assert answer_probability(model, processor, rows[:3], batch=1) == pytest.approx(p[:3], rel=1e-4)

    tok = processor.tokenizer
    row = rows[0]
    enc = processor(text=render_prompts(processor, [row]), images=[row["image"]], return_tensors="pt")
    target = tok(make_completion(row["solution"]) + tok.eos_token, add_special_tokens=False)["input_ids"]
    prob = 1.0
    with torch.no_grad():  # one token at a time, no padding: the definition, computed the slow way
        for t in target:
            prob *= float(torch.softmax(model(**enc).logits[0, -1].float(), -1)[t])
            # every per-token tensor grows by one (attention 1, token type 0 = text)
            grown = {"input_ids": t, "attention_mask": 1, "mm_token_type_ids": 0, "token_type_ids": 0}
            for key, value in grown.items():
                if key in enc:
                    enc[key] = torch.cat([enc[key], torch.tensor([[value]], dtype=enc[key].dtype)], dim=1)
    assert p[0] == pytest.approx(prob, rel=1e-3)

    options = [dict(rows[0], solution=letter) for letter in "ABCD"]
    assert sum(answer_probability(model, processor, options)) <= 1.0 + 1e-6
    texts = generate(model, processor, rows, max_new_tokens=24)
    for v, text, r in zip(p, texts, rows):
        if v > 0.5:
            assert text.strip() == make_completion(r["solution"]), (v, text, r["solution"])
    scored = evaluate_rows(model, processor, rows, max_new_tokens=24, p_correct=True)
    assert scored["p_correct"] == pytest.approx(sum(p) / len(p), rel=1e-4)
