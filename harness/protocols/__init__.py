"""Protocols: the settings a pilot run is trained and evaluated with, apart from its mixture and seed.

- `fields`       the field machinery every protocol shares: help text, strict coercion, fingerprint, describe
                 (the GPU protocol files here and the CPU presets, harness/training/config.py, are built on it)
- `gpu`          GPU protocol files (`baselines/configs/*.yaml`): `GpuProtocol`, its job's `JobResources`,
                 loading, which file a suite uses
- `sections`     the sections of a GPU protocol file: model, training, generation, datasets, evaluation,
                 assets, memory
- `memory_plan`  what one training GPU (and the vLLM GPU) must hold under a protocol; refuses one that cannot fit
- `precision`    the training precision a protocol sets (fp32 master weights) and the updates bf16 loses
- `prefetch`     `modomodo prefetch`: everything a protocol reads from the Hub, into a shared cache

`fields` is a floor of its own (scripts/check_imports.py): the CPU training stack builds its presets on it,
while the GPU protocol files sit above that stack (they name the asset builders of harness/training/assets.py).
"""
