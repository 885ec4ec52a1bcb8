"""Item 4 of issue 27: the cheaper evaluation computes what the old one computed, to the bit.

Two cuts (harness/training/evaluate.py): the evaluation inputs (chat template + processor) are encoded
once and reused by every evaluation of a process (`encode_rows`, run.encoded_benchmarks), and greedy
decoding is asked for with a GenerationConfig object (`greedy_config`) instead of keyword arguments.
Each test compares against the code path as it was before, written out here independently."""

import dataclasses

import pytest

pytest.importorskip("trl")

import torch  # noqa: E402

from harness.training import evaluate  # noqa: E402
from harness.training import bases  # noqa: E402
from harness.training.config import BASE_MODELS  # noqa: E402
from harness.training.model import render_prompts  # noqa: E402
from tasks.minimodo import test_split as held_out  # noqa: E402


@pytest.fixture(scope="module")
def random_model():
    torch.set_num_threads(1)
    model, processor = bases.build_random_model(dataclasses.replace(BASE_MODELS["tiny-h64"], warmup_steps=0))
    model.eval()
    return model, processor


def _old_generate(model, processor, rows, max_new_tokens, batch):
    """generate() before issue 27: encode each chunk on the spot, greedy by keyword arguments."""
    out = []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            enc = processor(
                text=render_prompts(processor, chunk),
                images=[r["image"] for r in chunk],
                padding=True,
                return_tensors="pt",
            )
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
            out.append(gen)
    return out


def test_greedy_config_prepares_the_same_generation_config_as_keywords(random_model):
    model, _ = random_model
    by_kwargs, _ = model._prepare_generation_config(None, max_new_tokens=7, do_sample=False)
    by_object, _ = model._prepare_generation_config(evaluate.greedy_config(7))
    assert by_object.to_dict() == by_kwargs.to_dict()


def test_cached_encodings_and_greedy_config_give_the_same_tokens_and_p_correct(random_model):
    model, processor = random_model
    rows = held_out("counting", 10) + held_out("grounding", 5)
    old = _old_generate(model, processor, rows, 6, batch=4)
    enc = evaluate.encode_rows(processor, rows, batch=4, p_correct=True)
    with torch.no_grad():
        new = [model.generate(**e, generation_config=evaluate.greedy_config(6)) for e in enc["gen"]]
    assert len(old) == len(new) == 4 and all(torch.equal(a, b) for a, b in zip(old, new))
    # the texts through the public function, with and without the cached inputs
    assert evaluate.generate(model, processor, rows, 6, 4) == evaluate.generate(model, processor, rows, 6, 4, enc)
    # p_correct: the cached inputs against encoding on the spot (the images shared between both encodings)
    assert evaluate.answer_probability(model, processor, rows, 4, enc) == evaluate.answer_probability(
        model, processor, rows, 4
    )
    full0 = enc["full"][0]
    assert full0["pixel_values"] is enc["gen"][0]["pixel_values"]  # one copy of the image tensors


def test_encoded_inputs_are_checked_against_their_use(random_model):
    _, processor = random_model
    rows = held_out("chart", 3)
    enc = evaluate.encode_rows(processor, rows, batch=2, p_correct=False)
    with pytest.raises(ValueError, match="another batch size"):
        evaluate.answer_probability(None, processor, rows, 2, enc)  # no teacher-forced inputs in it
    with pytest.raises(ValueError, match="another batch size"):
        evaluate.generate(None, processor, rows, 4, 3, enc)


def test_evaluation_inputs_are_reused_across_evaluations_and_keyed_by_base(random_model):
    from harness.training import run
    from harness.training.config import PRESETS

    _, processor = random_model
    cfg = dataclasses.replace(PRESETS["smoke"], eval_n=2)
    a = run.encoded_benchmarks(cfg, run.MiniModoSource(), processor)
    assert run.encoded_benchmarks(cfg, run.MiniModoSource(), processor) is a
    assert set(a) == {*cfg.train_domains, *cfg.ood_sets}
    b = run.encoded_benchmarks(dataclasses.replace(cfg, eval_p_correct=True), run.MiniModoSource(), processor)
    assert b is not a and "full" in b["science"]
