"""GRPO on a weighted mixture through `trl.GRPOTrainer`.

The mixture is sampled the paper's way: each training dataset i contributes rows with probability
w_i (`datasets.interleave_datasets(probabilities=w)`), with the stopping rule of the protocol
(`first_exhausted` by default, as in the paper; `all_exhausted` available). Datasets with weight 0
are left out. Rewards are `tasks.rewards.reward_funcs(cfg.reward_rule)` (accuracy, format) weighted 2 : 1.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping

from harness.training.config import ProtocolConfig
from tasks.rewards import reward_funcs


def mixture_dataset(
    cfg: ProtocolConfig, weights: Mapping[str, float], seed: int, train_rows: Callable[[str, int, int], list[dict]]
):
    """The interleaved training dataset for `weights` (dataset name -> weight) and a seed."""
    from datasets import interleave_datasets

    active = [(d, float(weights.get(d, 0.0))) for d in cfg.train_domains if float(weights.get(d, 0.0)) > 0]
    if not active:
        raise ValueError("the mixture gives every training dataset weight 0")
    unknown = [d for d in weights if d not in cfg.train_domains]
    if unknown:
        raise ValueError(
            f"mixture names datasets {unknown} that the protocol does not train on ({', '.join(cfg.train_domains)})"
        )
    n = rows_per_domain(cfg)
    total = sum(w for _, w in active)
    sources = [as_dataset(train_rows(d, n, seed * 1000 + i)) for i, (d, _) in enumerate(active)]
    if len(sources) == 1:
        return sources[0]
    return interleave_datasets(
        sources, probabilities=[w / total for _, w in active], seed=seed, stopping_strategy=cfg.stopping_strategy
    )


def rows_per_domain(cfg: ProtocolConfig) -> int:
    """The rows a training dataset contributes (at most): `pool_per_domain`, else enough for every step."""
    return cfg.pool_per_domain or max(cfg.steps * cfg.prompts_per_step, cfg.prompts_per_step)


def as_dataset(rows):
    """A source's rows as a Dataset: a list of row dicts is converted; a `datasets.Dataset` already in the
    row schema (the paper's loaders, tasks/paper_datasets.py) is taken as it is, its images not decoded."""
    from datasets import Dataset

    from tasks.minimodo import to_dataset

    return rows if isinstance(rows, Dataset) else to_dataset(rows)


def shared_settings(cfg: ProtocolConfig, seed: int) -> dict:
    """The GRPOConfig settings both runners take from a ProtocolConfig (the GPU runner's from the one
    `harness.runners.gpu_config.training_config` derives from its protocol file)."""
    return dict(
        max_steps=cfg.steps,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        learning_rate=cfg.learning_rate,
        beta=cfg.beta,
        temperature=cfg.temperature,
        loss_type=cfg.loss_type,
        scale_rewards=cfg.scale_rewards,
        reward_weights=list(cfg.reward_weights),
        use_vllm=cfg.use_vllm,
        bf16=cfg.bf16,
        seed=seed,
        data_seed=seed,
        report_to="none",
    )


def grpo_args(cfg: ProtocolConfig, seed: int, output_dir: str | None = None):
    """The cpu runner's GRPOConfig: one process, one update a step, constant learning rate, no checkpoints."""
    from trl import GRPOConfig

    return GRPOConfig(
        **shared_settings(cfg, seed),
        output_dir=output_dir or tempfile.gettempdir(),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=1,
        lr_scheduler_type="constant",
        warmup_steps=0,
        logging_steps=max(1, min(10, cfg.steps)),
        save_strategy="no",
        fp16=False,
        use_cpu=not cfg.use_vllm,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        log_completions=False,
        disable_tqdm=True,
    )


def build_trainer(trainer_class, model, processor, dataset, args, reward_rule: str, callbacks, quiet, **kwargs):
    """A GRPO trainer of `trainer_class` (TRL's, or the online one: harness/training/online_grpo.py) on
    `dataset` with the reward rule's functions; `kwargs` go to the class. `quiet`: drop the printing
    callbacks (the cpu runner's stdout is for results; the logs stay in trainer.state.log_history)."""
    trainer = trainer_class(
        model=model,
        reward_funcs=list(reward_funcs(reward_rule)),
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        callbacks=list(callbacks or ()) or None,
        **kwargs,
    )
    if quiet:
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        for cb in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(cb)
    return trainer


def make_trainer(model, processor, dataset, args, reward_rule: str, callbacks=(), quiet: bool = True):
    """TRL's GRPOTrainer on `dataset` (an offline run's mixture; an online run's trainer is
    `online_grpo.make_online_trainer`)."""
    from trl import GRPOTrainer

    return build_trainer(GRPOTrainer, model, processor, dataset, args, reward_rule, callbacks, quiet)


def train_with(make: Callable, processor, cfg: ProtocolConfig, seed: int, output_dir: str | None = None):
    """Train the trainer `make(args)` builds from the cpu runner's GRPOConfig (`grpo_args`), in place on its
    model, in `output_dir` or a temporary folder removed after; returns the trainer."""
    import shutil

    from transformers import ProcessorMixin

    if not isinstance(processor, ProcessorMixin):
        raise TypeError(f"GRPO on a VLM needs a processor, got {type(processor).__name__}")
    tmp = None if output_dir else tempfile.mkdtemp(prefix="modomodo-grpo-")
    try:
        trainer = make(grpo_args(cfg, seed, output_dir or tmp))
        if cfg.steps > 0:
            trainer.train()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return trainer


def train_grpo(model, processor, dataset, cfg: ProtocolConfig, seed: int, output_dir: str | None = None, callbacks=()):
    """Run GRPO in place on `model` on an offline run's `dataset`; returns the trainer (its state holds the
    reward log). `callbacks`: extra `transformers.TrainerCallback`s (e.g. the checkpoint evaluations of
    run.py). An online run's twin: `online_grpo.train_grpo_online`."""
    return train_with(
        lambda args: make_trainer(model, processor, dataset, args, cfg.reward_rule, callbacks),
        processor,
        cfg,
        seed,
        output_dir,
    )


def reward_log(trainer) -> dict:
    """First and last logged mean rewards and the fraction of zero-variance groups."""
    hist = [h for h in trainer.state.log_history if "reward" in h]
    if not hist:
        return {}
    k = max(1, len(hist) // 4)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {
        "reward_first": mean([h["reward"] for h in hist[:k]]),
        "reward_last": mean([h["reward"] for h in hist[-k:]]),
        "frac_reward_zero_std": mean([h.get("frac_reward_zero_std", 0.0) for h in hist]),
    }
