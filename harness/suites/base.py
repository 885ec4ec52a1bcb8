"""Suites: named, versioned benchmarks described by a card.

A suite folder holds `card.yaml` (datasets, metric and direction, version, citation, provenance,
oracle settings) and, for a replay suite, `runs.csv` (one row per recorded run: weight columns,
score columns, optionally a seed column). Synthetic suites are a card naming an analytic function.

The suite is the single place that knows the truth about a mixture:
- `simulate(mixture, seed)` answers one pilot run (a recorded row, a surrogate draw, a noisy
  analytic value), labelled with where the numbers came from;
- `oracle(mixture)` scores a recommendation (the per-mixture mean of recorded seeds, the surrogate
  mean for an unrecorded mixture, the noiseless analytic value);
- `best_known` / `worst_known` / `uniform_score` normalise regret.
Strategies never see a suite; runners only call `simulate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.suites import online_track
from harness.mixture import Mixture, MixtureSpace
from harness.suites.tracks import Judge

BASELINES_DIR = Path(__file__).resolve().parent.parent.parent / "baselines"
SUITE_PATH_ENV = "MODOMODO_SUITE_PATH"  # extra folders (":"-separated) holding suite folders


@dataclass
class Suite:
    name: str
    version: str
    space: MixtureSpace
    metric: str
    goal: str
    card: dict[str, Any]
    path: Path | None = None
    protocol: str = ""
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def maximize(self) -> bool:
        return self.goal == "max"

    @property
    def kind(self) -> str:
        return self.card.get("kind", "replay")

    def orient(self, value: float) -> float:
        """Higher is better, whatever the suite's direction."""
        return value if self.maximize else -value

    def describe(self) -> str:
        return self.card.get("description", "").strip().splitlines()[0] if self.card.get("description") else ""

    # -- tracks (harness/suites/tracks.py) -----------------------------------------------------------
    @property
    def tracks(self) -> tuple[str, ...]:
        """The tracks this suite offers; analytic and live suites: continuous (exact or measured)."""
        return ("continuous",)

    @property
    def default_track(self) -> str:
        return self.tracks[0]

    def track_refusal(self, track: str) -> str:
        """Why the suite does not offer `track` (empty when it does or there is nothing to add)."""
        if track in self.tracks:
            return ""
        if track == online_track.TRACK:
            return online_track.refusal(self)
        return f"a {self.kind} suite has no recorded pool"

    def space_for(self, track: str) -> MixtureSpace:
        return self.space

    def judge(self, track: str | None = None):
        """This suite seen through one track: the space strategies get, pilots, scoring, normalisation."""
        return Judge.of(self, track)

    # -- what subclasses provide ------------------------------------------------------------------
    def simulate(self, mixture: Mixture, seed: int) -> tuple[dict[str, float], str]:
        raise NotImplementedError

    def oracle(self, mixture: Mixture) -> tuple[float, str]:
        raise NotImplementedError

    def _bounds(self) -> tuple[float, float]:
        raise NotImplementedError

    # -- normalisation ----------------------------------------------------------------------------
    @property
    def best_known(self) -> float:
        return self._normalisation()[0]

    @property
    def worst_known(self) -> float:
        return self._normalisation()[1]

    def _normalisation(self) -> tuple[float, float]:
        if "norm" not in self._cache:
            norm = self.card.get("normalization") or {}
            if "best_known" in norm and "worst_known" in norm:
                self._cache["norm"] = (float(norm["best_known"]), float(norm["worst_known"]))
            else:
                self._cache["norm"] = self._bounds()
        return self._cache["norm"]

    @property
    def uniform_score(self) -> float:
        return self.oracle(self.space.uniform())[0]

    def regret(self, score: float) -> tuple[float, float]:
        """(regret, normalised regret in [0, 1] for any mixture between worst and best known)."""
        return normalised_regret(score, self.best_known, self.worst_known, self.maximize)


def normalised_regret(score, best: float, worst: float, maximize: bool):
    """The judge's regret rule: (regret, normalised regret) of a score, or of an array of scores, against a suite's
    best and worst known: regret = best - score for a "max" suite (score - best for "min"), normalised by
    |best - worst| (0 where best and worst coincide). Suite.regret and the leaderboard's curves both use it."""
    regret = (best - score) if maximize else (score - best)
    span = abs(best - worst)
    if span > 0:
        return regret, regret / span
    return regret, (np.zeros_like(regret) if isinstance(regret, np.ndarray) else 0.0)
