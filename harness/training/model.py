"""The tiny Qwen2-VL: tokenizer, processor, model, supervised warm-up, content-hash cache.

`ensure_base(cfg)` returns the folder of a base model built from a `BaseModelConfig`: a locally
trained byte-level BPE tokenizer with Qwen2-VL's special tokens (plus the answer-format tags and
the box-answer punctuation as single tokens), a Qwen2-VL built from config with fan-in init, then
a short supervised warm-up on the MiniModo warm-up corpus so that it follows the answer format and
half-knows the tasks. The folder lives under the cache dir (`$MODOMODO_CACHE`, else
`~/.cache/modomodo`) as `models/<name>-<hash>`, where the hash covers the config, the source of
the code that builds it and the library versions; concurrent builders wait on a file lock, and
the folder appears atomically.

Nothing here needs torchvision (never install it on the CPU path: see shared/notes/cpu-tiny-vlm.md).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from harness.training.config import BaseModelConfig

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
# Single tokens for the answer format and the Visual-RFT box punctuation: keeps tiny-model answers short.
TEXT_TOKENS = ["<think>", "</think>", "<answer>", "</answer>", "[{'Position': [", "], 'Confidence': 1}]",
               "], 'Confidence': 1}, {'Position': ["]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CACHE_ENV = "MODOMODO_CACHE"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "modomodo")


def set_offline_env() -> None:
    """No Hub access, no tokenizer threads, quiet libraries (results go to stdout as JSON)."""
    for k, v in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                 ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(k, v)
    try:
        import datasets
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        datasets.utils.logging.disable_progress_bar()
        datasets.utils.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


# ------------------------------------------------------------------------------------------------
def processor_class():
    """Qwen2VLProcessor without the video processor (whose base class needs torchvision)."""
    from transformers import ProcessorMixin, Qwen2VLProcessor

    global _PROC_CLS
    if _PROC_CLS is None:
        class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
            def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
                self.image_token = getattr(tokenizer, "image_token", "<|image_pad|>")
                self.video_token = getattr(tokenizer, "video_token", "<|video_pad|>")
                self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
                self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
                ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

        _PROC_CLS = ImageOnlyQwen2VLProcessor
    return _PROC_CLS


_PROC_CLS = None


def build_tokenizer(vocab_size: int = 512, seed: int = 0):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tasks.minimodo import tokenizer_corpus
    from tasks.prompts import SYSTEM_PROMPT

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = tokenizer_corpus()
    rng = random.Random(seed)
    rng.shuffle(corpus)
    corpus = corpus * 5 + [SYSTEM_PROMPT] * 50 + ["system\n", "user\n", "assistant\n"] * 50
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in TEXT_TOKENS])
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                 additional_special_tokens=SPECIAL_TOKENS[1:], padding_side="left",
                                 model_max_length=4096)
    hf.chat_template = CHAT_TEMPLATE
    return hf


def build_random_model(cfg: BaseModelConfig):
    """(model, processor): a randomly initialised tiny Qwen2-VL, deterministic from cfg.seed."""
    import torch
    from transformers import GenerationConfig, Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    torch.manual_seed(cfg.seed)
    tokenizer = build_tokenizer(cfg.vocab_size, cfg.seed)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    ip = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112, patch_size=14, temporal_patch_size=2,
                                  merge_size=2)
    processor = processor_class()(image_processor=ip, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    hd = cfg.hidden // cfg.heads
    if hd % 8:
        raise ValueError(f"head_dim {hd} (hidden {cfg.hidden} / heads {cfg.heads}) must be a multiple of 8")
    config = Qwen2VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=cfg.hidden, intermediate_size=cfg.hidden * 2,
                         num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
                         num_key_value_heads=max(1, cfg.heads // 2), max_position_embeddings=1024,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                          "mrope_section": [hd // 4, hd // 8, hd // 8]},
                         bos_token_id=None, eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                         tie_word_embeddings=True),
        vision_config=dict(depth=cfg.vision_depth, embed_dim=max(32, cfg.hidden // 2), hidden_size=cfg.hidden,
                           mlp_ratio=2, num_heads=2, in_channels=3, patch_size=14, spatial_merge_size=2,
                           temporal_patch_size=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True)
    model = Qwen2VLForConditionalGeneration(config)
    if cfg.init == "fan_in":
        import torch.nn as nn

        g = torch.Generator().manual_seed(cfg.seed)
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv3d)):
                with torch.no_grad():
                    m.weight.normal_(0, 1.0 / m.weight[0].numel() ** 0.5, generator=g)
    elif cfg.init != "default":
        raise ValueError(f"unknown init {cfg.init!r}; valid: fan_in, default")
    model.generation_config = GenerationConfig(eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                                               do_sample=True, temperature=1.0)
    return model, processor


def load(folder: str | Path):
    """(model, processor) from a saved folder, offline. The processor is loaded with its explicit class:
    AutoProcessor silently returns the bare tokenizer without torchvision."""
    from transformers import AutoModelForImageTextToText, ProcessorMixin

    set_offline_env()
    processor = processor_class().from_pretrained(str(folder), padding_side="left")
    if not isinstance(processor, ProcessorMixin):  # pragma: no cover
        raise TypeError(f"expected a processor, got {type(processor).__name__}")
    model = AutoModelForImageTextToText.from_pretrained(str(folder), dtype="float32")
    return model, processor


# ------------------------------------------------------------------------------------------------
def render_prompts(processor, rows) -> list[str]:
    from trl.data_utils import prepare_multimodal_messages

    return [processor.apply_chat_template(prepare_multimodal_messages(list(r["prompt"]), images=[r["image"]]),
                                          add_generation_prompt=True, tokenize=False) for r in rows]


def warm_up(model, processor, cfg: BaseModelConfig, log=None) -> dict:
    """Supervised warm-up on the MiniModo warm-up corpus; loss on the completion tokens only."""
    import torch

    from tasks.minimodo import warmup_rows
    from tasks.prompts import make_completion

    tok = processor.tokenizer
    eos = tok.eos_token
    rng = random.Random(cfg.seed * 7919 + 17)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.warmup_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20))
    model.train()
    losses = []
    for step in range(cfg.warmup_steps):
        weights = cfg.curriculum_weights if step < cfg.curriculum_steps else cfg.warmup_weights
        rows = warmup_rows(rng, cfg.warmup_batch, dict(weights), cfg.label_noise)
        targets = [make_completion(r["solution"]) + eos for r in rows]
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
_SOURCES = ("harness/training/model.py", "tasks/minimodo.py", "tasks/prompts.py")
ROOT = Path(__file__).resolve().parent.parent.parent


def base_hash(cfg: BaseModelConfig) -> str:
    from harness.provenance import package_version

    h = hashlib.sha256()
    h.update(json.dumps(cfg.key(), sort_keys=True).encode())
    for s in _SOURCES:
        h.update(hashlib.sha256((ROOT / s).read_bytes()).digest())
    for p in ("torch", "transformers", "tokenizers"):
        h.update(str(package_version(p)).encode())
    return h.hexdigest()[:16]


def base_dir(cfg: BaseModelConfig) -> Path:
    return cache_dir() / "models" / f"{cfg.name}-{base_hash(cfg)}"


def ensure_base(cfg: BaseModelConfig, log=None) -> Path:
    """The folder of the base model for cfg, built (once, under a lock) if the cache lacks it."""
    folder = base_dir(cfg)
    if (folder / "base_info.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (folder / "base_info.json").is_file():
                return folder
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
        info.update(config=dataclasses.asdict(cfg), hash=base_hash(cfg), build_s=round(t1 - t0, 3),
                    warmup_s=round(t2 - t1, 3), params=sum(p.numel() for p in model.parameters()),
                    vocab=len(processor.tokenizer))
        (tmp / "base_info.json").write_text(json.dumps(info, indent=1, sort_keys=True))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return info


def base_info(folder: str | Path) -> dict:
    p = Path(folder) / "base_info.json"
    return json.loads(p.read_text()) if p.is_file() else {}
