"""The tiny Idefics3 family: a SigLIP-style vision tower, a pixel-shuffle connector, a Llama decoder.

Why Idefics3 (the architecture SmolVLM is built on) as the second family:
- it differs from Qwen2-VL where a mixture's effect could differ: learned absolute position
  embeddings in the vision tower instead of 2-D rotary ones, a pixel-shuffle + linear connector
  instead of Qwen2-VL's patch merger, 1-D RoPE in a Llama decoder instead of M-RoPE, and image
  tokens framed by `<fake_token_around_image><global-img>` instead of `<|vision_start|>`;
- transformers 5.17 ships a PIL image processor for it (`Idefics3ImageProcessorPil`) and its
  processor takes only an image processor and a tokenizer, so nothing needs torchvision (SmolVLM's
  processor also wants a video processor, whose base class imports torchvision; LLaVA-OneVision's
  too);
- TRL 1.16's GRPOTrainer drives it through the generic `apply_chat_template(..., tokenize=True)`
  path (pixel_values and pixel_attention_mask ride along as multimodal fields).

Sizes are chosen so that one image token is one 28-px MiniModo cell, as in the Qwen2-VL family:
84-px images (no splitting), 14-px patches (a 6 × 6 grid), pixel-shuffle scale 2 (9 image tokens).
"""

from __future__ import annotations

# eos first: the tokenizer's eos; pad: the padding token; the rest are Idefics3's image tokens
SPECIAL_TOKENS = ["<|pad|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>", "<global-img>"]
EOS, PAD = "<end_of_utterance>", "<|pad|>"
IMAGE_SIZE, PATCH, SCALE = 84, 14, 2
IMAGE_SEQ_LEN = (IMAGE_SIZE // PATCH) ** 2 // SCALE**2  # 9

# Idefics3's chat layout ("User:<image>question<end_of_utterance>\nAssistant:"), with a system turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}System: You are a helpful assistant.<end_of_utterance>\n{% endif %}"
    "{{ message['role'] | capitalize }}:"
    "{% if message['content'] is string %} {{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}<image>"
    "{% elif 'text' in content %} {{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_utterance>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def processor_class():
    from transformers import Idefics3Processor

    return Idefics3Processor


def load_processor(folder):
    """The saved processor, built from its explicit parts: `from_pretrained` on the processor class asks
    the auto classes for an image processor and fails without torchvision although the PIL one exists."""
    from transformers import PreTrainedTokenizerFast
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder), padding_side="left")
    return processor_class()(
        image_processor=Idefics3ImageProcessorPil.from_pretrained(str(folder)),
        tokenizer=tokenizer,
        image_seq_len=IMAGE_SEQ_LEN,
        chat_template=CHAT_TEMPLATE,
    )


def build(cfg, tokenizer):
    """(model, processor): a randomly initialised tiny Idefics3 around `tokenizer` (torch seeded by the caller)."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    ip = Idefics3ImageProcessorPil(
        do_image_splitting=False,
        size={"longest_edge": IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
        do_pad=True,
    )
    processor = processor_class()(
        image_processor=ip, tokenizer=tokenizer, image_seq_len=IMAGE_SEQ_LEN, chat_template=CHAT_TEMPLATE
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    if cfg.hidden % cfg.heads or (cfg.hidden // cfg.heads) % 2:
        raise ValueError(f"hidden {cfg.hidden} / heads {cfg.heads} must give an even head_dim")
    vision_hidden = max(32, cfg.hidden // 2)
    config = Idefics3Config(
        text_config=dict(
            model_type="llama",
            vocab_size=len(tokenizer),
            hidden_size=cfg.hidden,
            intermediate_size=cfg.hidden * 2,
            num_hidden_layers=cfg.layers,
            num_attention_heads=cfg.heads,
            num_key_value_heads=max(1, cfg.heads // 2),
            max_position_embeddings=1024,
            rms_norm_eps=1e-5,
            bos_token_id=None,
            eos_token_id=ids[EOS],
            pad_token_id=ids[PAD],
            tie_word_embeddings=True,
        ),
        vision_config=dict(
            hidden_size=vision_hidden,
            intermediate_size=vision_hidden * 2,
            num_hidden_layers=cfg.vision_depth,
            num_attention_heads=2,
            image_size=IMAGE_SIZE,
            patch_size=PATCH,
        ),
        scale_factor=SCALE,
        image_token_id=ids["<image>"],
        pad_token_id=ids[PAD],
        tie_word_embeddings=True,
    )
    from transformers import GenerationConfig

    model = Idefics3ForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=ids[EOS], pad_token_id=ids[PAD], do_sample=True, temperature=1.0
    )
    return model, processor
