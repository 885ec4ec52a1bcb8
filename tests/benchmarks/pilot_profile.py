"""Where a pilot's seconds go: one real pilot, timed by phase (issue 27, item 4).

    python -m tests.benchmarks.pilot_profile --suite minimodo-pool-live --mixture uniform --seed 0 [--runs 2]

Runs the suite's protocol (`train_and_evaluate`, the code the CPU runner calls) in this process with
timers wrapped around the methods each phase lives in, and prints one JSON object per run:

- `imports` (torch, transformers, trl, datasets; paid by the first run of a process only),
  `build` (base model load), `data` (training rows and the evaluation rows);
- inside training: `generation` (TRL `_generate`: prompt tokenisation, image processing and
  `model.generate`), `scoring` (the rest of `_generate_and_score_completions`: reference-model
  log-probabilities for the KL term, rewards, advantages), `loss_forward` (`compute_loss`), and
  `backward_optimizer` (the rest of the step: backward, clipping, AdamW, scheduler, callbacks);
- `eval` (the final evaluation) and `eval_checkpoints` (the mid-run ones), each split into
  `*_encode` (chat template and processor: the inputs, identical at every evaluation),
  `*_generate` (greedy decoding) and `*_p_correct` (the teacher-forced pass).

The wrappers only read a clock: they change nothing a run computes (the scores printed are the run's).
A second run in the same process (`--runs 2`) shows what a warm worker pays. Timings are wall
seconds on a shared machine: compare before/after in one session, side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import time
from collections import defaultdict

T0 = time.perf_counter()


class PhaseClock:
    """Accumulates CPU seconds (`time.process_time`: what a phase costs the core it runs on, the figure
    that stays put on a loaded shared machine) and wall seconds per phase; nested phases are
    subtracted from their parent by the caller."""

    def __init__(self):
        self.s: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)
        self._patches: list[tuple[object, str, object]] = []
        self.stage = "eval"  # 'eval' or 'eval_checkpoints': where evaluation seconds are booked

    def wrap(self, owner, name: str, phase) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*a, **kw):
            t, w = time.process_time(), time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                key = phase() if callable(phase) else phase
                self.s[key] += time.process_time() - t
                self.wall[key] += time.perf_counter() - w

        setattr(owner, name, timed)
        self._patches.append((owner, name, original))

    def restore(self) -> None:
        for owner, name, original in reversed(self._patches):
            setattr(owner, name, original)
        self._patches.clear()


@contextlib.contextmanager
def timed_phases(clock: PhaseClock):
    from trl import GRPOTrainer

    from harness.training import evaluate, grpo, run

    clock.wrap(run, "load_base", "build")
    clock.wrap(grpo, "mixture_dataset", "data")
    clock.wrap(run, "eval_benchmarks", "data_eval")
    if hasattr(run, "encoded_benchmarks"):
        clock.wrap(run, "encoded_benchmarks", lambda: f"{clock.stage}_encode_cached")
    clock.wrap(grpo, "train_grpo", "train_with_checkpoints")
    clock.wrap(run, "evaluate_model", lambda: clock.stage)
    clock.wrap(GRPOTrainer, "_generate", "generation")
    clock.wrap(GRPOTrainer, "_generate_and_score_completions", "generate_and_score")
    clock.wrap(GRPOTrainer, "compute_loss", "loss_forward")
    clock.wrap(GRPOTrainer, "training_step", "training_step")
    clock.wrap(run.CheckpointEvaluation, "on_step_end", "_ckpt_callback")
    clock.wrap(evaluate, "generate", lambda: f"{clock.stage}_generate")
    clock.wrap(evaluate, "answer_probability", lambda: f"{clock.stage}_p_correct")
    if hasattr(evaluate, "encode_rows"):  # the cached encodings (after item 4)
        clock.wrap(evaluate, "encode_rows", lambda: f"{clock.stage}_encode")
    clock.wrap(evaluate, "render_prompts", lambda: f"{clock.stage}_encode")
    try:
        yield clock
    finally:
        clock.restore()


def phases(s: dict[str, float]) -> dict[str, float]:
    """The pilot's phases from the clock's sums (a checkpoint evaluation runs inside training, the
    encodings inside the evaluation that first needs them)."""
    s = defaultdict(float, s)
    train = s["train_with_checkpoints"] - s["eval_checkpoints"]
    out = {
        "build": s["build"],
        "data": s["data"] + s["data_eval"],
        "generation": s["generation"],
        "scoring": s["generate_and_score"] - s["generation"],
        "loss_forward": s["loss_forward"],
        "backward_optimizer": train - s["generate_and_score"] - s["loss_forward"],
        "eval": s["eval"],
        "eval_checkpoints": s["eval_checkpoints"],
    }
    for stage in ("eval", "eval_checkpoints"):
        for part in ("encode", "encode_cached", "generate", "p_correct"):
            if f"{stage}_{part}" in s:
                out[f"{stage}_{part}"] = s[f"{stage}_{part}"]
    out["total"] = sum(
        out[k]
        for k in (
            "build",
            "data",
            "generation",
            "scoring",
            "loss_forward",
            "backward_optimizer",
            "eval",
            "eval_checkpoints",
        )
    )
    return {k: round(v, 3) for k, v in out.items()}


def profile_run(cfg, mixture: dict, seed: int) -> dict:
    from harness.training import run
    from harness.training.run import train_and_evaluate

    clock = PhaseClock()
    original_ckpt = run.CheckpointEvaluation.on_step_end

    def booked(self, *a, **kw):  # checkpoint evaluations are booked apart from the final one
        clock.stage = "eval_checkpoints"
        try:
            return original_ckpt(self, *a, **kw)
        finally:
            clock.stage = "eval"

    run.CheckpointEvaluation.on_step_end = booked
    try:
        with timed_phases(clock):
            res = train_and_evaluate(cfg, mixture, seed)
    finally:
        run.CheckpointEvaluation.on_step_end = original_ckpt
    return {
        "cpu_s": phases(clock.s),
        "wall_s": phases(clock.wall),
        "timings": res.timings,
        "scores": res.scores,
        "train_log": res.train_log,
        "checkpoints": {str(k): v["scores"] for k, v in res.checkpoints.items()},
    }


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="minimodo-pool-live", help="A live suite (its card's protocol_config).")
    p.add_argument("--mixture", default="uniform", help="'uniform' or name=weight,... over the suite's datasets.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", type=int, default=1, help="Pilots in this one process (the second is a warm worker's).")
    p.add_argument("--steps", type=int, default=0, help="Override the protocol's GRPO steps (0: the protocol's).")
    p.add_argument("--eval-n", type=int, default=0, help="Override the protocol's eval_n (0: the protocol's).")
    p.add_argument("--out", default="", help="Also write the JSON list here.")
    a = p.parse_args(argv)

    import dataclasses

    t, c = time.perf_counter(), time.process_time()
    import datasets  # noqa: F401  (the imports a fresh worker pays once, timed here)
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import trl  # noqa: F401

    imports_cold = (time.perf_counter() - t, time.process_time() - c)
    from harness import suites
    from harness.runners.cpu import protocol_config

    suite = suites.load(a.suite)
    cfg = protocol_config(suite)
    if a.steps:
        cfg = dataclasses.replace(cfg, steps=a.steps)
    if a.eval_n:
        cfg = dataclasses.replace(cfg, eval_n=a.eval_n)
    mixture = suite.space.uniform() if a.mixture == "uniform" else suite.space.parse(a.mixture)
    out = []
    for i in range(a.runs):
        r = profile_run(cfg, mixture.as_dict(), a.seed)
        for clock, x in (("wall_s", imports_cold[0]), ("cpu_s", imports_cold[1])):
            # the first run of a process pays the imports (timed above, before anything else); later ones none
            r[clock]["imports"] = round(x if i == 0 else 0.0, 3)
            r[clock]["total"] = round(r[clock]["total"] + r[clock]["imports"], 3)
        r.update(run=i, suite=a.suite, steps=cfg.steps, process_age_s=round(time.perf_counter() - T0, 2))
        print(json.dumps(r), flush=True)
        out.append(r)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
