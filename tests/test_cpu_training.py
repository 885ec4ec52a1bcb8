"""Pieces of the training path that need no training: config, mixture sampling, tokenizer, cache keys."""

import dataclasses
from collections import Counter

import pytest

pytest.importorskip("trl")

from harness.training import bases  # noqa: E402
from harness.training import model as tiny  # noqa: E402
from harness.training.config import BASE_MODELS, PRESETS, ProtocolConfig  # noqa: E402
from harness.training.grpo import mixture_dataset  # noqa: E402
from harness.training.run import MiniModoSource  # noqa: E402


def test_protocol_config_from_card_dict():
    cfg = ProtocolConfig.from_dict({"preset": "smoke", "steps": 7, "base": "tiny-h128"})
    assert cfg.steps == 7 and cfg.base == BASE_MODELS["tiny-h128"] and cfg.eval_n == PRESETS["smoke"].eval_n
    cfg = ProtocolConfig.from_dict({"base": {"preset": "tiny-h64", "warmup_steps": 3}})
    assert cfg.base.warmup_steps == 3 and cfg.base.hidden == 64
    with pytest.raises(ValueError, match="unknown setting stpes; did you mean 'steps'"):
        ProtocolConfig.from_dict({"stpes": 3})
    assert "num_generations" in ProtocolConfig.help() and "base.hidden" in ProtocolConfig.help()
    assert cfg.rollouts == cfg.steps * cfg.prompts_per_step * cfg.num_generations
    assert ProtocolConfig().fingerprint() == ProtocolConfig().fingerprint() != cfg.fingerprint()


def _mix(weights, strategy="first_exhausted", steps=100, seed=0):
    cfg = dataclasses.replace(PRESETS["smoke"], steps=steps, prompts_per_step=2, stopping_strategy=strategy)
    return mixture_dataset(cfg, weights, seed, MiniModoSource().train_rows)


def test_mixture_sampling_follows_weights_and_drops_zero_weights():
    ds = _mix({"science": 0.75, "spatial": 0.25, "geometry": 0.0})
    c = Counter(ds["task"])
    assert set(c) == {"science", "spatial"}
    assert 0.65 < c["science"] / len(ds) < 0.85
    # first_exhausted (the paper's rule) stops when the heaviest source runs out: one pass covers training
    assert c["science"] == 200 and len(ds) >= 200
    everything = _mix({"science": 0.75, "spatial": 0.25}, "all_exhausted")
    assert Counter(everything["task"])["spatial"] >= 200
    assert (
        _mix({"science": 0.5, "spatial": 0.5}, seed=1)["solution"] != _mix({"science": 0.5, "spatial": 0.5})["solution"]
    )
    assert _mix({"science": 0.5, "spatial": 0.5})["solution"] == _mix({"science": 0.5, "spatial": 0.5})["solution"]


def test_mixture_errors():
    with pytest.raises(ValueError, match="weight 0"):
        _mix({"science": 0.0})
    with pytest.raises(ValueError, match="does not train on"):
        _mix({"science": 0.5, "coco": 0.5})


def test_tokenizer_is_deterministic_and_answers_are_short():
    a, b = tiny.build_tokenizer(), tiny.build_tokenizer()
    assert a.get_vocab() == b.get_vocab()
    ids = a("<think></think><answer>B</answer>", add_special_tokens=False)["input_ids"]
    assert len(ids) == 5
    box = "<answer>[{'Position': [0, 333, 333, 667], 'Confidence': 1}]</answer>"
    assert a.decode(a(box, add_special_tokens=False)["input_ids"]) == box


def test_base_cache_key_covers_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("MODOMODO_CACHE", str(tmp_path))
    h64, h128 = BASE_MODELS["tiny-h64"], BASE_MODELS["tiny-h128"]
    assert bases.base_hash(h64) == bases.base_hash(dataclasses.replace(h64, name="renamed"))
    assert bases.base_hash(h64) != bases.base_hash(h128)
    assert bases.base_hash(h64) != bases.base_hash(dataclasses.replace(h64, label_noise=0.31))
    assert bases.base_dir(h64).parent == tmp_path / "models"


def test_random_model_builds_in_seconds_with_fan_in_init():
    import time

    t0 = time.perf_counter()
    cfg = dataclasses.replace(BASE_MODELS["tiny-h64"], warmup_steps=0)
    model, processor = bases.build_random_model(cfg)
    assert time.perf_counter() - t0 < 30
    n = sum(p.numel() for p in model.parameters())
    assert 1e5 < n < 1e6
    w = model.model.visual.patch_embed.proj.weight
    assert abs(float(w.detach().std()) - 1 / w[0].numel() ** 0.5) < 0.2 / w[0].numel() ** 0.5
