"""The memory plan of a GPU protocol (harness/protocols/memory_plan.py): shown by --dry-run, a protocol that cannot fit
refused before any job, the 3B and 7B protocols sharded so that they fit 80 GB GPUs."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main
from harness.protocols.memory_plan import DoesNotFit, check_fits, model_shape, plan
from harness.protocols.gpu import load_protocol, registered

PAPER_MIX = "COCO=0.2,LISA=0.2,GeoQAV=0.2,SAT=0.2,ScienceQA=0.2"
GPU_PROTOCOLS = [n for n in registered() if load_protocol(n).device == "cuda"]


def test_parameter_counts_match_the_published_model_sizes():
    # the model cards' sizes: Qwen2-VL-2B 2.21B (vision encoder 675M incl. merger), Qwen2.5-VL-7B 8.29B
    two = model_shape("Qwen/Qwen2-VL-2B-Instruct")
    assert abs(two.params - 2.21e9) < 0.01e9 and 0.6e9 < two.vision_params < 0.7e9
    assert abs(model_shape("Qwen/Qwen2.5-VL-7B-Instruct").params - 8.29e9) < 0.01e9


def test_plan_items_follow_the_byte_rules():
    p = load_protocol("paper-qwen2vl-2b")
    mp = plan(p)
    s = mp.shape
    trainable = s.params - s.vision_params
    # fp32 masters: 4 bytes per parameter; AdamW: two fp32 moments per trainable parameter; ref model in bf16
    assert mp.train_gpu["parameters"] == pytest.approx(s.params * 4 / 1e9)
    assert mp.train_gpu["optimizer"] == pytest.approx(trainable * 8 / 1e9)
    assert mp.train_gpu["reference_model"] == pytest.approx(s.params * 2 / 1e9)
    # completion logits: 4 sequences x 1024 tokens x vocab 151936 x (fp32 + its grad + bf16)
    assert mp.train_gpu["logits"] == pytest.approx(4 * 1024 * 151936 * 10 / 1e9)
    fsdp = plan(dataclasses.replace(p, training=dataclasses.replace(p.training, distributed="fsdp")))
    assert fsdp.train_gpu["optimizer"] == pytest.approx(trainable * 8 / 3 / 1e9)  # sharded over 3 training GPUs
    assert "ddp_buckets" not in fsdp.train_gpu


@pytest.mark.parametrize("name", GPU_PROTOCOLS)
def test_every_shipped_gpu_protocol_fits_80gb(name):
    p = load_protocol(name)
    assert p.memory.gpu_memory_gb == 80
    assert check_fits(p).fits


def test_3b_and_7b_shard_and_would_not_fit_under_ddp_with_fp32_masters():
    for name in ("qwen25vl-3b", "qwen25vl-7b"):
        p = load_protocol(name)
        assert p.training.distributed == "fsdp" and p.training.master_weights == "fp32"
        ddp = dataclasses.replace(p, training=dataclasses.replace(p.training, distributed="ddp"))
        with pytest.raises(DoesNotFit, match=r"needs about \d+\.\d GB .* of 73\.6 usable"):
            check_fits(ddp)


def test_dry_run_prints_the_plan_and_the_precision():
    out = CliRunner().invoke(
        main,
        [
            "run",
            "--suite",
            "paper-qwen2vl-2b",
            "--mixture",
            PAPER_MIX,
            "--runner",
            "gpu",
            "--dry-run",
            "--protocol-file",
            str(registered()["qwen25vl-7b"]),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "# memory plan (8.292B parameters" in out.output and "-> fits" in out.output
    assert "# precision: parameters and AdamW states in float32 (master weights)" in out.output
    assert "sharded by FSDP" in out.output


def _oversized(tmp_path):
    data = yaml.safe_load(registered()["qwen25vl-7b"].read_text())
    data["training"]["distributed"] = "ddp"
    path = tmp_path / "7b-ddp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_protocol_that_cannot_fit_is_refused_before_any_job(tmp_path):
    bad = _oversized(tmp_path)
    dry = CliRunner().invoke(
        main,
        [
            "run",
            "--suite",
            "paper-qwen2vl-2b",
            "--mixture",
            PAPER_MIX,
            "--runner",
            "gpu",
            "--dry-run",
            "--protocol-file",
            str(bad),
        ],
    )
    assert dry.exit_code == 0 and "DOES NOT FIT" in dry.output and "would refuse" in dry.output
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
            "--protocol-file",
            str(bad),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert out.exit_code == 2, out.output
    assert "does not fit its GPUs" in out.output and "GB" in out.output
    assert not (tmp_path / "o" / "jobs").exists()  # nothing was submitted
    run = CliRunner().invoke(
        main,
        ["run", "--suite", "paper-qwen2vl-2b", "--mixture", PAPER_MIX, "--runner", "gpu", "--protocol-file", str(bad)],
    )
    assert run.exit_code == 2 and "does not fit its GPUs" in run.output
