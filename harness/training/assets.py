"""Locally built models and datasets for protocol files that name an `assets.builder`.

A toy protocol (e.g. `baselines/configs/paper-protocol-tiny.yaml`) replaces the Hub's model and
datasets by ones this project writes itself, so the GPU runner's commands run on a machine with no
Hub (CI). The builder writes one folder; every `{assets}` in the protocol's paths names it. The folder
is `$MODOMODO_CACHE/assets/<builder>-<hash>`, where the hash covers the builder's settings, the
source of the code that builds it and the library versions, so it is rebuilt exactly when its
content would change. Concurrent builders wait on a file lock; the folder appears atomically.

`paper-protocol-tiny` writes:
- `model/`: a tiny Qwen2-VL (hidden 128, 4 heads: head_dim 32, which vLLM's CPU attention supports)
  with a full `Qwen2VLProcessor` (image and video processors: vLLM and lmms-eval build one), after a
  short supervised warm-up on rows of the paper's prompt format (its own seed stream) so that rollouts
  follow the answer format often enough for GRPO groups to have reward variance;
- `train/<set>`, `test/<set>`: the five training and three in-domain test sets in the Hub schema
  (`tasks/paper_tiny.py`);
- `ood/<task>` and `lmms_tasks/<task>`: out-of-domain sets as local lmms-eval tasks.

The model needs the video processor, hence torchvision: build it in the GPU path's environment
(`.venv-gpu-cpu`, `make venv-gpu-cpu`), which the runner's `prepare` command does.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.folders import build_once, cache_dir
from harness.training.build_identity import recipe_sources


@dataclass(frozen=True)
class TinyPaperAssets:
    """Settings of the paper-protocol-tiny builder (part of the folder's hash)."""

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    vision_depth: int = 2
    vocab_size: int = 512
    warmup_steps: int = 80
    warmup_batch: int = 16
    warmup_lr: float = 1e-3
    label_noise: float = 0.3
    n_train: int = 48  # rows per training set; the evaluation sets' sizes are tasks.paper_tiny's
    max_new_tokens: int = 24
    seed: int = 0


# the code that builds the folder (its hash covers it): this module, the datasets' and prompts' code, and the
# tiny Qwen2-VL's builder and warm-up loop
ASSET_SOURCES = (
    "harness/training/assets.py",
    "tasks/paper_tiny.py",
    "tasks/minimodo.py",
    "tasks/prompts.py",
    "tasks/paper_datasets.py",
    "harness/training/model.py",
    "harness/training/bases.py",
    "harness/training/warmup.py",
    "harness/training/family_qwen2vl.py",
)

BUILDERS: dict[str, TinyPaperAssets] = {"paper-protocol-tiny": TinyPaperAssets()}


def assets_hash(name: str) -> str:
    import importlib.metadata

    names, digests = recipe_sources(ASSET_SOURCES)
    settings = {**BUILDERS[name].__dict__, "sources": names}
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for digest in digests:
        h.update(digest)
    for pkg in ("torch", "transformers", "tokenizers", "datasets"):
        try:
            h.update(importlib.metadata.version(pkg).encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(b"-")
    return h.hexdigest()[:16]


def assets_dir(name: str) -> Path:
    """Where builder `name` writes (whether or not it has yet)."""
    if name not in BUILDERS:
        from harness.mixture import did_you_mean

        raise KeyError(f"no assets builder {name!r}; {did_you_mean(name, sorted(BUILDERS))}")
    return cache_dir() / "assets" / f"{name}-{assets_hash(name)}"


def ensure_assets(name: str, log: Callable[[str], None] | None = None) -> Path:
    """The folder of builder `name`, built once (under a lock) when missing."""
    folder = assets_dir(name)

    def build(tmp: Path) -> None:
        info = build_paper_tiny(tmp, BUILDERS[name], log=log, final=folder)
        info.update(builder=name, hash=assets_hash(name))
        (tmp / "assets.json").write_text(json.dumps(info, indent=1, sort_keys=True))

    return build_once(folder, "assets.json", build)


# -- paper-protocol-tiny ----------------------------------------------------------------------------
def full_processor(image_processor, tokenizer, chat_template: str):
    """A real Qwen2VLProcessor (image and video processors), as vLLM and lmms-eval load it. Needs
    torchvision (the video processor's base class): the GPU path's environment has it."""
    from transformers import Qwen2VLProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    size = image_processor.size
    video = Qwen2VLVideoProcessor(
        size={"shortest_edge": size["shortest_edge"], "longest_edge": size["longest_edge"]},
        patch_size=image_processor.patch_size,
        merge_size=image_processor.merge_size,
        temporal_patch_size=image_processor.temporal_patch_size,
    )
    return Qwen2VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, video_processor=video, chat_template=chat_template
    )


def warm_up_paper_format(model, processor, cfg: TinyPaperAssets, log=None) -> dict:
    """Supervised warm-up on rows of the paper's prompt format (their own seed stream)."""
    from harness.training.warmup import supervised_warm_up
    from tasks.paper_tiny import warmup_rows

    rng = random.Random(cfg.seed * 7919 + 29)
    return supervised_warm_up(
        model,
        processor,
        lambda step: warmup_rows(cfg.warmup_batch, rng, cfg.label_noise),
        cfg.warmup_steps,
        cfg.warmup_lr,
        log=log,
        log_every=40,
    )


def build_paper_tiny(folder: Path, cfg: TinyPaperAssets, log=None, final: Path | None = None) -> dict:
    """Write everything into `folder`; paths written into files (the lmms-eval task YAMLs) name `final`,
    where the folder will be moved (default: `folder` itself)."""
    import torch

    from harness.training.bases import build_random_model
    from harness.training.config import BaseModelConfig
    from harness.training.model import CHAT_TEMPLATE, set_offline_env
    from tasks.paper_tiny import write_datasets, write_lmms_tasks

    set_offline_env()
    t0 = time.perf_counter()
    base = BaseModelConfig(
        name="paper-tiny",
        hidden=cfg.hidden,
        layers=cfg.layers,
        heads=cfg.heads,
        vision_depth=cfg.vision_depth,
        vocab_size=cfg.vocab_size,
        seed=cfg.seed,
    )
    model, image_only = build_random_model(base)
    processor = full_processor(image_only.image_processor, image_only.tokenizer, CHAT_TEMPLATE)
    torch.manual_seed(cfg.seed)
    info = warm_up_paper_format(model, processor, cfg, log=log) if cfg.warmup_steps else {}
    t1 = time.perf_counter()
    model.save_pretrained(folder / "model")
    processor.save_pretrained(folder / "model")
    data = write_datasets(folder, cfg.n_train, seed=cfg.seed)
    tasks = write_lmms_tasks(folder, seed=cfg.seed, max_new_tokens=cfg.max_new_tokens, final=final or folder)
    t2 = time.perf_counter()
    rel = lambda d: {k: str(Path(v).relative_to(folder)) for k, v in d.items()}  # noqa: E731
    info.update(
        params=sum(p.numel() for p in model.parameters()),
        head_dim=cfg.hidden // cfg.heads,
        model_s=round(t1 - t0, 3),
        data_s=round(t2 - t1, 3),
        datasets={k: rel(v) for k, v in data.items()},
        lmms_tasks=rel(tasks),
    )
    return info


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.training.assets NAME`: build (or find) the folder and print it."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        raise SystemExit(f"usage: python -m harness.training.assets {{{','.join(BUILDERS)}}}")
    print(ensure_assets(argv[0], log=lambda m: print(m, file=sys.stderr)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
