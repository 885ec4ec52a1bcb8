"""Issue 27, item 1: base model families behind one builder (harness/training/bases.py).

The five-domain Qwen2-VL bases keep the identity their recorded runs carry; the tiny Idefics3 family
builds without torchvision and trains under TRL's GRPOTrainer through the same runner code."""

import dataclasses
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

from harness.training import bases  # noqa: E402
from harness.training.config import BASE_MODELS, PRESETS, ProtocolConfig  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def test_recorded_bases_keep_their_identity():
    """The base_model label of the pool sweep's runs (name@hash) is what the dispatcher resolves today,
    when the package versions are the recorded ones (the hash covers them)."""
    from harness.provenance import package_version

    runs = sorted((ROOT / "baselines" / "sweeps" / "minimodo-pool-live" / "runs").glob("*/*.json"))
    if not runs:
        pytest.skip("no pool sweep store")
    prov = json.loads(runs[0].read_text())["provenance"]
    if any(str(package_version(p)) != prov["versions"][p] for p in ("torch", "transformers")):
        pytest.skip("package versions differ from the recorded ones")
    name, recorded_hash = prov["base_model"].split("@")
    cfg = BASE_MODELS[name]
    assert bases.base_dir(cfg).name == f"{name}-{recorded_hash}"
    # new fields at their neutral values leave the cache key as it was
    assert "family" not in cfg.key() and "task_set" not in cfg.key()


def test_families_and_task_sets_change_the_cache_key_and_bad_names_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MODOMODO_CACHE", str(tmp_path))
    idf, q8 = BASE_MODELS["tiny-idf64-cur"], BASE_MODELS["tiny-h64-8cur"]
    assert not bases.is_legacy(idf) and not bases.is_legacy(q8)
    names = {bases.base_dir(c).name.rsplit("-", 1)[1] for c in (BASE_MODELS["tiny-h64-cur"], idf, q8)}
    assert len(names) == 3
    assert bases.base_hash(idf) == bases.base_hash(dataclasses.replace(idf, name="renamed"))
    with pytest.raises(ValueError, match="unknown base model family 'llava'.*qwen2vl, idefics3"):
        bases.base_dir(dataclasses.replace(idf, family="llava"))
    with pytest.raises(ValueError, match="unknown task set 'minimodo9'"):
        bases.base_dir(dataclasses.replace(idf, task_set="minimodo9"))
    cfg = ProtocolConfig.from_dict({"preset": "tiny8-idf"})
    assert cfg.base.family == "idefics3" and len(cfg.train_domains) == 8 and "bar_compare" in cfg.ood_sets


def test_tiny_idefics3_builds_without_torchvision_with_one_token_per_cell():
    from transformers import Idefics3ForConditionalGeneration, ProcessorMixin

    from tasks.minimodo8 import make_rows

    cfg = dataclasses.replace(BASE_MODELS["tiny-idf64-8cur"], warmup_steps=0)
    model, processor = bases.build_random_model(cfg)
    assert "torchvision" not in sys.modules
    assert isinstance(model, Idefics3ForConditionalGeneration) and isinstance(processor, ProcessorMixin)
    assert 5e4 < sum(p.numel() for p in model.parameters()) < 1e6
    rows = make_rows("maze", 2, 0)
    from harness.training.model import render_prompts

    enc = processor(
        text=render_prompts(processor, rows), images=[r["image"] for r in rows], padding=True, return_tensors="pt"
    )
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert (enc["input_ids"] == image_id).sum(1).tolist() == [9, 9]  # 84 px / 14-px patches / scale 2: 3 x 3
    with pytest.raises(ValueError, match="head_dim"):
        bases.build_random_model(dataclasses.replace(cfg, hidden=60, heads=8))
    # same seed, same weights; the answer words of the eight-domain set are single tokens
    again, _ = bases.build_random_model(cfg)
    assert all((a == b).all() for a, b in zip(model.parameters(), again.parameters()))
    for word in ("one", "four", "<answer>"):
        assert len(processor.tokenizer(word, add_special_tokens=False)["input_ids"]) == 1


@pytest.mark.slow
def test_idefics3_trains_and_evaluates_end_to_end(tmp_path, monkeypatch):
    """A base built, saved, reloaded offline, GRPO-trained two steps and evaluated through the runner's
    own function (no code branch per family)."""
    monkeypatch.setenv("MODOMODO_CACHE", str(tmp_path))
    from harness.training.run import train_and_evaluate

    base = dataclasses.replace(BASE_MODELS["tiny-idf64-cur"], warmup_steps=2, curriculum_steps=1, warmup_batch=4)
    cfg = dataclasses.replace(PRESETS["smoke"], base=base, steps=2, eval_n=2, eval_p_correct=True)
    res = train_and_evaluate(cfg, {"science": 0.5, "spatial": 0.5}, seed=0)
    assert res.base.startswith("tiny-idf64-cur@") and res.steps == 2
    assert 0.0 <= res.scores["In_Score"] <= 1.0 and 0.0 < res.scores["In_Score_p"] < 1.0
    model, processor = bases.load(bases.ensure_base(base))
    assert type(processor).__name__ == "Idefics3Processor" and type(model).__name__.startswith("Idefics3")
