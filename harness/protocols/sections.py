"""The sections of a GPU protocol file (harness/protocols/gpu.py): model, training, generation, datasets,
evaluation, locally built assets and the memory plan's figures, each a frozen dataclass whose fields carry
their help text and whose validation names what to set instead.

`GpuProtocol` (harness/protocols/gpu.py) puts them together with the job's resources and checks the rules that
span sections; the field machinery they are made of (help, strict coercion, fingerprint) is
harness/protocols/fields.py's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from harness.mixture import did_you_mean
from harness.protocols.fields import ProtocolError, setting

MODEL_FAMILIES = ("qwen2-vl", "qwen2.5-vl", "internvl")
VLLM_MODES = ("server", "colocate")
# fp32: the policy's parameters (the optimiser's master copy) in float32, computed in bf16 by autocast
# (training.bf16); model: parameters in model.torch_dtype, as loaded (at bf16 and lr 1e-6 most AdamW
# updates are below half a bf16 ulp and round away: see harness/protocols/precision.py).
MASTER_WEIGHTS = ("fp32", "model")
DISTRIBUTED = ("ddp", "fsdp")
ATTN_IMPLEMENTATIONS = ("flash_attention_2", "sdpa", "eager")


def protocol_setting(text: str, default: Any = dataclasses.MISSING, **kw) -> Any:
    """A protocol file's setting (harness/protocols/fields.py `setting`, help text first as it reads here).
    `label=True`: not part of `GpuProtocol.hash` (names, where a job runs, what the memory plan checks)."""
    return setting(default, text, **kw)


@dataclass(frozen=True)
class ModelConfig:
    base: str = protocol_setting("Hub id or local folder of the base model.", "Qwen/Qwen2-VL-2B-Instruct")
    family: str = protocol_setting(
        f"Model family, one of {', '.join(MODEL_FAMILIES)} (decides the vision module and "
        "the chat template). Every family loads through transformers' AutoModelForImageTextToText "
        "and AutoProcessor, as TRL's GRPOTrainer needs.",
        "qwen2-vl",
    )
    freeze_vision_tower: bool = protocol_setting("Freeze the vision encoder (the paper does).", True)
    vision_module: str = protocol_setting(
        "Name of the vision encoder's submodule, frozen when freeze_vision_tower.", "visual"
    )
    torch_dtype: str = protocol_setting("Weights dtype: bfloat16, float16 or float32.", "bfloat16")
    attn_implementation: str = protocol_setting(
        "Attention kernel: flash_attention_2, sdpa or eager. flash_attention_2 needs "
        "the flash-attn package (not in the gpu extra: it compiles against the "
        "machine's CUDA); without it training falls back to sdpa with a warning.",
        "flash_attention_2",
    )
    trust_remote_code: bool = protocol_setting(
        "Allow the model's own code from the Hub (no shipped protocol needs it).", False
    )

    def __post_init__(self):
        if self.family == "internvl2":
            raise ProtocolError(
                "model.family internvl2 is not supported: InternVL2's checkpoints (e.g. "
                "OpenGVLab/InternVL2-2B) are custom Hub code registered only for AutoModel, with no "
                "transformers processor, and TRL's GRPOTrainer needs both an image-text-to-text model "
                "and a processor. Use family internvl with a transformers-native '-hf' checkpoint "
                "(e.g. OpenGVLab/InternVL3-2B-hf; baselines/configs/internvl3-2b.yaml)"
            )
        if self.family not in MODEL_FAMILIES:
            raise ProtocolError(
                f"model.family {self.family!r} is not supported; {did_you_mean(self.family, MODEL_FAMILIES)}"
            )
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ProtocolError(
                f"model.attn_implementation must be one of {', '.join(ATTN_IMPLEMENTATIONS)}, "
                f"got {self.attn_implementation!r}"
            )
        if self.torch_dtype not in ("bfloat16", "float16", "float32"):
            raise ProtocolError(f"model.torch_dtype must be bfloat16, float16 or float32, got {self.torch_dtype!r}")


@dataclass(frozen=True)
class TrainingConfig:
    max_steps: int = protocol_setting("Optimizer steps per pilot run (the paper: 2000).", 2000)
    num_generations: int = protocol_setting("Completions per prompt, the GRPO group size (the paper: 6).", 6)
    per_device_train_batch_size: int = protocol_setting("Completions per training GPU per step.", 4)
    gradient_accumulation_steps: int = protocol_setting("Steps accumulated per update.", 1)
    learning_rate: float = protocol_setting("Peak learning rate (the paper: 1e-6).", 1e-6)
    warmup_ratio: float = protocol_setting("Fraction of steps of linear warm-up (the paper: 0.1).", 0.1)
    lr_scheduler_type: str = protocol_setting("Schedule after warm-up (the paper: linear decay to 0).", "linear")
    beta: float = protocol_setting("KL coefficient to the reference model (the paper: 0.04).", 0.04)
    reward_weights: list = protocol_setting(
        "Weights of [accuracy-or-IoU, format] rewards (the paper: [2, 1]).", [2.0, 1.0]
    )
    bf16: bool = protocol_setting("bf16 mixed precision.", True)
    seed: int = protocol_setting("Base seed; a pilot run's own seed is added to it.", 42)
    optim: str = protocol_setting("Optimizer (the paper: AdamW).", "adamw_torch")
    stopping_strategy: str = protocol_setting(
        "Mixture sampling stops when a used dataset is exhausted (the paper's "
        "rule): first_exhausted; or all_exhausted.",
        "first_exhausted",
    )
    max_completion_length: int = protocol_setting("Completion tokens generated (not stated by the paper).", 1024)
    temperature: float = protocol_setting(
        "Sampling temperature of rollouts (not stated by the paper; TRL's default).", 1.0
    )
    loss_type: str = protocol_setting(
        "TRL loss_type; 'grpo' is the original GRPO loss of the paper's TRL version.", "grpo"
    )
    scale_rewards: str = protocol_setting(
        "TRL scale_rewards: 'group' divides advantages by the group's std (original GRPO).", "group"
    )
    gradient_checkpointing: bool = protocol_setting("Trade compute for memory.", True)
    save_steps: int = protocol_setting(
        "Checkpoint every N steps (a crashed run's last weights; the final model is saved "
        "apart and is what gets evaluated).",
        500,
    )
    save_total_limit: int = protocol_setting(
        "Checkpoints kept on disk; older ones are deleted (one 2B checkpoint with optimizer state is about 20 GB).", 1
    )
    save_only_model: bool = protocol_setting(
        "Checkpoints hold the weights only, no optimizer, scheduler or RNG state "
        "(about a third of the size at 2B; a run then cannot resume mid-way, it restarts).",
        True,
    )
    logging_steps: int = protocol_setting("Log every N steps.", 10)
    master_weights: str = protocol_setting(
        "fp32: trainable parameters (the optimiser's master weights) in float32, forward and "
        "backward in bf16 by autocast when bf16 is true; model: parameters in "
        "model.torch_dtype (in bf16 at lr 1e-6 most updates round away).",
        "fp32",
    )
    distributed: str = protocol_setting(
        "ddp: every training GPU holds the whole model, gradients and optimiser states; fsdp: "
        "they are sharded over the training GPUs (accelerate's FSDP, full shard, one "
        "decoder layer per unit), for models whose state does not fit one GPU.",
        "ddp",
    )
    reward_rule: str = protocol_setting(
        "Reward and in-domain scoring rule (tasks/rewards.py REWARD_RULES): paper-v2, the "
        "paper's per-task rules as its reference code (R1-V, Visual-RFT) computes them.",
        "paper-v2",
    )
    reference_dtype: str = protocol_setting(
        "dtype of the KL reference model (frozen, forward only): bfloat16 halves its "
        "memory; the policy's own dtype: empty.",
        "bfloat16",
    )

    def __post_init__(self):
        if self.master_weights not in MASTER_WEIGHTS:
            raise ProtocolError(
                f"training.master_weights must be one of {', '.join(MASTER_WEIGHTS)}, got {self.master_weights!r}"
            )
        from tasks.rewards import REWARD_RULES

        if self.reward_rule not in REWARD_RULES:
            raise ProtocolError(
                f"training.reward_rule must be one of {', '.join(REWARD_RULES)}, got {self.reward_rule!r}"
            )
        if self.distributed not in DISTRIBUTED:
            raise ProtocolError(
                f"training.distributed must be one of {', '.join(DISTRIBUTED)}, got {self.distributed!r}"
            )
        if self.reference_dtype not in ("", "bfloat16", "float16", "float32"):
            raise ProtocolError(
                f"training.reference_dtype must be bfloat16, float16, float32 or empty, got {self.reference_dtype!r}"
            )
        for name in (
            "max_steps",
            "num_generations",
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "max_completion_length",
            "save_steps",
            "save_total_limit",
            "logging_steps",
        ):
            if getattr(self, name) < 1:
                raise ProtocolError(f"training.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_generations < 2:
            raise ProtocolError(
                f"training.num_generations must be >= 2 (GRPO compares completions within a "
                f"group), got {self.num_generations}"
            )
        if not self.learning_rate > 0:
            raise ProtocolError(f"training.learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            raise ProtocolError(f"training.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.beta < 0:
            raise ProtocolError(f"training.beta must be >= 0, got {self.beta}")
        if len(self.reward_weights) != 2 or any(w < 0 for w in self.reward_weights):
            raise ProtocolError(
                "training.reward_weights must be two non-negative weights [accuracy-or-IoU, format], "
                f"got {self.reward_weights}"
            )
        if self.stopping_strategy not in ("first_exhausted", "all_exhausted"):
            raise ProtocolError(
                f"training.stopping_strategy must be first_exhausted or all_exhausted, got {self.stopping_strategy!r}"
            )


@dataclass(frozen=True)
class GenerationConfig:
    use_vllm: bool = protocol_setting("Generate rollouts with vLLM (TRL's use_vllm).", True)
    vllm_mode: str = protocol_setting(
        "server: vLLM on its own GPU(s) behind `trl vllm-serve` (the paper, several GPUs); "
        "colocate: vLLM inside the training processes (one GPU).",
        "server",
    )
    vllm_gpus: int = protocol_setting("GPUs given to the vLLM server in server mode (the rest train).", 1)
    vllm_gpu_memory_utilization: float = protocol_setting("Share of GPU memory vLLM may take.", 0.7)
    vllm_server_port: int = protocol_setting(
        "Port of `trl vllm-serve` in server mode; 0 (the default): a free port chosen "
        "when the job starts (two jobs on one node never collide), recorded in its "
        "provenance.",
        0,
        label=True,
    )
    vllm_max_model_len: int = protocol_setting(
        "vLLM context length (prompt + completion tokens), for the colocated engine, "
        "the server (--max_model_len) and evaluation; 0: the model's own.",
        0,
    )
    vllm_importance_sampling_correction: bool = protocol_setting(
        "TRL's truncated importance-sampling correction of the vLLM/trainer logprob mismatch "
        "(GRPOConfig.vllm_importance_sampling_correction). TRL 1.16 turns it on by default; the paper's TRL "
        "version had none. Named here so the choice is part of the protocol's hash.",
        True,
    )
    vllm_cpu_kvcache_gb: int = protocol_setting(
        "device cpu only: GB of host memory for vLLM's KV cache (VLLM_CPU_KVCACHE_SPACE; 0: vLLM's default).", 0
    )
    forbid_vision_tokens: bool = protocol_setting(
        "Rollouts never sample the vision placeholder tokens (<|image_pad|>, ...): a "
        "tiny or random model does, and the training forward then fails with 'Image "
        "features and image tokens do not match'. vLLM generation only.",
        False,
    )

    def __post_init__(self):
        if not 0 <= self.vllm_server_port < 65536:
            raise ProtocolError(
                f"generation.vllm_server_port must be 0 (a free port) or a port number, got {self.vllm_server_port}"
            )
        if self.vllm_cpu_kvcache_gb < 0 or self.vllm_max_model_len < 0:
            raise ProtocolError("generation.vllm_cpu_kvcache_gb and generation.vllm_max_model_len must be >= 0")
        if self.vllm_mode not in VLLM_MODES:
            raise ProtocolError(f"generation.vllm_mode must be one of {', '.join(VLLM_MODES)}, got {self.vllm_mode!r}")
        if not 0 < self.vllm_gpu_memory_utilization <= 1:
            raise ProtocolError(
                f"generation.vllm_gpu_memory_utilization must be in (0, 1], got {self.vllm_gpu_memory_utilization}"
            )
        if self.vllm_gpus < 0:
            raise ProtocolError(f"generation.vllm_gpus must be >= 0, got {self.vllm_gpus}")


@dataclass(frozen=True)
class DatasetsConfig:
    train: dict = protocol_setting("Training sets: mixture name -> Hub id or local folder.", {})
    test_in: dict = protocol_setting("In-domain test sets: score name -> Hub id or local folder.", {})
    train_split: str = protocol_setting("Split of the training sets.", "train")
    test_split: str = protocol_setting("Split of the in-domain test sets.", "train")
    cache_dir: str = protocol_setting("datasets cache folder (empty: $HF_DATASETS_CACHE or the default).", "")

    def __post_init__(self):
        if not self.train:
            raise ProtocolError("datasets.train is empty: list the training sets as NAME: hub-id")


@dataclass(frozen=True)
class EvaluationConfig:
    in_domain: dict = protocol_setting("In-domain score -> test-set size (weights of In-Score).", {})
    out_of_domain: dict = protocol_setting(
        "Out-of-domain score -> {task: lmms-eval task, size: weight in Out-Score}.", {}
    )
    batch_size: int = protocol_setting("Evaluation batch size per GPU (not part of the hash).", 16, label=True)
    max_new_tokens: int = protocol_setting("Tokens generated per evaluation answer.", 1024)
    limit: int = protocol_setting("Evaluate only the first N items of each set (0: all; for smoke tests).", 0)
    lmms_include_path: str = protocol_setting(
        "Folder of local lmms-eval task folders (a YAML and a utils.py each), given to "
        "lmms-eval's TaskManager; empty: lmms-eval's own tasks only.",
        "",
    )

    def __post_init__(self):
        for name, entry in self.out_of_domain.items():
            if not isinstance(entry, dict) or set(entry) != {"task", "size"}:
                raise ProtocolError(
                    f"evaluation.out_of_domain.{name} must be {{task: <lmms-eval task>, size: <int>}}, got {entry!r}"
                )


@dataclass(frozen=True)
class AssetsConfig:
    builder: str = protocol_setting(
        "A builder of this project that writes the model and the datasets locally, procedurally "
        "(e.g. paper-protocol-tiny: harness/training/assets.py), so the protocol needs no Hub. "
        "Every `{assets}` in a path of this file names the folder it wrote (cached by content "
        "hash). Empty: the paths are Hub ids or folders as written.",
        "",
    )

    def __post_init__(self):
        if self.builder:
            from harness.training.assets import BUILDERS

            if self.builder not in BUILDERS:
                raise ProtocolError(
                    f"assets.builder {self.builder!r} is unknown; {did_you_mean(self.builder, sorted(BUILDERS))}"
                )


@dataclass(frozen=True)
class MemoryConfig:
    gpu_memory_gb: float = protocol_setting(
        "Memory of one GPU of the job, in GB (H100/A100-80GB: 80). The memory plan "
        "(harness/protocols/memory_plan.py) compares its estimate with this.",
        80.0,
    )
    usable_fraction: float = protocol_setting(
        "Share of gpu_memory_gb the plan may fill (the rest: allocator fragmentation, estimate error).", 0.92
    )
    prompt_tokens: int = protocol_setting(
        "Prompt length (image and text tokens) assumed for activations; the paper's "
        "images at Qwen2-VL's resolution are a few hundred tokens.",
        768,
    )

    def __post_init__(self):
        if not self.gpu_memory_gb > 0 or not 0 < self.usable_fraction <= 1 or self.prompt_tokens < 1:
            raise ProtocolError(
                "memory.gpu_memory_gb must be > 0, memory.usable_fraction in (0, 1] and memory.prompt_tokens >= 1"
            )
