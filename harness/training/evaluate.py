"""Evaluation: greedy generation on test rows, scored by the same reward checkers as training.

`evaluate_rows(model, processor, rows)` works for any rows of the shared schema (`image`,
`prompt`, `solution`, `task`), wherever they came from; a GPU runner can swap the generation
backend (vLLM) and keep the scoring (`tasks.rewards.accuracy`) and aggregation (`tasks.aggregate`).
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.training.model import render_prompts
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


def evaluate_rows(model, processor, rows: Sequence[dict], max_new_tokens: int, batch: int = 64) -> dict[str, float]:
    """{'accuracy': mean accuracy reward (IoU for boxes), 'format': format-reward rate}."""
    texts = generate(model, processor, rows, max_new_tokens, batch)
    acc = [accuracy(t, r["solution"], r["task"]) for t, r in zip(texts, rows)]
    fmt = [float(format_ok(t)) for t in texts]
    n = max(1, len(rows))
    return {"accuracy": sum(acc) / n, "format": sum(fmt) / n}


def evaluate_benchmarks(model, processor, benchmarks: dict[str, Sequence[dict]], max_new_tokens: int,
                        batch: int = 64) -> tuple[dict[str, float], dict[str, float]]:
    """(accuracy per benchmark, format rate per benchmark)."""
    acc, fmt = {}, {}
    for name, rows in benchmarks.items():
        r = evaluate_rows(model, processor, rows, max_new_tokens, batch)
        acc[name], fmt[name] = r["accuracy"], r["format"]
    return acc, fmt
