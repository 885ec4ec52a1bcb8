"""Harness overhead against a bare `GRPOTrainer` loop on the same config, in one process.

    python -m tests.benchmarks.training_overhead --preset smoke --mixture science=0.5,spatial=0.5

1. bare: load the cached base, build the interleaved dataset by hand, `GRPOTrainer(...).train()`
   with the same GRPOConfig and reward functions: the least any harness could do;
2. harness: `CpuRunner.run(spec)` on a live suite with the same protocol (validation, dataset
   building, training, evaluation, RunResult);
and prints both walls and the ratios (harness training part / bare; whole run / bare). Imports and
the base model build happen before either timing starts, so both pay the same warm caches.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def bare_grpo(cfg, weights: dict[str, float], seed: int) -> float:
    import torch
    from datasets import Dataset, interleave_datasets
    from trl import GRPOConfig, GRPOTrainer

    from harness.training import bases
    from tasks.minimodo import make_rows
    from tasks.rewards import accuracy_reward, format_reward

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model, processor = bases.load(bases.ensure_base(cfg.base))
    n = cfg.steps * cfg.prompts_per_step
    active = [d for d in cfg.train_domains if weights.get(d, 0) > 0]
    sources = [Dataset.from_list(make_rows(d, n, seed * 1000 + i)) for i, d in enumerate(active)]
    total = sum(weights[d] for d in active)
    ds = (
        sources[0]
        if len(sources) == 1
        else interleave_datasets(
            sources,
            probabilities=[weights[d] / total for d in active],
            seed=seed,
            stopping_strategy=cfg.stopping_strategy,
        )
    )
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(
            output_dir=out,
            max_steps=cfg.steps,
            per_device_train_batch_size=cfg.batch_size,
            num_generations=cfg.num_generations,
            max_completion_length=cfg.max_completion_length,
            learning_rate=cfg.learning_rate,
            lr_scheduler_type="constant",
            beta=cfg.beta,
            temperature=cfg.temperature,
            loss_type=cfg.loss_type,
            scale_rewards=cfg.scale_rewards,
            reward_weights=list(cfg.reward_weights),
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            bf16=False,
            gradient_checkpointing=False,
            seed=seed,
            disable_tqdm=True,
            logging_steps=10,
        )
        GRPOTrainer(
            model=model,
            reward_funcs=[accuracy_reward, format_reward],
            args=args,
            train_dataset=ds,
            processing_class=processor,
        ).train()
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="smoke")
    p.add_argument("--mixture", default="science=0.5,spatial=0.5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Alternate bare/harness this many times (order flips each "
        "round, so a shared machine's load hits both alike); medians are reported.",
    )
    a = p.parse_args(argv)

    import torch
    import yaml

    from harness import suites
    from harness.runners.cpu import CpuRunner
    from harness.spec import RunSpec
    from harness.training import bases
    from harness.training import model as tiny
    from harness.training.config import PRESETS

    tiny.set_offline_env()
    cfg = PRESETS[a.preset]
    torch.set_num_threads(cfg.threads)
    bases.ensure_base(cfg.base)
    with tempfile.TemporaryDirectory() as d:
        card = yaml.safe_load((Path(suites.BASELINES_DIR) / "minimodo-tiny-live" / "card.yaml").read_text())
        card.update(name="overhead", protocol_config={"preset": a.preset})
        Path(d, "card.yaml").write_text(yaml.safe_dump(card))
        suite = suites.load_folder(d)
        mixture = suite.space.parse(a.mixture)
        runner = CpuRunner(suite)
        bares, walls, parts, evals = [], [], [], []
        for i in range(a.repeat):
            for what in ("bare", "harness") if i % 2 == 0 else ("harness", "bare"):
                if what == "bare":
                    bares.append(bare_grpo(cfg, mixture.as_dict(), a.seed))
                    continue
                t0 = time.perf_counter()
                res = runner.run(RunSpec(suite.id, suite.protocol, mixture, a.seed))
                walls.append(time.perf_counter() - t0)
                c = res.cost
                parts.append(c["t_build"] + c["t_data"] + c["t_train"])
                evals.append(c["t_eval"])
    from statistics import median

    bare, harness_wall, train_part = median(bares), median(walls), median(parts)
    out = {
        "preset": a.preset,
        "repeat": a.repeat,
        "bare_s": [round(x, 2) for x in bares],
        "harness_s": [round(x, 2) for x in walls],
        "harness_train_part_s": [round(x, 2) for x in parts],
        "harness_eval_s": [round(x, 2) for x in evals],
        "ratio_train_part": round(train_part / bare, 3),
        "ratio_whole_run": round(harness_wall / bare, 3),
        "status": res.status,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
