"""FSDP's code path on CPU: gloo, 2 processes, the tiny Qwen2-VL, fp32 shards computed in bf16 (harness/runners/fsdp_probe.py).
accelerate 1.16 enables its FSDP plugin only on GPU-type distributed modes, so the trainer-level path
(GRPOConfig(fsdp=True, fsdp_config=...)) is checked as configuration here and runs for real only on GPUs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.protocols.gpu import load_protocol

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_fsdp_shards_fp32_masters_over_two_gloo_processes(tmp_path):
    out = tmp_path / "fsdp.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    from harness.runners.gpu_ports import free_ports

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(free_ports(1)[0]),
            "-m",
            "harness.runners.fsdp_probe",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = json.loads(out.read_text())
    assert [r["rank"] for r in ranks] == [0, 1] and {r["backend"] for r in ranks} == {"gloo"}
    for r in ranks:
        assert r["is_dtensor"] and r["local_numel"] * 2 == r["full_numel"]  # each process holds half
        assert r["shard_dtype"] == "torch.float32" and r["fsdp_units"] >= 3  # decoder layers, vision blocks, root
        first = r["steps"][0]
        # AdamW's first step on fp32 shards moves each entry by the learning rate
        assert first["fraction_moved"] > 0.9 and first["median_abs_update"] == pytest.approx(1e-6, rel=0.02)


def test_fsdp_protocols_configure_the_trainer_for_fsdp2(tmp_path):
    pytest.importorskip("trl")
    import dataclasses

    from harness.runners import gpu_config

    p = load_protocol("qwen25vl-7b")
    # bf16 needs a GPU to build TRL's config; one process here: 6 completions so TRL's group-size check holds
    p = dataclasses.replace(
        p,
        training=dataclasses.replace(
            p.training, bf16=False, per_device_train_batch_size=6, gradient_accumulation_steps=1
        ),
    )
    args = gpu_config.grpo_config(p, gpu_config.training_config(p, tuple(p.datasets.train)), 0, str(tmp_path))
    assert args.fsdp is True and args.fsdp_plugin_args["fsdp_version"] == 2
    assert args.fsdp_plugin_args["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert args.fsdp_plugin_args["activation_checkpointing"] is True and not args.gradient_checkpointing
    assert args.model_init_kwargs == {"dtype": "bfloat16"}  # the KL reference in bf16
