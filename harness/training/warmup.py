"""The supervised warm-up every tiny base gets before GRPO: a few hundred steps of next-token loss on
rows of the answer format, so that rollouts follow it often enough for GRPO groups to have reward
variance.

`supervised_warm_up` is the loop (AdamW, 20-step linear ramp, gradient clipping at 1, loss on the
completion tokens only); its callers say where the rows come from:
- `warm_up` (harness/training/bases.py): a base's task set (MiniModo, MiniModo-8), a one-token
  curriculum first, then the whole warm-up corpus, with the config's label noise;
- the GPU toy protocol's assets (harness/training/assets.py): rows of the paper's prompt format.
Each caller seeds its own row stream, so the bases built before this loop was shared keep their
weights bit for bit (harness/training/build_identity.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from harness.training.config import BaseModelConfig


def supervised_warm_up(
    model, processor, next_rows: Callable[[int], list[dict]], steps: int, lr: float, log=None, log_every: int = 50
) -> dict:
    """Train `model` in place for `steps` steps on `next_rows(step)` (rows with prompt, image, solution);
    returns the mean loss of the last 20 steps. `log` gets the mean loss of every `log_every` steps."""
    import torch

    from harness.training.model import render_prompts
    from tasks.prompts import make_completion

    tok = processor.tokenizer
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20))
    model.train()
    losses = []
    for step in range(steps):
        rows = next_rows(step)
        targets = [make_completion(r["solution"]) + tok.eos_token for r in rows]
        full = [p + t for p, t in zip(render_prompts(processor, rows), targets)]
        enc = processor(text=full, images=[r["image"] for r in rows], padding=True, return_tensors="pt")
        labels = torch.full_like(enc["input_ids"], -100)
        width = enc["input_ids"].shape[1]
        for i, t in enumerate(targets):  # left padding: the completion is the last n tokens of each row
            n = len(tok(t, add_special_tokens=False)["input_ids"])
            labels[i, width - n :] = enc["input_ids"][i, width - n :]
        loss = model(**enc, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
        if log and (step + 1) % log_every == 0:
            window = losses[-log_every:]
            log(f"warm-up step {step + 1}/{steps} loss {sum(window) / len(window):.3f}")
    model.eval()
    return {"warmup_final_loss": sum(losses[-20:]) / max(1, len(losses[-20:])) if losses else None}


def warm_up(model, processor, cfg: BaseModelConfig, warmup_rows, log=None) -> dict:
    """A base's warm-up: `warmup_rows(rng, n, weights, label_noise)` of its task set, the curriculum's
    weights for the first `cfg.curriculum_steps` steps, then the warm-up weights."""
    rng = random.Random(cfg.seed * 7919 + 17)

    def next_rows(step: int) -> list[dict]:
        weights = cfg.curriculum_weights if step < cfg.curriculum_steps else cfg.warmup_weights
        return warmup_rows(rng, cfg.warmup_batch, dict(weights), cfg.label_noise)

    return supervised_warm_up(model, processor, next_rows, cfg.warmup_steps, cfg.warmup_lr, log=log)
