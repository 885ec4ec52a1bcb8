"""Tiny base models of every family and task set: one build path, one builder per family.

`ensure_base(cfg)` / `base_dir(cfg)` / `load(folder)` for any `BaseModelConfig`:

- the five-domain Qwen2-VL bases (`family: qwen2vl`, `task_set: minimodo`, the recorded suites')
  go to harness/training/model.py unchanged, so their content hash, cache folder and the
  `base_model` label their recorded runs carry stay what they were;
- every other (family, task set) is built here the same way: a byte-level BPE tokenizer trained on
  the task set's text, the family's model built around it (FAMILIES: the only per-family code),
  fan-in init, the supervised warm-up on the task set's warm-up corpus with label noise, saved
  under the cache dir as `models/<name>-<hash>` (hash: the config, the source of this module, the
  family's builder and the task modules, library versions), atomically, under a file lock.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import importlib
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from harness.training import model as legacy
from harness.training.config import BaseModelConfig
from harness.training.model import TEXT_TOKENS, ROOT, cache_dir, render_prompts, set_offline_env

# family -> module with SPECIAL_TOKENS, EOS, PAD, CHAT_TEMPLATE, build(cfg, tokenizer), load_processor(folder)
FAMILIES = {"qwen2vl": "harness.training.family_qwen2vl", "idefics3": "harness.training.family_idefics3"}
# task set -> module with tokenizer_corpus() and warmup_rows(rng, n, weights, label_noise)
TASK_SETS = {"minimodo": "tasks.minimodo", "minimodo8": "tasks.minimodo8"}
_SOURCES = ("harness/training/bases.py", "tasks/minimodo.py", "tasks/minimodo8.py", "tasks/prompts.py")


def is_legacy(cfg: BaseModelConfig) -> bool:
    return cfg.family == "qwen2vl" and cfg.task_set == "minimodo"


def family(name: str):
    if name not in FAMILIES:
        raise ValueError(f"unknown base model family {name!r}; valid: {', '.join(FAMILIES)}")
    return importlib.import_module(FAMILIES[name])


def task_set(name: str):
    if name not in TASK_SETS:
        raise ValueError(f"unknown task set {name!r}; valid: {', '.join(TASK_SETS)}")
    return importlib.import_module(TASK_SETS[name])


def build_tokenizer(cfg: BaseModelConfig, fam):
    """A byte-level BPE tokenizer trained on the task set's text, with the family's special tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tasks.prompts import SYSTEM_PROMPT

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, special_tokens=list(fam.SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = task_set(cfg.task_set).tokenizer_corpus()
    random.Random(cfg.seed).shuffle(corpus)
    roles = ["system\n", "user\n", "assistant\n", "System:", "User:", "Assistant:"]
    tok.train_from_iterator(corpus * 5 + [SYSTEM_PROMPT] * 50 + roles * 50, trainer=trainer)
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in TEXT_TOKENS])
    others = [t for t in fam.SPECIAL_TOKENS if t not in (fam.PAD, fam.EOS)]
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=fam.EOS, pad_token=fam.PAD,
                                 additional_special_tokens=others, padding_side="left", model_max_length=4096)
    hf.chat_template = fam.CHAT_TEMPLATE
    return hf


def fan_in_init(model, seed: int) -> None:
    """std 1/sqrt(fan_in) for every Linear and Conv weight (the default 0.02 leaves the image unused;
    shared/notes/mixture-signal.md)."""
    import torch
    import torch.nn as nn

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            with torch.no_grad():
                m.weight.normal_(0, 1.0 / m.weight[0].numel() ** 0.5, generator=g)


def build_random_model(cfg: BaseModelConfig):
    """(model, processor) of cfg's family and task set, randomly initialised, deterministic from cfg.seed."""
    import torch

    fam = family(cfg.family)
    torch.manual_seed(cfg.seed)
    model, processor = fam.build(cfg, build_tokenizer(cfg, fam))
    if cfg.init == "fan_in":
        fan_in_init(model, cfg.seed)
    elif cfg.init != "default":
        raise ValueError(f"unknown init {cfg.init!r}; valid: fan_in, default")
    return model, processor


def warm_up(model, processor, cfg: BaseModelConfig, log=None) -> dict:
    """Supervised warm-up on the task set's warm-up corpus; loss on the completion tokens only
    (the recipe of harness.training.model.warm_up, for any family and task set)."""
    import torch

    from tasks.prompts import make_completion

    rows_fn = task_set(cfg.task_set).warmup_rows
    tok = processor.tokenizer
    rng = random.Random(cfg.seed * 7919 + 17)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.warmup_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20))
    model.train()
    losses = []
    for step in range(cfg.warmup_steps):
        weights = cfg.curriculum_weights if step < cfg.curriculum_steps else cfg.warmup_weights
        rows = rows_fn(rng, cfg.warmup_batch, dict(weights), cfg.label_noise)
        targets = [make_completion(r["solution"]) + tok.eos_token for r in rows]
        full = [p + t for p, t in zip(render_prompts(processor, rows), targets)]
        enc = processor(text=full, images=[r["image"] for r in rows], padding=True, return_tensors="pt")
        labels = torch.full_like(enc["input_ids"], -100)
        L = enc["input_ids"].shape[1]
        for i, t in enumerate(targets):
            n = len(tok(t, add_special_tokens=False)["input_ids"])
            labels[i, L - n:] = enc["input_ids"][i, L - n:]
        loss = model(**enc, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
        if log and (step + 1) % 50 == 0:
            log(f"warm-up step {step + 1}/{cfg.warmup_steps} loss {sum(losses[-50:]) / len(losses[-50:]):.3f}")
    model.eval()
    return {"warmup_final_loss": sum(losses[-20:]) / max(1, len(losses[-20:])) if losses else None}


# ------------------------------------------------------------------------------------------------
def base_hash(cfg: BaseModelConfig) -> str:
    if is_legacy(cfg):
        return legacy.base_hash(cfg)
    from harness.provenance import package_version

    h = hashlib.sha256()
    h.update(json.dumps(cfg.key(), sort_keys=True).encode())
    for s in (*_SOURCES, FAMILIES[cfg.family].replace(".", "/") + ".py"):
        h.update(hashlib.sha256((ROOT / s).read_bytes()).digest())
    for p in ("torch", "transformers", "tokenizers"):
        h.update(str(package_version(p)).encode())
    return h.hexdigest()[:16]


def base_dir(cfg: BaseModelConfig) -> Path:
    if is_legacy(cfg):
        return legacy.base_dir(cfg)
    family(cfg.family), task_set(cfg.task_set)  # a clear error for a bad name, before any hashing
    return cache_dir() / "models" / f"{cfg.name}-{base_hash(cfg)}"


def ensure_base(cfg: BaseModelConfig, log=None) -> Path:
    """The folder of the base model for cfg, built (once, under a lock) if the cache lacks it."""
    if is_legacy(cfg):
        return legacy.ensure_base(cfg, log=log)
    folder = base_dir(cfg)
    if (folder / "base_info.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (folder / "base_info.json").is_file():
                build_base(cfg, folder, log=log)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder


def build_base(cfg: BaseModelConfig, folder: Path, log=None) -> dict:
    import torch

    set_offline_env()
    t0 = time.perf_counter()
    model, processor = build_random_model(cfg)
    t1 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    info = warm_up(model, processor, cfg, log=log) if cfg.warmup_steps > 0 else {}
    t2 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        info.update(config=dataclasses.asdict(cfg), hash=base_hash(cfg), family=cfg.family, task_set=cfg.task_set,
                    build_s=round(t1 - t0, 3), warmup_s=round(t2 - t1, 3),
                    params=sum(p.numel() for p in model.parameters()), vocab=len(processor.tokenizer))
        (tmp / "base_info.json").write_text(json.dumps(info, indent=1, sort_keys=True))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return info


def load(folder: str | Path):
    """(model, processor) from a saved base folder, offline, with the processor class of its family
    (AutoProcessor silently returns the bare tokenizer without torchvision)."""
    from transformers import AutoModelForImageTextToText, ProcessorMixin

    info = legacy.base_info(folder)
    if info.get("family", "qwen2vl") == "qwen2vl" and "task_set" not in info:
        return legacy.load(folder)
    set_offline_env()
    processor = family(info["family"]).load_processor(folder)
    if not isinstance(processor, ProcessorMixin):  # pragma: no cover
        raise TypeError(f"expected a processor, got {type(processor).__name__}")
    return AutoModelForImageTextToText.from_pretrained(str(folder), dtype="float32"), processor
