"""Replay runner: answers from the suite's recorded table, surrogate or analytic function.

Like Syne Tune's simulator backend, it reports the cost the real run would have had (simulated
GPU-hours from the suite card, when the card states them) while taking microseconds.

Its answers are a pure function of the run spec, so a study asks them from memory (`answer`), never
through the result store: a store round trip (a JSON record hashed, written, looked up) costs hundreds of
times a remembered answer. The store keeps what is worth keeping: real runs (cpu, gpu) and finished studies. A
card that simulates a slow runner (`cost.simulated_delay_s`, the crash/resume tests' stand-in) keeps the
store path, as does a subclass that changes `run` (a flaky stand-in for a real runner).
"""

from __future__ import annotations

import time

from harness.mixture import InvalidMixture
from harness.provenance import provenance
from harness.run_key import run_key
from harness.studies.runner import Runner
from harness.spec import STATUS_OK, RunResult, RunSpec, UnknownFidelity

MEMORY_KINDS = ("replay", "synthetic")  # suites whose answers are a table lookup or a formula
MEMO_LIMIT = 100_000  # answers remembered per (suite, track) in one process; past it the memo starts afresh
_MEMO = ("replay", "answers")  # where in the suite's cache
_KEY_PARTS = ("replay", "run key parts")  # each mixture's part of its runs' keys (harness/run_key.py)


class ReplayRunner(Runner):
    kind = "replay"

    def __init__(self, suite):
        self.suite = suite
        cost = suite.card.get("cost") or {}
        self.gpu_hours = cost.get("gpu_hours_per_run")
        # Optional wall-clock delay per run, from the card: lets a synthetic suite stand in for a
        # slow runner (used by the crash/resume tests and to demo the progress bar).
        self.delay_s = float(cost.get("simulated_delay_s", 0.0))

    @property
    def answers_from_memory(self) -> bool:
        """Whether a study may ask `answer` instead of going through the store (harness.studies.study): a recorded table
        or an analytic function (a live suite's answer is a training run, stored), answering at once."""
        return self.suite.kind in MEMORY_KINDS and not self.delay_s and type(self).run is ReplayRunner.run

    def answer(self, spec: RunSpec) -> RunResult:
        """`run(spec)`, remembered: the same spec (the store's identity: suite, protocol, mixture to 1e-9, seed,
        fidelity) gets the same result object, validated and computed once per process. The memo lives on the
        suite (the judge of one track), so every study of a worker shares it, as they shared the store;
        failed results are not remembered (the store did not serve them either)."""
        memo = self.suite._cache.get(_MEMO)
        if memo is None:
            memo = self.suite._cache[_MEMO] = {}
        result = memo.get(spec)
        if result is None:
            result = self.run(spec)
            if result.ok:
                if len(memo) >= MEMO_LIMIT:
                    memo.clear()
                memo[spec] = result
        return result

    def run(self, spec: RunSpec) -> RunResult:
        if spec.protocol != self.suite.protocol or spec.suite != self.suite.id:
            raise ValueError(
                f"run spec for {spec.suite} (protocol {spec.protocol}) sent to a runner of "
                f"{self.suite.id} (protocol {self.suite.protocol})"
            )
        t0 = time.perf_counter()
        try:
            # a partial run (fidelity < 1) only exists where the judge offers it (the pool track of a suite
            # with fidelities.csv); other suites' simulate keeps its two-argument form
            scores, source = (
                self.suite.simulate(spec.mixture, spec.seed)
                if spec.fidelity == 1.0
                else self.suite.simulate(spec.mixture, spec.seed, spec.fidelity)
            )
        except InvalidMixture as e:
            return RunResult.failed(spec, f"invalid mixture: {e}", provenance(self.suite.protocol))
        except (UnknownFidelity, TypeError) as e:
            if isinstance(e, TypeError) and spec.fidelity == 1.0:
                raise
            return RunResult.failed(
                spec, f"fidelity {spec.fidelity:g} not available: {e}", provenance(self.suite.protocol)
            )
        if self.delay_s:
            time.sleep(self.delay_s)
        cost = {"seconds": time.perf_counter() - t0}
        if self.gpu_hours is not None:
            cost["simulated_gpu_hours"] = float(self.gpu_hours) * spec.fidelity
        return RunResult(
            key=run_key(spec, self.suite._cache.setdefault(_KEY_PARTS, {})),  # spec.key, written out faster
            spec=spec.to_dict(),
            status=STATUS_OK,
            scores=scores,
            metric=self.suite.metric,
            source=source,
            cost=cost,
            provenance=provenance(self.suite.protocol),
        )
