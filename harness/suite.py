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

import functools
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from harness.mixture import Mixture, MixtureSpace, did_you_mean
from harness.spec import derive_seed

BASELINES_DIR = Path(__file__).resolve().parent.parent / "baselines"
SUITE_PATH_ENV = "MODOMODO_SUITE_PATH"  # extra folders (":"-separated) holding suite folders


class SuiteError(ValueError):
    """A suite that cannot be found or whose card/table is malformed."""


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
        regret = (self.best_known - score) if self.maximize else (score - self.best_known)
        span = abs(self.best_known - self.worst_known)
        return regret, (regret / span if span > 0 else 0.0)


# ------------------------------------------------------------------------------------------------
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
        from harness.surrogate import Surrogate

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


# ------------------------------------------------------------------------------------------------
class SyntheticSuite(Suite):
    """An analytic function with a known optimum, plus optional Gaussian noise per pilot run."""

    @classmethod
    def from_card(cls, card: dict[str, Any], path: Path | None, protocol: str) -> SyntheticSuite:
        from harness.synthetic import AnalyticFunction

        datasets = card.get("datasets") or [f"D{i + 1}" for i in range(int(card["function"]["dim"]))]
        fn = card["function"]
        suite = cls(card["name"], str(card["version"]), MixtureSpace(tuple(datasets)), card.get("metric", "score"),
                    card.get("goal", "max"), card, path, protocol)
        suite.function = AnalyticFunction.build(fn["kind"], len(datasets), int(fn.get("seed", 0)))
        suite.noise_sd = float(fn.get("noise_sd", 0.0))
        return suite

    def simulate(self, mixture: Mixture, seed: int) -> tuple[dict[str, float], str]:
        x = self.space.to_vector(mixture)
        value = float(self.function(x)[0])
        if self.noise_sd > 0:
            value += float(np.random.default_rng(derive_seed(seed, "noise", x.round(9).tolist())).normal()) * self.noise_sd
        return {self.metric: value}, "analytic"

    def oracle(self, mixture: Mixture) -> tuple[float, str]:
        return float(self.function(self.space.to_vector(mixture))[0]), "analytic"

    def _bounds(self) -> tuple[float, float]:
        return self.function.optimum()[1], self.function.worst()

    def optimum_mixture(self) -> Mixture:
        return self.space.from_vector(self.function.optimum()[0], normalize=True)


# ------------------------------------------------------------------------------------------------
class LiveSuite(Suite):
    """A suite with no table: every answer is a real training run (`kind: live`, e.g. minimodo-tiny-live).

    - `simulate(mixture, seed)`: one run of the card's runner (`runner: cpu`) with that seed.
    - `oracle(mixture)`: the mean of the suite metric over K runs of the runner with fixed oracle
      seeds (`oracle: {seeds: K}`, default 4; seeds derive_seed("oracle", k), k < K, never a pilot
      seed). Oracle runs go through a result store (`$MODOMODO_ORACLE_STORE`, else
      `<cache>/oracle-store`, cache = `$MODOMODO_CACHE` or ~/.cache/modomodo), so each mixture's K
      runs are paid once across studies, processes and bench invocations, and a killed scoring
      resumes. A failed oracle run is left out of the mean; all K failing makes the score NaN.
    - Normalisation: the card's `normalization: {best_known, worst_known}`; without it the range of
      the metric, [0, 1] (scores are accuracies). Regret is then relative to that range, not to a
      known optimum: a live suite has none.
    """

    @classmethod
    def from_card(cls, card: dict[str, Any], path: Path | None, protocol: str) -> LiveSuite:
        if not card.get("datasets"):
            raise SuiteError(f"live suite {card['name']!r}: card lacks datasets")
        suite = cls(card["name"], str(card["version"]), MixtureSpace(tuple(card["datasets"])), card["metric"],
                    card["goal"], card, path, protocol)
        suite.runner_kind = str(card.get("runner", "cpu"))
        oracle = card.get("oracle") or {}
        suite.oracle_seeds = [derive_seed("oracle", k) for k in range(int(oracle.get("seeds", 4)))]
        return suite

    @functools.cached_property
    def runner(self):
        from harness.runners import make_runner

        return make_runner(self.runner_kind, self)

    def oracle_store(self):
        from harness.store import ResultStore

        root = os.environ.get("MODOMODO_ORACLE_STORE")
        if not root:
            base = os.environ.get("MODOMODO_CACHE") or str(Path.home() / ".cache" / "modomodo")
            root = str(Path(base) / "oracle-store")
        return ResultStore(root)

    def _result(self, mixture: Mixture, seed: int, store=None):
        from harness.spec import RunSpec

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
            store = self.oracle_store()
            values = [r.value for r in (self._result(mixture, s, store) for s in self.oracle_seeds)]
            values = [v for v in values if v is not None]
            mean = float(np.mean(values)) if values else float("nan")
            self._cache[key] = (mean, f"trained (mean of {len(values)}/{len(self.oracle_seeds)} seeds)")
        return self._cache[key]

    def _bounds(self) -> tuple[float, float]:
        return (1.0, 0.0) if self.maximize else (0.0, 1.0)


# ------------------------------------------------------------------------------------------------
REQUIRED_CARD_KEYS = ("name", "version", "metric", "goal")


def _protocol_hash(*blobs: bytes) -> str:
    h = hashlib.sha256()
    for b in blobs:
        h.update(hashlib.sha256(b).digest())
    return h.hexdigest()[:16]


def load_folder(folder: str | Path) -> Suite:
    folder = Path(folder)
    card_path = folder / "card.yaml"
    if not card_path.is_file():
        raise SuiteError(f"{str(folder)!r} is not a suite folder: it has no card.yaml")
    card_bytes = card_path.read_bytes()
    try:
        card = yaml.safe_load(card_bytes) or {}
    except yaml.YAMLError as e:
        raise SuiteError(f"{card_path}: invalid YAML: {e}") from None
    missing = [k for k in REQUIRED_CARD_KEYS if k not in card]
    if missing:
        raise SuiteError(f"{card_path}: card lacks required keys {missing}")
    if card["goal"] not in ("max", "min"):
        raise SuiteError(f"{card_path}: goal is {card['goal']!r}; valid: max, min")
    kind = card.get("kind", "replay")
    if kind == "synthetic":
        return SyntheticSuite.from_card(card, folder, _protocol_hash(card_bytes))
    if kind == "replay":
        runs_path = folder / card.get("runs", "runs.csv")
        if not runs_path.is_file():
            raise SuiteError(f"replay suite {card['name']!r} has no {runs_path.name} in {folder}")
        runs_bytes = runs_path.read_bytes()
        table = pd.read_csv(runs_path)
        return ReplaySuite.from_card(card, folder, table, _protocol_hash(card_bytes, runs_bytes))
    if kind == "live":
        return LiveSuite.from_card(card, folder, _protocol_hash(card_bytes))
    raise SuiteError(f"{card_path}: unknown suite kind {kind!r}; valid: replay, synthetic, live")


def suite_dirs() -> list[Path]:
    roots = [BASELINES_DIR] + [Path(p) for p in os.environ.get(SUITE_PATH_ENV, "").split(os.pathsep) if p]
    found = []
    for root in roots:
        if root.is_dir():
            found.extend(sorted(p.parent for p in root.glob("*/card.yaml")))
    return found


def registered() -> dict[str, Path]:
    """Suite name -> folder, for every suite in baselines/ and on MODOMODO_SUITE_PATH."""
    cards = [folder / "card.yaml" for folder in suite_dirs()]
    # Parsing every card is the slow part: memoised on the cards' paths and modification times.
    return dict(_registered(tuple((str(c), c.stat().st_mtime_ns) for c in cards)))


@functools.lru_cache(maxsize=8)
def _registered(cards: tuple[tuple[str, int], ...]) -> tuple[tuple[str, Path], ...]:
    out: dict[str, Path] = {}
    for card, _ in cards:
        folder = Path(card).parent
        try:
            name = (yaml.safe_load(Path(card).read_text()) or {}).get("name") or folder.name
        except yaml.YAMLError:
            name = folder.name
        out.setdefault(name, folder)
    return tuple(out.items())


@functools.lru_cache(maxsize=64)
def _load_cached(folder: str, mtime_key: tuple) -> Suite:
    return load_folder(folder)


def load(name_or_path: str | Path) -> Suite:
    """A registered suite name, or the path of a suite folder (anything with a path separator is a
    path; a bare name is looked up among the registered suites first)."""
    p = Path(name_or_path)
    looks_like_path = os.sep in str(name_or_path) or p.is_absolute()
    reg = {} if looks_like_path and (p / "card.yaml").is_file() else registered()
    if str(name_or_path) in reg and not looks_like_path:
        folder = reg[str(name_or_path)]
    elif p.is_dir():
        folder = p
    else:
        raise SuiteError(f"unknown suite {str(name_or_path)!r}: not a registered name nor a suite folder; "
                         f"{did_you_mean(str(name_or_path), sorted(reg))}")
    folder = folder.resolve()
    stamp = tuple((f.name, f.stat().st_mtime_ns) for f in sorted(folder.iterdir()) if f.is_file())
    return _load_cached(str(folder), stamp)
