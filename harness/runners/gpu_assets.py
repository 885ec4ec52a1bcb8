"""Locally built models and datasets for protocol files that name an `assets.builder`.

A toy protocol (e.g. `baselines/configs/paper-protocol-tiny.yaml`) replaces the Hub's model and
datasets by ones this project writes itself, so the GPU runner's commands run on a machine with no
Hub (CI). The builder writes one folder; every `{assets}` in the protocol's paths names it. The folder
is `$MODOMODO_CACHE/assets/<builder>-<hash>`, where the hash covers the builder's settings, the
source of the code that builds it and the library versions, so it is rebuilt exactly when its
content would change. Concurrent builders wait on a file lock; the folder appears atomically.

`paper-protocol-tiny` writes:
- `model/`: a tiny Qwen2-VL (hidden 128, 4 heads: head_dim 32, which vLLM's CPU attention supports)
  with a full `Qwen2VLProcessor` (image and video processors: vLLM and lmms-eval build one), after a
  short supervised warm-up on rows of the paper's prompt format (its own seed stream) so that rollouts
  follow the answer format often enough for GRPO groups to have reward variance;
- `train/<set>`, `test/<set>`: the five training and three in-domain test sets in the Hub schema
  (`tasks/paper_tiny.py`);
- `ood/<task>` and `lmms_tasks/<task>`: out-of-domain sets as local lmms-eval tasks.

The model needs the video processor, hence torchvision: build it in the GPU path's environment
(`.venv-gpu-cpu`, `make venv-gpu-cpu`), which the runner's `prepare` command does.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class TinyPaperAssets:
    """Settings of the paper-protocol-tiny builder (part of the folder's hash)."""

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    vision_depth: int = 2
    vocab_size: int = 512
    warmup_steps: int = 80
    warmup_batch: int = 16
    warmup_lr: float = 1e-3
    label_noise: float = 0.3
    n_train: int = 48  # rows per training set; the evaluation sets' sizes are tasks.paper_tiny's
    max_new_tokens: int = 24
    seed: int = 0
    sources: tuple = field(default=("harness/runners/gpu_assets.py", "tasks/paper_tiny.py", "tasks/minimodo.py",
                                    "tasks/prompts.py", "tasks/paper_datasets.py", "harness/training/model.py"))


BUILDERS: dict[str, TinyPaperAssets] = {"paper-protocol-tiny": TinyPaperAssets()}


def cache_root() -> Path:
    return Path(os.environ.get("MODOMODO_CACHE") or Path.home() / ".cache" / "modomodo") / "assets"


def assets_hash(name: str) -> str:
    import importlib.metadata

    cfg = BUILDERS[name]
    h = hashlib.sha256(json.dumps({k: v for k, v in cfg.__dict__.items()}, sort_keys=True, default=str).encode())
    for src in cfg.sources:
        h.update(hashlib.sha256((ROOT / src).read_bytes()).digest())
    for pkg in ("torch", "transformers", "tokenizers", "datasets"):
        try:
            h.update(importlib.metadata.version(pkg).encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(b"-")
    return h.hexdigest()[:16]


def assets_dir(name: str) -> Path:
    """Where builder `name` writes (whether or not it has yet)."""
    if name not in BUILDERS:
        from harness.mixture import did_you_mean

        raise KeyError(f"no assets builder {name!r}; {did_you_mean(name, sorted(BUILDERS))}")
    return cache_root() / f"{name}-{assets_hash(name)}"


def ensure_assets(name: str, log: Callable[[str], None] | None = None) -> Path:
    """The folder of builder `name`, built once (under a lock) when missing."""
    folder = assets_dir(name)
    if (folder / "assets.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (folder / "assets.json").is_file():
                return folder
            tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
            try:
                info = build_paper_tiny(tmp, BUILDERS[name], log=log, final=folder)
                info.update(builder=name, hash=assets_hash(name))
                (tmp / "assets.json").write_text(json.dumps(info, indent=1, sort_keys=True))
                if folder.exists():
                    shutil.rmtree(folder)
                os.replace(tmp, folder)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder


# -- paper-protocol-tiny ----------------------------------------------------------------------------
def full_processor(image_processor, tokenizer, chat_template: str):
    """A real Qwen2VLProcessor (image and video processors), as vLLM and lmms-eval load it. Needs
    torchvision (the video processor's base class): the GPU path's environment has it."""
    from transformers import Qwen2VLProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    size = image_processor.size
    video = Qwen2VLVideoProcessor(size={"shortest_edge": size["shortest_edge"], "longest_edge": size["longest_edge"]},
                                  patch_size=image_processor.patch_size, merge_size=image_processor.merge_size,
                                  temporal_patch_size=image_processor.temporal_patch_size)
    return Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video,
                            chat_template=chat_template)


def warm_up_paper_format(model, processor, cfg: TinyPaperAssets, log=None) -> dict:
    """Supervised warm-up on rows of the paper's prompt format (loss on the completion only)."""
    import torch

    from harness.training.model import render_prompts
    from tasks.paper_tiny import warmup_rows
    from tasks.prompts import make_completion

    tok = processor.tokenizer
    rng = random.Random(cfg.seed * 7919 + 29)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.warmup_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20))
    model.train()
    losses = []
    for step in range(cfg.warmup_steps):
        rows = warmup_rows(cfg.warmup_batch, rng, cfg.label_noise)
        targets = [make_completion(r["solution"]) + tok.eos_token for r in rows]
        full = [p + t for p, t in zip(render_prompts(processor, rows), targets)]
        enc = processor(text=full, images=[r["image"] for r in rows], padding=True, return_tensors="pt")
        labels = torch.full_like(enc["input_ids"], -100)
        width = enc["input_ids"].shape[1]
        for i, t in enumerate(targets):
            n = len(tok(t, add_special_tokens=False)["input_ids"])
            labels[i, width - n:] = enc["input_ids"][i, width - n:]
        loss = model(**enc, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
        if log and (step + 1) % 40 == 0:
            log(f"warm-up step {step + 1}/{cfg.warmup_steps} loss {sum(losses[-40:]) / len(losses[-40:]):.3f}")
    model.eval()
    return {"warmup_final_loss": sum(losses[-20:]) / max(1, len(losses[-20:])) if losses else None}


def build_paper_tiny(folder: Path, cfg: TinyPaperAssets, log=None, final: Path | None = None) -> dict:
    """Write everything into `folder`; paths written into files (the lmms-eval task YAMLs) name `final`,
    where the folder will be moved (default: `folder` itself)."""
    import torch

    from harness.training.config import BaseModelConfig
    from harness.training.model import CHAT_TEMPLATE, build_random_model, set_offline_env
    from tasks.paper_tiny import write_datasets, write_lmms_tasks

    set_offline_env()
    t0 = time.perf_counter()
    base = BaseModelConfig(name="paper-tiny", hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads,
                           vision_depth=cfg.vision_depth, vocab_size=cfg.vocab_size, seed=cfg.seed)
    model, image_only = build_random_model(base)
    processor = full_processor(image_only.image_processor, image_only.tokenizer, CHAT_TEMPLATE)
    torch.manual_seed(cfg.seed)
    info = warm_up_paper_format(model, processor, cfg, log=log) if cfg.warmup_steps else {}
    t1 = time.perf_counter()
    model.save_pretrained(folder / "model")
    processor.save_pretrained(folder / "model")
    data = write_datasets(folder, cfg.n_train, seed=cfg.seed)
    tasks = write_lmms_tasks(folder, seed=cfg.seed, max_new_tokens=cfg.max_new_tokens, final=final or folder)
    t2 = time.perf_counter()
    rel = lambda d: {k: str(Path(v).relative_to(folder)) for k, v in d.items()}  # noqa: E731
    info.update(params=sum(p.numel() for p in model.parameters()), head_dim=cfg.hidden // cfg.heads,
                model_s=round(t1 - t0, 3), data_s=round(t2 - t1, 3),
                datasets={k: rel(v) for k, v in data.items()}, lmms_tasks=rel(tasks))
    return info


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.runners.gpu_assets NAME`: build (or find) the folder and print it."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        raise SystemExit(f"usage: python -m harness.runners.gpu_assets {{{','.join(BUILDERS)}}}")
    print(ensure_assets(argv[0], log=lambda m: print(m, file=sys.stderr)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
