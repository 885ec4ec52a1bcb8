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

    from tasks.minimodo import to_dataset

    active = [(d, float(weights.get(d, 0.0))) for d in cfg.train_domains if float(weights.get(d, 0.0)) > 0]
    if not active:
        raise ValueError("the mixture gives every training dataset weight 0")
    unknown = [d for d in weights if d not in cfg.train_domains]
    if unknown:
        raise ValueError(
            f"mixture names datasets {unknown} that the protocol does not train on ({', '.join(cfg.train_domains)})"
        )
    n = cfg.pool_per_domain or max(cfg.steps * cfg.prompts_per_step, cfg.prompts_per_step)
    total = sum(w for _, w in active)
    sources = [_as_dataset(train_rows(d, n, seed * 1000 + i), to_dataset) for i, (d, _) in enumerate(active)]
    if len(sources) == 1:
        return sources[0]
    return interleave_datasets(
        sources, probabilities=[w / total for _, w in active], seed=seed, stopping_strategy=cfg.stopping_strategy
    )


def _as_dataset(rows, to_dataset):
    """A source's rows as a Dataset: a list of row dicts is converted; a `datasets.Dataset` already in the
    row schema (the paper's loaders, tasks/paper_datasets.py) is taken as it is, its images not decoded."""
    from datasets import Dataset

    return rows if isinstance(rows, Dataset) else to_dataset(rows)


def shared_settings(cfg: ProtocolConfig, seed: int) -> dict:
    """The GRPOConfig settings both runners take from a ProtocolConfig (the GPU runner's from the one
    `harness.runners.gpu.training_config` derives from its protocol file)."""
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


def make_trainer(model, processor, dataset, args, reward_rule: str, online=None, callbacks=(), quiet: bool = True):
    """TRL's GRPOTrainer (or, for an online run, its online subclass) on `dataset` with the reward rule's
    functions. `online`: (OnlineMixture, domain row ranges, seed) for an online run
    (harness/training/online.py): the prompts are then drawn by the controller's current weights, which
    it updates after every step. `quiet`: drop the printing callbacks (the cpu runner's stdout is for
    results; the logs stay in trainer.state.log_history)."""
    from trl import GRPOTrainer

    cls, extra, callbacks = GRPOTrainer, {}, list(callbacks or [])
    if online is not None:
        from harness.training.online import online_trainer_class

        controller, ranges, seed = online
        cls, extra = online_trainer_class(), {"online": controller, "online_ranges": ranges, "online_seed": seed}
        callbacks.append(controller.callback())
    trainer = cls(
        model=model,
        reward_funcs=list(reward_funcs(reward_rule)),
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        callbacks=callbacks or None,
        **extra,
    )
    if quiet:
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        for cb in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(cb)
    return trainer


def train_grpo(
    model,
    processor,
    dataset,
    cfg: ProtocolConfig,
    seed: int,
    output_dir: str | None = None,
    callbacks=None,
    online=None,
):
    """Run GRPO in place on `model`; returns the trainer (its state holds the reward log).
    `callbacks`: extra `transformers.TrainerCallback`s (e.g. the checkpoint evaluations of run.py).
    `online`: (OnlineMixture, domain row ranges) for an online run (see `make_trainer`)."""
    import shutil

    from transformers import ProcessorMixin

    if not isinstance(processor, ProcessorMixin):
        raise TypeError(f"GRPO on a VLM needs a processor, got {type(processor).__name__}")
    tmp = None if output_dir else tempfile.mkdtemp(prefix="modomodo-grpo-")
    try:
        trainer = make_trainer(
            model,
            processor,
            dataset,
            grpo_args(cfg, seed, output_dir or tmp),
            cfg.reward_rule,
            online=None if online is None else (*online, seed),
            callbacks=callbacks or (),
        )
        if cfg.steps > 0:
            trainer.train()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return trainer


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
