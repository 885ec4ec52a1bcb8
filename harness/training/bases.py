"""Tiny base models of every family and task set: one builder, one cache.

`ensure_base(cfg)` / `base_dir(cfg)` / `load(folder)` for any `BaseModelConfig`. A base is: a
byte-level BPE tokenizer trained on the task set's text, the family's model built around it
(FAMILIES: the only per-family code), fan-in init, then the supervised warm-up on the task set's
warm-up corpus with label noise (harness/training/warmup.py), saved under the cache dir as
`models/<name>-<hash>` (hash: the config, the code that builds it, library versions), built once,
atomically, under a file lock (harness/folders.py).

The recorded suites' five-domain Qwen2-VL bases (`family: qwen2vl`, `task_set: minimodo`: `is_legacy`)
keep their own tokenizer (harness.training.model.build_tokenizer), the base_info.json without the
family fields, and the content hash they were recorded with (harness/training/build_identity.py), so
the `base_model` label their recorded runs carry still names their folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import random
import time
from pathlib import Path

from harness.folders import build_once, cache_dir
from harness.training import model as legacy
from harness.training.build_identity import recipe_sources
from harness.training.config import BaseModelConfig
from harness.training.model import TEXT_TOKENS, set_offline_env

# family -> module with SPECIAL_TOKENS, EOS, PAD, CHAT_TEMPLATE, build(cfg, tokenizer), load_processor(folder)
FAMILIES = {"qwen2vl": "harness.training.family_qwen2vl", "idefics3": "harness.training.family_idefics3"}
# task set -> module with tokenizer_corpus() and warmup_rows(rng, n, weights, label_noise)
TASK_SETS = {"minimodo": "tasks.minimodo", "minimodo8": "tasks.minimodo8"}
# the code that builds a base (its content hash covers it): this builder, the shared warm-up, the task sets'
# corpora and the family's builder (the five-domain Qwen2-VL bases: their tokenizer in model.py)
_CODE = ("harness/training/bases.py", "harness/training/model.py", "harness/training/warmup.py")
_LEGACY_SOURCES = (*_CODE, "harness/training/family_qwen2vl.py", "tasks/minimodo.py", "tasks/prompts.py")
_SOURCES = (*_CODE, "tasks/minimodo.py", "tasks/minimodo8.py", "tasks/prompts.py")


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
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        special_tokens=list(fam.SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = task_set(cfg.task_set).tokenizer_corpus()
    random.Random(cfg.seed).shuffle(corpus)
    roles = ["system\n", "user\n", "assistant\n", "System:", "User:", "Assistant:"]
    tok.train_from_iterator(corpus * 5 + [SYSTEM_PROMPT] * 50 + roles * 50, trainer=trainer)
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in TEXT_TOKENS])
    others = [t for t in fam.SPECIAL_TOKENS if t not in (fam.PAD, fam.EOS)]
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=fam.EOS,
        pad_token=fam.PAD,
        additional_special_tokens=others,
        padding_side="left",
        model_max_length=4096,
    )
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
    tokenizer = legacy.build_tokenizer(cfg.vocab_size, cfg.seed) if is_legacy(cfg) else build_tokenizer(cfg, fam)
    model, processor = fam.build(cfg, tokenizer)
    if cfg.init == "fan_in":
        fan_in_init(model, cfg.seed)
    elif cfg.init != "default":
        raise ValueError(f"unknown init {cfg.init!r}; valid: fan_in, default")
    return model, processor


# ------------------------------------------------------------------------------------------------
def recipe_sources_of(cfg: BaseModelConfig) -> tuple[str, ...]:
    """The source files of the code that builds cfg's base."""
    if is_legacy(cfg):
        return _LEGACY_SOURCES
    return (*_SOURCES, FAMILIES[cfg.family].replace(".", "/") + ".py")


def base_hash(cfg: BaseModelConfig) -> str:
    from harness.provenance import package_version

    family(cfg.family), task_set(cfg.task_set)  # a clear error for a bad name, before any hashing
    h = hashlib.sha256()
    h.update(json.dumps(cfg.key(), sort_keys=True).encode())
    for digest in recipe_sources(recipe_sources_of(cfg))[1]:
        h.update(digest)
    for p in ("torch", "transformers", "tokenizers"):
        h.update(str(package_version(p)).encode())
    return h.hexdigest()[:16]


def base_dir(cfg: BaseModelConfig) -> Path:
    return cache_dir() / "models" / f"{cfg.name}-{base_hash(cfg)}"


def ensure_base(cfg: BaseModelConfig, log=None) -> Path:
    """The folder of the base model for cfg, built (once, under a lock) if the cache lacks it."""
    return build_once(base_dir(cfg), "base_info.json", lambda tmp: build_base(cfg, tmp, log=log))


def build_base(cfg: BaseModelConfig, folder: Path, log=None) -> dict:
    """Build cfg's base into `folder` (base_info.json last)."""
    import torch

    from harness.training.warmup import warm_up

    set_offline_env()
    t0 = time.perf_counter()
    model, processor = build_random_model(cfg)
    t1 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rows = task_set(cfg.task_set).warmup_rows
    info = warm_up(model, processor, cfg, rows, log=log) if cfg.warmup_steps > 0 else {}
    t2 = time.perf_counter()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    info.update(config=dataclasses.asdict(cfg), hash=base_hash(cfg))
    if not is_legacy(cfg):
        info.update(family=cfg.family, task_set=cfg.task_set)
    info.update(
        build_s=round(t1 - t0, 3),
        warmup_s=round(t2 - t1, 3),
        params=sum(p.numel() for p in model.parameters()),
        vocab=len(processor.tokenizer),
    )
    (folder / "base_info.json").write_text(json.dumps(info, indent=1, sort_keys=True))
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
