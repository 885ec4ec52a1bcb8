"""The study loop: ask the strategy, run (or fetch from the store), tell, until the budget is spent;
then score the recommendation with the suite's oracle, through one track (harness/suites/tracks.py:
in the pool track every proposal and the recommendation must be a recorded candidate).

The strategy is the only untrusted party. Anything it raises or returns that is not a valid
mixture ends the study as `failed` with the reason, and the benchmark moves on. Failed pilot runs
stay in the history (as failed observations), so a strategy must cope with them, as it would on a
real cluster.

Fidelity (harness/spec.py: `Proposal`, `pilot_cost`): where the judge offers fidelities (the pool track of
a recorded suite with checkpoints, `space.fidelities`), `propose` may return `Proposal(mixture, f)` for a
pilot at fidelity f: the recorded seed's score at that checkpoint. A plain Mixture is a full run. The budget
is in run-equivalents, priced by the judge's cost model (`Judge.cost_model`, the card's measured `cost_model`):
a pilot starts a run or continues the mixture's latest run (which reached f0 < f): an early stop of one run,
the same training seed, not a separate run. An unknown fidelity fails
the study (UnknownFidelity); a pilot costing more than what is left ends the pilots (`note` says so).
The recommendation is always scored by its full-fidelity per-mixture mean.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any

from harness.sandbox.isolation import make_strategy
from harness.sandbox.protocol import short_error as _short_error
from harness.mixture import InvalidMixture, Mixture
from harness.studies.runner import Runner
from harness.spec import (
    STATUS_FAILED,
    STATUS_OK,
    Budget,
    Ledger,
    Observation,
    RunResult,
    RunSpec,
    UnknownFidelity,
    as_proposal,
    derive_seed,
)
from harness.store import ResultStore
from harness.studies.record import TrajectoryText
from harness.suites import Suite
from harness.suites.tracks import Judge


@dataclass
class StudyOutcome:
    suite: str
    strategy: str
    budget: int | float  # run-equivalents (harness.spec.Budget)
    seed: int
    track: str = ""
    status: str = STATUS_OK
    reason: str = ""
    recommended: dict[str, float] | None = None
    score: float | None = None
    score_source: str = ""
    # fraction of this study's answers (pilots + the recommendation's score) that a surrogate gave
    surrogate_fraction: float = 0.0
    beyond_best_known: bool = False  # a (surrogate) score better than every measured mixture
    regret: float | None = None
    normalized_regret: float | None = None
    uniform_score: float | None = None
    best_known: float | None = None
    worst_known: float | None = None
    runs_used: int = 0  # pilots run (partial ones included)
    cost_used: float = 0.0  # run-equivalents they cost (= runs_used on single-fidelity suites)
    runs_failed: int = 0
    runs_executed: int = 0
    runs_reused: int = 0
    wall_s: float = 0.0
    note: str = ""  # e.g. why the pilots ended before the budget was spent
    protocol: str = ""
    trajectory: list[dict[str, Any]] = field(default_factory=list)
    # an online study's run (harness/studies/online.py): domains, per-step weights, measured overhead
    online: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The study's record. Its containers are the outcome's own, not copies (`dataclasses.asdict` deep-copies
        every trajectory step, a good part of a replayed study's cost): the outcome is finished when it is
        recorded."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if not d["online"]:
            del d["online"]  # offline studies' records stay as they were
        return d

    def encoded_fields(self) -> dict[str, str]:
        """The JSON text of the record's fields the study wrote as it went (its trajectory: harness/studies/record.py),
        for the store to take as they are (`ResultStore.put_study(..., encoded=...)`); empty when there is none."""
        built = self.__dict__.get("_trajectory_text")
        text = None if built is None else built.text(self.trajectory)
        return {} if text is None else {"trajectory": text}


def run_through_store(call, spec: RunSpec, store: ResultStore | None, outcome: StudyOutcome) -> RunResult:
    """The run `spec` names: from the store when it holds it, else `call()` (a runner's run), stored at once.
    A runner that raises gives a failed result: a runner bug must not take the benchmark down either."""
    if store is not None:
        cached = store.get(spec.key)
        if cached is not None:
            outcome.runs_reused += 1
            return cached
    result = _call_runner(call, spec)
    outcome.runs_executed += 1
    if store is not None:
        store.put(result)
    return result


def _call_runner(call, spec: RunSpec) -> RunResult:
    try:
        return call()
    except Exception as e:
        return RunResult.failed(spec, f"runner raised {_short_error(e)}")


def answers_from_memory(runner: Runner) -> bool:
    """Whether the runner's answers are a pure function of the run spec, computed in microseconds (the replay
    runner on a recorded pool or an analytic function, harness/runners/replay.py): then a pilot is asked of it
    directly, from memory, with no store round trip; the store keeps real runs (cpu, gpu, jobs) and the
    finished studies (harness/bench/bench.py), which are what a resumed bench needs."""
    return bool(getattr(runner, "answers_from_memory", False))


ANSWERS_LIMIT = 100_000  # pilots remembered per judge in one process (`Study._answered`); past it afresh
_ANSWERS = ("study", "answers")
ADMITTED_LIMIT = 100_000  # pool proposals remembered per judge in one process; past it the memo starts afresh
_ADMITTED = ("study", "admitted")


def admit(judge: Judge, mixture: Mixture) -> Mixture:
    """`judge.check_proposal(mixture)`: in the pool track, remembered per exact weights (the pool is finite,
    strategies propose its candidates again and again, and the check is a pure function of the weights);
    a refused proposal is refused afresh each time, with its reason."""
    if not judge.is_pool:
        return judge.check_proposal(mixture)
    memo = judge._cache.get(_ADMITTED)
    if memo is None:
        memo = judge._cache[_ADMITTED] = {}
    exact = mixture.items_()  # its (name, weight) pairs, as given
    admitted = memo.get(exact)
    if admitted is None:
        admitted = judge.check_proposal(mixture)
        if len(memo) >= ADMITTED_LIMIT:
            memo.clear()
        memo[exact] = admitted
    return admitted


class Study:
    def __init__(
        self,
        suite: Suite,
        strategy_cls: type,
        budget: Budget,
        seed: int,
        runner: Runner,
        store: ResultStore | None = None,
        strategy_params: dict[str, Any] | None = None,
        isolation: str | None = None,
        timeout_s: float | None | str = "default",
        track: str | None = None,
    ):
        # the suite as the chosen track judges it (a Judge passes through; None = the suite's default track)
        self.suite = suite if isinstance(suite, Judge) else suite.judge(track)
        # the judge prices the pilots (its suite's measured cost model), whatever price list the caller brought
        self.strategy_cls, self.budget, self.seed = strategy_cls, budget.priced(self.suite.cost_model), int(seed)
        self.runner, self.store = runner, store
        self.params = strategy_params or {}
        # How the strategy is run (harness/sandbox/isolation.py): None = $MODOMODO_STRATEGY_ISOLATION or
        # "auto" (a separate process for strategies loaded from a user's file, in-process otherwise);
        # timeout_s per propose/recommend call, "default" = $MODOMODO_STRATEGY_TIMEOUT or 60 s.
        self.isolation, self.timeout_s = isolation, timeout_s
        self._from_memory = answers_from_memory(runner)
        self._protocol = self.suite.protocol  # asked once: a lookup through the judge
        # the judge's remembered answers (`_answered`), only where the runner answers from memory; per runner kind
        self._answers = self.suite._cache.setdefault((*_ANSWERS, runner.kind), {}) if self._from_memory else None

    def run_seed(self, step: int, mixture=None, occurrence: int = 0) -> int:
        """The training seed of the step-th pilot run: fixed by (study seed, step) and published; in the
        pool track, the recorded seed this occurrence of the candidate draws."""
        if self.suite.is_pool:
            return self.suite.run_seed(self.seed, step, mixture, occurrence)
        return derive_seed(self.seed, step)

    def _run(self, spec: RunSpec, outcome: StudyOutcome) -> RunResult:
        if self._from_memory:  # a replayed answer: the runner's memo, never the store
            outcome.runs_executed += 1
            return _call_runner(lambda: self.runner.answer(spec), spec)
        return run_through_store(lambda: self.runner.run(spec), spec, self.store, outcome)

    def _answered(self, mixture: Mixture, seed: int, fidelity: float, outcome: StudyOutcome) -> tuple:
        """(spec, result, value, oriented value) of the pilot (mixture, training seed, fidelity). From a runner that
        answers from memory, a successful answer is remembered on the judge with the spec naming it and its value
        (all pure functions of the three): a pilot asked before, by any study of this process, builds no RunSpec and
        asks no runner. Otherwise, and for a failed run, `_run` as before."""
        memo = self._answers
        if memo is not None:
            got = memo.get((mixture, seed, fidelity))
            if got is not None:
                outcome.runs_executed += 1  # as `_run` counts a remembered answer
                return got
        suite = self.suite
        spec = RunSpec(suite.id, self._protocol, mixture, seed, fidelity)
        result = self._run(spec, outcome)
        value = result.value
        got = (spec, result, value, None if value is None else suite.orient(value))
        if memo is not None and result.ok:
            if len(memo) >= ANSWERS_LIMIT:
                memo.clear()
            memo[(mixture, seed, fidelity)] = got
        return got

    def run(self) -> StudyOutcome:
        suite = self.suite
        out = StudyOutcome(
            suite.name,
            getattr(self.strategy_cls, "name", "?"),
            self.budget.runs,
            self.seed,
            track=suite.track,
            uniform_score=suite.uniform_score,
            best_known=suite.best_known,
            worst_known=suite.worst_known,
            protocol=suite.protocol,
        )
        t0 = time.perf_counter()
        try:
            self._loop(out)
        finally:
            handle = self.__dict__.pop("_strategy", None)
            if handle is not None:
                handle.close()
            out.wall_s = round(time.perf_counter() - t0, 6)
        return out

    def _fail(self, out: StudyOutcome, reason: str) -> StudyOutcome:
        out.status, out.reason = STATUS_FAILED, reason
        return out

    def _loop(self, out: StudyOutcome) -> StudyOutcome:
        suite, space = self.suite, self.suite.space
        try:
            strategy = make_strategy(self.strategy_cls, space, self.seed, self.params, self.isolation, self.timeout_s)
        except Exception as e:
            return self._fail(out, f"strategy could not be built: {_short_error(e)}")
        self._strategy = strategy
        history: list[Observation] = []
        occurrences: dict[Mixture, int] = {}
        run_seeds: dict[Mixture, int] = {}  # the training seed of each mixture's latest run (continued by a pilot)
        ledger = Ledger(self.budget.cost_model)  # what each pilot costs and what was spent, kept as it goes
        surrogate_answers = 0
        best = None
        written = out._trajectory_text = TrajectoryText(suite)  # the record's trajectory text, step by step
        maximize = suite.maximize  # asked once: a lookup through the judge
        while (left := self.budget.left(ledger)) > 0:  # (what is left changes only when a pilot is recorded)
            step = len(history)
            try:
                proposal = strategy.propose(tuple(history), self.budget)
            except Exception as e:
                return self._fail(out, f"propose raised {_short_error(e)} (step {step})")
            if proposal is None:
                break
            try:
                try:
                    proposal = as_proposal(proposal)
                except TypeError as e:
                    raise InvalidMixture(str(e)) from None
                if not isinstance(proposal.mixture, Mixture):
                    raise InvalidMixture(f"expected a Mixture in the Proposal, got {type(proposal.mixture).__name__}")
                mixture = admit(suite, proposal.mixture)
            except InvalidMixture as e:
                return self._fail(out, f"propose returned an invalid mixture at step {step}: {e}")
            try:
                fidelity = suite.check_fidelity(proposal.fidelity)
            except UnknownFidelity as e:
                return self._fail(out, f"propose asked for an unknown fidelity at step {step}: UnknownFidelity: {e}")
            cost, continues = ledger.price(mixture, fidelity)
            if cost > left + 1e-9:
                # a pilot the budget cannot pay for is not run: the pilots end here (the strategy could have
                # asked for less), and the recommendation is scored as usual
                out.note = (
                    f"step {step}: a pilot at fidelity {fidelity:g} costs {cost:g} run-equivalents, "
                    f"{left:g} left: pilots ended"
                )
                break
            if continues:  # an early-stopped run taken further: the same training seed (pilot_cost's rule)
                seed = run_seeds[mixture]
            else:
                occurrence = occurrences.get(mixture, 0)
                occurrences[mixture] = occurrence + 1
                seed = self.run_seed(step, mixture, occurrence)
            run_seeds[mixture] = seed
            spec, result, value, objective = self._answered(mixture, seed, fidelity, out)
            surrogate_answers += result.source == "surrogate"
            observation = Observation(mixture, objective, dict(result.scores), result.status, spec.fidelity)
            history.append(observation)
            ledger.add_observation(observation, cost)
            out.runs_used += 1
            out.runs_failed += 0 if result.ok else 1
            out.cost_used = ledger.spent  # harness.spec.spent(history): summed unrounded, rounded once
            if value is not None and fidelity == 1.0:  # partial runs are not scores of a mixture
                best = value if best is None else (max(best, value) if maximize else min(best, value))
            entry = {
                "step": step,
                "mixture": mixture.as_dict(),
                "value": value,
                "source": result.source,
                "status": result.status,
                "best_so_far": best,
                "run_key": result.key if self._from_memory else spec.key,
                "fidelity": fidelity,
                "cost": cost,
                "spent": out.cost_used,
            }
            out.trajectory.append(entry)
            written.add(entry, mixture)
        try:
            rec = strategy.recommend(tuple(history))
            if not isinstance(rec, Mixture):
                raise InvalidMixture(f"expected a Mixture, got {type(rec).__name__}: {rec!r:.80}")
            rec = suite.check_proposal(rec)
        except InvalidMixture as e:
            return self._fail(out, f"recommend returned an invalid mixture: {e}")
        except Exception as e:
            return self._fail(out, f"recommend raised {_short_error(e)}")
        out.recommended = rec.as_dict()
        out.score, out.score_source = suite.oracle(rec)
        out.regret, out.normalized_regret = suite.regret(out.score)
        out.beyond_best_known = bool(out.score_source == "surrogate" and suite.beyond_best_known(out.score))
        answers = out.runs_used + 1
        out.surrogate_fraction = round((surrogate_answers + (out.score_source == "surrogate")) / answers, 6)
        return out
