"""Replay suites: answers from a recorded table (and, where the track allows, a surrogate)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.mixture import Mixture, MixtureSpace
from harness.spec import derive_seed
from harness.suites.base import Suite, SuiteError

class ReplaySuite(Suite):
    """Answers from a recorded table; a surrogate fitted to the table answers the rest."""

    table: pd.DataFrame
    weight_columns: dict[str, str]
    score_columns: list[str]
    seed_column: str | None

    @classmethod
    def from_card(cls, card: dict[str, Any], path: Path, table: pd.DataFrame, protocol: str) -> ReplaySuite:
        datasets = list(card["datasets"])
        weight_columns = dict(card.get("weight_columns") or {d: d for d in datasets})
        missing = [c for c in list(weight_columns.values()) + list(card["score_columns"]) if c not in table.columns]
        if missing:
            raise SuiteError(f"suite {card['name']!r}: runs.csv lacks columns {missing}; found {list(table.columns)}")
        suite = cls(card["name"], str(card["version"]), MixtureSpace(tuple(datasets)), card["metric"], card["goal"],
                    card, path, protocol)
        suite.weight_columns = weight_columns
        suite.score_columns = list(card["score_columns"])
        suite.seed_column = card.get("seed_column")
        suite.table = table
        suite._index()
        return suite

    def _index(self) -> None:
        W = self.table[[self.weight_columns[d] for d in self.space.datasets]].to_numpy(float)
        S = self.table[self.score_columns].to_numpy(float)
        groups: dict[Mixture, list[int]] = {}
        for i, w in enumerate(W):
            groups.setdefault(self.space.from_vector(w, normalize=True), []).append(i)
        self.recorded = {m: S[idx] for m, idx in groups.items()}  # mixture -> (seeds × scores)
        self.means = {m: s.mean(axis=0) for m, s in self.recorded.items()}
        sds = [s.std(axis=0, ddof=1) for s in self.recorded.values() if len(s) > 1]
        # Pooled within-mixture sd per score: the noise model for surrogate answers.
        self.noise_sd = np.sqrt(np.mean(np.square(sds), axis=0)) if sds else np.zeros(len(self.score_columns))
        self._X = np.array([self.space.to_vector(m) for m in self.means])
        self._Y = np.array(list(self.means.values()))

    @functools.cached_property
    def surrogate(self):
        from harness.suites.surrogate import Surrogate

        return Surrogate.fit(self._X, self._Y, self.score_columns)

    def simulate(self, mixture: Mixture, seed: int) -> tuple[dict[str, float], str]:
        m = self.space.validate(mixture)
        if m in self.recorded:
            rows = self.recorded[m]
            # Each pilot returns one recorded seed's outcome, drawn uniformly by the run seed.
            row = rows[derive_seed(seed, "row", [list(k) for k in m.key()]) % len(rows)]
            return dict(zip(self.score_columns, map(float, row))), "recorded"
        pred = self.surrogate.predict(self.space.to_vector(m)[None, :])[0]
        if np.any(self.noise_sd > 0):
            rng = np.random.default_rng(derive_seed(seed, "noise", [list(k) for k in m.key()]))
            pred = pred + rng.normal(size=pred.shape) * self.noise_sd
        return dict(zip(self.score_columns, map(float, pred))), "surrogate"

    def oracle(self, mixture: Mixture) -> tuple[float, str]:
        m = self.space.validate(mixture)
        j = self.score_columns.index(self.metric)
        if m in self.means:
            return float(self.means[m][j]), "recorded"
        return float(self.surrogate.predict(self.space.to_vector(m)[None, :])[0, j]), "surrogate"

    def _bounds(self) -> tuple[float, float]:
        j = self.score_columns.index(self.metric)
        recorded = self._Y[:, j]
        _, s_best = self.surrogate.optimum(self.metric, maximize=self.maximize)
        _, s_worst = self.surrogate.optimum(self.metric, maximize=not self.maximize)
        pick_best, pick_worst = (max, min) if self.maximize else (min, max)
        return (pick_best(float(pick_best(recorded)), s_best), pick_worst(float(pick_worst(recorded)), s_worst))


