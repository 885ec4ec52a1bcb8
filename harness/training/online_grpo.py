"""GRPO for an online run: the dataset of every domain, the trainer whose prompts the controller's current
weights draw, and the entry point that trains one (the offline twin is harness/training/grpo.py).

- `online_dataset`: every training domain's rows in one dataset, each row tagged with its domain, and each
  domain's row range: what `DomainWeightedSampler` (harness/training/online.py) draws from.
- `OnlineTraining`: what an online run trains with (the controller, that dataset, its ranges, the seed),
  built by `prepare` after the strategy's first weights are checked.
- `online_trainer_class()`: `GRPOTrainer` with two overrides: `_get_train_sampler` returns the controller's
  sampler, and `_generate_and_score_completions` (after TRL has computed them) hands the rewards and
  advantages of the batch, with each prompt's domain, to the controller.
- `make_online_trainer` / `train_grpo_online`: `grpo.make_trainer` / `grpo.train_grpo` for an online run.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from harness.training.config import ProtocolConfig
from harness.training.grpo import as_dataset, build_trainer, rows_per_domain, train_with
from harness.training.online import OnlineMixture

DOMAIN_COLUMN = "mixture_domain"


def online_dataset(cfg: ProtocolConfig, seed: int, train_rows: Callable[[str, int, int], list[dict]]):
    """Every training domain's rows in one dataset, and each domain's row range (domain -> range).

    Each domain gets the rows one offline run at weight 1 would get (`pool_per_domain`, or steps ×
    prompts_per_step), from the same row seeds as offline (`mixture_dataset`), so an online run may put
    all its weight on any domain."""
    from datasets import concatenate_datasets

    n = rows_per_domain(cfg)
    parts, ranges, start = [], {}, 0
    for i, d in enumerate(cfg.train_domains):
        ds = as_dataset(train_rows(d, n, seed * 1000 + i))
        # which training dataset a row is from (a source's `task` column names a task kind, not always the
        # dataset: the paper's sets); reward functions ignore the column
        ds = ds.add_column(DOMAIN_COLUMN, [d] * len(ds))
        parts.append(ds)
        ranges[d] = range(start, start + len(ds))
        start += len(ds)
    return (parts[0] if len(parts) == 1 else concatenate_datasets(parts)), ranges


@dataclass(frozen=True)
class OnlineTraining:
    """What one online run trains with: the controller that sets the weights, the dataset of every domain,
    each domain's row range in it, and the seed of the sampler's draws."""

    controller: OnlineMixture
    dataset: object  # a datasets.Dataset
    ranges: Mapping[str, range]
    seed: int

    @classmethod
    def prepare(cls, controller: OnlineMixture, cfg: ProtocolConfig, seed: int, train_rows) -> OnlineTraining:
        """The strategy's first weights, checked (`OnlineStrategyFailed` before any data is built), then the
        dataset of every domain."""
        controller.start()
        dataset, ranges = online_dataset(cfg, seed, train_rows)
        return cls(controller, dataset, ranges, int(seed))


@functools.lru_cache(maxsize=1)
def online_trainer_class():
    """`GRPOTrainer` with the online sampler and the signal capture (built on first use: keeps TRL's import
    out of this module's)."""
    from trl import GRPOTrainer

    class OnlineGRPOTrainer(GRPOTrainer):
        """GRPOTrainer whose prompts are drawn by an `OnlineMixture`'s current weights."""

        def __init__(self, *args, online: OnlineTraining, **kwargs):
            self.online = online
            super().__init__(*args, **kwargs)

        def _get_train_sampler(self, dataset=None):
            a = self.args
            repeat = self.num_iterations * a.steps_per_generation
            micro_steps = a.max_steps * a.gradient_accumulation_steps
            return self.online.controller.make_sampler(
                self.online.ranges,
                a.generation_batch_size // self.num_generations,
                self.num_generations,
                repeat,
                math.ceil(micro_steps / repeat),
                self.online.seed,
            )

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            self._online_rewards = rewards
            return rewards

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            if self.model.training:
                import torch
                from accelerate.utils import gather_object

                # every process's completions, in TRL's process order (its rewards are gathered already), so
                # each process sees whole groups and hands its strategy the same signals
                per_func = self._online_rewards
                weights = self.reward_weights.to(per_func.device).unsqueeze(0)
                total = (per_func * weights).nansum(dim=1)
                total[torch.isnan(per_func).all(dim=1)] = float("nan")
                advantages = self.accelerator.gather(out["advantages"].detach())
                tasks = gather_object([x[DOMAIN_COLUMN] for x in inputs])
                g = self.num_generations
                self.online.controller.capture(
                    [tasks[i] for i in range(0, len(tasks), g)],
                    total.detach().cpu().tolist(),
                    advantages.cpu().tolist(),
                    g,
                )
            return out

    return OnlineGRPOTrainer


def make_online_trainer(model, processor, online: OnlineTraining, args, reward_rule: str, callbacks=(), quiet=True):
    """The online GRPOTrainer on `online`'s dataset, its prompts drawn by the controller's current weights,
    which its callback updates after every step (see `grpo.make_trainer` for `quiet`)."""
    return build_trainer(
        online_trainer_class(),
        model,
        processor,
        online.dataset,
        args,
        reward_rule,
        [*callbacks, online.controller.callback()],
        quiet,
        online=online,
    )


def train_grpo_online(model, processor, online: OnlineTraining, cfg: ProtocolConfig, callbacks=()):
    """`grpo.train_grpo` for an online run: GRPO in place on `model`, seeded by `online.seed`; returns the
    trainer."""
    return train_with(
        lambda args: make_online_trainer(model, processor, online, args, cfg.reward_rule, callbacks),
        processor,
        cfg,
        online.seed,
    )
