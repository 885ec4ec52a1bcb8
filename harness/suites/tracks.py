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
  strategy (strategies/online.py) sets step by step (harness/studies/online.py); its score is that run's
  metric, its cost one run plus the measured overhead of the online machinery. Which suites offer it,
  what a bench of it admits and what it costs: harness/suites/online_track.py.

Whether a (suite, track) **can rank** strategies (enter an overall ranking) is decided here too:
analytic suites can (exact); a recorded suite needs its signal measured on its table
(harness/suites/signal.py): with repeated seeds, the ANOVA estimate of the SNR of the per-mixture mean
>= 3 and the F-test p < 0.01; with one seed per mixture, the surrogate-residual lower bound on the SNR
of one run >= 3; plus a passed gate for the continuous track. A live suite's noise is not on its
card, so it cannot.
"""

from __future__ import annotations

from typing import Any

from harness.mixture import Mixture, MixtureSpace
from harness.spec import UnknownFidelity, derive_seed
from harness.suites.errors import SuiteError
from harness.suites.signal import SNR_TARGET

TRACKS = ("pool", "continuous", "online")


class TrackError(SuiteError):
    """A track that is unknown or that the suite does not offer."""


class Judge:
    """A suite seen through one track. Runners and studies talk to this, never to the raw suite.

    Anything not defined here (card, metric, goal, protocol, runner settings) is the suite's."""

    def __init__(self, suite, track: str):  # suite: a harness.suites.base.Suite, which hands out its judges
        self.suite, self.track = suite, track
        self.space: MixtureSpace = suite.space_for(track)
        default = track == suite.default_track
        # the label the results and the leaderboard use; the default track keeps the suite's name
        self.name = suite.name if default else f"{suite.name}:{track}"
        self.id = suite.id if default else f"{suite.id}:{track}"
        self._cache: dict[str, Any] = {}

    @classmethod
    def of(cls, suite, track: str | None = None) -> Judge:
        track = track or suite.default_track
        if track not in TRACKS:
            raise TrackError(f"unknown track {track!r}; valid: {', '.join(TRACKS)}")
        if track not in suite.tracks:
            why = suite.track_refusal(track)
            raise TrackError(
                f"suite {suite.name!r} does not offer the {track} track"
                + (f": {why}" if why else "")
                + f"; it offers: {', '.join(suite.tracks)}"
            )
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

    @property
    def cost_model(self):
        """The price of a pilot in this track (harness.spec.CostModel): the card's measured `cost_model` where
        the track offers fidelities (None on a single-fidelity track: every pilot a full run, costing 1; a
        multi-fidelity card without one falls back to the fraction rule, which under-charges checkpoints)."""
        if not self.fidelities:
            return None
        if "cost_model" not in self._cache:
            from harness.spec import CostModel

            try:
                self._cache["cost_model"] = CostModel.from_card(self.suite.card.get("cost_model"))
            except ValueError as e:
                raise SuiteError(f"suite {self.suite.name!r}: its card's cost_model: {e}") from None
        return self._cache["cost_model"]

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
        raise UnknownFidelity(
            f"fidelity {fidelity!r} is not offered by {self.name}; valid: "
            f"{', '.join(f'{x:g}' for x in levels)}"
            + ("" if self.fidelities else " (a single-fidelity suite or track: full runs only)")
        )

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


def ranking_status(suite, track: str) -> tuple[bool, str]:
    """(can rank, why) for a suite in a track: the rule that decides what enters an overall ranking.

    A recorded suite's signal is always measured on its table (`measured_signal`), never read from its
    card; a card whose figure disagrees is a SuiteError naming both numbers."""
    decided = verdict_of_kind(suite.kind)
    if decided is not None:
        return decided
    sig = measured_signal(suite)
    if sig is None:
        return False, "no signal estimate: fewer than 2 mixtures with a measured noise level"
    if sig.get("estimator") == "single-seed-bound":
        bound = sig.get("snr_single_lower_bound")
        how = (
            f"the {sig['surrogate']} surrogate's cross-validated residual bounds the noise"
            if sig.get("surrogate")
            else sig["rule"]
        )
        if not sig["can_rank"]:
            shown = "unknown" if bound is None else f"{bound:.2f}"
            return False, f"one seed per mixture: SNR lower bound {shown} < {SNR_TARGET:g} ({how})"
        ok, why = True, f"one seed per mixture: SNR lower bound {bound:.2f} >= {SNR_TARGET:g} ({how})"
    else:
        from harness.suites.signal import verdict_text

        ok, why = sig["can_rank"], verdict_text(sig)
        if not ok:
            return False, why
    if track == "continuous" and not suite.fidelity.get("passed"):
        return False, f"surrogate fails the fidelity gate ({suite.fidelity.get('reason', '')})"
    return ok, why


def verdict_of_kind(kind: str) -> tuple[bool, str] | None:
    """The can-rank verdict a suite's kind decides without measuring anything: an analytic suite ranks (exact
    scores), a live one does not (no noise model on its card); None for a recorded suite, whose signal must be
    measured on its table (`ranking_status`). The leaderboard asks this for results without a recorded verdict."""
    if kind == "synthetic":
        return True, "analytic: exact scores"
    if kind == "live":
        return False, "live suite: no measured noise model on its card"
    return None


def measured_signal(suite) -> dict[str, Any] | None:
    """The signal block of a recorded suite's metric, measured on its table (cached per suite object):
    the ANOVA estimate with repeated seeds, the single-seed bound (from the fidelity gate's
    cross-validated residual, re-measured for the gate's chosen model) with one seed per mixture.
    A card whose `signal.<metric>` figure differs from the measured one raises SuiteError."""
    if "measured_signal" in suite._cache:
        return suite._cache["measured_signal"]
    from harness.suites import signal as sg

    weights = [suite.weight_columns[d] for d in suite.space.datasets]
    if getattr(suite, "has_noise_model", False):
        try:
            sig = sg.signal_estimate(suite.table, weights, suite.metric)
        except sg.SignalError:
            sig = None
    else:
        sig = single_seed_signal(suite)
    claimed = (suite.card.get("signal") or {}).get(suite.metric)
    if sig is not None:
        try:
            sg.check_card(claimed, sig, suite.name, suite.metric)
        except sg.SignalError as e:
            raise SuiteError(str(e)) from None
    suite._cache["measured_signal"] = sig
    return sig


def single_seed_signal(suite) -> dict[str, Any]:
    """The single-seed bound of a one-seed-per-mixture table: the gate's chosen surrogate cross-validated
    again on the table (the card's gate figures are not taken on trust; a card naming a worse model only
    lowers its own bound)."""
    from harness.suites.fidelity import MIN_MIXTURES, cross_validate, gate
    from harness.suites.signal import single_seed_block

    j = suite.score_columns.index(suite.metric)
    y = suite._Y[:, j]
    card_gate = suite.fidelity
    chosen = card_gate.get("chosen")
    if chosen and len(y) >= MIN_MIXTURES:
        cv = cross_validate(suite._X, y, chosen)
        measured = {"chosen": chosen, "models": {chosen: cv}, "reason": card_gate.get("reason", "")}
    else:
        measured = gate(suite._X, y).to_card()
    return single_seed_block(y, measured, SNR_TARGET)
