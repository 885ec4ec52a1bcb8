"""FSDP's code path on CPU: `python -m torch.distributed.run --nproc_per_node 2 -m harness.runners.fsdp_probe OUT.json`.

The GPU protocol's `training.distributed: fsdp` reaches the trainer as GRPOConfig(fsdp=True,
fsdp_config={"version": 2, ...}): accelerate then applies torch's FSDP2 (`fully_shard`) to each block of the model's
`_no_split_modules` and to the root, with a MixedPrecisionPolicy computing in bf16 over float32 shards.
accelerate 1.16 turns FSDP on only for GPU-type distributed modes (accelerate/state.py: MULTI_CPU never becomes
FSDP), so on CPU this probe applies the same `fully_shard` units and policy itself, on gloo, to the tiny
Qwen2-VL loaded by the GPU runner's `load_policy` (fp32 master weights), and trains 2 AdamW steps at lr 1e-6 on a
language-model loss. Rank 0 writes what each rank held and how far the shards moved.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def main(argv=None) -> None:
    import dataclasses

    import torch
    import torch.distributed as dist
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    from harness.protocols.precision import policy_dtype
    from harness.protocols.gpu import load_protocol
    from harness.runners.gpu_job import load_policy
    from harness.training.config import BaseModelConfig
    from harness.training.bases import build_random_model

    out = Path((sys.argv[1:] if argv is None else argv)[0])
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    folder = Path(tempfile.gettempdir()) / f"fsdp-probe-model-{out.stem}"
    if rank == 0:
        model, _ = build_random_model(BaseModelConfig(hidden=64, layers=2, heads=4, warmup_steps=0, init="default"))
        model.save_pretrained(folder)
    dist.barrier()
    p = load_protocol("qwen25vl-3b")  # a shipped FSDP protocol, on the tiny model
    p = dataclasses.replace(p, model=dataclasses.replace(p.model, base=str(folder), attn_implementation="sdpa"))
    model = load_policy(p)
    for prm in model.model.visual.parameters():  # the protocol freezes the vision tower
        prm.requires_grad_(False)
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    units = tuple(model._no_split_modules)
    for m in model.modules():
        if type(m).__name__ in units:
            fully_shard(m, mp_policy=mp)
    fully_shard(model, mp_policy=mp)
    name = next(n for n, _ in model.named_parameters() if n.endswith("layers.0.mlp.down_proj.weight"))
    local = lambda t: t.to_local() if hasattr(t, "to_local") else t  # noqa: E731
    watched = {n: q for n, q in model.named_parameters() if q.requires_grad and "visual" not in n}
    before = {n: local(q.detach()).float().clone() for n, q in watched.items()}
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-6, weight_decay=0.0)
    g = torch.Generator().manual_seed(rank)
    steps = []
    for step in range(2):
        ids = torch.randint(0, model.config.get_text_config().vocab_size - 16, (2, 12), generator=g)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        moved = total = 0
        deltas = []
        for n, q in watched.items():
            now = local(q.detach()).float()
            d = (now - before[n]).abs()
            moved += int((d > 0).sum())
            total += d.numel()
            deltas.append(d[d > 0].flatten())
            before[n] = now.clone()
        d = torch.cat(deltas)
        steps.append(
            {
                "step": step + 1,
                "loss": float(loss),
                "fraction_moved": moved / max(1, total),
                "median_abs_update": float(d.median()) if d.numel() else 0.0,
            }
        )
    full = watched[name]
    info = {
        "rank": rank,
        "world_size": world,
        "backend": str(dist.get_backend()),
        "policy_dtype": policy_dtype(p),
        "shard_dtype": str(local(full.detach()).dtype),
        "is_dtensor": hasattr(full, "to_local"),
        "param": name,
        "full_numel": int(full.numel()),
        "local_numel": int(local(full.detach()).numel()),
        "fsdp_units": sum(1 for m in model.modules() if type(m).__name__.startswith("FSDP")),
        "steps": steps,
    }
    gathered = [None] * world
    dist.all_gather_object(gathered, info)
    if rank == 0:
        out.write_text(json.dumps(gathered, indent=1))
    dist.destroy_process_group()


if __name__ == "__main__":  # pragma: no cover - launched by torch.distributed.run
    main()
