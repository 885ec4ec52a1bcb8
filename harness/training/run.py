"""`train_and_evaluate`: the protocol, end to end, for one mixture and one seed."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.training.config import ProtocolConfig


class MiniModoSource:
    """Rows from the MiniModo generators: the five domains of tasks/minimodo.py and the three more of
    tasks/minimodo8.py (which serves MiniModo's own tasks through tasks.minimodo, row for row). A GPU
    source serves the paper's datasets with the same two methods and the same row schema."""

    name = "minimodo"

    def train_rows(self, dataset: str, n: int, seed: int) -> list[dict]:
        from tasks.minimodo8 import make_rows

        return make_rows(dataset, n, seed, "train")

    def test_rows(self, dataset: str, n: int) -> list[dict]:
        from tasks.minimodo8 import test_split

        return test_split(dataset, n)


@dataclass
class TrainResult:
    scores: dict[str, float]  # per benchmark, plus In_Score and Out_Score (and their p_correct twins)
    format_rate: dict[str, float]
    timings: dict[str, float]  # seconds: imports, build, data, train, eval, total
    rollouts: int
    steps: int
    base: str
    base_info: dict[str, Any] = field(default_factory=dict)
    train_log: dict[str, float] = field(default_factory=dict)
    # fidelity (fraction of the steps, < 1) -> {"step", "scores", "format_rate", "seconds"} of the
    # mid-run evaluations asked for by cfg.eval_checkpoints (empty without them)
    checkpoints: dict[float, dict[str, Any]] = field(default_factory=dict)
    # an online run's record (harness/training/online.py OnlineMixture.record; train_and_evaluate_online); empty offline
    online: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_EVAL_CACHE: dict = {}


def eval_benchmarks(cfg: ProtocolConfig, source) -> dict[str, list[dict]]:
    key = (getattr(source, "name", id(source)), tuple(cfg.train_domains), tuple(cfg.ood_sets), cfg.eval_n)
    if key not in _EVAL_CACHE:
        _EVAL_CACHE.clear()
        _EVAL_CACHE[key] = {d: source.test_rows(d, cfg.eval_n) for d in (*cfg.train_domains, *cfg.ood_sets)}
    return _EVAL_CACHE[key]


_ENCODED_CACHE: dict = {}


def encoded_benchmarks(cfg: ProtocolConfig, source, processor) -> dict[str, dict]:
    """The evaluation inputs of every benchmark (harness.training.evaluate.encode_rows), kept for the
    process: the final and checkpoint evaluations of a run and the runs after it on the same base and
    evaluation reuse them. Keyed by the processor's source folder (the base model's, so two bases never
    share inputs) or, for a processor built in memory, by the object itself."""
    from harness.training.evaluate import encode_rows

    origin = getattr(getattr(processor, "tokenizer", None), "name_or_path", "") or f"id:{id(processor)}"
    key = (
        origin,
        type(processor).__name__,
        getattr(source, "name", id(source)),
        tuple(cfg.train_domains),
        tuple(cfg.ood_sets),
        cfg.eval_n,
        cfg.eval_batch,
        bool(cfg.eval_p_correct),
    )
    if key not in _ENCODED_CACHE:
        _ENCODED_CACHE.clear()
        _ENCODED_CACHE[key] = {
            name: encode_rows(processor, rows, cfg.eval_batch, cfg.eval_p_correct)
            for name, rows in eval_benchmarks(cfg, source).items()
        }
    return _ENCODED_CACHE[key]


def evaluate_model(model, processor, cfg: ProtocolConfig, source=None) -> tuple[dict[str, float], dict[str, float]]:
    """(scores with In_Score/Out_Score, format rate per benchmark) of a model under cfg's evaluation.
    With cfg.eval_p_correct the scores also hold `p_correct_<benchmark>`, `In_Score_p` and `Out_Score_p`."""
    from harness.training.evaluate import evaluate_benchmarks
    from tasks.aggregate import aggregate, p_correct_scores

    source = source or MiniModoSource()
    ev = evaluate_benchmarks(
        model,
        processor,
        eval_benchmarks(cfg, source),
        cfg.max_completion_length,
        cfg.eval_batch,
        p_correct=cfg.eval_p_correct,
        encoded=encoded_benchmarks(cfg, source, processor),
    )
    scores = aggregate(ev["accuracy"], cfg.train_domains, cfg.ood_sets)
    if cfg.eval_p_correct:
        scores.update(p_correct_scores(ev["p_correct"], cfg.train_domains, cfg.ood_sets))
    return scores, ev["format"]


class CheckpointEvaluation:
    """A `TrainerCallback` that evaluates the policy after the steps of `cfg.checkpoint_steps()`.

    It must not change what training does next: the evaluation runs under a saved and restored RNG
    state (torch, numpy, Python), with the model in eval mode and put back in the mode it was in,
    inside `torch.no_grad()` (harness.training.evaluate). A run with checkpoints therefore trains
    exactly as the same run without them (tests/test_checkpoints.py checks the final scores and the
    reward log are identical)."""

    def __init__(self, cfg: ProtocolConfig, processor, source):
        from transformers import TrainerCallback

        self.cfg, self.processor, self.source = cfg, processor, source
        self.at: dict[int, list[float]] = {}  # step -> fidelities (two may share a step in a very short run)
        for f, step in cfg.checkpoint_steps().items():
            self.at.setdefault(step, []).append(f)
        self.results: dict[float, dict[str, Any]] = {}
        self.seconds = 0.0
        # subclassing at run time keeps transformers out of this module's import
        self.callback = type(
            "CheckpointEvaluationCallback",
            (TrainerCallback,),
            {"on_step_end": lambda _cb, args, state, control, **kw: self.on_step_end(args, state, control, **kw)},
        )()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        due = [f for f in self.at.get(int(state.global_step), []) if f not in self.results]
        if not due or model is None:
            return control
        import random

        import numpy as np
        import torch

        t0 = time.perf_counter()
        saved = (torch.get_rng_state(), np.random.get_state(), random.getstate())
        was_training = model.training
        try:
            scores, fmt = evaluate_model(model, self.processor, self.cfg, self.source)
        finally:
            model.train(was_training)
            torch.set_rng_state(saved[0])
            np.random.set_state(saved[1])
            random.setstate(saved[2])
        seconds = time.perf_counter() - t0
        self.seconds += seconds
        for f in due:
            self.results[f] = {
                "step": int(state.global_step),
                "scores": scores,
                "format_rate": fmt,
                "seconds": round(seconds, 3),
            }
        return control


def load_base(cfg: ProtocolConfig, log=None):
    """(model, processor, label, info) of the protocol's base model (built and cached when tiny)."""
    from harness.training import bases
    from harness.training import model as tiny

    if cfg.model == "tiny":
        folder = bases.ensure_base(cfg.base, log=log)
        model, processor = bases.load(folder)
        return model, processor, f"{cfg.base.name}@{folder.name.rsplit('-', 1)[-1]}", tiny.base_info(folder)
    model, processor = bases.load(cfg.model)  # a local folder of the same layout (the GPU runner brings its own)
    return model, processor, cfg.model, {}


def train_and_evaluate(
    cfg: ProtocolConfig, mixture: Mapping[str, float], seed: int, source=None, log=None
) -> TrainResult:
    """GRPO on `mixture` (dataset -> weight, over cfg.train_domains) with `seed`, then evaluation.
    An online run's twin: `train_and_evaluate_online`."""

    def prepare(source):
        from harness.training import grpo  # looked up at call time: pilot_profile times these functions

        return grpo.mixture_dataset(cfg, dict(mixture), seed, source.train_rows)

    def train(model, processor, dataset, callbacks):
        from harness.training import grpo

        return grpo.train_grpo(model, processor, dataset, cfg, seed, callbacks=callbacks)

    return _protocol_run(cfg, seed, source, log, prepare, train, dict)


def train_and_evaluate_online(cfg: ProtocolConfig, controller, seed: int, source=None, log=None) -> TrainResult:
    """An online run of the protocol with `seed`, then evaluation: `controller` (an `OnlineMixture`,
    harness/training/online.py) draws the prompts from every training domain by the weights the online
    strategy sets step by step, starting from its `start()`. The result carries the record of those weights
    and signals (`online`) and the measured overhead of the online machinery (timings `online`,
    `online_strategy`, inside `train`)."""
    from harness.training.online_grpo import OnlineTraining, train_grpo_online

    def prepare(source):  # the strategy's first weights, checked, before any data is built
        return OnlineTraining.prepare(controller, cfg, seed, source.train_rows)

    def train(model, processor, online, callbacks):
        return train_grpo_online(model, processor, online, cfg, callbacks)

    def overhead():
        return {"online": controller.seconds, "online_strategy": controller.calls_seconds}

    result = _protocol_run(cfg, seed, source, log, prepare, train, overhead)
    result.online = controller.record()
    return result


def _protocol_run(cfg: ProtocolConfig, seed: int, source, log, prepare, train, extra_timings) -> TrainResult:
    """The protocol end to end: the base model, the training data (`prepare(source)`), GRPO
    (`train(model, processor, data, callbacks)`, returning the trainer) with the checkpoint evaluations, the
    final evaluation; `extra_timings()`: seconds measured inside training, reported beside it."""
    t0 = time.perf_counter()
    import torch

    import datasets  # noqa: F401  (import cost counted under 'imports')
    import trl  # noqa: F401

    from harness.training.grpo import reward_log
    from harness.training.model import set_offline_env

    set_offline_env()
    torch.set_num_threads(max(1, int(cfg.threads)))
    source = source or MiniModoSource()
    t1 = time.perf_counter()
    torch.manual_seed(seed)
    model, processor, label, info = load_base(cfg, log=log)
    t2 = time.perf_counter()
    data = prepare(source)
    eval_benchmarks(cfg, source)
    t3 = time.perf_counter()
    ckpt = CheckpointEvaluation(cfg, processor, source) if cfg.eval_checkpoints and cfg.steps else None
    torch.manual_seed(seed)
    trainer = train(model, processor, data, [ckpt.callback] if ckpt else [])
    t4 = time.perf_counter()
    scores, fmt = evaluate_model(trainer.model, processor, cfg, source)
    t5 = time.perf_counter()
    t_ckpt = ckpt.seconds if ckpt else 0.0
    timings = {
        "imports": t1 - t0,
        "build": t2 - t1,
        "data": t3 - t2,
        "train": t4 - t3 - t_ckpt,
        "eval": t5 - t4,
        "total": t5 - t0,
    }
    if ckpt:
        timings["eval_checkpoints"] = t_ckpt  # not counted in "train"
    timings.update(extra_timings())
    if cfg.steps:
        timings["s_per_step"] = timings["train"] / cfg.steps
    return TrainResult(
        scores=scores,
        format_rate=fmt,
        timings={k: round(v, 3) for k, v in timings.items()},
        rollouts=cfg.rollouts,
        steps=cfg.steps,
        base=label,
        base_info=info,
        train_log=reward_log(trainer),
        checkpoints=dict(sorted(ckpt.results.items())) if ckpt else {},
    )
