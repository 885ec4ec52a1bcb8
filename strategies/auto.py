"""auto: model the mixture surface from the first pilots, pick the model by its own cross-validation.

modomodo's own strategy (issue 26), for tables it has never seen. Each decision:

1. **Start.** The first pilot is the mixture nearest uniform; then `n_init` − 1 random candidates (in a
   pool, drawn without replacement by the study seed; on the simplex, Dirichlet(1)). Three pilots are
   enough because every model below has a prior that makes a fit on fewer points than dimensions
   sensible: gp-bo's old ⌊d/2⌋ + 1 random start spent a whole budget of 8 on 17 domains before it
   modelled anything. The exception (issue 26, third round): in a pool the budget will pilot at least
   half of, the random start is d + 1. There random search finds the best with probability ≥ 1/2, and
   every model fitted on ≤ d pilots steers to the pool's extreme points (a linear surface, and the
   uncertainty of every kernel here, peaks there): on paper-qwen2vl-2b (13 candidates, 5 domains; its
   extreme points are the five single-dataset mixtures, all worse than the blends) auto was 3.3 ×
   random's regret at budget 8, and so was every model/acquisition variant tried (GP only, quadratic
   first, EI, kappa 0 or 0.5: 2.3-3.3 ×), while a d + 1 random start is 0.72 ×. A gate that pilots at
   random until the marginal likelihood prefers a model to a flat surface also fixed that table (1.04 ×)
   but cost every 17-24-domain table (RegMix 512 × 17 at budget 8: 0.68 → 1.33 ×, 8 seeds): not used.
2. **Models.** Gaussian-process regressions on the weight vectors, each one a Bayesian regression
   with a different prior, and one tree ensemble:
   - `linear`: Bayesian linear regression on the centred weights (Scheffé's linear mixture model,
     ridge-like shrinkage towards a flat surface; kernel √d·v · √d·v', v = w − 1/d);
   - `quadratic`: Bayesian regression on Scheffé's quadratic mixture model (centred features
     √d·v_i and d·v_i·v_j, computed in kernel form so 64 domains cost no 2,080-column matrix);
   - `gp`: Matérn-5/2 with its lengthscale chosen by the marginal likelihood (non-polynomial shapes);
   - `lightgbm`: gradient-boosted trees (LightGBM), from `lgbm_min_n` pilots on (trees need data).
   Each kernel model's signal and noise variances maximise its marginal likelihood (a grid, as in
   strategies/bo_common.py); its leave-one-out errors are closed-form (Rasmussen & Williams §5.4.2:
   one n × n inverse per model, no refits), LightGBM's from 3-fold cross-validation (its model on every
   pilot is fitted only when it is chosen). The model with the smallest cross-validated squared error is
   chosen (a simpler one wins ties within `tie_tolerance`; below `select_from` pilots only the simplest
   is fitted, as leave-one-out over a handful of points cannot tell models apart). A flat surface (the
   same regression with an intercept only) is fitted too, as the log's reference, and the log says when
   no model beats it; the pilot still follows the chosen model. Until issue 26's second round such a
   step sent the pilot to random search instead: with fewer pilots than dimensions, leave-one-out
   scores extrapolation, which the flat surface wins on almost any table, so that gate spent steps
   4-10 of a typical RegMix study (512 × 17) on random pilots. Removing it took auto's regret at budget
   8 on that table from 1.09 × random's to 0.50 × (20 seeds; tests/benchmarks/auto_report_2026-12-06-r2.md).
3. **Acquisition.** An upper confidence bound, posterior mean + `kappa` × sd (kappa 1), maximised over
   the pool's candidates **not yet piloted** (re-pilots are step 5's), or over Dirichlet samples, the vertices, the centre and local
   samples around the best three on the simplex. LightGBM has no posterior; its sd is its
   cross-validated RMSE, so the bound then ranks by the predicted mean. kappa = 1 is not tuned to one
   table: pure exploitation (kappa 0, the plain sequential ridge's rule) was worse on all three tables
   tried (RegMix 512 × 17, generated interactions-17d and dominant-24d; 10 seeds), kappa 0.5 and 2 each
   won on one and lost on another; a kappa falling from 2 to 1 over the first d pilots helped the
   generated dominant-24d table at budget 8 (0.75 → 0.34 ×) and cost RegMix at 16 (0.19 → 0.37 ×), so
   kappa stays 1.
4. **Recommendation**: what the evidence supports, a piloted mixture. Without a measured seed noise
   (every single-seed pool, and any pool before a replicate): the best mean of its observed runs, not
   the model's posterior mean (the rule until the second round: with one run per mixture the
   posterior's noise term is the model's misfit, and shrinking by it lost on RegMix and minimodo-tiny).
   With a measured seed noise σ² (step 5): the best empirical-Bayes posterior mean, each candidate's
   mean shrunk towards the mean of the piloted ones by σ²/k / (τ² + σ²/k) (k its runs, τ² the spread
   of the true scores; strategies/seed_noise.py), so a single lucky run no longer wins.
5. **Re-pilots (multi-seed pools).** A pool's pilot returns one of the candidate's recorded seeds, so a
   second pilot of a candidate measures seed noise, and in a single-seed pool returns the same number.
   From max(`probe_from` (10), d + 1) distinct pilots on (issue 26, round 4: before d + 1 pilots the
   model's noise ratio reads misfit as noise, and on the generated 64-domain 8-seed table a probe from
   10 pilots took 0.51 to 0.79 × random at budget 16), if the chosen model reads its pilots as noisy
   (fitted noise ratio ≥ `probe_noise`, 0.2) and the best pilot, one model-noise sd up, could still beat the
   best new candidate's bound, the best pilot is piloted once more (the probe). If it repeats its
   number the pool is single-seed and nothing is re-piloted again (one pilot spent, at most). With a
   measured σ² > 0 the posterior leader is piloted again while P(leader beats the runner-up) < 0.8 and
   its bound (posterior mean + kappa × posterior sd) is at least the best new candidate's UCB (the
   noisy GP-UCB rule: sample again where the bound is highest), up to `max_runs` (4) runs of it and a
   third (`repeat_share`) of the pilots on replicates. In a pool the budget covers half of
   (`covered_repeats`, round 4), where random's own pilots already hold a near-best candidate and its
   noisy pick is what costs: the probe right after the d + 1 random start, re-pilots without the bound
   check, up to half the pilots and 8 runs of one candidate, each to whichever of the leader and the
   runner-up has fewer runs (top-two).
6. **Cheaper fidelities** (round 5; strategies/auto_fidelity.py). Where the pool offers a cheaper level
   whose measured cost leaves room for it (1 / cost ≥ `pay_ratio`, 3), the first `calibration_pairs` (5)
   full pilots each get a cheap run first; a linear link full ≈ a + b · cheap is fitted on those pairs, and
   while its correlation's lower bound says a cheap run pays (r_low² / cost ≥ 3), up to `screen_share` (1/3)
   of the budget screens unpiloted candidates cheaply (batches of UCB-PE picks, ~√N a fit, on full means + links),
   then full runs confirm the best-predicted ones. A single-fidelity suite, or a level that cannot pay
   (minimodo-pool's 0.25 checkpoint at 0.385 run-equivalents), leaves every choice as in steps 1-5.

`self.decisions` logs every step (model, CV errors, why; the pilot's fidelity and why): `describe_decisions()`.

Where it wins and loses (pool track, 20 study seeds, `python -m tests.benchmarks.auto_report`,
tests/benchmarks/auto_report_2026-12-06-r4.md; best-minus-median regret as a ratio to random search, 95%
paired bootstrap CI). On no table of that report is it significantly worse than random (no CI above 1):
- RegMix: 512 × 17 proxy runs 0.50 [0.25, 0.85] at budget 8, 0.25 [0.13, 0.40] at 16, 0.01 at 24;
  regmix-1m (1,256 runs) 0.18 / 0.11 / 0.03; regmix-60m 0.13 / 0.02 / 0.00; regmix-1b finds the best of
  64 within 8 pilots in every study. A plain greedy ridge on the weights (the issue's reference, not
  shipped) is still ahead there at 16 (0.02 × random): RegMix's best mixtures sit at the pool's edge
  where linear extrapolation is right. It loses where the surface is not linear (interactions-17d at 8:
  0.46 ×, auto 0.00);
- paper-qwen2vl-2b (13 × 5): 0.72 [0.14, 1.60] at budget 8 (d + 1 random start);
- multi-seed pools, with re-pilots and the shrunk recommendation: minimodo-pool 0.69 [0.42, 1.16] at 16
  and 0.52 [0.35, 0.74] at 24; on the minimodo-tiny family (24 candidates, covered at 16 and 24: top-two
  re-pilots, round 4) minimodo-tiny 0.52 [0.34, 0.74] / 0.58 at 16 / 24 (round 3: 0.91 / 0.93),
  -h128 0.78 / 0.72, -h128-in 0.52 / 0.70, -p 0.66 [0.36, 1.21] / 0.69, -in 1.25 [0.55, 2.84] / 0.57; at
  8 (no replicate yet) -in 2.48 [0.98, 6.45] and -p 1.62 [0.96, 2.72], worse than random within noise;
- generated: dominant-64d (8 seeds) 0.51 [0.29, 0.77] at 16, 0.10 at 24; budget 8 on 17-24 domains:
  interactions-24d 1.10 [0.93, 1.31], dominant-24d 0.88;
- the quarter of random's regret at 16 is met on every single-seed table of 17-64 domains (RegMix 0.25,
  0.11, 0.02; generated 0.00-0.20), not on the noisy multi-seed ones (0.52-1.25; dominant-64d 0.51).
  On the minimodo pools no strategy can be expected to meet it (tests/benchmarks/pool_noise_bound.py,
  auto_report_2026-12-06-r4.md): their seed sd is 0.7-5 × the sd of the true means and best − median is
  0.4-2.3 seed sds: a strategy told the true top 8 that pilots each twice reaches only 0.31-0.53 ×;
- cheap levels (r5 report): unused on minimodo-pool; planted 0.9 level: 0.88 × random at 16 (full-only 0.98).
"""

from __future__ import annotations

import numpy as np

from harness.mixture import Mixture
from strategies.base import Strategy, best_observed
from strategies.auto_fidelity import cheap_level, propose_with_fidelity
from strategies.auto_models import MODELS, BoostedTrees, KernelRegression
from strategies.bo_common import (
    acquisition_points,
    expected_improvement,
    initial_design,
    pool_draw,
    single_thread_blas,
    step_rng,
)
from strategies.registry import register
from strategies.seed_noise import leader_is_uncertain, pooled_within_variance, posterior_means


#: re-pilots in a pool the budget covers `coverage` of (`Auto._repilot`): at most this share of the pilots on
#: replicates and this many runs of one candidate
COVERED_REPEAT_SHARE, COVERED_MAX_RUNS = 0.5, 8


@register("auto")
class Auto(Strategy):
    description = (
        "Models from the 3rd pilot (Bayesian linear / quadratic Scheffé, GP, LightGBM), chosen by its "
        "own cross-validation; UCB over unpiloted candidates; in multi-seed pools re-pilots the leader "
        "when its bound is the best (the leader or its rival, in a pool the budget covers half of) and "
        "recommends by shrunk (empirical-Bayes) means. Where a pool offers a cheap fidelity it could pay "
        "for, calibrates it on 5 pairs, and screens cheaply then confirms at full fidelity only while "
        "those pairs say a cheap run pays (r^2 / cost >= 3); it recommends full-fidelity runs only."
    )
    citation = (
        "modomodo (issue 26); models: Scheffé (1958) mixture models, Rasmussen & Williams (2006) GPs, "
        "Ke et al. (2017) LightGBM; EI: Jones, Schonlau & Welch (1998)"
    )
    family = "bayesopt"
    limitations = (
        "Measured in the pool track (tests/benchmarks/auto_report_2026-12-06-r4.md, 20 seeds, regret as a "
        "ratio to random search, 95% paired CI): significantly worse than random on none of 18 tables, but "
        "worse within noise at budget 8 on the noisy minimodo-tiny-in (2.48, CI 0.98-6.45) and "
        "minimodo-tiny-p (1.62, 0.96-2.72) pools, before any replicate; on RegMix's 512 x 17 runs 0.25 at "
        "budget 16, where a plain greedy ridge reaches 0.02; on noisy multi-seed pools at 16 from 0.52 "
        "(minimodo-tiny) to 1.25 (minimodo-tiny-in), missing the quarter of random's regret, which no "
        "strategy on the leaderboard and no oracle told the true top 8 candidates (2 pilots each) reaches "
        "there either (0.31-0.53; tests/benchmarks/pool_noise_bound.py). In a single-seed pool it may spend "
        "one pilot on a noise probe (never before d + 1 pilots). Cheap fidelities "
        "(tests/benchmarks/auto_report_2026-12-07-r5.md): never used on minimodo-pool, whose 0.25 checkpoint "
        "costs 0.385 of a run (calibrating it anyway: 0.45 -> 0.62 x random at 16); on a planted table "
        "with a 0.9-correlated cheap level at 0.1 of a run it screens (0.98 -> 0.88 x random at 16 over "
        "full-only) but successive halving does better there (0.64); where the cheap level is noise its "
        "5 calibration runs are spent for nothing (0.5 run-equivalents at 0.1 each). On regmix-1m-to-60m it screens every mixture at 1/60 of a run and finds the best by "
        "budget 8, but full-only auto is already at 0.01 x random there."
    )

    def __init__(
        self,
        space,
        seed=0,
        n_init: int = 3,
        models=MODELS,
        lgbm_min_n: int = 16,
        tie_tolerance: float = 0.05,
        n_candidates: int = 1024,
        acquisition: str = "ucb",
        kappa: float = 1.0,
        select_from: int = 6,
        centre_first: bool = True,
        repilot: bool = True,
        probe_noise: float = 0.2,
        probe_from: int = 10,
        max_runs: int = 4,
        repeat_share: float = 1 / 3,
        confidence: float = 0.8,
        covered_repeats: bool = True,
        coverage: float = 0.5,
        fidelities: bool = True,
        calibration_pairs: int = 5,
        pay_ratio: float = 3.0,
        screen_share: float = 1 / 3,
        confirm_reserve: float = 2.0,
    ):
        super().__init__(space, seed)
        self.n_init = int(n_init)
        if self.n_init < 1:
            raise ValueError(f"n_init must be >= 1, got {n_init}")
        self.models = tuple(models)
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise ValueError(f"models must be a non-empty subset of {MODELS}, got {models!r}")
        self.lgbm_min_n, self.tie_tolerance = int(lgbm_min_n), float(tie_tolerance)
        self.n_candidates = int(n_candidates)
        if acquisition not in ("ei", "ucb", "mean"):
            raise ValueError(f"acquisition must be 'ei', 'ucb' or 'mean', got {acquisition!r}")
        self.acquisition, self.kappa = acquisition, float(kappa)
        self.select_from = int(select_from)
        self.centre_first = bool(centre_first)
        self.repilot, self.probe_noise, self.max_runs = bool(repilot), float(probe_noise), int(max_runs)
        self.probe_from, self.coverage = int(probe_from), float(coverage)
        self.repeat_share, self.confidence = float(repeat_share), float(confidence)
        self.covered_repeats = bool(covered_repeats)
        if not 0.0 <= self.repeat_share <= 1.0:
            raise ValueError(f"repeat_share must be in [0, 1], got {repeat_share}")
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
        if self.max_runs < 1:
            raise ValueError(f"max_runs must be >= 1, got {max_runs}")
        # cheaper fidelities (strategies/auto_fidelity.py; issue 26, round 5)
        self.fidelities, self.calibration_pairs = bool(fidelities), int(calibration_pairs)
        self.pay_ratio, self.screen_share = float(pay_ratio), float(screen_share)
        self.confirm_reserve = float(confirm_reserve)
        if self.calibration_pairs < 4:
            raise ValueError(f"calibration_pairs must be >= 4 (the link's bound needs n > 3), got {calibration_pairs}")
        if not self.pay_ratio > 0 or not 0.0 <= self.screen_share <= 1.0 or self.confirm_reserve < 0:
            raise ValueError(
                f"need pay_ratio > 0, screen_share in [0, 1], confirm_reserve >= 0; got {pay_ratio}, "
                f"{screen_share}, {confirm_reserve}"
            )
        #: one entry per decision: step, what was done and why (the model chosen, every model's CV error)
        self.decisions: list[dict] = []

    # -- modelling ---------------------------------------------------------------------------------
    def _fit(self, X: np.ndarray, y: np.ndarray, kernel_only: bool = False):
        """(chosen model or None, {model: CV squared error}) on standardised objectives."""
        n = len(y)
        # the reference: the same Bayesian machinery with an intercept only (a flat surface)
        errors = {"constant": KernelRegression("constant", X, y).loo_sq_error}
        fitted = {}
        # Leave-one-out over a handful of points cannot tell models apart: below `select_from` pilots the
        # simplest model in the list decides.
        models = tuple(m for m in self.models if m != "lightgbm" or not kernel_only) or self.models
        models = models if n >= self.select_from else models[:1]
        for name in models:
            if name == "lightgbm":
                if n < self.lgbm_min_n:
                    continue
                try:
                    fitted[name] = BoostedTrees(X, y, self.seed)
                except ImportError:  # LightGBM missing: the kernel models still decide
                    continue
            else:
                fitted[name] = KernelRegression(name, X, y)
            errors[name] = fitted[name].loo_sq_error
        if not fitted:
            return None, errors
        best = min(fitted, key=lambda k: errors[k])
        # a simpler model within the tolerance of the best wins (fewer ways to overfit a handful of runs)
        for name in models:
            if name in fitted and errors[name] <= errors[best] * (1 + self.tie_tolerance):
                best = name
                break
        # No flat-surface gate: until issue 26's second round a model that did not beat the flat surface in
        # leave-one-out sent the pilot to random search. With fewer pilots than dimensions leave-one-out
        # scores extrapolation, which a flat surface wins on almost any table, so the gate spent most of a
        # budget of 8-16 on random pilots (RegMix 512 x 17: random at steps 4-10 of every study), while the
        # model's argmax was already better than random (a model-guided pilot costs what a random one does).
        return (best, fitted[best]), errors

    def _observed(self, history):
        """(X, y, piloted) of the history: one row per distinct mixture that succeeded at full fidelity
        (the mean of its runs), and the set of piloted mixtures as exact weight vectors (failed ones
        included: a failed candidate is not retried)."""
        runs: dict[tuple, list[float]] = {}
        piloted = set()
        for o in history:
            key = self._key(o)
            piloted.add(key)
            if o.ok and o.fidelity >= 1.0:
                runs.setdefault(key, []).append(float(o.objective))
        X = np.array(list(runs), dtype=float).reshape(len(runs), self.space.dim)
        y = np.array([np.mean(v) for v in runs.values()], dtype=float)
        self._runs = list(runs.values())
        return X, y, piloted

    def _key(self, o) -> tuple:
        """An observation's mixture as its exact weight vector, memoised per observation object: a Mixture
        hashes by sorting and rounding its weights (~0.1 ms at 64 domains), and a propose looks each pilot up
        several times; the history's observations are the same objects from one call to the next."""
        cache = self.__dict__.setdefault("_keys", {})
        hit = cache.get(id(o))
        if hit is None or hit[0] is not o:
            key = tuple(self.space.to_vector(o.mixture).tolist())
            if self.space.is_pool:  # the candidate's own row: two pilots of one candidate share one key
                C = self._pool()
                i = self._rows.get(key)
                key = tuple(C[i if i is not None else int(np.argmin(np.abs(C - np.array(key)).sum(1)))].tolist())
            hit = (o, key)
            cache[id(o)] = hit
        return hit[1]

    def _log(self, step, action, errors=None, model=None, note=""):
        entry = {"step": step, "action": action, "model": model, "note": note}
        if errors is not None:
            entry["cv_sq_error"] = {k: round(v, 4) for k, v in errors.items()}
        self.decisions.append(entry)

    def describe_decisions(self) -> str:
        lines = []
        for e in self.decisions:
            cv = ", ".join(f"{k} {v:.3f}" for k, v in e.get("cv_sq_error", {}).items())
            lines.append(
                f"step {e['step']}: {e['action']}"
                + (f" with {e['model']}" if e["model"] else "")
                + (f" (CV error: {cv})" if cv else "")
                + (f"; {e['note']}" if e["note"] else "")
                + (f" [fidelity {e['fidelity']:g}: {e['fidelity_note']}]" if "fidelity" in e else "")
            )
        return "\n".join(lines)

    # -- decisions ---------------------------------------------------------------------------------
    def _random_unpiloted(self, step: int, piloted: set) -> Mixture:
        if self.space.is_pool:
            free = set(self._unpiloted(piloted).tolist())
            n = len(self._pool())
            for k in range(step, step + n):
                x = pool_draw(self.space, self.seed, k, centre_first=self.centre_first)
                i = int(np.argmin(np.abs(self._pool() - x).sum(1)))
                if i in free:
                    return self._mixture(self._pool()[i])
            return self._mixture(pool_draw(self.space, self.seed, step))
        return self.space.from_vector(initial_design(self.space, self.seed, step), normalize=True)

    def _pool(self) -> np.ndarray:
        """The pool's candidate matrix, built once per strategy (the space rebuilds it on every access)."""
        if getattr(self, "_pool_matrix", None) is None:
            self._pool_matrix = self.space.candidate_matrix
            self._rows = {tuple(r): i for i, r in enumerate(self._pool_matrix.tolist())}
        return self._pool_matrix

    def _unpiloted(self, piloted: set) -> np.ndarray:
        """Indices of the pool's candidates not yet piloted (`piloted`: exact weight vectors)."""
        C = self._pool()
        taken = np.zeros(len(C), bool)
        for key in piloted:
            i = self._rows.get(key)
            if i is None:  # not a candidate's exact vector (a renormalised one): the nearest candidate
                i = int(np.argmin(np.abs(C - np.array(key)).sum(1)))
            taken[i] = True
        return np.flatnonzero(~taken)

    def _candidates(self, step: int, X: np.ndarray, y: np.ndarray, piloted: set) -> np.ndarray:
        """The points the acquisition is maximised over: unpiloted pool candidates, or simplex samples."""
        if self.space.is_pool:
            return self._pool()[self._unpiloted(piloted)]
        top = X[np.argsort(-y)[:3]]
        return acquisition_points(
            self.space, step_rng(self.seed, step, 7), self.n_candidates, top, self.n_candidates // 8
        )

    def _start_size(self, budget) -> int:
        """Random pilots before any model: `n_init`, or d + 1 in a pool the budget will pilot half of.

        There random search finds the best candidate with probability ≥ budget / pool ≥ 1/2, and a model
        fitted on fewer pilots than d + 1 extrapolates towards the pool's extreme points (a linear or UCB
        rule can pick nothing else): on paper-qwen2vl-2b (13 × 5, its vertices the single-dataset mixtures,
        all worse than the blends) every model and acquisition tried was 2.3-3.3 × random's regret at budget
        8, a d + 1 random start 0.72 × (tests/benchmarks/auto_report_2026-12-06-r3.md)."""
        start = max(self.n_init, 2)
        if self.space.is_pool and budget.runs >= self.coverage * len(self._pool()):
            start = max(start, self.space.dim + 1)
        return start

    def _repilot(
        self, step: int, X: np.ndarray, y: np.ndarray, model, n_pilots: int, best_new: float, budget
    ) -> Mixture | None:
        """The leader again, when the seed-noise model says another run of it pays (pools only: a pilot
        of a recorded candidate returns one of its recorded seeds), else None.

        No replicate yet: one probe (the best observed candidate again) once the chosen model reads its
        pilots as noisy (its fitted noise ratio ≥ `probe_noise`) and that candidate, one model-noise sd up,
        reaches `best_new` (the best unpiloted candidate's UCB); if the probe repeats its number the pool is
        single-seed and nothing is re-piloted again. A measured seed noise: the leader by posterior mean
        (strategies/seed_noise.py) is piloted again while the probability that it beats the runner-up is
        below `confidence` and its upper bound reaches `best_new` (noisy GP-UCB: sample where the bound is
        highest), up to `max_runs` runs of it and `repeat_share` of all pilots spent on replicates.

        In a pool the budget covers `coverage` of (`covered_repeats`, issue 26 round 4) exploring is cheap
        and picking is what costs: on the minimodo-tiny pools random search's own pilots hold a candidate
        within 0.02-0.14 × its regret of the best ("random, perfect pick", tests/benchmarks/pool_noise_bound.py),
        while its recommendation, the best single run, is a lucky one. There the probe comes right after the
        d + 1 random start (when the budget leaves as many pilots after it), re-pilots need no bound check,
        take up to half the pilots and `COVERED_MAX_RUNS` runs of a candidate, and go to whichever of the
        leader and the runner-up has fewer runs (top-two sampling: a leader by one lucky run is then tested
        against its closest rival, not only confirmed)."""
        if not (self.repilot and self.space.is_pool) or len(y) < self.select_from:
            return None
        covered = self.covered_repeats and budget.runs >= self.coverage * len(self._pool())
        counts = np.array([len(r) for r in self._runs])
        within = pooled_within_variance(self._runs)
        if within is None:
            noise = getattr(model, "noise", 0.0)
            # Before d + 1 pilots the model is not identified and its noise ratio reads misfit as noise: on the
            # generated 64-domain 8-seed table (seed sd half the spread of the means) a probe from 10 pilots
            # spent scarce exploration, 0.51 -> 0.79 x random at budget 16 (issue 26, round 3).
            probe_from = max(self.probe_from, self.space.dim + 1)
            if covered and budget.runs >= 2 * (self.space.dim + 1):
                probe_from = self.space.dim + 1
            if noise < self.probe_noise or len(y) < probe_from:
                return None
            i = int(np.argmax(y))
            # the model's noise variance bounds the seed noise: the probe pays only if the leader, one such
            # sd up, could still be the best pilot on offer
            sd_noise = model.sd * (model.s2 * noise) ** 0.5
            if y[i] + self.kappa * sd_noise < best_new:
                return None
            self._log(step, "probe", note=f"the best piloted again to measure seed noise (noise ratio {noise:g})")
            return self._mixture(X[i])
        share, max_runs = (COVERED_REPEAT_SHARE, COVERED_MAX_RUNS) if covered else (self.repeat_share, self.max_runs)
        if within <= 0 or (counts - 1).sum() >= n_pilots * share:
            return None
        mean, var = posterior_means(y, counts, within)
        order = np.argsort(-mean)
        i = int(order[0])
        if counts[i] >= max_runs or not leader_is_uncertain(mean, var, self.confidence):
            return None
        if covered:
            if counts[order[1]] < counts[i]:
                i = int(order[1])
        elif mean[i] + self.kappa * var[i] ** 0.5 < best_new:
            return None
        self._log(step, "re-pilot", note=f"candidate has {counts[i]} run(s), seed sd {within**0.5:.3g}")
        return self._mixture(X[i])

    def _mixture(self, x: np.ndarray) -> Mixture:
        return self.space.snap(self.space.from_vector(x, normalize=True))

    def propose(self, history, budget):
        if budget.remaining(history) <= 0:
            return None
        cheap = cheap_level(self.space, budget, self.pay_ratio) if self.fidelities else None
        if cheap is None:  # a single-fidelity suite (or a level that cannot pay): full runs only, as before
            return self._propose_full(history, budget)
        with single_thread_blas():  # screening fits too: a threaded eigh on ~60×60 took 14x the CPU
            return propose_with_fidelity(self, history, budget, *cheap)

    def _propose_full(self, history, budget):
        """The next full-fidelity pilot (steps 1-5 of the module's docstring; partial runs are not modelled)."""
        step = len(history)
        with single_thread_blas():
            X, y, piloted = self._observed(history)
            if self.space.is_pool and len(piloted) >= len(self._pool()):
                self._log(step, "stop", note="every candidate has been piloted")
                return None
            start = self._start_size(budget)
            if len(y) < start:
                self._log(step, "initial design", note=f"{len(y)} of {start} pilots")
                return self._random_unpiloted(step, piloted)
            chosen, errors = self._fit(X, y)
            if chosen is None:
                self._log(
                    step,
                    "random",
                    errors,
                    note=f"no model could be fitted yet (LightGBM alone needs {self.lgbm_min_n} pilots)",
                )
                return self._random_unpiloted(step, piloted)
            name, model = chosen
            pts = self._candidates(step, X, y, piloted)
            if len(pts) == 0:
                return None
            incumbent = float(model.predict(X)[0].max()) if name != "lightgbm" else float(y.max())
            mean, sd = model.predict(pts)
            n_full = sum(1 for o in history if o.fidelity >= 1.0)  # = len(history) on a single-fidelity suite
            again = self._repilot(step, X, y, model, n_full, float((mean + self.kappa * sd).max()), budget)
            if again is not None:
                return again
            if self.acquisition == "ei":
                score = expected_improvement(mean, sd, incumbent)
            else:
                score = mean + (self.kappa * sd if self.acquisition == "ucb" else 0.0)
            i = int(np.argmax(score))
            flat = "" if errors[name] < errors["constant"] else "; not yet better than a flat surface in CV"
            self._log(step, self.acquisition, errors, name, model.note + flat)
            return self._mixture(pts[i])

    def recommend(self, history):
        """A piloted mixture: the best mean of its runs while no seed noise is measured (single-seed pools:
        the observed number is the mixture's score, and the model's posterior mean, the rule until issue
        26's second round, lost there), the best empirical-Bayes posterior mean once replicates measure a
        seed noise (strategies/seed_noise.py: a single lucky run is shrunk towards the piloted mean)."""
        runs: dict[tuple, list[float]] = {}
        mixtures = {}
        for o in history:
            if o.ok and o.fidelity >= 1.0:
                key = self._key(o)
                runs.setdefault(key, []).append(float(o.objective))
                mixtures.setdefault(key, o.mixture)
        within = pooled_within_variance(list(runs.values()))
        if not runs or not within:  # full-fidelity runs only, when there are any: a cheap score never wins
            return best_observed([o for o in history if o.fidelity >= 1.0] or history) or self.space.uniform()
        means = np.array([np.mean(r) for r in runs.values()])
        post, _ = posterior_means(means, np.array([len(r) for r in runs.values()]), within)
        return list(mixtures.values())[int(np.argmax(post))]
