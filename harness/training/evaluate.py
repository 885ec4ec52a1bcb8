"""Evaluation: greedy generation on test rows, scored by the same reward checkers as training.

`evaluate_rows(model, processor, rows)` works for any rows of the shared schema (`image`,
`prompt`, `solution`, `task`), wherever they came from; a GPU runner can swap the generation
backend (vLLM) and keep the scoring (`tasks.rewards.accuracy`) and aggregation (`tasks.aggregate`).

`answer_probability` is the optional smoother metric `p_correct` of shared/notes/mixture-signal.md:
the teacher-forced probability of the gold completion (`tasks.prompts.make_completion(solution)` then
EOS), i.e. the chance that one sample at temperature 1 is exactly right. Greedy accuracy jumps 0/1
per item when the top answer flips; p_correct moves with the model's confidence, so a mixture's
small effect is less drowned by seed noise. One forward pass per batch, no generation.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.training.model import render_prompts
from tasks.prompts import make_completion
from tasks.answer_format import format_ok
from tasks.rewards import accuracy


def encode_rows(processor, rows: Sequence[dict], batch: int = 64, p_correct: bool = False) -> dict:
    """The model inputs of an evaluation of `rows`, chunk by chunk: `gen` (prompts, for greedy decoding)
    and, with `p_correct`, `full` (prompt + gold completion + EOS) with `lengths` (gold tokens per row).
    They depend on the rows and the processor only, never on the model, so one encoding serves every
    evaluation of a run and every run of a process on the same base (the chat template and the image
    processor were half of an evaluation's time; see tests/benchmarks/pilot_profile.py). Computed
    exactly as generate/answer_probability compute them without it: the same chunks, the same calls."""
    prompts = render_prompts(processor, rows)
    images = [r["image"] for r in rows]
    out: dict = {
        "batch": batch,
        "n": len(rows),
        "gen": [
            processor(text=prompts[i : i + batch], images=images[i : i + batch], padding=True, return_tensors="pt")
            for i in range(0, len(rows), batch)
        ],
    }
    if p_correct:
        tok = processor.tokenizer
        targets = [make_completion(str(r["solution"])) + tok.eos_token for r in rows]
        out["lengths"] = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in targets]
        out["full"] = []
        for k, i in enumerate(range(0, len(rows), batch)):
            full = [p + t for p, t in zip(prompts[i : i + batch], targets[i : i + batch])]
            enc = processor(text=full, images=images[i : i + batch], padding=True, return_tensors="pt")
            for key, value in out["gen"][k].items():  # the image tensors are the same: keep one copy in memory
                if (
                    key not in ("input_ids", "attention_mask", "mm_token_type_ids")
                    and key in enc
                    and enc[key].shape == value.shape
                    and bool((enc[key] == value).all())
                ):
                    enc[key] = value
            out["full"].append(enc)
    return out


def _encoded(processor, rows, batch, p_correct, encoded):
    if encoded is not None:
        if encoded["batch"] != batch or encoded["n"] != len(rows) or (p_correct and "full" not in encoded):
            raise ValueError("encoded evaluation inputs were made for another batch size, row count or metric")
        return encoded
    return encode_rows(processor, rows, batch, p_correct)


def greedy_config(max_new_tokens: int):
    """Greedy decoding as `generate(max_new_tokens=n, do_sample=False)` sets it, given as a config object.

    Same decoding: `generate` fills every field left unset here from the model's generation config
    (eos, pad, ...) exactly as it does for keyword arguments, and the two set here win either way. What
    it skips: with no config object, `generate` first checks that the *model* config holds no
    generation parameters (`PretrainedConfig._get_generation_parameters`, a full `to_diff_dict` of the
    nested configs), about 0.16 CPU-s a call: 5.8 s of every 256-item evaluation of nine benchmarks
    (36 calls), three evaluations per pilot (tests/benchmarks/pilot_profile.py)."""
    from transformers import GenerationConfig

    return GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False)


def generate(
    model, processor, rows: Sequence[dict], max_new_tokens: int, batch: int = 64, encoded: dict | None = None
) -> list[str]:
    """Greedy completions of rows; `encoded` (encode_rows of the same rows and batch) skips the encoding."""
    import torch

    encoded = _encoded(processor, rows, batch, False, encoded)
    model.eval()
    out: list[str] = []
    greedy = greedy_config(max_new_tokens)
    with torch.no_grad():
        for enc in encoded["gen"]:
            gen = model.generate(**enc, generation_config=greedy)
            out += processor.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return out


def answer_probability(
    model, processor, rows: Sequence[dict], batch: int = 64, encoded: dict | None = None
) -> list[float]:
    """p(gold completion + EOS | prompt) of each row, teacher-forced (prompts are left-padded, so
    the gold tokens are the last ones of every sequence)."""
    import torch

    encoded = _encoded(processor, rows, batch, True, encoded)
    lengths = encoded["lengths"]
    model.eval()
    out: list[float] = []
    with torch.no_grad():
        for k, enc in enumerate(encoded["full"]):
            i = k * batch
            logp = torch.log_softmax(model(**enc).logits[:, :-1].float(), dim=-1)
            ids = enc["input_ids"][:, 1:]
            token_logp = logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
            for j, n in enumerate(lengths[i : i + batch]):
                out.append(float(token_logp[j, -n:].sum().exp()))
    return out


def evaluate_rows(
    model,
    processor,
    rows: Sequence[dict],
    max_new_tokens: int,
    batch: int = 64,
    p_correct: bool = False,
    encoded: dict | None = None,
) -> dict[str, float]:
    """{'accuracy': mean accuracy reward (IoU for boxes), 'format': format-reward rate} and, with
    `p_correct`, 'p_correct': the mean probability of the exact gold completion."""
    texts = generate(model, processor, rows, max_new_tokens, batch, encoded=encoded)
    acc = [accuracy(t, r["solution"], r["task"]) for t, r in zip(texts, rows)]
    fmt = [float(format_ok(t)) for t in texts]
    n = max(1, len(rows))
    out = {"accuracy": sum(acc) / n, "format": sum(fmt) / n}
    if p_correct:
        out["p_correct"] = sum(answer_probability(model, processor, rows, batch, encoded=encoded)) / n
    return out


def evaluate_benchmarks(
    model,
    processor,
    benchmarks: dict[str, Sequence[dict]],
    max_new_tokens: int,
    batch: int = 64,
    p_correct: bool = False,
    encoded: dict[str, dict] | None = None,
) -> dict[str, dict[str, float]]:
    """{'accuracy': per benchmark, 'format': per benchmark[, 'p_correct': per benchmark]}.
    `encoded`: benchmark -> encode_rows(...) of its rows (reused across evaluations)."""
    out: dict[str, dict[str, float]] = {}
    for name, rows in benchmarks.items():
        enc = (encoded or {}).get(name)
        for key, value in evaluate_rows(model, processor, rows, max_new_tokens, batch, p_correct, enc).items():
            out.setdefault(key, {})[name] = value
    return out
