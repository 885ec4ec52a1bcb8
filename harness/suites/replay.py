"""Replay suites: answers from a recorded table (and, where the track allows, a surrogate)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.mixture import Mixture, MixtureSpace
from harness.run_key import mixture_part
from harness.spec import derive_seed
from harness.suites.base import Suite
from harness.suites.errors import SuiteError
from harness.suites.table import FIDELITY_COLUMN, FIDELITY_TABLE

SUPPORT_SLACK = 0.02  # the continuous track's per-dataset bounds: recorded [min, max] widened by this much
_RECORDED_OF = "recorded_of"  # exact weights of a proposal -> its recorded mixture (or None)
_POOL_ORDERS = ("pool", "seed orders")  # (candidate, study seed) -> (its recorded seeds, their order)
POOL_ORDERS_LIMIT = 100_000  # orders remembered per suite in one process; past it the memo starts afresh


def pool_order_seed(study_seed: int, mixture: Mixture) -> int:
    """`derive_seed(study_seed, "pool", [list(k) for k in mixture.key()])`, its canonical JSON written out directly
    (harness.run_key's mixture text: the json module's own escaping and float repr), which costs a sixth of the
    general encoder on a pilot not seen before; anything outside the common case goes to `derive_seed` itself.
    tests/test_replay_fast_path.py compares the two on every recorded mixture of the pool suites."""
    part = mixture_part(mixture)
    if part is None or type(study_seed) is not int:
        return derive_seed(study_seed, "pool", [list(k) for k in mixture.key()])
    digest = hashlib.sha256(f'[{int.__repr__(study_seed)},"pool",{part}]'.encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class ReplaySuite(Suite):
    """A recorded table. Two tracks (harness/suites/tracks.py):

    - **pool** (default): the candidates are the recorded mixtures. A pilot run returns one recorded
      training seed of the proposed candidate (`pool_seed` picks them without replacement, in an order
      fixed by the study seed); a recommendation is scored by its per-mixture mean over all seeds.
      Every number is a recorded one.
    - **continuous**: only when the card's fidelity gate passed (harness/suites/fidelity.py). The space
      is bounded to the data's support (per-dataset recorded range ± SUPPORT_SLACK); a recorded
      mixture answers from the table, any other from the gated surrogate, labelled `surrogate`.

    Normalisation rests on recorded numbers only: best/worst known are the best and worst
    per-mixture means of the metric.
    """

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
        suite = cls(
            card["name"],
            str(card["version"]),
            MixtureSpace(tuple(datasets)),
            card["metric"],
            card["goal"],
            card,
            path,
            protocol,
        )
        suite.weight_columns = weight_columns
        suite.score_columns = list(card["score_columns"])
        suite.seed_column = card.get("seed_column")
        suite.table = table
        suite._index()
        suite._index_fidelities()
        return suite

    # -- fidelities (runs evaluated part-way: fidelities.csv, written by export_suite) --------------------
    def _index_fidelities(self) -> None:
        """`recorded_at[f][m]`: the (seeds × scores) of mixture m at fidelity f, rows aligned with
        `recorded_seeds[m]`, from `fidelities.csv` when the card has a `fidelities` block (its sha256 is
        checked, so the card's content, hence the protocol hash, covers the file). Fidelity 1.0 is runs.csv.
        A suite without the block is single-fidelity: `fidelity_levels` is empty."""
        self.recorded_at: dict[float, dict[Mixture, np.ndarray]] = {}
        self.fidelity_levels: tuple[float, ...] = ()
        block = self.card.get("fidelities")
        if not isinstance(block, dict) or self.path is None:
            return
        path = Path(self.path) / str(block.get("table") or FIDELITY_TABLE)
        if not path.is_file():
            raise SuiteError(
                f"suite {self.name!r}: its card has a fidelities block but {path.name} is missing from {self.path}"
            )
        raw = path.read_bytes()
        if block.get("sha256") and hashlib.sha256(raw).hexdigest() != block["sha256"]:
            raise SuiteError(
                f"suite {self.name!r}: {path.name} does not match the sha256 on its card (edited after "
                f"export?); re-export the suite"
            )
        col = str(block.get("column") or FIDELITY_COLUMN)
        long = pd.read_csv(path)
        wcols = [self.weight_columns[d] for d in self.space.datasets]
        missing = [c for c in wcols + [col] + self.score_columns if c not in long.columns]
        if self.seed_column and self.seed_column not in long.columns:
            missing.append(self.seed_column)
        if missing:
            raise SuiteError(f"suite {self.name!r}: {path.name} lacks columns {missing}")
        levels = sorted({float(f) for f in long[col].unique()} | {1.0})
        for f in levels:
            if f == 1.0:
                self.recorded_at[1.0] = self.recorded
                continue
            sub = long[long[col] == f]
            by: dict[Mixture, dict[int, np.ndarray]] = {}
            W = sub[wcols].to_numpy(float)
            S = sub[self.score_columns].to_numpy(float)
            seeds = sub[self.seed_column].to_numpy() if self.seed_column else np.zeros(len(sub), int)
            for w, sd, sc in zip(W, seeds, S):
                by.setdefault(self.space.from_vector(w, normalize=True), {})[int(sd)] = sc
            table: dict[Mixture, np.ndarray] = {}
            for m, rec_seeds in self.recorded_seeds.items():
                rows = by.get(m, {})
                absent = [s for s in rec_seeds if s not in rows]
                if absent:
                    raise SuiteError(
                        f"suite {self.name!r}: {path.name} has no fidelity-{f:g} row for {m} seed(s) "
                        f"{absent[:5]}; every recorded run needs every level"
                    )
                table[m] = np.array([rows[s] for s in rec_seeds])
            self.recorded_at[f] = table
        self.fidelity_levels = tuple(levels)

    def _index(self) -> None:
        W = self.table[[self.weight_columns[d] for d in self.space.datasets]].to_numpy(float)
        S = self.table[self.score_columns].to_numpy(float)
        seeds = self.table[self.seed_column].to_numpy() if self.seed_column and self.seed_column in self.table else None
        groups: dict[Mixture, list[int]] = {}
        for i, w in enumerate(W):
            groups.setdefault(self.space.from_vector(w, normalize=True), []).append(i)
        self.recorded = {m: S[idx] for m, idx in groups.items()}  # mixture -> (seeds × scores)
        # the training seed of each recorded row (its position among the mixture's rows without a seed column)
        self.recorded_seeds = {
            m: ([int(seeds[i]) for i in idx] if seeds is not None else list(range(len(idx))))
            for m, idx in groups.items()
        }
        self.means = {m: s.mean(axis=0) for m, s in self.recorded.items()}
        sds = [s.std(axis=0, ddof=1) for s in self.recorded.values() if len(s) > 1]
        # Pooled within-mixture sd per score: the noise model for surrogate answers.
        self.noise_sd = np.sqrt(np.mean(np.square(sds), axis=0)) if sds else np.zeros(len(self.score_columns))
        self.has_noise_model = bool(sds)
        self._X = np.array([self.space.to_vector(m) for m in self.means])
        self._Y = np.array(list(self.means.values()))
        self._keys = list(self.means)  # candidate index (the pool's order, rows of _X) -> recorded mixture
        # each recorded mixture -> itself, the key object of every table above: looked up with it, a table finds
        # its entry by identity instead of comparing 17 weights again (a replayed pilot asks three tables)
        self._recorded_key = {m: m for m in self.means}

    def recorded_mixture(self, mixture: Mixture) -> Mixture | None:
        """The recorded mixture `mixture` is (the dict key every recorded table uses), or None: by its rounded
        key, else by its vector within CANDIDATE_TOLERANCE of a recorded one. Never by re-rounding alone, which
        misses a weight ending in 5 once a pool renormalises it (issue 29)."""
        m = self.space.validate(mixture)
        got = self._recorded_key.get(m)
        if got is not None:
            return got
        if not len(self._X):
            return None
        # the search by vector, remembered per exact weights (a pool candidate renormalised rounds apart from its
        # recorded mixture, so every pilot of it searched all rows again: ~20 µs on RegMix's 1,256 x 17)
        found = self._cache.setdefault(_RECORDED_OF, {})
        exact = m.items_()
        if exact in found:
            return found[exact]
        from harness.mixture import CANDIDATE_TOLERANCE

        dist = np.abs(self._X - self.space.to_vector(m)).max(axis=1)
        j = int(np.argmin(dist))
        got = self._keys[j] if dist[j] <= CANDIDATE_TOLERANCE else None
        if len(found) >= POOL_ORDERS_LIMIT:
            found.clear()
        found[exact] = got
        return got

    # -- tracks --------------------------------------------------------------------------------------
    @property
    def tracks(self) -> tuple[str, ...]:
        return ("pool", "continuous") if self.fidelity.get("passed") else ("pool",)

    @property
    def default_track(self) -> str:
        return "pool"

    def track_refusal(self, track: str) -> str:
        if track == "online":
            return super().track_refusal(track)
        if track == "continuous" and not self.fidelity.get("passed"):
            return (
                f"its surrogate fails the fidelity gate ({self.fidelity.get('reason', 'not measured')}), so no "
                f"number off the recorded mixtures can be trusted"
            )
        return ""

    def space_for(self, track: str) -> MixtureSpace:
        if track == "pool":  # the only track with partial runs: every one of them is a recorded checkpoint
            return self.space.restricted(candidates=[tuple(v) for v in self._X], fidelities=self.fidelity_levels)
        lo, hi = self.support_bounds()
        return self.space.restricted(lower=lo, upper=hi)

    def support_bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The data's support: each dataset's recorded weight range, widened by SUPPORT_SLACK."""
        support = (self.card.get("judge") or {}).get("support") or {}
        if support.get("lower") and support.get("upper"):
            return tuple(map(float, support["lower"])), tuple(map(float, support["upper"]))
        return self.support_bounds_measured()

    def support_bounds_measured(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        lo = np.clip(self._X.min(axis=0) - SUPPORT_SLACK, 0.0, 1.0)
        hi = np.clip(self._X.max(axis=0) + SUPPORT_SLACK, 0.0, 1.0)
        return tuple(np.round(lo, 6).tolist()), tuple(np.round(hi, 6).tolist())

    @functools.cached_property
    def fidelity(self) -> dict[str, Any]:
        """The fidelity gate's verdict: from the card (`judge.fidelity`, written by `suite import`), else
        measured now on the table (and cached for this process)."""
        block = (self.card.get("judge") or {}).get("fidelity")
        if isinstance(block, dict) and "passed" in block:
            return block
        from harness.suites.fidelity import gate

        return gate(self._X, self._Y[:, self.score_columns.index(self.metric)]).to_card()

    def pool_seed(self, mixture: Mixture, study_seed: int, occurrence: int) -> int:
        """The recorded training seed the `occurrence`-th proposal of `mixture` in a study returns: the
        mixture's seeds in an order fixed by (study seed, mixture), so proposing a candidate again draws a
        seed not yet seen until all are used (then the order repeats). The order is drawn once per process
        (it is asked on every pilot, and the studies of one study seed share it)."""
        orders = self._cache.get(_POOL_ORDERS)
        if orders is None:
            orders = self._cache[_POOL_ORDERS] = {}
        key = (mixture, int(study_seed))
        got = orders.get(key)
        if got is None:
            m = self.recorded_mixture(mixture)
            if m is None:
                raise KeyError(f"{mixture} is not a recorded mixture of {self.name}")
            seeds = self.recorded_seeds[m]
            if len(seeds) == 1:  # a permutation of one is (0,) whatever the draw: no generator to build
                order = (0,)
            else:
                rng = np.random.default_rng(pool_order_seed(int(study_seed), m))
                order = rng.permutation(len(seeds))
            if len(orders) >= POOL_ORDERS_LIMIT:
                orders.clear()
            got = orders[key] = (seeds, order)
        seeds, order = got
        return int(seeds[order[occurrence % len(seeds)]])

    # -- answers -------------------------------------------------------------------------------------
    @functools.cached_property
    def surrogate(self):
        """The gated model (the fidelity gate's choice), fitted on every recorded mixture's mean."""
        from harness.suites.fidelity import FittedModel

        return FittedModel(self.fidelity.get("chosen") or "scheffe-ridge", self._X, self._Y, self.score_columns)

    def simulate_recorded(self, mixture: Mixture, seed: int, fidelity: float = 1.0) -> dict[str, float]:
        """The recorded run of (mixture, training seed), at its checkpoint `fidelity` (1.0: the final
        evaluation, runs.csv); the pool track's only answer."""
        m = self.recorded_mixture(mixture)
        if m is None:
            raise KeyError(f"{mixture} is not a recorded mixture of {self.name}")
        seeds = self.recorded_seeds[m]
        if seed not in seeds:
            raise KeyError(f"{m} has no recorded training seed {seed} (recorded: {seeds})")
        f = float(fidelity)
        if f == 1.0:  # .tolist(): the same floats as float() of each, without a numpy scalar each
            return dict(zip(self.score_columns, self.recorded[m][seeds.index(seed)].tolist()))
        if f not in self.recorded_at:
            from harness.spec import UnknownFidelity

            raise UnknownFidelity(
                f"fidelity {f:g} is not recorded in {self.name}; its levels: "
                f"{', '.join(f'{x:g}' for x in self.fidelity_levels) or '1 only (single-fidelity)'}"
            )
        return dict(zip(self.score_columns, self.recorded_at[f][m][seeds.index(seed)].tolist()))

    def simulate(self, mixture: Mixture, seed: int) -> tuple[dict[str, float], str]:
        m = self.recorded_mixture(mixture) or self.space.validate(mixture)
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
        m = self.recorded_mixture(mixture) or self.space.validate(mixture)
        j = self.score_columns.index(self.metric)
        if m in self.means:
            return float(self.means[m][j]), "recorded"
        return float(self.surrogate.predict(self.space.to_vector(m)[None, :])[0, j]), "surrogate"

    def _bounds(self) -> tuple[float, float]:
        """Best and worst per-mixture recorded means of the metric: measured values only."""
        recorded = self._Y[:, self.score_columns.index(self.metric)]
        pick_best, pick_worst = (max, min) if self.maximize else (min, max)
        return float(pick_best(recorded)), float(pick_worst(recorded))

    def _normalisation(self) -> tuple[float, float]:
        # never the card's numbers: an old card may hold a surrogate's extreme
        if "norm" not in self._cache:
            self._cache["norm"] = self._bounds()
        return self._cache["norm"]

    NORMALISATION_NOTE = (
        "best/worst of the per-mixture means of the recorded runs (mean over each mixture's recorded training seeds)"
    )
