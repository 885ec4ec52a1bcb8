"""The tiny Qwen2-VL family, as a builder for the one base path (harness/training/bases.py).

The model and processor around a tokenizer it is given: the recorded suites' five-domain bases get
their own (harness.training.model.build_tokenizer), every other task set's base one trained on its
text (bases.build_tokenizer).
"""

from __future__ import annotations

from harness.training.model import CHAT_TEMPLATE, SPECIAL_TOKENS, processor_class  # noqa: F401

EOS, PAD = "<|im_end|>", "<|endoftext|>"


def load_processor(folder):
    return processor_class().from_pretrained(str(folder), padding_side="left")


def build(cfg, tokenizer):
    """(model, processor): a randomly initialised tiny Qwen2-VL around `tokenizer` (torch seeded by the caller)."""
    from transformers import GenerationConfig, Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    ip = Qwen2VLImageProcessorPil(
        min_pixels=56 * 56, max_pixels=112 * 112, patch_size=14, temporal_patch_size=2, merge_size=2
    )
    processor = processor_class()(image_processor=ip, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    hd = cfg.hidden // cfg.heads
    if hd % 8:
        raise ValueError(f"head_dim {hd} (hidden {cfg.hidden} / heads {cfg.heads}) must be a multiple of 8")
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=cfg.hidden,
            intermediate_size=cfg.hidden * 2,
            num_hidden_layers=cfg.layers,
            num_attention_heads=cfg.heads,
            num_key_value_heads=max(1, cfg.heads // 2),
            max_position_embeddings=1024,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [hd // 4, hd // 8, hd // 8],
            },
            bos_token_id=None,
            eos_token_id=ids[EOS],
            pad_token_id=ids[PAD],
            tie_word_embeddings=True,
        ),
        vision_config=dict(
            depth=cfg.vision_depth,
            embed_dim=max(32, cfg.hidden // 2),
            hidden_size=cfg.hidden,
            mlp_ratio=2,
            num_heads=2,
            in_channels=3,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=ids[EOS], pad_token_id=ids[PAD], do_sample=True, temperature=1.0
    )
    return model, processor
