"""Memory plan of a GPU protocol: what one training GPU (and the vLLM GPU in server mode) must hold.

`plan(protocol)` estimates, per training GPU, in GB (1e9 bytes):
- parameters: every parameter of the policy in its storage dtype (float32 under fp32 master weights,
  else model.torch_dtype), the frozen vision tower included;
- gradients: the trainable parameters, in their storage dtype; DDP keeps one more copy in its
  all-reduce buckets;
- optimiser states: AdamW's two moments per trainable parameter, in the parameters' dtype;
- reference model (KL, beta > 0): every parameter in training.reference_dtype;
  under FSDP the parameters, gradients, optimiser states and the reference model are sharded over the
  training GPUs (full shard; TRL wraps the reference model with FSDP too);
- vLLM share (colocate): vllm_gpu_memory_utilization of the GPU, taken by the colocated engine;
- activations at the protocol's lengths (memory.prompt_tokens + max_completion_length per sequence,
  per_device_train_batch_size sequences): with gradient checkpointing one saved hidden state per layer
  plus one layer's recomputed intermediates, else every layer's; the logits of the completion tokens
  in float32 with their gradient and the bf16 copy;
- a fixed 3 GB for the CUDA context, NCCL buffers and the allocator's fragmentation.
The sum is compared with memory.gpu_memory_gb x memory.usable_fraction. In server mode the vLLM GPU
holds the weights in model.torch_dtype within vllm_gpu_memory_utilization of its memory.

The parameter counts are exact: the model is built from its config on PyTorch's meta device (no
memory, no weights): from the local folder, from the Hub cache (after `modomodo prefetch`), or from
the published config.json figures of the shipped protocols' models (`KNOWN_CONFIGS`). The rest is an
estimate (the usual rules: Adam 8 bytes per fp32 parameter; logits dominate GRPO's activations); it
is meant to refuse a protocol that cannot fit before a job waits in a queue, not to promise one fits.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

GB = 1e9
FIXED_OVERHEAD_GB = 3.0
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}

# config.json figures of the shipped protocols' base models (Hub, main revision), enough to build each
# on the meta device. Counts this gives: Qwen2-VL-2B 2.209B (vision 0.665B), Qwen2.5-VL-3B 3.755B,
# Qwen2.5-VL-7B 8.292B: the models' published sizes.
_QWEN2VL_VISION = dict(
    embed_dim=1280,
    depth=32,
    num_heads=16,
    mlp_ratio=4,
    in_chans=3,
    patch_size=14,
    spatial_merge_size=2,
    temporal_patch_size=2,
)
_QWEN25VL_VISION = dict(
    hidden_size=1280,
    depth=32,
    num_heads=16,
    intermediate_size=3420,
    in_chans=3,
    patch_size=14,
    spatial_merge_size=2,
    temporal_patch_size=2,
)
KNOWN_CONFIGS: dict[str, dict] = {
    "Qwen/Qwen2-VL-2B-Instruct": dict(
        model_type="qwen2_vl",
        tie_word_embeddings=True,
        vision_config=dict(_QWEN2VL_VISION, hidden_size=1536),
        text_config=dict(
            hidden_size=1536,
            intermediate_size=8960,
            num_hidden_layers=28,
            num_attention_heads=12,
            num_key_value_heads=2,
            vocab_size=151936,
            tie_word_embeddings=True,
        ),
    ),
    "Qwen/Qwen2.5-VL-3B-Instruct": dict(
        model_type="qwen2_5_vl",
        tie_word_embeddings=True,
        vision_config=dict(_QWEN25VL_VISION, out_hidden_size=2048),
        text_config=dict(
            hidden_size=2048,
            intermediate_size=11008,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
            vocab_size=151936,
            tie_word_embeddings=True,
        ),
    ),
    "Qwen/Qwen2.5-VL-7B-Instruct": dict(
        model_type="qwen2_5_vl",
        tie_word_embeddings=False,
        vision_config=dict(_QWEN25VL_VISION, out_hidden_size=3584),
        text_config=dict(
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            vocab_size=152064,
            tie_word_embeddings=False,
        ),
    ),
    "OpenGVLab/InternVL3-2B-hf": dict(
        model_type="internvl",
        vision_config=dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=[448, 448],
            patch_size=[14, 14],
        ),
        text_config=dict(
            model_type="qwen2",
            hidden_size=1536,
            intermediate_size=8960,
            num_hidden_layers=28,
            num_attention_heads=12,
            num_key_value_heads=2,
            vocab_size=151674,
            tie_word_embeddings=True,
        ),
    ),
}


@dataclass(frozen=True)
class ModelShape:
    params: int
    vision_params: int
    hidden: int
    intermediate: int
    layers: int
    vocab: int
    source: str  # where the config came from


@dataclass
class MemoryPlan:
    protocol: str
    shape: ModelShape
    train_gpu: dict = field(default_factory=dict)  # item -> GB on one training GPU
    vllm_gpu: dict = field(default_factory=dict)  # server mode: item -> GB on a vLLM GPU
    budget_gb: float = 0.0
    vllm_budget_gb: float = 0.0
    notes: list = field(default_factory=list)

    @property
    def train_total_gb(self) -> float:
        return round(sum(self.train_gpu.values()), 1)

    @property
    def vllm_total_gb(self) -> float:
        return round(sum(self.vllm_gpu.values()), 1)

    @property
    def fits(self) -> bool:
        return self.train_total_gb <= self.budget_gb and (
            not self.vllm_gpu or self.vllm_total_gb <= self.vllm_budget_gb
        )

    def describe(self) -> str:
        s = self.shape
        lines = [
            f"# memory plan ({s.params / 1e9:.3f}B parameters, {s.vision_params / 1e9:.3f}B of them in the "
            f"frozen-or-not vision tower; config from {s.source})",
            "# per training GPU, GB: " + ", ".join(f"{k} {v:.1f}" for k, v in self.train_gpu.items()),
            f"# per training GPU total {self.train_total_gb:.1f} GB of {self.budget_gb:.1f} usable "
            f"-> {'fits' if self.train_total_gb <= self.budget_gb else 'DOES NOT FIT'}",
        ]
        if self.vllm_gpu:
            lines.append(
                "# vLLM GPU, GB: "
                + ", ".join(f"{k} {v:.1f}" for k, v in self.vllm_gpu.items())
                + f" -> {self.vllm_total_gb:.1f} of {self.vllm_budget_gb:.1f} "
                f"({'fits' if self.vllm_total_gb <= self.vllm_budget_gb else 'DOES NOT FIT'})"
            )
        lines += [f"# {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "params": self.shape.params,
            "vision_params": self.shape.vision_params,
            "config_source": self.shape.source,
            "train_gpu_gb": {k: round(v, 2) for k, v in self.train_gpu.items()},
            "train_total_gb": self.train_total_gb,
            "budget_gb": round(self.budget_gb, 1),
            "vllm_gpu_gb": {k: round(v, 2) for k, v in self.vllm_gpu.items()},
            "vllm_total_gb": self.vllm_total_gb,
            "fits": self.fits,
        }


class DoesNotFit(ValueError):
    """A protocol whose memory plan exceeds its GPUs; the message names the figures."""


def _config_dict(base: str) -> tuple[dict, str]:
    """The model's config.json as a dict, and where it came from (local folder, Hub cache, KNOWN_CONFIGS)."""
    folder = Path(base)
    if (folder / "config.json").is_file():
        return json.loads((folder / "config.json").read_text()), str(folder / "config.json")
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(base, "config.json")
        if isinstance(cached, str):
            return json.loads(Path(cached).read_text()), f"Hub cache {cached}"
    except Exception:  # noqa: BLE001 - not a Hub id, no cache: fall through to the known figures
        pass
    if base in KNOWN_CONFIGS:
        return dict(KNOWN_CONFIGS[base]), f"published config.json figures of {base} (harness/protocols/memory_plan.py)"
    raise DoesNotFit(
        f"no config for model {base!r} here (not a folder, not in the Hub cache, not one of "
        f"{', '.join(sorted(KNOWN_CONFIGS))}): run `modomodo prefetch` first to plan its memory"
    )


@functools.lru_cache(maxsize=16)
def model_shape(base: str, vision_module: str = "visual") -> ModelShape:
    """Exact parameter counts (the model built on the meta device from its config) and the text model's sizes."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    cfg_dict, source = _config_dict(base)
    cfg_dict = dict(cfg_dict)
    model_type = cfg_dict.pop("model_type")
    for k in ("architectures", "transformers_version", "torch_dtype", "dtype", "auto_map"):
        cfg_dict.pop(k, None)
    config = AutoConfig.for_model(model_type, **cfg_dict)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    vision = sum(p.numel() for n, p in model.named_parameters() if f".{vision_module}." in f".{n}")
    text = config.get_text_config()
    return ModelShape(
        total,
        vision,
        int(text.hidden_size),
        int(text.intermediate_size),
        int(text.num_hidden_layers),
        int(text.vocab_size),
        source,
    )


def plan(protocol, shape: ModelShape | None = None) -> MemoryPlan:
    """The memory plan of `protocol` (a GpuProtocol, `{assets}` resolved when it has a builder)."""
    m, tr, gen, mem = protocol.model, protocol.training, protocol.generation, protocol.memory
    shape = shape or model_shape(m.base, m.vision_module)
    trainable = shape.params - (shape.vision_params if m.freeze_vision_tower else 0)
    store = 4 if tr.master_weights == "fp32" else DTYPE_BYTES[m.torch_dtype]
    ref_bytes = DTYPE_BYTES[tr.reference_dtype] if tr.reference_dtype else store
    n = max(1, protocol.training_processes)
    shard = n if tr.distributed == "fsdp" else 1
    gpu_gb = mem.gpu_memory_gb
    items = {
        "parameters": shape.params * store / shard / GB,
        "gradients": trainable * store / shard / GB,
        "optimizer": 2 * trainable * store / shard / GB,
    }
    if tr.distributed == "ddp" and n > 1:
        items["ddp_buckets"] = trainable * store / GB
    if tr.beta > 0:
        items["reference_model"] = shape.params * ref_bytes / shard / GB
    colocated = gen.use_vllm and gen.vllm_mode == "colocate"
    if colocated:
        items["vllm_colocated"] = gen.vllm_gpu_memory_utilization * gpu_gb
    b = tr.per_device_train_batch_size
    seq = mem.prompt_tokens + tr.max_completion_length
    act_bytes = 2 if tr.bf16 else 4
    per_layer_saved = b * seq * shape.hidden * 4  # the residual stream (float32 under fp32 masters + autocast)
    one_layer = b * seq * (8 * shape.hidden + 3 * shape.intermediate) * act_bytes
    if tr.gradient_checkpointing:
        activations = shape.layers * per_layer_saved + 2 * one_layer
    else:
        activations = shape.layers * (per_layer_saved + one_layer)
    logits = b * tr.max_completion_length * shape.vocab * (4 + 4 + 2)
    items["activations"] = activations / GB
    items["logits"] = logits / GB
    items["cuda_context_and_fragmentation"] = FIXED_OVERHEAD_GB
    out = MemoryPlan(protocol.name, shape, items, budget_gb=gpu_gb * mem.usable_fraction)
    if gen.use_vllm and gen.vllm_mode == "server":
        weights = shape.params * DTYPE_BYTES[m.torch_dtype] / max(1, gen.vllm_gpus) / GB
        out.vllm_gpu = {"weights": weights, "cuda_context": FIXED_OVERHEAD_GB}
        out.vllm_budget_gb = gen.vllm_gpu_memory_utilization * gpu_gb
        out.notes.append(f"the vLLM server's KV cache takes what is left of its {out.vllm_budget_gb:.0f} GB")
    out.notes.append(
        f"{tr.master_weights} master weights, {tr.distributed}"
        f"{f' over {n} training GPUs' if shard > 1 else ''}, {b} sequences of {seq} tokens per GPU, "
        f"gradient checkpointing {'on' if tr.gradient_checkpointing else 'off'}"
    )
    return out


def check_fits(protocol) -> MemoryPlan | None:
    """Refuse a cuda protocol whose plan does not fit its GPUs (DoesNotFit naming the figures); CPU protocols
    are not planned (None)."""
    if protocol.device != "cuda":
        return None
    p = plan(protocol)
    if not p.fits:
        worst = sorted(p.train_gpu.items(), key=lambda kv: -kv[1])[:3]
        raise DoesNotFit(
            f"protocol {protocol.name} does not fit its GPUs: one training GPU needs about {p.train_total_gb:.1f} GB "
            f"(largest: {', '.join(f'{k} {v:.1f}' for k, v in worst)}) of {p.budget_gb:.1f} usable "
            f"({protocol.memory.gpu_memory_gb:g} GB x {protocol.memory.usable_fraction:g})"
            + (f"; the vLLM GPU needs {p.vllm_total_gb:.1f} of {p.vllm_budget_gb:.1f} GB" if p.vllm_gpu else "")
            + ". Set training.distributed: fsdp, training.master_weights, a smaller per_device_train_batch_size "
            "(with more gradient_accumulation_steps), or more GPUs (slurm.gpus_per_node)"
        )
    return p
