"""Tracks: how a suite turns a strategy's choices into scores. The judge's rules, in one place.

- **pool** (the default on recorded suites; HPO-B's discrete mode): the candidates are the suite's
  recorded mixtures. Strategies see their weights (`space.candidates`), never their scores, and
  must propose and recommend candidates; anything else is an invalid proposal. A pilot run returns
  one recorded training seed of the candidate (a repeated proposal draws another seed and costs
  budget); the recommendation is scored by its per-mixture mean. Every number is measured.
- **continuous**: any mixture of the space. Exact on analytic suites; measured on live suites; on a
  recorded suite only when its surrogate passes the fidelity gate (harness/suites/fidelity.py),
  and only inside the data's support (per-dataset bounds on the space). Surrogate answers are
  labelled `surrogate` wherever they surface.
- **online** (live suites only): the study is one real training run whose domain weights an online
  strategy (strategies/online.py) sets step by step (harness/online_study.py); its score is that run's
  metric, its cost one run plus the measured overhead of the online machinery.

Whether a (suite, track) **can rank** strategies (enter an overall ranking) is decided here too:
analytic suites can (exact); a recorded suite needs a noise model (repeated seeds) and an SNR of the
per-mixture mean of its metric of at least 3, plus a passed gate for the continuous track; a
live suite's noise is not on its card, so it cannot.
"""

from __future__ import annotations

from typing import Any

from harness.mixture import Mixture, MixtureSpace
from harness.spec import UnknownFidelity, derive_seed
from harness.suites.base import Suite, SuiteError

TRACKS = ("pool", "continuous", "online")
SNR_TARGET = 3.0


class TrackError(SuiteError):
    """A track that is unknown or that the suite does not offer."""


class Judge:
    """A suite seen through one track. Runners and studies talk to this, never to the raw suite.

    Anything not defined here (card, metric, goal, protocol, runner settings) is the suite's."""

    def __init__(self, suite: Suite, track: str):
        self.suite, self.track = suite, track
        self.space: MixtureSpace = suite.space_for(track)
        default = track == suite.default_track
        # the label the results and the leaderboard use; the default track keeps the suite's name
        self.name = suite.name if default else f"{suite.name}:{track}"
        self.id = suite.id if default else f"{suite.id}:{track}"
        self._cache: dict[str, Any] = {}

    @classmethod
    def of(cls, suite: Suite, track: str | None = None) -> Judge:
        track = track or suite.default_track
        if track not in TRACKS:
            raise TrackError(f"unknown track {track!r}; valid: {', '.join(TRACKS)}")
        if track not in suite.tracks:
            why = suite.track_refusal(track)
            raise TrackError(f"suite {suite.name!r} does not offer the {track} track"
                             + (f": {why}" if why else "") + f"; it offers: {', '.join(suite.tracks)}")
        key = ("judge", track)
        if key not in suite._cache:
            suite._cache[key] = cls(suite, track)
        return suite._cache[key]

    def __getattr__(self, name: str):  # card, metric, goal, maximize, orient, protocol, kind, path, ...
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.suite, name)

    def __repr__(self) -> str:
        return f"Judge({self.suite.name!r}, track={self.track!r})"

    # -- pilots --------------------------------------------------------------------------------------
    @property
    def is_pool(self) -> bool:
        return self.track == "pool"

    def run_seed(self, study_seed: int, step: int, mixture: Mixture, occurrence: int) -> int:
        """The training seed of a study's step-th pilot run. Pool: the recorded seed this occurrence of
        the candidate draws (harness.suites.replay.ReplaySuite.pool_seed); otherwise derive_seed(study
        seed, step), fixed and published."""
        if self.is_pool:
            return self.suite.pool_seed(mixture, study_seed, occurrence)
        return derive_seed(study_seed, step)

    def check_proposal(self, mixture: Mixture) -> Mixture:
        """The judge's admission rule for proposals and recommendations (raises InvalidMixture)."""
        return self.space.check_candidate(mixture) if self.is_pool else self.space.validate(mixture)

    @property
    def fidelities(self) -> tuple[float, ...]:
        """The fidelity levels strategies may ask for in this track (`space.fidelities`): a recorded suite's
        checkpoint levels in the pool track, empty otherwise (every pilot a full run)."""
        return self.space.fidelities

    def check_fidelity(self, fidelity) -> float:
        """The judge's rule for a proposal's fidelity: one of `fidelities` (1.0 always). Raises UnknownFidelity."""
        try:
            f = float(fidelity)
        except (TypeError, ValueError):
            f = float("nan")
        levels = self.fidelities or (1.0,)
        for level in levels:
            if abs(f - level) <= 1e-9:
                return level
        raise UnknownFidelity(f"fidelity {fidelity!r} is not offered by {self.name}; valid: "
                              f"{', '.join(f'{x:g}' for x in levels)}"
                              + ("" if self.fidelities else " (a single-fidelity suite or track: full runs only)"))

    def simulate(self, mixture: Mixture, seed: int, fidelity: float = 1.0) -> tuple[dict[str, float], str]:
        f = self.check_fidelity(fidelity)
        if self.is_pool:
            return self.suite.simulate_recorded(self.space.check_candidate(mixture), seed, f), "recorded"
        return self.suite.simulate(self.space.validate(mixture), seed)

    # -- scoring -------------------------------------------------------------------------------------
    def oracle(self, mixture: Mixture) -> tuple[float, str]:
        m = self.check_proposal(mixture)
        return self.suite.oracle(m)

    @property
    def best_known(self) -> float:
        return self.suite.best_known

    @property
    def worst_known(self) -> float:
        return self.suite.worst_known

    @property
    def uniform_score(self) -> float:
        """The reference line: the uniform mixture's score (in a pool, the candidate nearest the centre)."""
        if "uniform" not in self._cache:
            self._cache["uniform"] = self.oracle(self.space.uniform())[0]
        return self._cache["uniform"]

    def regret(self, score: float) -> tuple[float, float]:
        return self.suite.regret(score)

    def beyond_best_known(self, score: float) -> bool:
        """A score better than every measured mixture: only a surrogate can produce one on a recorded suite,
        and it is shown as such, never silently as negative regret."""
        return (score > self.best_known + 1e-12) if self.maximize else (score < self.best_known - 1e-12)

    # -- can this (suite, track) rank strategies? -------------------------------------------------------
    def ranking_status(self) -> tuple[bool, str]:
        return ranking_status(self.suite, self.track)


def ranking_status(suite: Suite, track: str) -> tuple[bool, str]:
    """(can rank, why) for a suite in a track: the rule that decides what enters an overall ranking."""
    kind = suite.kind
    if kind == "synthetic":
        return True, "analytic: exact scores"
    if kind == "live":
        return False, "live suite: no measured noise model on its card"
    if not getattr(suite, "has_noise_model", False):
        return False, "one seed per mixture: no noise model, so a difference between mixtures cannot be told from noise"
    signal = (suite.card.get("signal") or {}).get(suite.metric)
    if isinstance(signal, dict) and "snr_mean" in signal:
        snr = float(signal["snr_mean"])
    else:
        snr = float(_table_snr(suite))
    if snr < SNR_TARGET:
        return False, f"SNR of the per-mixture mean {suite.metric} is {snr:.2f} < {SNR_TARGET:g}"
    if track == "continuous" and not suite.fidelity.get("passed"):
        return False, f"surrogate fails the fidelity gate ({suite.fidelity.get('reason', '')})"
    return True, f"SNR of the per-mixture mean {suite.metric} {snr:.2f} >= {SNR_TARGET:g}"


def _table_snr(suite) -> float:
    """SNR of the per-mixture mean of the metric, measured on the table (cards without a signal block)."""
    from harness.suites.recorded import SweepError, signal_to_noise

    try:
        weights = [suite.weight_columns[d] for d in suite.space.datasets]
        return float(signal_to_noise(suite.table, weights, suite.metric)["snr_mean"])
    except SweepError:
        return 0.0
