"""How `auto` spends a suite's cheaper fidelity (issue 26, round 5): calibrate on its own pilots, then screen
cheaply and confirm at full fidelity, and only while that evidence says a cheap run pays at its measured cost.

Where the pool track offers fidelities (`space.fidelities`: checkpoints of one run, as in minimodo-pool, or a
separate smaller scale, as in regmix-1m-to-60m), a pilot at level f costs what the judge's cost model charges
(`budget.cost_model`, harness.spec.CostModel; a new run at f). `auto` considers the cheapest level only (one
link to learn, one price), and this module decides, at each step, which fidelity the next pilot gets:

1. **Not worth asking.** If even a perfect proxy would not pay, 1 / cost < `pay_ratio`, the level is never
   used and `auto` is its full-fidelity self, pilot for pilot (minimodo-pool's 0.25 checkpoint costs 0.385 run-
   equivalents under its measured model: 1 / 0.385 = 2.6 < 3).
2. **Calibration.** The first `calibration_pairs` full pilots (the ones the full-fidelity rule picks anyway)
   are each preceded by a cheap run of the same candidate, so the study holds pairs (cheap, full). On a
   checkpoint suite the full run continues the cheap one (the same training seed; pilot_cost's rule), on a
   scales suite it is a separate run; either way a pair costs `cost` more than the full run alone.
3. **Does it pay?** A linear link full ≈ a + b · cheap is fitted on the pairs (least squares; a co-kriging-
   like autoregressive link, Kennedy & O'Hagan 2000, with the surface model carrying the rest). Its
   correlation r has a one-sd Fisher lower bound r_low = tanh(atanh r − 1/√(n − 3)). A cheap run carries r²
   of a full run's information about the full score (the squared correlation; n26's measure), so it pays
   when b > 0 and r_low² / cost ≥ `pay_ratio` (3: the screen must still be confirmed at full fidelity).
   Re-checked at every step on every pair the study holds (each confirmation adds one).
4. **Screen.** While it pays and the screening allotment lasts (`screen_share` of the budget on cheap runs,
   calibration's included, keeping `confirm_reserve` run-equivalents for full runs), the next pilot is a cheap
   run of a candidate not yet piloted at any fidelity, picked by upper confidence bound on auto's surface
   model, fitted on the full-fidelity means plus the screened candidates' linked predictions (the best 48 of
   them) and chosen among its kernel models only (LightGBM's 3-fold CV took screening steps to 113 ms on
   average on regmix-1m-to-60m). One fit picks a batch of about √N screens (N: the cheap runs the allotment
   could buy; `batch_size`) by GP-UCB-PE (Contal et al. 2013: the UCB argmax, then the rows that may still be
   best with the most variance left once the picks are conditioned on), and the next steps serve that batch: regmix-1m-to-60m's ~250 screens at budget 16 take ~17 fits
   instead of ~250 (a study 3.8 -> 1.3 CPU-s). The batch is a function of the history (`_screen_pick`'s
   anchor), so a resumed study makes the same picks.
5. **Confirm.** Then full runs go to the screened, unconfirmed candidate with the best linked prediction,
   while that prediction plus kappa residual sds reaches the best full-fidelity mean; after that the
   full-fidelity rule takes over (re-pilots included).

The recommendation rests on full-fidelity runs only (auto.recommend): a cheap score never picks the winner.
Every step's log entry says which fidelity the pilot used and why (`fidelity`, `fidelity_note`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.spec import FRACTION, Ledger, Proposal

#: the most screened-only candidates the screening model is fitted on (the best by linked prediction)
SCREEN_FIT_CAP = 48


@dataclass(frozen=True)
class Link:
    """full ≈ a + b · cheap, fitted on the candidates piloted at both fidelities."""

    n: int
    a: float
    b: float
    r: float
    r_low: float
    resid_sd: float

    def predict(self, cheap: np.ndarray) -> np.ndarray:
        return self.a + self.b * np.asarray(cheap, float)

    def pays(self, cost: float, pay_ratio: float) -> bool:
        return self.b > 0 and self.r_low > 0 and self.r_low**2 / cost >= pay_ratio

    def describe(self, level: float, cost: float, pay_ratio: float) -> str:
        value = max(self.r_low, 0.0) ** 2 / cost
        verdict = "pays" if self.pays(cost, pay_ratio) else "does not pay"
        return (
            f"fidelity {level:g} at {cost:.3g} run-equivalents {verdict}: r {self.r:.2f} (lower bound "
            f"{self.r_low:.2f}) with full fidelity on {self.n} pairs, r_low^2 / cost {value:.2f} vs {pay_ratio:g}"
        )


def fit_link(cheap: np.ndarray, full: np.ndarray) -> Link | None:
    """The least-squares link of `full` on `cheap` and its correlation's one-sd Fisher lower bound (None below
    four pairs: the bound needs n > 3)."""
    cheap, full = np.asarray(cheap, float), np.asarray(full, float)
    n = len(cheap)
    if n < 4:
        return None
    if cheap.std() == 0 or full.std() == 0:
        return Link(n, float(full.mean()), 0.0, 0.0, -1.0, float(full.std()))
    r = float(np.corrcoef(cheap, full)[0, 1])
    b, a = np.polyfit(cheap, full, 1)
    resid = full - (a + b * cheap)
    z = np.arctanh(np.clip(r, -0.999999, 0.999999))
    r_low = float(np.tanh(z - 1.0 / np.sqrt(n - 3)))
    return Link(n, float(a), float(b), r, r_low, float(np.sqrt((resid**2).sum() / max(n - 2, 1))))


def cheap_level(space, budget, pay_ratio: float) -> tuple[float, float] | None:
    """(level, cost of a new run at it) of the cheapest fidelity below 1 the pool offers, or None: a
    single-fidelity suite, a space that is not a pool, or a level so dear that even a perfect proxy would not
    pay (1 / cost < pay_ratio)."""
    levels = [float(f) for f in getattr(space, "fidelities", ()) or () if float(f) < 1.0]
    if not levels or not space.is_pool:
        return None
    cm = budget.cost_model or FRACTION
    cost, level = min((cm.charge(None, f), f) for f in levels)
    if cost <= 0 or 1.0 / cost < pay_ratio:
        return None
    return level, cost


def _key_of(strat, m) -> tuple:
    """A proposed mixture as its pool row (the key auto's history bookkeeping uses)."""
    v = strat.space.to_vector(m)
    i = strat._rows.get(tuple(v.tolist()))
    C = strat._pool()
    return tuple(C[i if i is not None else int(np.argmin(np.abs(C - v).sum(1)))].tolist())


def _amend(strat, level: float, why: str) -> None:
    """Say in the latest log entry which fidelity its pilot used and why."""
    if strat.decisions:
        strat.decisions[-1]["fidelity"] = level
        strat.decisions[-1]["fidelity_note"] = why


def _mean(v: list[float]) -> float:
    return sum(v) / len(v)  # a plain mean: np.mean costs ~10 µs a call, and a step takes hundreds


def _tally(strat, history, level: float):
    """(cheap, full, tried_full, mixtures, n_cheap) of a history: per pool row, its objectives at `level` and at
    full fidelity, the rows with a full run, each row's mixture, and the number of cheap pilots."""
    cheap: dict[tuple, list[float]] = {}
    full: dict[tuple, list[float]] = {}
    tried_full, mixtures, n_cheap = set(), {}, 0
    for o in history:
        key = strat._key(o)
        mixtures.setdefault(key, o.mixture)
        if o.fidelity >= 1.0:
            tried_full.add(key)
            if o.ok:
                full.setdefault(key, []).append(float(o.objective))
        else:
            n_cheap += 1
            if o.ok and abs(o.fidelity - level) <= 1e-9:
                cheap.setdefault(key, []).append(float(o.objective))
    return cheap, full, tried_full, mixtures, n_cheap


def _pairs_link(cheap, full) -> Link | None:
    pairs = [k for k in cheap if k in full]
    return fit_link([_mean(cheap[k]) for k in pairs], [_mean(full[k]) for k in pairs])


def propose_with_fidelity(strat, history, budget, level: float, cost: float):
    """The next pilot of `strat` (an Auto) where the pool offers `level` at `cost`: a Proposal at `level`, a
    full-fidelity Mixture, or None (nothing affordable is left)."""
    step = len(history)
    cheap, full, tried_full, mixtures, n_cheap = _tally(strat, history, level)
    pairs = [k for k in cheap if k in full]
    pending = [k for k in cheap if k not in tried_full]  # screened (or calibrating), no full run yet
    left = budget.remaining(history)

    def full_pilot(m, why):
        if m is None or not budget.affords(history, m, 1.0):
            return None
        _amend(strat, 1.0, why)
        return m

    # 2. calibration: pairs from the full pilots the full-fidelity rule makes anyway
    if len(pairs) < strat.calibration_pairs:
        if pending:
            strat._log(step, "calibration", note="the full run of the candidate just piloted cheaply")
            return full_pilot(mixtures[pending[0]], f"calibration pair {len(pairs) + 1} of {strat.calibration_pairs}")
        m = strat._propose_full(history, budget)
        if m is None:
            return None
        key = _key_of(strat, m)
        if key in tried_full or key in cheap or left < cost + 1.0:
            return full_pilot(m, "calibration: a re-pilot, or no room left for a pair")
        _amend(strat, level, f"calibration: a cheap run first, then its full run (pair {len(pairs) + 1})")
        return Proposal(m, level)

    # 3. the evidence
    link = _pairs_link(cheap, full)
    why = link.describe(level, cost, strat.pay_ratio)
    if not link.pays(cost, strat.pay_ratio):
        return full_pilot(strat._propose_full(history, budget), "full: " + why)

    # 4. screen
    allot = min(strat.screen_share * float(budget.runs) - n_cheap * cost, left - strat.confirm_reserve)
    if allot >= cost - 1e-12:
        m = _screen_pick(strat, step, history, level, batch_size(strat, budget, cost))
        if m is not None:
            _amend(strat, level, f"screen ({allot:.3g} run-equivalents of screening left); " + why)
            return Proposal(m, level)

    # 5. confirm the best screened candidate while its linked prediction could beat the best full mean; then the
    # full-fidelity rule, and once that has nothing new to pilot, the remaining screened ones by prediction
    pred = link.predict([_mean(cheap[k]) for k in pending]) if pending else np.zeros(0)
    best_full = max((_mean(v) for v in full.values()), default=-np.inf)
    ledger = Ledger(budget.cost_model)  # priced once per step: budget.affords replays the history per call
    for o in history:
        ledger.add_observation(o)
    order = [int(i) for i in np.argsort(-pred) if ledger.price(mixtures[pending[int(i)]], 1.0)[0] <= left + 1e-9]
    if order and pred[order[0]] + strat.kappa * link.resid_sd >= best_full:
        i = order[0]
        strat._log(step, "confirm", note=f"linked prediction {pred[i]:.4g} (best full mean {best_full:.4g})")
        return full_pilot(mixtures[pending[i]], "confirm a screened candidate; " + why)
    m = strat._propose_full(history, budget)
    if m is None and order:
        i = order[0]
        strat._log(step, "confirm", note=f"nothing unpiloted left; linked prediction {pred[i]:.4g}")
        return full_pilot(mixtures[pending[i]], "confirm a screened candidate; " + why)
    return full_pilot(m, "full: screening done; " + why)


def batch_size(strat, budget, cost: float) -> int:
    """How many screening picks one fit makes: about the square root of the cheap runs the allotment could
    buy (1 to 32), so a study fits its screening model ~2√N times instead of N (regmix-1m-to-60m at budget 16:
    ~250 screens, a fit every 17)."""
    return int(np.clip(np.sqrt(strat.screen_share * float(budget.runs) / cost), 1, 32))


def _screen_pick(strat, step, history, level, batch):
    """The next screening pick: the first not-yet-piloted candidate of the batch made at this screening run's
    anchor. The anchor is the history without its last r mod `batch` cheap pilots, r counting the cheap pilots
    since the last full-fidelity one (all screens: calibration and confirmation end on full runs), so the pick
    is a function of the history alone (a resumed study makes the same one) and one fit serves `batch` steps.
    None when no candidate is left unpiloted."""
    last_full = max((i for i, o in enumerate(history) if o.fidelity >= 1.0), default=-1)
    anchor = len(history) - (len(history) - 1 - last_full) % batch
    made = getattr(strat, "_screen_batch", None)
    if made is None or made[0] != anchor or made[1] is not history[anchor - 1]:
        made = (anchor, history[anchor - 1], _screen_batch(strat, step, history[:anchor], level, batch))
        strat._screen_batch = made
    piloted = {strat._key(o) for o in history}
    for i, row in enumerate(made[2]):
        if row not in piloted:
            if anchor < len(history):  # the fit's own log entry is at the anchor's step
                strat._log(step, "screen", note=f"pick {i + 1} of the batch made at step {anchor}")
            return strat._mixture(np.array(row))
    if anchor < len(history):  # a batch cut short (its region used up): a fit on the history as it is now
        rows = _screen_batch(strat, step, history, level, 1)
        return strat._mixture(np.array(rows[0])) if rows else None
    return None


def _screen_batch(strat, step, history, level, batch) -> list[tuple]:
    """Up to `batch` pool rows not piloted in `history`, by GP-UCB-PE on auto's kernel model fitted on the full means and
    the best `SCREEN_FIT_CAP` screened candidates' linked predictions (one random row without a model)."""
    cheap, full, tried_full, mixtures, _ = _tally(strat, history, level)
    free = strat._unpiloted(set(mixtures))
    if len(free) == 0:
        return []
    link = _pairs_link(cheap, full)
    pending = [k for k in cheap if k not in tried_full]
    keys = list(full)
    y = [_mean(full[k]) for k in keys]
    if pending and link is not None:
        pred = link.predict([_mean(cheap[k]) for k in pending])
        for i in np.argsort(-pred)[:SCREEN_FIT_CAP]:
            keys.append(pending[int(i)])
            y.append(float(pred[i]))
    X = np.array(keys, float).reshape(len(keys), strat.space.dim)
    chosen, errors = strat._fit(X, np.array(y), kernel_only=True)
    pts = strat._pool()[free]
    if chosen is None:
        strat._log(step, "screen", errors, note="random: no model yet")
        return [_key_of(strat, strat._random_unpiloted(step, set(mixtures)))]
    name, model = chosen
    strat._log(step, "screen", errors, name, f"GP-UCB-PE batch of up to {batch} on full means and linked cheap scores")
    return [tuple(pts[j].tolist()) for j in model.ucb_batch(pts, strat.kappa, batch)]
