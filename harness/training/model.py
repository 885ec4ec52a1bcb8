"""The tiny Qwen2-VL's own pieces: special tokens, chat template, tokenizer, processor, loading.

The recorded suites' five-domain Qwen2-VL bases are built from these by harness/training/bases.py
(the one builder of every base: tokenizer, model, fan-in init, the warm-up of
harness/training/warmup.py, the content-hash cache). `build_tokenizer` here is their tokenizer: a
locally trained byte-level BPE with Qwen2-VL's special tokens (plus the answer-format tags and the
box-answer punctuation as single tokens); other task sets' bases train theirs in bases.py.

Nothing here needs torchvision (never install it on the CPU path: see shared/notes/cpu-tiny-vlm.md).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Single tokens for the answer format and the Visual-RFT box punctuation: keeps tiny-model answers short.
TEXT_TOKENS = [
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "[{'Position': [",
    "], 'Confidence': 1}]",
    "], 'Confidence': 1}, {'Position': [",
]

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


def set_offline_env() -> None:
    """No Hub access, no tokenizer threads, quiet libraries (results go to stdout as JSON)."""
    for k, v in (
        ("HF_HUB_OFFLINE", "1"),
        ("HF_DATASETS_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
        ("TOKENIZERS_PARALLELISM", "false"),
    ):
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
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = tokenizer_corpus()
    rng = random.Random(seed)
    rng.shuffle(corpus)
    corpus = corpus * 5 + [SYSTEM_PROMPT] * 50 + ["system\n", "user\n", "assistant\n"] * 50
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in TEXT_TOKENS])
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        padding_side="left",
        model_max_length=4096,
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


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

    return [
        processor.apply_chat_template(
            prepare_multimodal_messages(list(r["prompt"]), images=[r["image"]]),
            add_generation_prompt=True,
            tokenize=False,
        )
        for r in rows
    ]


def base_info(folder: str | Path) -> dict:
    p = Path(folder) / "base_info.json"
    return json.loads(p.read_text()) if p.is_file() else {}
