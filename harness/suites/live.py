"""Live suites: every answer is a real training run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.suites import online_track
from harness.mixture import Mixture, MixtureSpace
from harness.spec import RunSpec, derive_seed
from harness.suites.base import Suite
from harness.suites.errors import SuiteError


class LiveSuite(Suite):
    """A suite with no table: every answer is a real training run (`kind: live`, e.g. minimodo-tiny-live).

    - The runner that trains its runs (of the card's kind, `runner: cpu`) and the store its oracle runs
      go through are given to it by whoever runs it (`give`; harness.runners.own_runs.give_own_runner):
      the judge builds neither. Asked for a score before it has one: SuiteError.
    - `simulate(mixture, seed)`: one run of that runner with that seed.
    - `oracle(mixture)`: the mean of the suite metric over K runs of the runner with fixed oracle
      seeds (`oracle: {seeds: K}`, default 4; seeds derive_seed("oracle", k), k < K, never a pilot
      seed), through the given store, so each mixture's K runs are paid once across studies,
      processes and bench invocations, and a killed scoring resumes. A failed oracle run is left
      out of the mean; all K failing makes the score NaN.
    - Normalisation: the card's `normalization: {best_known, worst_known}`; without it the range of
      the metric, [0, 1] (scores are accuracies). Regret is then relative to that range, not to a
      known optimum: a live suite has none.
    """

    @property
    def tracks(self) -> tuple[str, ...]:
        """continuous (offline strategies: pilots and a recommendation, every answer trained) and online
        (online strategies: one run whose weights change during training; harness/suites/online_track.py decides)."""
        return ("continuous",) + ((online_track.TRACK,) if online_track.offered_by(self) else ())

    @classmethod
    def from_card(cls, card: dict[str, Any], path: Path | None, protocol: str) -> LiveSuite:
        if not card.get("datasets"):
            raise SuiteError(f"live suite {card['name']!r}: card lacks datasets")
        suite = cls(
            card["name"],
            str(card["version"]),
            MixtureSpace(tuple(card["datasets"])),
            card["metric"],
            card["goal"],
            card,
            path,
            protocol,
        )
        suite.runner_kind = str(card.get("runner", "cpu"))
        oracle = card.get("oracle") or {}
        suite.oracle_seeds = [derive_seed("oracle", k) for k in range(int(oracle.get("seeds", 4)))]
        suite.runner, suite.oracle_runs = None, None  # given by whoever runs the suite (`give`)
        return suite

    def give(self, runner, oracle_store) -> None:
        """The runner that trains this suite's runs and the store its oracle runs go through (the execution
        layer's harness.runners.own_runs.give_own_runner calls this)."""
        self.runner, self.oracle_runs = runner, oracle_store

    def _result(self, mixture: Mixture, seed: int, store=None):
        if self.runner is None:
            raise SuiteError(
                f"live suite {self.name!r} has no runner to train its runs: whoever runs it gives it one "
                f"(harness.runners.own_runs.give_own_runner)"
            )
        spec = RunSpec(self.id, self.protocol, self.space.validate(mixture), int(seed))
        if store is not None:
            cached = store.get(spec.key)
            if cached is not None:
                return cached
        result = self.runner.run(spec)
        if store is not None:
            store.put(result)
        return result

    def simulate(self, mixture: Mixture, seed: int) -> tuple[dict[str, float], str]:
        result = self._result(mixture, seed)
        if not result.ok:
            raise RuntimeError(result.reason)
        return dict(result.scores), result.source or "trained"

    def oracle(self, mixture: Mixture) -> tuple[float, str]:
        key = ("oracle", self.space.validate(mixture).key())
        if key not in self._cache:
            store = self.oracle_runs
            values = [r.value for r in (self._result(mixture, s, store) for s in self.oracle_seeds)]
            values = [v for v in values if v is not None]
            mean = float(np.mean(values)) if values else float("nan")
            self._cache[key] = (mean, f"trained (mean of {len(values)}/{len(self.oracle_seeds)} seeds)")
        return self._cache[key]

    def _bounds(self) -> tuple[float, float]:
        return (1.0, 0.0) if self.maximize else (0.0, 1.0)
