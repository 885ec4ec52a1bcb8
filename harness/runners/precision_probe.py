"""How far GRPO steps move the policy's parameters, measured: the check behind training.master_weights.

`grpo_probe(protocol, model_dir, steps)` loads the policy the way the GPU runner's train command does
(`harness.runners.gpu_job.load_policy`: float32 under fp32 master weights, else model.torch_dtype), builds
TRL's GRPOTrainer with the protocol's own GRPOConfig (`grpo_config`), trains `steps` steps on text prompts
with a reward that varies within each group (so the policy-gradient term is non-zero from the first
step), and after every optimizer step counts the entries of the language model's decoder weights that
changed, and by how much. With AdamW's first step an entry whose gradient is well above eps moves by the
learning rate: that is what an fp32 optimiser does, and what a bf16 parameter at lr 1e-6 does not.
Used by tests/test_gpu_precision.py (tiny model, CPU) and scripts/device_check.py (2B-shaped, CUDA).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

WATCHED = (
    "self_attn.q_proj.weight",
    "self_attn.o_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
    "input_layernorm.weight",
)


def probe_protocol(
    protocol,
    model_dir: str | Path,
    *,
    steps: int,
    num_generations: int,
    completions_per_step: int,
    max_completion_length: int,
    learning_rate: float,
    device: str,
    distributed: str = "ddp",
    processes: int = 1,
):
    """`protocol` with the probe's sizes: the given model, no vLLM (transformers generate), a constant
    learning rate without warm-up (so step 1 already moves by `learning_rate`), no checkpoints."""
    tr = dataclasses.replace(
        protocol.training,
        max_steps=steps,
        num_generations=num_generations,
        per_device_train_batch_size=completions_per_step,
        gradient_accumulation_steps=1,
        max_completion_length=max_completion_length,
        learning_rate=learning_rate,
        warmup_ratio=0.0,
        lr_scheduler_type="constant",
        save_steps=10**6,
        logging_steps=1,
        distributed=distributed,
        gradient_checkpointing=False,
    )
    gen = dataclasses.replace(protocol.generation, use_vllm=False, vllm_gpus=0, vllm_mode="colocate")
    model = dataclasses.replace(
        protocol.model,
        base=str(model_dir),
        attn_implementation="sdpa" if device == "cpu" else protocol.model.attn_implementation,
    )
    slurm = dataclasses.replace(protocol.slurm, gpus_per_node=0 if device == "cpu" else processes, nodes=1)
    return dataclasses.replace(
        protocol,
        device=device,
        model=model,
        training=tr,
        generation=gen,
        slurm=slurm,
        assets=dataclasses.replace(protocol.assets, builder=""),
    )


def _varying_reward(prompts=None, completions=(), **kwargs):
    """A reward that differs within a group (the length of the completion), so advantages are non-zero."""
    from tasks.answer_format import completion_text

    return [float(len(completion_text(c)) % 7) for c in completions]


def _format_reward(prompts=None, completions=(), **kwargs):
    from tasks.rewards import format_reward

    return format_reward(prompts, completions)


def grpo_probe(protocol, processor, steps: int, prompts: int = 8) -> dict:
    """Train `steps` GRPO steps of `protocol` (see probe_protocol) and report what moved."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    from harness.protocols.precision import policy_dtype
    from harness.runners.gpu_config import grpo_config, training_config
    from harness.runners.gpu_job import load_policy

    model = load_policy(protocol)
    per_step: list[dict] = []
    before: dict = {}

    def watched(m) -> dict:
        """The watched weights of the model as the trainer holds it (DDP/FSDP wrappers' prefixes removed; under
        FSDP with use_orig_params each rank sees its shard of every parameter)."""
        out = {}
        for n, p in m.named_parameters():
            n = n.replace("_fsdp_wrapped_module.", "").replace("_checkpoint_wrapped_module.", "")
            n = n[len("module.") :] if n.startswith("module.") else n
            if p.requires_grad and "visual" not in n and n.endswith(WATCHED) and p.numel():
                out[n] = p
        return out

    class Moved(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            before.update({n: p.detach().float().clone() for n, p in watched(model).items()})

        def on_step_end(self, args, state, control, model=None, **kw):
            moved = total = 0
            deltas = []
            for n, p in watched(model).items():
                now = p.detach().float()
                if n not in before or before[n].shape != now.shape:
                    continue
                d = (now - before[n]).abs()
                moved += int((d > 0).sum())
                total += d.numel()
                deltas.append(d[d > 0].flatten())
                before[n] = now.clone()
            d = torch.cat(deltas) if deltas else torch.zeros(0)
            per_step.append(
                {
                    "step": int(state.global_step),
                    "fraction_moved": moved / max(1, total),
                    "entries_compared": total,
                    "median_abs_update": float(d.median()) if d.numel() else 0.0,
                }
            )

    rows = [{"prompt": [{"role": "user", "content": f"Describe shape number {i}."}]} for i in range(prompts)]
    cfg = training_config(protocol, tuple(protocol.datasets.train))
    args = grpo_config(protocol, cfg, 0, str(Path(protocol.model.base) / "probe-trainer"))
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[_varying_reward, _format_reward],
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=processor,
        callbacks=[Moved()],
    )
    cuda = torch.cuda.is_available() and protocol.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    seen = watched(trainer.model_wrapped)
    return {
        "policy_dtype": policy_dtype(protocol),
        "param_dtype_seen": str(next(iter(seen.values())).dtype) if seen else None,
        "wrapper": type(trainer.model_wrapped).__name__,
        "fsdp": bool(trainer.is_fsdp_enabled),
        "distributed_type": str(trainer.accelerator.distributed_type),
        "master_weights": protocol.training.master_weights,
        "learning_rate": protocol.training.learning_rate,
        "steps": len(per_step),
        "s_per_step": round(seconds / max(1, len(per_step)), 3),
        "per_step": per_step,
        "watched_entries_this_rank": sum(p.numel() for p in seen.values()),
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if cuda else None,
    }


def main(argv=None) -> None:
    """`accelerate launch [--cpu --num_processes N] -m harness.runners.precision_probe OUT.json [ddp|fsdp]`: the probe on
    a tiny Qwen2-VL (std-0.02 init) with the paper protocol's settings at lr 1e-6; rank 0 writes OUT.json.
    Under fsdp with 2 CPU processes this is FSDP's code path on gloo (tests/test_gpu_fsdp_cpu.py)."""
    import json
    import sys
    import tempfile

    import torch.distributed as dist
    from accelerate import PartialState

    from harness.protocols.gpu import load_protocol
    from harness.training.config import BaseModelConfig
    from harness.training.bases import build_random_model

    args = list(sys.argv[1:] if argv is None else argv)
    out, distributed = Path(args[0]), (args[1] if len(args) > 1 else "ddp")
    state = PartialState()
    model, processor = build_random_model(BaseModelConfig(hidden=64, layers=2, heads=4, warmup_steps=0, init="default"))
    folder = Path(tempfile.gettempdir()) / f"probe-model-{out.stem}"
    if state.is_main_process:
        model.save_pretrained(folder)
    state.wait_for_everyone()
    p = probe_protocol(
        load_protocol("paper-qwen2vl-2b"),
        folder,
        steps=2,
        num_generations=4,
        completions_per_step=4,
        max_completion_length=8,
        learning_rate=1e-6,
        device="cpu",
        distributed=distributed,
        processes=state.num_processes,
    )
    result = grpo_probe(p, processor, steps=2)
    result.update(
        world_size=state.num_processes,
        backend=str(dist.get_backend()) if dist.is_initialized() else None,
        distributed=distributed,
        rank=state.process_index,
    )
    if state.is_main_process:
        out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":  # pragma: no cover - launched by accelerate
    main()
