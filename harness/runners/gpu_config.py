"""The GPU protocol as training settings: its steps at a fidelity, the cpu path's `ProtocolConfig` with the
protocol file's bigger settings (`training_config`), and TRL's `GRPOConfig` for the train command
(`grpo_config`), built on the settings both runners share (`harness.training.grpo.shared_settings`).
"""

from __future__ import annotations

import importlib.util
import math

from harness.protocols.gpu import GpuProtocol


def steps_for(protocol: GpuProtocol, fidelity: float) -> int:
    return max(1, math.ceil(protocol.training.max_steps * float(fidelity)))


def steps_within_one_pass(protocol: GpuProtocol, steps: int, rows: int) -> int:
    """GRPO steps that one pass over `rows` mixed prompts allows (the paper trains one epoch and, when
    a used dataset runs out first, scores the last step): without this cap the trainer would start a
    second epoch of a finite dataset."""
    return max(1, min(int(steps), int(rows) // protocol.prompts_per_update))


def training_config(protocol: GpuProtocol, train_domains: tuple[str, ...], fidelity: float = 1.0):
    """The cpu runner's ProtocolConfig (harness.training) with the protocol file's bigger settings."""
    from harness.training.config import ProtocolConfig

    tr = protocol.training
    return ProtocolConfig(
        name=protocol.name,
        model=protocol.model.base,
        train_domains=tuple(train_domains),
        ood_sets=(),
        steps=steps_for(protocol, fidelity),
        prompts_per_step=max(1, protocol.prompts_per_update),
        num_generations=tr.num_generations,
        max_completion_length=tr.max_completion_length,
        learning_rate=tr.learning_rate,
        beta=tr.beta,
        temperature=tr.temperature,
        loss_type=tr.loss_type,
        scale_rewards=tr.scale_rewards,
        reward_weights=tuple(tr.reward_weights),
        stopping_strategy=tr.stopping_strategy,
        pool_per_domain=10**9,  # every row of each set (the loader caps at its size): one pass, as the paper
        eval_n=0,
        eval_batch=protocol.evaluation.batch_size,
        use_vllm=protocol.generation.use_vllm,
        bf16=tr.bf16,
    )


def attn_implementation(requested: str) -> str:
    """The attention kernel to load the model with: flash_attention_2 only when flash-attn is installed
    (it is not in the gpu extra: it compiles against the machine's CUDA toolkit); else sdpa, with a
    warning that says how to get flash-attn."""
    if requested == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        import warnings

        warnings.warn(
            "model.attn_implementation is flash_attention_2 but the flash-attn package is not installed: "
            "loading with sdpa instead (same results, more memory and time at 2B). For flash-attn: "
            "pip install flash-attn --no-build-isolation (needs the CUDA toolkit), or set "
            "attn_implementation: sdpa in the protocol file to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )
        return "sdpa"
    return requested


def grpo_config(
    protocol: GpuProtocol,
    train_cfg,
    seed: int,
    output_dir: str,
    generation_kwargs: dict | None = None,
    ports: dict | None = None,
):
    """TRL's GRPOConfig for the GPU protocol. The shared settings come from the cpu path's
    ProtocolConfig (`training_config`); the GPU-only ones (schedule, warm-up, accumulation, vLLM
    mode, checkpoints) from the protocol file. (`harness.training.grpo.grpo_args` fixes those to CPU
    values and derives generation sizes in GRPOConfig.__post_init__, so it cannot be updated in place.)"""
    from trl import GRPOConfig

    from harness.training.grpo import shared_settings

    tr, gen = protocol.training, protocol.generation
    kwargs = dict(
        shared_settings(train_cfg, tr.seed + int(seed)),
        output_dir=output_dir,
        per_device_train_batch_size=tr.per_device_train_batch_size,
        gradient_accumulation_steps=tr.gradient_accumulation_steps,
        lr_scheduler_type=tr.lr_scheduler_type,
        warmup_steps=tr.warmup_ratio,
        optim=tr.optim,
        gradient_checkpointing=tr.gradient_checkpointing,
        save_strategy="steps",
        save_steps=tr.save_steps,
        save_total_limit=tr.save_total_limit,
        save_only_model=tr.save_only_model,
        logging_steps=tr.logging_steps,
        use_cpu=protocol.device == "cpu",
    )
    from harness.protocols.precision import reference_dtype

    if protocol.training.beta > 0:  # TRL builds the KL reference from the policy's path with these kwargs
        kwargs.update(model_init_kwargs={"dtype": reference_dtype(protocol)})
    if protocol.training.distributed == "fsdp":
        # FSDP2 (fully_shard), full shard, one unit per block of the model's _no_split_modules (decoder and vision
        # layers); accelerate's mixed precision (bf16) computes in bf16 while the shards stay float32 (the masters)
        # (transformers 5: fsdp=True, everything in fsdp_config); checkpointing as FSDP's activation checkpointing,
        # which transformers prefers over gradient_checkpointing under FSDP (one all-gather less in backward)
        kwargs.update(
            fsdp=True,
            gradient_checkpointing=False,
            fsdp_config={
                "version": 2,
                "reshard_after_forward": True,
                "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                "activation_checkpointing": protocol.training.gradient_checkpointing,
            },
        )
    if generation_kwargs:
        kwargs.update(generation_kwargs=dict(generation_kwargs))
    if gen.use_vllm:
        kwargs.update(
            vllm_mode=gen.vllm_mode,
            vllm_gpu_memory_utilization=gen.vllm_gpu_memory_utilization,
            vllm_importance_sampling_correction=gen.vllm_importance_sampling_correction,
        )
        if gen.vllm_max_model_len:
            kwargs.update(vllm_max_model_length=gen.vllm_max_model_len)
        if gen.vllm_mode == "server":
            ports = ports or {}
            kwargs.update(
                vllm_server_port=int(ports.get("vllm", gen.vllm_server_port)),
                vllm_group_port=int(ports.get("nccl_group", 51216)),
            )
    return GRPOConfig(**kwargs)
