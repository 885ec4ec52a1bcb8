"""The strategy conformance suite: every strategy gets these checks for free.

Like Optuna's sampler test cases: subclass `StrategyConformance`, set `strategy_name` (a registered
name; load a user's file first with `harness.sandbox.submission.load_file`) and optionally `params`, and pytest
collects every check below for that strategy:

    from tests.strategy_conformance import StrategyConformance

    class TestMyStrategy(StrategyConformance):
        strategy_name = "my-strategy"

`tests/test_strategies_conformance.py` generates one such class for every registered strategy and
one for a strategy loaded from a file (the `--strategy-file` path), so a newly registered strategy
is checked without writing a test. A strategy from a file is driven through its sandbox
(`make_strategy` starts it there: harness/sandbox/), so its checks cover the plain-data protocol too.

The checks drive the strategy directly against a cheap analytic objective (no suite, no store),
then once through the real `Study` on a synthetic suite:
- proposals and recommendations are valid mixtures of the space (2, 5 and 8 datasets);
- the budget is never exceeded (and propose returns None once it is spent);
- the same seed gives the same proposals and recommendation, and a fresh instance resumed from a
  prefix of the history proposes what the uninterrupted one did;
- failed pilot runs in the history (first, interleaved, all) do not crash it;
- a strategy that raises or returns garbage is recorded as failed by the study, not fatal;
- proposal latency stays under `latency_limit_s` (200 ms) at 64 observations;
- the pool track: every proposal and the recommendation is a candidate of the pool (with and without
  the uniform mixture and the corners among the candidates, with failed runs), and a study on a
  recorded suite's pool ends ok;
- a bounded space (the continuous track of a recorded suite): every proposal stays inside the bounds.
"""

from __future__ import annotations

import statistics
import textwrap
import time

import numpy as np
import pytest

import strategies
import strategies.registry
from harness.sandbox import submission
from harness.sandbox.isolation import is_user_strategy
from harness.sandbox.isolation import make_strategy
from harness.mixture import Mixture, MixtureSpace
from harness.spec import STATUS_FAILED, STATUS_OK, Budget, Observation


def objective(space: MixtureSpace, m: Mixture) -> float:
    """A smooth objective with an interior optimum (deterministic, cheap)."""
    x = space.to_vector(m)
    target = np.linspace(1.0, 2.0, space.dim)
    target = target / target.sum()
    return float(0.6 - np.sum((x - target) ** 2) + 0.05 * x[0] * x[-1])


def observe(space: MixtureSpace, m: Mixture, failed: bool = False) -> Observation:
    if failed:
        return Observation(m, None, {}, STATUS_FAILED)
    v = objective(space, m)
    return Observation(m, v, {"score": v, "In_Score": 0.5 * v, "Out_Score": v}, STATUS_OK)


def pool_space(dim: int, n: int = 30, seed: int = 0, with_designs: bool = True) -> MixtureSpace:
    """A pool of Dirichlet candidates (plus uniform and the corners when `with_designs`)."""
    rng = np.random.default_rng([seed, dim, n])
    cands = [tuple(c) for c in rng.dirichlet(np.ones(dim), size=n)]
    if with_designs:
        cands += [tuple(np.full(dim, 1.0 / dim))] + [tuple(np.eye(dim)[i]) for i in range(dim)]
    return MixtureSpace(tuple(f"D{i}" for i in range(dim)), candidates=cands)


def drive(strategy, space: MixtureSpace, budget: Budget, fail_steps=(), max_steps: int | None = None):
    """The study loop without a study: propose until None or the budget is spent (`max_steps`: keep asking
    past the budget, up to that many steps, so a test sees whether the strategy itself stops)."""
    history: list[Observation] = []
    proposals: list[Mixture] = []
    for step in range(budget.runs if max_steps is None else max_steps):
        m = strategy.propose(tuple(history), budget)
        if m is None:
            break
        proposals.append(m)
        history.append(observe(space, space.check_candidate(m), failed=step in fail_steps))
    return proposals, history


class StrategyConformance:
    strategy_name: str = ""
    params: dict = {}
    latency_limit_s: float = 0.2
    dims: tuple[int, ...] = (2, 5, 8)
    budgets: tuple[int, ...] = (0, 1, 4, 13, 24)

    # -- helpers -----------------------------------------------------------------------------------
    @property
    def cls(self):
        return strategies.get(self.strategy_name)

    def make(self, space: MixtureSpace, seed: int = 0):
        if is_user_strategy(self.cls):  # a file's strategy: in its sandbox (its class is a stand-in)
            return make_strategy(self.cls, space, seed, self.params)
        return self.cls(space, seed=seed, **self.params)

    @staticmethod
    def space(dim: int) -> MixtureSpace:
        return MixtureSpace(tuple(f"D{i}" for i in range(dim)))

    def assert_valid(self, space: MixtureSpace, m):
        assert isinstance(m, Mixture), f"{self.strategy_name} returned {type(m).__name__}, not a Mixture"
        m = space.validate(m)  # raises on unknown names
        w = np.array(list(m.values()))
        assert np.all(np.isfinite(w)) and np.all(w >= 0) and abs(w.sum() - 1) <= 1e-6

    # -- the checks --------------------------------------------------------------------------------
    def test_metadata(self):
        cls = self.cls
        assert cls.name == self.strategy_name
        assert cls.description and "\n" not in cls.description, "one-line description for `modomodo strategies`"
        assert isinstance(cls.family, str) and cls.family

    @pytest.mark.parametrize("dim", (2, 5, 8))
    def test_proposals_and_recommendation_are_valid_mixtures(self, dim):
        space = self.space(dim)
        s = self.make(space, seed=1)
        proposals, history = drive(s, space, Budget(2 * dim + 6))
        for m in proposals:
            self.assert_valid(space, m)
        self.assert_valid(space, s.recommend(tuple(history)))

    def test_recommend_with_empty_history(self):
        space = self.space(5)
        self.assert_valid(space, self.make(space).recommend(()))

    @pytest.mark.parametrize("runs", (0, 1, 4, 13, 24))
    def test_budget_is_never_exceeded(self, runs):
        space = self.space(5)
        s = self.make(space, seed=3)
        budget = Budget(runs)
        # the loop keeps asking past the budget: the strategy itself must stop at it (the study would refuse
        # the extra pilots, but a strategy that never stops wastes its proposals and hides bugs in its count)
        proposals, history = drive(s, space, budget, max_steps=runs + 5)
        assert len(proposals) <= runs
        if len(history) == runs:  # spent: asking again must not produce another run
            assert s.propose(tuple(history), budget) is None

    def test_same_seed_same_proposals_and_recommendation(self):
        space = self.space(5)
        budget = Budget(16)
        runs = []
        for _ in range(2):
            s = self.make(space, seed=7)
            proposals, history = drive(s, space, budget)
            runs.append(([p.key() for p in proposals], s.recommend(tuple(history)).key()))
        assert runs[0] == runs[1]

    def test_resumed_instance_proposes_what_the_uninterrupted_one_did(self):
        space = self.space(5)
        budget = Budget(16)
        proposals, history = drive(self.make(space, seed=5), space, budget)
        for cut in sorted({0, 1, len(history) // 2, max(0, len(history) - 1)}):
            if cut >= len(proposals):
                continue
            fresh = self.make(space, seed=5)
            assert fresh.propose(tuple(history[:cut]), budget).key() == proposals[cut].key(), f"resume at step {cut}"

    @pytest.mark.parametrize("pattern", ("first", "interleaved", "all"))
    def test_survives_failed_pilot_runs(self, pattern):
        space = self.space(5)
        budget = Budget(16)
        fail = {"first": {0}, "interleaved": set(range(0, 16, 3)), "all": set(range(16))}[pattern]
        s = self.make(space, seed=2)
        proposals, history = drive(s, space, budget, fail_steps=fail)
        for m in proposals:
            self.assert_valid(space, m)
        self.assert_valid(space, s.recommend(tuple(history)))

    def test_proposal_latency_at_64_observations(self):
        space = self.space(5)
        rng = np.random.default_rng(0)
        history = tuple(observe(space, space.from_vector(rng.dirichlet(np.ones(5)), normalize=True)) for _ in range(64))
        budget = Budget(80)
        s = self.make(space, seed=0)
        s.propose(history, budget)  # first call may build caches (imports, one-off fits)
        # CPU seconds of this process, not wall time: the limit is on the strategy's work, and wall time on a
        # shared machine (a sweep beside the tests) measured the load instead (400 ms wall for 33 ms of CPU).
        times = []
        for k in range(3):
            fresh = self.make(space, seed=k)
            t0 = time.process_time()
            fresh.propose(history, budget)
            times.append(time.process_time() - t0)
        assert statistics.median(times) < self.latency_limit_s, f"median propose {statistics.median(times):.3f} CPU-s"

    def test_raising_or_garbage_strategy_is_recorded_as_failed(self, tmp_path):
        from harness import suites
        from harness.runners.replay import ReplayRunner
        from harness.studies.study import Study
        from tests.conftest import write_synthetic_suite

        suite = suites.load_folder(write_synthetic_suite(tmp_path / "conf-suite", dim=4))
        base = self.cls
        params = dict(self.params)
        ok = Study(suite, base, Budget(6), 0, ReplayRunner(suite), strategy_params=params).run()
        assert ok.status == "ok", ok.reason
        for bad, needle in zip(self.misbehaving(base, tmp_path), ("boom", "invalid mixture", "recommend")):
            out = Study(suite, bad, Budget(6), 0, ReplayRunner(suite), strategy_params=params).run()
            assert out.status == "failed" and needle in out.reason, (bad.__name__, out.reason)

    @staticmethod
    def misbehaving(base, tmp_path) -> list:
        """Subclasses of the strategy that raise, return garbage, recommend garbage. For a strategy from a
        file they are written into a copy of that file (its code runs only in its sandbox)."""
        body = textwrap.dedent("""
            class Raises({base}):
                name = "conformance-raises"

                def propose(self, history, budget):
                    if len(history) >= 1:
                        raise RuntimeError("boom")
                    return super().propose(history, budget) or self.space.uniform()


            class Garbage({base}):
                name = "conformance-garbage"

                def propose(self, history, budget):
                    return {{"D0": 2.0}}


            class BadRecommend({base}):
                name = "conformance-bad-recommend"

                def recommend(self, history):
                    return [0.25] * 4
            """)
        if is_user_strategy(base):
            path = tmp_path / f"misbehaving_{base.source.filename}"
            path.write_text(base.source.text + "\n\n" + body.format(base=base.source_class))
            found = {c.name: c for c in submission.describe_file(path)}
            return [found["conformance-raises"], found["conformance-garbage"], found["conformance-bad-recommend"]]
        namespace = {"base": base}
        exec(body.format(base="base"), namespace)
        return [namespace["Raises"], namespace["Garbage"], namespace["BadRecommend"]]

    # -- the judge's tracks ----------------------------------------------------------------------------
    @pytest.mark.parametrize("with_designs", (True, False))
    @pytest.mark.parametrize("fail", ((), (0, 3, 4)))
    def test_pool_track_proposals_and_recommendation_are_candidates(self, with_designs, fail):
        space = pool_space(5, with_designs=with_designs)
        s = self.make(space, seed=4)
        proposals, history = drive(s, space, Budget(20), fail_steps=fail)  # drive checks every proposal
        rec = s.recommend(tuple(history))
        assert space.candidate_index(space.check_candidate(rec)) is not None

    def test_pool_track_study_on_a_recorded_suite(self, tmp_path):
        from harness import suites
        from harness.runners.replay import ReplayRunner
        from harness.studies.study import Study
        from tests.conftest import write_pool_suite

        judge = suites.load_folder(write_pool_suite(tmp_path / "pool-suite")).judge("pool")
        out = Study(judge, self.cls, Budget(8), 0, ReplayRunner(judge), strategy_params=dict(self.params)).run()
        assert out.status == "ok", out.reason
        assert out.track == "pool" and out.score_source == "recorded" and out.surrogate_fraction == 0
        assert all(t["source"] == "recorded" for t in out.trajectory)

    def test_bounded_space_proposals_stay_inside_the_bounds(self):
        lower, upper = (0.05, 0.0, 0.1, 0.0, 0.0), (0.5, 0.4, 0.6, 0.3, 0.03)
        space = MixtureSpace(tuple(f"D{i}" for i in range(5)), lower=lower, upper=upper)
        s = self.make(space, seed=6)
        proposals, history = drive(s, space, Budget(16))
        for m in proposals + [s.recommend(tuple(history))]:
            space.validate(m)  # raises, naming the dataset, outside the bounds
