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
from tasks.rewards import accuracy, format_ok


def generate(model, processor, rows: Sequence[dict], max_new_tokens: int, batch: int = 64) -> list[str]:
    import torch

    model.eval()
    out: list[str] = []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            chunk = rows[i:i + batch]
            enc = processor(text=render_prompts(processor, chunk), images=[r["image"] for r in chunk], padding=True,
                            return_tensors="pt")
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
            out += processor.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return out


def answer_probability(model, processor, rows: Sequence[dict], batch: int = 64) -> list[float]:
    """p(gold completion + EOS | prompt) of each row, teacher-forced (prompts are left-padded, so
    the gold tokens are the last ones of every sequence)."""
    import torch

    tok = processor.tokenizer
    targets = [make_completion(str(r["solution"])) + tok.eos_token for r in rows]
    lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in targets]
    prompts = render_prompts(processor, rows)
    model.eval()
    out: list[float] = []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            chunk = rows[i:i + batch]
            full = [p + t for p, t in zip(prompts[i:i + batch], targets[i:i + batch])]
            enc = processor(text=full, images=[r["image"] for r in chunk], padding=True, return_tensors="pt")
            logp = torch.log_softmax(model(**enc).logits[:, :-1].float(), dim=-1)
            ids = enc["input_ids"][:, 1:]
            token_logp = logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
            for j, n in enumerate(lengths[i:i + batch]):
                out.append(float(token_logp[j, -n:].sum().exp()))
    return out


def evaluate_rows(model, processor, rows: Sequence[dict], max_new_tokens: int, batch: int = 64,
                  p_correct: bool = False) -> dict[str, float]:
    """{'accuracy': mean accuracy reward (IoU for boxes), 'format': format-reward rate} and, with
    `p_correct`, 'p_correct': the mean probability of the exact gold completion."""
    texts = generate(model, processor, rows, max_new_tokens, batch)
    acc = [accuracy(t, r["solution"], r["task"]) for t, r in zip(texts, rows)]
    fmt = [float(format_ok(t)) for t in texts]
    n = max(1, len(rows))
    out = {"accuracy": sum(acc) / n, "format": sum(fmt) / n}
    if p_correct:
        out["p_correct"] = sum(answer_probability(model, processor, rows, batch)) / n
    return out


def evaluate_benchmarks(model, processor, benchmarks: dict[str, Sequence[dict]], max_new_tokens: int,
                        batch: int = 64, p_correct: bool = False) -> dict[str, dict[str, float]]:
    """{'accuracy': per benchmark, 'format': per benchmark[, 'p_correct': per benchmark]}."""
    out: dict[str, dict[str, float]] = {}
    for name, rows in benchmarks.items():
        for key, value in evaluate_rows(model, processor, rows, max_new_tokens, batch, p_correct).items():
            out.setdefault(key, {})[name] = value
    return out
