"""CPU runner: the real protocol at toy scale.

`CpuRunner(suite).run(spec)` trains the suite's tiny Qwen2-VL base with TRL's `GRPOTrainer` on the
spec's weighted mixture of MiniModo domains, with the spec's seed, then evaluates it on the
in-domain test splits and the out-of-domain sets (harness.training.train_and_evaluate). The
protocol is the suite card's `protocol_config` (a preset name plus overrides; see
`harness.training.ProtocolConfig.help()`); `fidelity` scales the number of GRPO steps.

The RunResult carries every per-benchmark score plus `In_Score` and `Out_Score`, `source: trained`,
in `provenance` the config fingerprint, the reward rule, the base weights' sha256, the CPU capability
torch dispatched to and its thread count (what decides bit-for-bit reproduction, harness.factory.verify),
and in `cost`: wall seconds, rollouts (completions generated), GRPO steps and the timing split
(`t_imports`, `t_build`, `t_data`, `t_train`, `t_eval`, and `t_eval_checkpoints`). With the
protocol's `eval_checkpoints` it also carries `checkpoints`: the scores at each fidelity (fraction of
the steps, '1.0' the final ones), and their steps in `provenance.checkpoint_steps`. A crash inside training comes back as a
failed RunResult with its reason; the study loop stores every result, so `bench` resumes.

`run_online(request)` (an `OnlineRunSpec`, harness/training/online.py) trains one online run in this
process, its prompts drawn by the weights the request's controller gets from the strategy step by step
(`harness.training.train_and_evaluate_online`); the result carries the record of those weights (`online`)
and the online machinery's measured seconds (`t_online`, `t_online_strategy`).
The thread count is the protocol's `threads` field (a suite card's `protocol_config`), nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time

from harness.mixture import InvalidMixture
from harness.provenance import machine_provenance, provenance
from harness.studies.runner import Runner, refuse_online
from harness.spec import STATUS_OK, RunResult, RunSpec, fidelity_key
from harness.training.online import OnlineRunSpec, OnlineStrategyFailed


def protocol_config(suite):
    """The ProtocolConfig a suite card defines (`protocol_config:`), checked against its datasets."""
    from harness.training.config import ProtocolConfig

    raw = suite.card.get("protocol_config")
    if raw is None:
        raise ValueError(
            f"suite {suite.name!r} has no protocol_config: the cpu runner trains only suites that "
            f"define one (e.g. minimodo-tiny-live)"
        )
    cfg = ProtocolConfig.from_dict(raw)
    if "train_domains" not in raw:
        cfg = dataclasses.replace(cfg, train_domains=tuple(suite.space.datasets))
    if tuple(cfg.train_domains) != tuple(suite.space.datasets):
        raise ValueError(
            f"suite {suite.name!r}: protocol trains on {list(cfg.train_domains)} but the suite's "
            f"datasets are {list(suite.space.datasets)}"
        )
    return cfg


def _base_folder(cfg):
    """Where the run's base weights live (the tiny base's cache folder, or a local model folder)."""
    if cfg.model == "tiny":
        from harness.training.bases import base_dir

        return base_dir(cfg.base)
    return cfg.model if os.path.isdir(str(cfg.model)) else None


class CpuRunner(Runner):
    kind = "cpu"

    def __init__(self, suite):
        self.suite = suite
        self.config = protocol_config(suite)

    def config_for(self, fidelity: float):
        if fidelity >= 1.0:
            return self.config
        return dataclasses.replace(self.config, steps=max(1, math.ceil(self.config.steps * fidelity)))

    def run(self, spec: RunSpec) -> RunResult:
        """One offline run: GRPO on the spec's mixture."""
        from harness.training import train_and_evaluate

        refuse_online(spec, self.kind)
        return self._train(spec, lambda cfg, mixture: train_and_evaluate(cfg, mixture.as_dict(), int(spec.seed)))

    def run_online(self, request: OnlineRunSpec) -> RunResult:
        """One online run: the prompts drawn by the weights the request's controller gets from its strategy."""
        from harness.training import train_and_evaluate_online

        spec = request.spec
        return self._train(spec, lambda cfg, _: train_and_evaluate_online(cfg, request.controller, int(spec.seed)))

    def _train(self, spec: RunSpec, train) -> RunResult:
        """A run through `train(cfg, mixture)` (a TrainResult), as a RunResult; a crash is a failed run."""
        if spec.protocol != self.suite.protocol or spec.suite != self.suite.id:
            raise ValueError(
                f"run spec for {spec.suite} (protocol {spec.protocol}) sent to a runner of "
                f"{self.suite.id} (protocol {self.suite.protocol})"
            )
        prov = provenance(self.suite.protocol)
        try:
            mixture = self.suite.space.validate(spec.mixture)
        except InvalidMixture as e:
            return RunResult.failed(spec, f"invalid mixture: {e}", prov)
        cfg = self.config_for(spec.fidelity)
        t0 = time.perf_counter()
        try:
            with contextlib.redirect_stdout(sys.stderr):  # stdout is for results (modomodo run prints JSON)
                res = train(cfg, mixture)
        except OnlineStrategyFailed as e:  # the online strategy's failure: its study fails, with the reason
            return RunResult.failed(spec, f"online strategy {e}", prov)
        except Exception as e:  # a crash in training is a failed run, not a crashed benchmark
            import traceback

            tb = traceback.extract_tb(e.__traceback__)
            where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
            return RunResult.failed(spec, f"training failed: {type(e).__name__}: {e}{where}", prov)
        wall = time.perf_counter() - t0
        cost = {"seconds": wall, "rollouts": float(res.rollouts), "steps": float(res.steps)}
        cost.update({f"t_{k}": float(v) for k, v in res.timings.items() if k != "total"})
        prov = dict(
            prov,
            base_model=res.base,
            protocol_config=cfg.name,
            config_fingerprint=cfg.fingerprint(),
            reward_rule=cfg.reward_rule,
            **machine_provenance(_base_folder(cfg)),
        )
        scores = {k: float(v) for k, v in res.scores.items()}
        scores.update({f"format/{k}": float(v) for k, v in res.format_rate.items()})
        scores.update({f"train/{k}": float(v) for k, v in res.train_log.items()})
        checkpoints = {}
        if res.checkpoints:  # protocols with eval_checkpoints: scores by fidelity, the final one as '1.0'
            for f, ck in res.checkpoints.items():
                checkpoints[fidelity_key(f)] = {
                    **{k: float(v) for k, v in ck["scores"].items()},
                    **{f"format/{k}": float(v) for k, v in ck["format_rate"].items()},
                }
            checkpoints[fidelity_key(1.0)] = {k: v for k, v in scores.items() if not k.startswith("train/")}
            prov["checkpoint_steps"] = {
                **{fidelity_key(f): int(ck["step"]) for f, ck in res.checkpoints.items()},
                fidelity_key(1.0): int(res.steps),
            }
        return RunResult(
            key=spec.key,
            spec=spec.to_dict(),
            status=STATUS_OK,
            scores=scores,
            metric=self.suite.metric,
            source="trained",
            cost=cost,
            provenance=prov,
            checkpoints=checkpoints,
            online=res.online,
        )
