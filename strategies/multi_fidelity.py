"""Multi-fidelity strategies: spend budget on cheap partial runs first, full runs on the survivors.

Citations: Jamieson & Talwalkar, "Non-stochastic Best Arm Identification and Hyperparameter
Optimization" (AISTATS 2016) for successive halving; Li, Jamieson, DeSalvo, Rostamizadeh & Talwalkar,
"Hyperband: A Novel Bandit-Based Approach to Hyperparameter Optimization" (JMLR 18, 2017) for
Hyperband; Falkner, Klein & Hutter, "BOHB: Robust and Efficient Hyperparameter Optimization at Scale"
(ICML 2018) for model-based brackets.

How they see fidelity: `space.fidelities` lists the levels the suite offers (0.25, 0.5, 1.0 on a
recorded suite with checkpoints, in the pool track); a partial pilot is `Proposal(mixture, f)`; a
promotion from f0 to f continues the same run; its price is the suite's cost model, carried by the budget
(`budget.pilot_cost`, harness.spec.CostModel: f - f0 under the fraction rule, the training share plus one
evaluation under a measured `checkpoints` model).
The rungs of a bracket are the suite's levels from `min_fidelity` up to 1.0; one rung (a single-fidelity
suite) makes every strategy here its single-fidelity form: successive halving and Hyperband become
random search (over the pool without replacement, the candidate nearest uniform first), `bohb-gp`
becomes sequential GP + EI with a share of random draws (gp-bo's model).

Budget: a bracket is sized to its allotment of run-equivalents: the largest n0 (configurations at its
first rung) whose cost sum_k n_k cost(r_{k-1} -> r_k) fits, with n_{k+1} = max(1, floor(n_k / eta)).
Successive halving is one bracket given the whole budget; Hyperband runs its brackets from the most
exploratory (starting at the lowest rung) to plain full runs, each given an equal share of what is left
when it starts (Li et al.'s equal-budget brackets, fitted to a fixed total). Budget a bracket cannot use
(rounding) goes to *repeats*: further full-fidelity seeds of the mixture with the best full-fidelity mean,
which sharpen the recommendation, or, when less than a full run is left, to taking the best early-stopped
run on to full fidelity (its continuation costs 1 - f0). Recommendation: the mixture with the best mean full-fidelity objective
(a partial run never picks the winner); with no full run, the best at the highest fidelity observed.

Every proposal is a pure function of (seed, history, budget), recomputed by replaying the schedule
through the history, so a resumed study proposes what the uninterrupted one did.
"""

from __future__ import annotations

import math

import numpy as np

from harness.spec import Proposal
from strategies.base import Strategy
from strategies.bo_common import SimplexGP, acquisition_points, blas_single, expected_improvement, pool_draw, step_rng
from strategies.registry import register


class _Brackets(Strategy):
    """The bracket engine: subclasses say which brackets to run and how a new configuration is drawn."""

    family = "multi-fidelity"

    def __init__(self, space, seed=0, eta: float = 2.0, min_fidelity: float | None = None):
        super().__init__(space, seed)
        if not eta > 1:
            raise ValueError(f"eta must be > 1 (the factor by which each rung cuts the configurations), got {eta}")
        if min_fidelity is not None and not 0 < min_fidelity <= 1:
            raise ValueError(f"min_fidelity must lie in (0, 1], got {min_fidelity}")
        self.eta = float(eta)
        self.min_fidelity = None if min_fidelity is None else float(min_fidelity)

    # -- the schedule ---------------------------------------------------------------------------------
    @property
    def rungs(self) -> tuple[float, ...]:
        levels = self.space.fidelities if len(self.space.fidelities) > 1 else (1.0,)
        lo = levels[0] if self.min_fidelity is None else self.min_fidelity
        return tuple(f for f in levels if f >= lo - 1e-12) or (1.0,)

    def bracket_starts(self) -> list[int]:
        """Indices into `rungs` at which the brackets start, in the order they run."""
        raise NotImplementedError

    def sizes(self, start: int, allot: float, cost_model=None) -> list[int]:
        """Configurations per rung of a bracket starting at rung `start` that fits in `allot` run-equivalents
        under the budget's `cost_model` (harness.spec.CostModel; None: the fraction rule) (empty when not even
        one configuration taken to full fidelity fits)."""
        from harness.spec import FRACTION

        cm = cost_model or FRACTION
        rs = self.rungs[start:]
        cap = len(self.space.candidate_matrix) if self.space.is_pool else 10**6
        best: list[int] = []
        n0 = 1
        while n0 <= cap:
            ns = [n0]
            for _ in rs[1:]:
                ns.append(max(1, math.floor(ns[-1] / self.eta)))
            prev, cost = None, 0.0
            for n, r in zip(ns, rs):
                cost += n * cm.charge(prev if cm.continues else None, r)  # a promotion continues the run
                prev = r
            if cost > allot + 1e-9:
                break
            best, n0 = ns, n0 + 1
        return best

    def draw(self, history, index: int, taken: list) -> object:
        """The `index`-th new configuration (default: random; the pool without replacement, centre first)."""
        if self.space.is_pool:
            return self.space.from_vector(pool_draw(self.space, self.seed, index, centre_first=True), normalize=True)
        if index == 0:
            return self.space.uniform()
        v = step_rng(self.seed, index, 31).dirichlet(np.ones(self.space.dim))
        return self.space.from_vector(self.space.project(v) if self.space.bounded else v, normalize=True)

    def _ask(self, m, f: float):
        return m if f == 1.0 else Proposal(m, f)

    def propose(self, history, budget):
        if budget.remaining(history) <= 0:
            return None
        nxt = self._next(history, budget)
        if nxt is None:
            return None
        m, f = nxt
        if budget.pilot_cost(history, m, f)[0] > budget.remaining(history) + 1e-9:
            return None
        return self._ask(m, f)

    def _next(self, history, budget):
        n, pos, draws = len(history), 0, 0
        rungs, starts = self.rungs, self.bracket_starts()
        total = float(budget.runs)
        while True:  # Hyperband's outer loop: another round of brackets while one still fits
            progressed = False
            for b, start in enumerate(starts):
                allot = (total - budget.spent(history[:pos])) / (len(starts) - b)
                ns = self.sizes(start, allot, budget.cost_model)
                if not ns:
                    continue
                progressed = True
                configs: list = []
                for k, (size, r) in enumerate(zip(ns, rungs[start:])):
                    if k > 0:  # promote the best `size` of the previous rung (failed runs last)
                        order = sorted(range(len(results)), key=lambda i: -results[i][1])
                        configs = [results[i][0] for i in order[:size]]
                    results = []
                    for i in range(size):
                        if k == 0:
                            if pos < n:
                                m = history[pos].mixture
                            else:
                                return self.draw(history, draws, configs), r
                            draws += 1
                            configs.append(m)
                        else:
                            m = configs[i]
                            if pos >= n:
                                return m, r
                        o = history[pos]
                        results.append((m, o.objective if o.ok else -math.inf))
                        pos += 1
            if not progressed:
                break
        return self._repeat(history, budget)

    def _repeat(self, history, budget):
        """Budget no bracket can use: another full-fidelity seed of the best full-fidelity mean; when less
        than a full run is left, the best run stopped early (highest fidelity, then objective) taken on to
        full fidelity, if its continuation fits."""
        left = budget.remaining(history)
        if left < 1.0 - 1e-9:
            latest: dict = {}
            for o in history:
                latest[o.mixture] = o
            open_runs = [
                (o.fidelity, o.objective, m)
                for m, o in latest.items()
                if o.ok and o.fidelity < 1.0 and budget.pilot_cost(history, m, 1.0)[0] <= left + 1e-9
            ]
            if open_runs:
                return max(open_runs, key=lambda t: (t[0], t[1]))[2], 1.0
        full: dict = {}
        for o in history:
            if o.ok and o.fidelity == 1.0:
                full.setdefault(o.mixture, []).append(o.objective)
        if not full:
            return self.draw(history, len(history), []), 1.0
        return max(full, key=lambda m: float(np.mean(full[m]))), 1.0

    def recommend(self, history):
        by: dict = {}
        for o in history:
            if o.ok:
                by.setdefault(float(o.fidelity), {}).setdefault(o.mixture, []).append(o.objective)
        if not by:
            return self.space.uniform()
        top = by[max(by)]  # full fidelity when any full run succeeded
        return max(top, key=lambda m: float(np.mean(top[m])))


@register("successive-halving")
class SuccessiveHalving(_Brackets):
    description = (
        "Successive halving: many mixtures at the lowest fidelity, the best 1/eta promoted to each "
        "higher one, one bracket sized to the budget."
    )
    citation = (
        "Jamieson & Talwalkar, Non-stochastic Best Arm Identification and Hyperparameter Optimization "
        "(AISTATS 2016); Li et al., Hyperband (JMLR 2017)"
    )

    def bracket_starts(self):
        return [0]


@register("hyperband")
class Hyperband(_Brackets):
    description = (
        "Hyperband: successive-halving brackets from the most exploratory (lowest fidelity) to plain "
        "full runs, an equal share of the budget each."
    )
    citation = (
        "Li, Jamieson, DeSalvo, Rostamizadeh & Talwalkar, Hyperband: A Novel Bandit-Based Approach to "
        "Hyperparameter Optimization (JMLR 2017)"
    )

    def bracket_starts(self):
        return list(range(len(self.rungs)))


@register("bohb-gp")
class BOHBGP(Hyperband):
    """BOHB's recipe with gp-bo's model in place of the TPE density: Hyperband brackets, but each new
    configuration (the first rung of a bracket) is the candidate with the best expected improvement under a
    GP (strategies/bo_common.SimplexGP, Matérn-5/2, ML-II) fitted on the observations at the highest fidelity
    with at least `min_points` successful runs; with probability `random_fraction`, or before any fidelity
    has `min_points`, a random draw (Falkner et al.'s rho, whose implementation defaults to 1/3). The
    cost-awareness is Hyperband's: most of the budget goes to cheap partial runs. In a pool, mixtures
    already observed are not drawn again while unobserved candidates remain."""

    description = (
        "BOHB-style: Hyperband brackets whose new mixtures come from a GP + EI fitted on the highest "
        "fidelity with enough runs (gp-bo's model), a share at random."
    )
    citation = (
        "Falkner, Klein & Hutter, BOHB: Robust and Efficient Hyperparameter Optimization at Scale "
        "(ICML 2018); Snoek et al. (NeurIPS 2012) for GP + EI"
    )
    family = "multi-fidelity"

    def __init__(
        self,
        space,
        seed=0,
        eta: float = 2.0,
        min_fidelity: float | None = None,
        random_fraction: float = 1 / 3,
        min_points: int | None = None,
        n_candidates: int = 512,
        xi: float = 0.0,
    ):
        super().__init__(space, seed, eta, min_fidelity)
        if not 0 <= random_fraction <= 1:
            raise ValueError(f"random_fraction must lie in [0, 1], got {random_fraction}")
        self.random_fraction = float(random_fraction)
        # BOHB's N_min = d + 1 for d free parameters: a mixture of n datasets has n - 1, so n points
        self.min_points = space.dim if min_points is None else int(min_points)
        if self.min_points < 2:
            raise ValueError(f"min_points must be >= 2, got {min_points}")
        self.n_candidates, self.xi = int(n_candidates), float(xi)

    def _model_data(self, history):
        by: dict = {}
        for o in history:
            if o.ok:
                X, y = by.setdefault(float(o.fidelity), ([], []))
                X.append(self.space.to_vector(o.mixture))
                y.append(o.objective)
        for f in sorted(by, reverse=True):
            if len(by[f][1]) >= self.min_points:
                return np.array(by[f][0]), np.array(by[f][1])
        return None

    @blas_single
    def draw(self, history, index, taken):
        rng = step_rng(self.seed, index, 37)
        data = self._model_data(history)
        if data is None or rng.random() < self.random_fraction:
            return self._random(history, index, taken)
        X, y = data
        gp = SimplexGP(X, y)
        mean_obs, _ = gp.predict(X)
        top = X[np.argsort(-mean_obs)[:3]]
        cands = acquisition_points(self.space, rng, self.n_candidates, top, self.n_candidates // 6)
        if self.space.is_pool:
            seen = {o.mixture.key() for o in history} | {m.key() for m in taken}
            fresh = [i for i, c in enumerate(cands) if self.space.from_vector(c, normalize=True).key() not in seen]
            if fresh:
                cands = cands[fresh]
        mean, sd = gp.predict(cands)
        best = cands[int(np.argmax(expected_improvement(mean, sd, float(mean_obs.max()), self.xi)))]
        return self.space.from_vector(best, normalize=True)

    def _random(self, history, index, taken):
        if not self.space.is_pool:
            return _Brackets.draw(self, history, index, taken)
        seen = {o.mixture.key() for o in history} | {m.key() for m in taken}
        k = len(self.space.candidate_matrix)
        for j in range(k):  # the pool's seeded order, skipping what was already observed
            m = self.space.from_vector(pool_draw(self.space, self.seed, index + j, centre_first=True), normalize=True)
            if m.key() not in seen:
                return m
        return self.space.from_vector(pool_draw(self.space, self.seed, index, centre_first=True), normalize=True)

    @blas_single
    def recommend(self, history):
        """gp-bo's noise-aware choice on the full-fidelity runs (with at least 3), else the bracket engine's."""
        full = [o for o in history if o.ok and o.fidelity == 1.0]
        if len(full) < 3:
            return super().recommend(history)
        X = np.array([self.space.to_vector(o.mixture) for o in full])
        y = np.array([o.objective for o in full])
        mean, _ = SimplexGP(X, y).predict(X)
        return self.space.from_vector(X[int(np.argmax(mean))], normalize=True)
