"""Training precision of the GPU protocol: which dtype the policy's parameters live in, and how many
updates a low-precision parameter loses.

With `training.master_weights: fp32` the policy is loaded in float32 (its trainable parameters are the
optimiser's master weights) and `training.bf16` computes the forward and backward in bfloat16 by
autocast (accelerate's mixed precision; under FSDP its MixedPrecision policy casts the gathered shards).
With `model` the parameters stay in `model.torch_dtype`: AdamW then adds its update to a bfloat16
number, and an update smaller than half the spacing of bfloat16 numbers near the parameter rounds
away. At lr 1e-6 Adam's first steps move each entry by about lr, while a weight of magnitude 0.02 has a
bf16 spacing of 2^-13 ~ 1.2e-4: nothing moves. `rounding_loss` measures that on real tensors.
"""

from __future__ import annotations


def policy_dtype(protocol) -> str:
    """The dtype the policy is loaded (and its parameters stored) in."""
    return "float32" if protocol.training.master_weights == "fp32" else protocol.model.torch_dtype


def reference_dtype(protocol) -> str:
    """The KL reference model's dtype (frozen, forward only)."""
    return protocol.training.reference_dtype or policy_dtype(protocol)


def describe(protocol) -> str:
    tr = protocol.training
    if tr.master_weights == "fp32":
        compute = "bfloat16 autocast" if tr.bf16 else "float32"
        return (
            f"parameters and AdamW states in float32 (master weights), forward/backward in {compute}"
            + (", sharded by FSDP (mixed precision: bf16 compute, fp32 shards)" if tr.distributed == "fsdp" else "")
            + f"; reference model in {reference_dtype(protocol)}"
        )
    return (
        f"parameters and AdamW states in {protocol.model.torch_dtype} (no fp32 master copy: updates below half "
        f"a {protocol.model.torch_dtype} ulp round away); reference model in {reference_dtype(protocol)}"
    )


def rounding_loss(params, updates, dtype) -> float:
    """Fraction of entries whose update vanishes when `params + updates` is stored in `dtype` (torch tensors,
    float32 in, any shapes that broadcast). What an optimiser step without master weights loses."""
    p = params.to(dtype)
    moved = (p.float() + updates.float()).to(dtype) != p
    nonzero = updates != 0
    return 1.0 - float((moved & nonzero).sum()) / max(1, int(nonzero.sum()))
