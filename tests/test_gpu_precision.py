"""fp32 master weights (training.master_weights, harness/protocols/precision.py): GRPO steps at lr 1e-6 move the policy by
what an fp32 optimiser moves it. Before, every protocol trained the bf16-loaded model in place and most updates
rounded away."""

from __future__ import annotations

import dataclasses

import pytest

from harness.protocols.precision import rounding_loss
from harness.protocols.gpu import load_protocol


def test_rounding_emulation_matches_bf16_spacing():
    import torch

    # bf16 keeps 8 significant bits: around 0.02 (in [2^-6, 2^-5)) the spacing is 2^-13 ~ 1.22e-4,
    # so an update of 1e-6 rounds away while 1e-4 (above half the spacing) survives
    p = torch.full((1000,), 0.02)
    assert rounding_loss(p, torch.full_like(p, 1e-6), torch.bfloat16) == 1.0
    assert rounding_loss(p, torch.full_like(p, 1e-4), torch.bfloat16) == 0.0
    assert rounding_loss(p, torch.full_like(p, 1e-6), torch.float32) == 0.0
    # layer-norm weights are 1.0: spacing 2^-7, every realistic update vanishes in bf16
    assert rounding_loss(torch.ones(10), torch.full((10,), 1e-3), torch.bfloat16) == 1.0


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    pytest.importorskip("trl")
    from harness.training.config import BaseModelConfig
    from harness.training.bases import build_random_model

    folder = tmp_path_factory.mktemp("tiny-policy")
    # std-0.02 init, the magnitude of real checkpoints' weights
    model, processor = build_random_model(BaseModelConfig(hidden=64, layers=2, heads=4, warmup_steps=0, init="default"))
    model.save_pretrained(folder)
    return folder, processor


def _probe(folder, processor, master_weights: str):
    from harness.runners.precision_probe import grpo_probe, probe_protocol

    p = load_protocol("paper-qwen2vl-2b")  # the shipped file: bf16 model, lr 1e-6, fp32 master weights
    p = dataclasses.replace(p, training=dataclasses.replace(p.training, master_weights=master_weights))
    p = probe_protocol(
        p,
        folder,
        steps=2,
        num_generations=4,
        completions_per_step=4,
        max_completion_length=8,
        learning_rate=1e-6,
        device="cpu",
    )
    return grpo_probe(p, processor, steps=2)


def test_grpo_at_lr_1e6_moves_the_parameters_like_an_fp32_optimiser(tiny_model):
    folder, processor = tiny_model
    got = _probe(folder, processor, load_protocol("paper-qwen2vl-2b").training.master_weights)
    assert got["param_dtype_seen"] == "torch.float32"
    first = got["per_step"][0]
    # AdamW's first step moves each entry by lr * g / (|g| + eps): lr, for every entry with a real gradient
    assert first["fraction_moved"] > 0.9, got
    assert first["median_abs_update"] == pytest.approx(1e-6, rel=0.02), got


def test_without_master_weights_the_bf16_updates_round_away(tiny_model):
    folder, processor = tiny_model
    got = _probe(folder, processor, "model")
    assert got["param_dtype_seen"] == "torch.bfloat16"
    assert got["per_step"][0]["fraction_moved"] < 0.2, got
