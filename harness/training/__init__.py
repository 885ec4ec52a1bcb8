"""Real training and evaluation: one code path for the CPU runner now and the GPU runner later.

    from harness.training import ProtocolConfig, PRESETS, train_and_evaluate
    result = train_and_evaluate(PRESETS["smoke"], {"science": 0.5, "spatial": 0.5}, seed=0)
    result.scores  # per-benchmark accuracies, In_Score, Out_Score

`train_and_evaluate(config, mixture, seed, source=MiniModoSource())`: load (or build) the base
model, GRPO on the weighted mixture, evaluate on the in-domain test splits and the out-of-domain
sets. A `source` serves rows of the shared schema; the GPU runner passes one for the paper's
datasets and a config with `model=<hub id>` and `use_vllm=True`. An online run (the weights set step by
step by an online strategy's controller, harness/training/online.py) is its own entry point:
`train_and_evaluate_online(config, controller, seed)`.
"""

from harness.training.config import BASE_MODELS, PRESETS, BaseModelConfig, ProtocolConfig
from harness.training.run import (
    MiniModoSource,
    TrainResult,
    evaluate_model,
    train_and_evaluate,
    train_and_evaluate_online,
)

__all__ = [
    "BASE_MODELS",
    "PRESETS",
    "BaseModelConfig",
    "ProtocolConfig",
    "MiniModoSource",
    "TrainResult",
    "evaluate_model",
    "train_and_evaluate",
    "train_and_evaluate_online",
]
