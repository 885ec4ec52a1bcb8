"""Phases of one paper-protocol-tiny pilot run on CPU: the GPU runner's commands (vLLM) beside the
plain CPU runner's code (`harness.training.train_and_evaluate`, transformers generation, no vLLM) on
the same tiny model, data, steps and completions. A script, not a test (issue 14's benchmark):

    .venv-gpu-cpu/bin/python tests/benchmarks/paper_protocol_tiny_phases.py gpu   # the pilot run, vLLM
    .venv/bin/python tests/benchmarks/paper_protocol_tiny_phases.py cpu           # the same, no vLLM

Each prints one JSON line of phase seconds. `gpu` runs `modomodo run --suite paper-protocol-tiny
--runner gpu` in a fresh run folder (the assets are built once and cached: pass --fresh-assets to
time their build too). `cpu` trains the same base (the assets' model folder) for the protocol's steps
with 12 completions per step, then evaluates the same numbers of items with greedy transformers
generation (in-domain: the in-domain test sets; the two training sets without a test set, COCO and
GeoQAV, are evaluated on training rows: the figure is time, not a score).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
MIXTURE = "COCO=0.2,LISA=0.2,GeoQAV=0.2,SAT=0.2,ScienceQA=0.2"


def gpu(fresh_assets: bool) -> dict:
    env = {**os.environ, "MODOMODO_GPU_RUNS": tempfile.mkdtemp(prefix="pilot-"), "PYTHONPATH": str(ROOT)}
    if fresh_assets:
        env["MODOMODO_CACHE"] = tempfile.mkdtemp(prefix="assets-")
    t0 = time.perf_counter()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            "--suite",
            "paper-protocol-tiny",
            "--runner",
            "gpu",
            "--mixture",
            MIXTURE,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    res = json.loads(out.stdout[out.stdout.index("{") :])
    assert res["status"] == "ok", res.get("reason")
    c = res["cost"]
    return {
        "runner": "gpu (vLLM colocate, lmms-eval)",
        "wall": round(wall, 1),
        "prepare": c["t_prepare"],
        "train_command": c["t_train"],
        "train_imports_data_model": c.get("t_setup"),
        "trainer_and_vllm_engine_start": c["t_trainer_and_engine_start"],
        "train_steps": c["t_train_steps"],
        "s_per_step": c["s_per_step"],
        "vllm_generate_in_steps": c.get("t_vllm_generate"),
        "evaluate_command": c["t_evaluate"],
        "eval_imports": c.get("eval_t_imports"),
        "eval_vllm_engine_start": c["eval_t_engine_start"],
        "eval_in_domain": c["eval_t_in_domain"],
        "eval_out_of_domain_lmms_eval": c["eval_t_out_of_domain"],
        "steps": c["steps"],
        "rollouts": c["rollouts"],
        "scores": {k: round(v, 3) for k, v in res["scores"].items()},
    }


class _Source:
    """The assets' datasets for harness.training: PaperSource for training and in-domain tests; the
    lmms-eval tasks' data for the out-of-domain sets; training rows for sets without a test split."""

    name = "paper-tiny"

    def __init__(self, protocol):
        from harness.runners.gpu_job import _paper_source

        self.protocol, self.paper = protocol, _paper_source(protocol)

    def train_rows(self, dataset, n, seed):
        return self.paper.train_rows(dataset, n, seed)

    def test_rows(self, dataset, n):
        from datasets import load_from_disk

        from tasks.paper_datasets import PAPER_INSTRUCTION

        if dataset in self.protocol.datasets.test_in:
            return self.paper.test_rows(dataset, n)
        ood = {k: v["task"] for k, v in self.protocol.evaluation.out_of_domain.items()}
        if dataset in ood:
            folder = Path(self.protocol.evaluation.lmms_include_path).parent / "ood" / ood[dataset]
            docs = load_from_disk(str(folder))["test"].select(range(n))
            return [
                {
                    "image": d["image"],
                    "prompt": [{"role": "user", "content": f"{d['question']}\n{PAPER_INSTRUCTION}"}],
                    "solution": d["answer"],
                    "task": None,
                }
                for d in docs
            ]
        return list(self.paper.train_rows(dataset, n, 0))


def cpu() -> dict:
    import dataclasses

    from harness.protocols.gpu import load_protocol
    from harness.training.assets import assets_dir
    from harness.training.config import ProtocolConfig
    from harness.training.run import train_and_evaluate

    p = load_protocol("paper-protocol-tiny")
    folder = assets_dir(p.assets.builder)
    if not (folder / "assets.json").is_file():  # built by the gpu environment (it needs torchvision)
        folder = sorted((folder.parent).glob("paper-protocol-tiny-*"), key=lambda f: f.stat().st_mtime)[-1]
    p = p.resolved(folder)
    tr = p.training
    cfg = ProtocolConfig(
        name="paper-protocol-tiny-cpu",
        model=p.model.base,
        train_domains=tuple(p.datasets.train),
        ood_sets=tuple(p.evaluation.out_of_domain),
        steps=tr.max_steps,
        prompts_per_step=p.prompts_per_update,
        num_generations=tr.num_generations,
        max_completion_length=tr.max_completion_length,
        learning_rate=tr.learning_rate,
        beta=tr.beta,
        temperature=tr.temperature,
        loss_type=tr.loss_type,
        scale_rewards=tr.scale_rewards,
        reward_weights=tuple(tr.reward_weights),
        pool_per_domain=10**9,
        eval_n=p.evaluation.limit,
        eval_batch=p.evaluation.batch_size,
        threads=2,
    )
    cfg = dataclasses.replace(cfg)
    t0 = time.perf_counter()
    res = train_and_evaluate(cfg, {d: 0.2 for d in cfg.train_domains}, 0, source=_Source(p))
    wall = time.perf_counter() - t0
    t = res.timings
    return {
        "runner": "cpu (harness.training, transformers generation)",
        "wall": round(wall, 1),
        "imports": t["imports"],
        "model_load": t["build"],
        "data": t["data"],
        "train_steps": t["train"],
        "s_per_step": t.get("s_per_step"),
        "evaluate": t["eval"],
        "steps": res.steps,
        "rollouts": res.rollouts,
        "eval_items": cfg.eval_n * (len(cfg.train_domains) + len(cfg.ood_sets)),
    }


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in ("gpu", "cpu"):
        raise SystemExit(__doc__)
    print(json.dumps(gpu("--fresh-assets" in sys.argv) if mode == "gpu" else cpu()))
