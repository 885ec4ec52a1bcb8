"""The value objects that cross the line between deciding and running.

`RunSpec` says what to run (suite protocol, mixture, seed, fidelity); its content hash is the key of
the result store, so the same run is never paid for twice. `RunResult` is what came back. `Budget`
is what a strategy may spend. `Observation` is one entry of a strategy's history: the only thing a
strategy ever sees of the outside world.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.mixture import Mixture

STATUS_OK = "ok"
STATUS_FAILED = "failed"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def derive_seed(*parts: Any) -> int:
    """A stable 31-bit seed from any JSON-able parts (Python's hash() is salted per process)."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


FULL_FIDELITY = 1.0


class UnknownFidelity(ValueError):
    """A proposal asked for a fidelity the suite (in this track) does not offer."""


@dataclass(frozen=True)
class Proposal:
    """A pilot run at a fidelity: what `Strategy.propose` returns to ask for a partial run.

    A plain `Mixture` is a proposal at full fidelity (1.0), so single-fidelity strategies are unchanged.
    `fidelity` must be one of `space.fidelities` (the levels the suite offers in this track; empty for a
    single-fidelity suite, where only 1.0 is valid); the study refuses any other with `UnknownFidelity`."""

    mixture: Mixture
    fidelity: float = FULL_FIDELITY


def as_proposal(value) -> Proposal | None:
    """None, a Mixture (full fidelity) or a Proposal, as a Proposal (None stays None). Anything else: TypeError."""
    if value is None or isinstance(value, Proposal):
        return value
    if isinstance(value, Mixture):
        return Proposal(value, FULL_FIDELITY)
    raise TypeError(
        f"expected a Mixture or None, got {type(value).__name__}: {value!r:.80} (a partial run: "
        f"Proposal(mixture, fidelity))"
    )


COST_KINDS = ("fraction", "checkpoints", "scales")


@dataclass(frozen=True)
class CostModel:
    """What a pilot costs in run-equivalents (a full run from scratch costs 1): the suite card's `cost_model`.

    - `fraction` (the default where a card states none): a pilot at f costs f, a continuation from f0 costs
      f - f0. It charges nothing for evaluating a checkpoint, so it under-charges partial runs.
    - `checkpoints` (multi-fidelity suites whose fidelities are checkpoints of one run, e.g. minimodo-pool):
      taking a run from f0 to f trains (f - f0) of a run and evaluates once, so it costs
      ((f - f0) * train_seconds + eval_seconds) / (train_seconds + eval_seconds), both measured from the runs.
    - `scales` (fidelities are separate models, e.g. small and large pretraining runs): a pilot at f costs
      `cost[f]` and never continues an earlier one.
    """

    kind: str = "fraction"
    train_seconds: float | None = None
    eval_seconds: float | None = None
    cost: tuple[tuple[float, float], ...] = ()  # scales: ((fidelity, run-equivalents), ...)
    source: str = ""

    def __post_init__(self):
        if self.kind not in COST_KINDS:
            raise ValueError(f"cost_model kind {self.kind!r} is not known; valid: {', '.join(COST_KINDS)}")
        if self.kind == "checkpoints":
            for name in ("train_seconds", "eval_seconds"):
                v = getattr(self, name)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                    raise ValueError(f"cost_model {name} must be a non-negative number of seconds, got {v!r}")
            if self.train_seconds + self.eval_seconds <= 0:
                raise ValueError("cost_model train_seconds + eval_seconds must be > 0")
        if self.kind == "scales":
            if not self.cost:
                raise ValueError("a cost_model of kind scales needs `cost: {fidelity: run-equivalents}`")
            for f, c in self.cost:
                if not (math.isfinite(f) and math.isfinite(c) and c > 0):
                    raise ValueError(f"cost_model cost {f!r}: {c!r} must be a positive number of run-equivalents")

    @property
    def continues(self) -> bool:
        """Whether a pilot at a higher fidelity continues the mixture's latest run (not for separate scales)."""
        return self.kind != "scales"

    def charge(self, f0: float | None, f: float) -> float:
        """Run-equivalents of taking a run from fidelity f0 to f (f0 None: a new run)."""
        start = 0.0 if f0 is None else float(f0)
        if self.kind == "fraction":
            return round(float(f) - start, 9)
        if self.kind == "checkpoints":
            t, e = float(self.train_seconds), float(self.eval_seconds)
            return round(((float(f) - start) * t + e) / (t + e), 9)
        for level, c in self.cost:  # scales
            if abs(level - float(f)) <= 1e-9:
                return float(c)  # unrounded: 60 pilots at 1/60 must add up to one run, not 1.00000002
        raise UnknownFidelity(
            f"the cost_model has no cost for fidelity {f:g}; it prices {', '.join(f'{lv:g}' for lv, _ in self.cost)}"
        )

    def check_levels(self, levels) -> CostModel:
        """Itself, if it prices every fidelity level of a suite (a `scales` model must name each level and
        full fidelity); else ValueError naming the levels missing."""
        if self.kind == "scales":
            priced = [f for f, _ in self.cost]
            missing = [
                float(lv)
                for lv in sorted({*map(float, levels), FULL_FIDELITY})
                if not any(abs(lv - f) <= 1e-9 for f in priced)
            ]
            if missing:
                raise ValueError(
                    f"cost_model (kind scales) is missing a cost for fidelity "
                    f"{', '.join(f'{m:g}' for m in missing)}; it prices {', '.join(f'{f:g}' for f in priced)}"
                )
        return self

    @property
    def full_run_is_one(self) -> bool:
        """Whether a full-fidelity run from scratch costs exactly 1 (then single-fidelity histories count runs)."""
        try:
            return abs(self.charge(None, FULL_FIDELITY) - 1.0) <= 1e-9
        except UnknownFidelity:
            return False

    @classmethod
    def from_card(cls, block: Any) -> CostModel | None:
        """The card's `cost_model:` block (None stays None). Bad values: ValueError naming them."""
        if block is None:
            return None
        if isinstance(block, CostModel):
            return block
        if not isinstance(block, dict):
            raise ValueError(f"cost_model must be a mapping, got {type(block).__name__}")
        kind = block.get("kind", "fraction")
        cost = block.get("cost") or {}
        if not isinstance(cost, dict):
            raise ValueError(f"cost_model cost must map fidelity -> run-equivalents, got {cost!r}")
        try:
            pairs = tuple(sorted((float(f), float(c)) for f, c in cost.items()))
        except (TypeError, ValueError):
            raise ValueError(f"cost_model cost must map numbers to numbers, got {cost!r}") from None
        num = lambda v: (  # noqa: E731
            None if v is None else (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
        )
        return cls(
            str(kind),
            num(block.get("train_seconds")),
            num(block.get("eval_seconds")),
            pairs,
            str(block.get("source") or ""),
        )

    def to_card(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        if self.kind == "checkpoints":
            d.update(train_seconds=self.train_seconds, eval_seconds=self.eval_seconds)
        if self.kind == "scales":
            d["cost"] = {f: c for f, c in self.cost}
        if self.source:
            d["source"] = self.source
        return d


FRACTION = CostModel()


class Ledger:
    """`pilot_cost` and `spent`, one pilot at a time: what the study loop keeps as it goes, so pricing a
    pilot and summing what was spent cost O(1) per pilot instead of a pass over the history each. The
    rule is written once, here; `pilot_cost` and `spent` replay a history through a Ledger."""

    __slots__ = ("cost_model", "_total", "_latest", "count", "all_full")

    def __init__(self, cost_model: CostModel | None = None):
        self.cost_model = cost_model or FRACTION
        self._total = 0.0  # summed unrounded, rounded once (`spent`)
        self._latest: dict[Mixture, float | None] = {}  # each mixture's latest fidelity (None: it failed)
        self.count = 0  # pilots recorded
        self.all_full = True  # whether every one was a full-fidelity run (Budget.remaining's common case)

    def price(self, mixture: Mixture, fidelity: float) -> tuple[float, bool]:
        """(cost in run-equivalents, continues) of piloting `mixture` at `fidelity` next (`pilot_cost`)."""
        cm, f = self.cost_model, float(fidelity)
        latest = self._latest.get(mixture) if cm.continues else None
        if latest is not None and latest < f - 1e-12:
            return cm.charge(latest, f), True
        return cm.charge(None, f), False

    def add(self, mixture: Mixture, fidelity: float, ok: bool, cost: float | None = None) -> None:
        """Record an attempted pilot (a failed one costs too, and its run cannot be continued). `cost`: its
        `price`, when the caller asked it just before (the same ledger state, so the same number)."""
        f = float(fidelity)
        self._total += self.price(mixture, f)[0] if cost is None else cost
        self._latest[mixture] = f if ok else None
        self.count += 1
        self.all_full = self.all_full and f == FULL_FIDELITY

    def add_observation(self, o, cost: float | None = None) -> None:
        self.add(o.mixture, o.fidelity, o.ok, cost)

    @property
    def spent(self) -> float:
        return round(self._total, 9)


def pilot_cost(history, mixture: Mixture, fidelity: float, cost_model: CostModel | None = None) -> tuple[float, bool]:
    """(cost in run-equivalents, continues) of piloting `mixture` at `fidelity` after `history`.

    The rule (the study's and the budget's, in one place: `Ledger`): a pilot at fidelity f is an **early stop
    of one run**, not a separate run. If the latest observation of `mixture` succeeded at a lower fidelity
    f0 < f, the new pilot *continues that run* (the same training seed, its checkpoint at f); otherwise
    it starts a new run (a new training seed). Its price is the suite's `cost_model` (CostModel.charge:
    by default f - f0 resp. f; under a measured `checkpoints` model the training share plus one
    evaluation; under `scales` a separate model that never continues). A single-fidelity history costs
    one per run under every model."""
    ledger = Ledger(cost_model)
    for o in history:
        ledger._latest[o.mixture] = float(o.fidelity) if o.ok else None
    return ledger.price(mixture, fidelity)


#: (cost model, the observations priced, their Ledger) of the latest `spent` call: a strategy asks what is left
#: at every step of one growing history, and each ask replayed the whole history (O(n²) a study: 0.6 CPU-s of a
#: 270-pilot study on regmix-1m-to-60m). One slot, extended only when the new history starts with the same
#: observation objects (checked one by one, so a different history never reads another's total).
_SPENT_SLOT: list = [None, [], None]
_SPENT_LOCK = threading.Lock()  # a strategy may run in a thread beside the study loop


def _ledger_of(history, cost_model: CostModel | None) -> Ledger:
    """The Ledger `history` leaves (shared through `_SPENT_SLOT`: read it, never add to it)."""
    history = list(history)
    with _SPENT_LOCK:
        model, seen, ledger = _SPENT_SLOT
        n = len(seen)
        if model is not cost_model or ledger is None or n > len(history) or not all(map(operator.is_, seen, history)):
            model, ledger, n = cost_model, Ledger(cost_model), 0
        for o in history[n:]:
            ledger.add_observation(o)
        _SPENT_SLOT[:] = [model, history, ledger]
        return ledger


def spent(history, cost_model: CostModel | None = None) -> float:
    """Run-equivalents `history` cost under `pilot_cost`'s rule (every attempted run counts, failed ones too)."""
    return _ledger_of(history, cost_model).spent


@dataclass(frozen=True)
class Budget:
    """Pilot runs a strategy may spend (and optionally GPU-hours, for runners that report them).

    `runs` is counted in **run-equivalents**: a full-fidelity pilot costs 1; a pilot at fidelity f of a
    multi-fidelity suite costs what the suite's `cost_model` charges (`pilot_cost`; the study sets it
    from the judge, so every strategy is charged the same measured price). On a single-fidelity suite
    every pilot costs 1, so `runs` is the number of pilots, as it always was. It may be fractional
    (e.g. 4.5) for fidelity suites; an integer budget stays an integer."""

    runs: int | float
    gpu_hours: float | None = None
    cost_model: CostModel | None = None

    def __post_init__(self):
        if (
            isinstance(self.runs, bool)
            or not isinstance(self.runs, (int, float))
            or not math.isfinite(self.runs)
            or self.runs < 0
        ):
            raise ValueError(f"budget runs must be a non-negative number of run-equivalents, got {self.runs!r}")
        if isinstance(self.runs, float) and self.runs.is_integer():
            object.__setattr__(self, "runs", int(self.runs))
        if self.gpu_hours is not None and not (self.gpu_hours >= 0):
            raise ValueError(f"budget gpu_hours must be >= 0, got {self.gpu_hours!r}")
        if self.cost_model is not None and not isinstance(self.cost_model, CostModel):
            object.__setattr__(self, "cost_model", CostModel.from_card(self.cost_model))

    def priced(self, cost_model: CostModel | None) -> Budget:
        """The same budget under `cost_model` (the judge's price list)."""
        return Budget(self.runs, self.gpu_hours, cost_model)

    def pilot_cost(self, history, mixture: Mixture, fidelity: float = FULL_FIDELITY) -> tuple[float, bool]:
        """`pilot_cost` under this budget's cost model."""
        return pilot_cost(history, mixture, fidelity, self.cost_model)

    def spent(self, history) -> float:
        return spent(history, self.cost_model)

    def remaining(self, history) -> int | float:
        """Run-equivalents left after `history` (every attempted run counts, failed ones too; partial runs
        count what the cost model charges: `pilot_cost`). An integer when it is a whole number."""
        return self.left(_ledger_of(history, self.cost_model))

    def left(self, ledger: Ledger) -> int | float:
        """`remaining(history)` for the history `ledger` has recorded (kept as it goes: O(1))."""
        return self._left(ledger.all_full, ledger.count, lambda: ledger.spent)

    def _left(self, all_full: bool, count: int, spent_) -> int | float:
        if all_full and (self.cost_model is None or self.cost_model.full_run_is_one):
            left = self.runs - count  # the common case, kept exact and cheap
        else:
            left = round(self.runs - spent_(), 9)
        left = max(0, left)
        return int(left) if float(left).is_integer() else left

    def affords(self, history, mixture: Mixture, fidelity: float = FULL_FIDELITY) -> bool:
        """Whether a pilot of `mixture` at `fidelity` fits in what is left."""
        return self.pilot_cost(history, mixture, fidelity)[0] <= self.remaining(history) + 1e-9


@dataclass(frozen=True)
class RunSpec:
    """One pilot run: which protocol, which mixture, which seed, at which fidelity (1.0 = full)."""

    suite: str
    protocol: str
    mixture: Mixture
    seed: int
    fidelity: float = 1.0
    # An online run (track `online`): which online strategy drives the domain weights during the run
    # ("name@code-fingerprint:params-hash", harness.studies.online.online_identity); `mixture` is then the
    # weights it starts from. Empty for every offline run, and then left out of the key and the dict,
    # so offline keys and records are exactly as before.
    online: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {
            "suite": self.suite,
            "protocol": self.protocol,
            "mixture": self.mixture.as_dict(),
            "seed": int(self.seed),
            "fidelity": float(self.fidelity),
        }
        if self.online:
            d["online"] = self.online
        return d

    @property
    def key(self) -> str:
        """Content hash: the same protocol, mixture (to 1e-9), seed and fidelity give the same key."""
        ident = {
            "suite": self.suite,
            "protocol": self.protocol,
            "mixture": [[n, w] for n, w in self.mixture.key()],
            "seed": int(self.seed),
            "fidelity": round(float(self.fidelity), 9),
        }
        if self.online:
            ident["online"] = self.online
        return hashlib.sha256(canonical_json(ident).encode()).hexdigest()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        return cls(
            d["suite"],
            d["protocol"],
            Mixture(d["mixture"]),
            int(d["seed"]),
            float(d.get("fidelity", 1.0)),
            str(d.get("online", "")),
        )


def fidelity_key(fidelity: float) -> str:
    """How a fidelity names its entry in `RunResult.checkpoints` (JSON keys are strings): '0.25', '1.0'."""
    return repr(round(float(fidelity), 9))


@dataclass(frozen=True)
class RunResult:
    """What a run produced.

    `scores` holds every per-benchmark and aggregate score the runner measured; `metric` names the
    suite's objective among them. `source` says where the numbers came from: `recorded` (a row of a
    replay table), `surrogate` (a model fitted to that table, for a mixture never recorded),
    `analytic` (a synthetic function), or `trained` (a real training run).

    `checkpoints` (optional, protocols with `eval_checkpoints`): the scores of the same run's policy
    evaluated part-way through training, by fidelity (the fraction of the run's steps, keyed by
    `fidelity_key`: '0.25', '0.5', and '1.0' for the final evaluation, equal to the evaluated part
    of `scores`). Empty for every other run, and then left out of `to_dict()`, so records without
    it read and write exactly as before.
    """

    key: str
    spec: dict[str, Any]
    status: str
    scores: dict[str, float] = field(default_factory=dict)
    metric: str | None = None
    source: str = ""
    cost: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    checkpoints: dict[str, dict[str, float]] = field(default_factory=dict)
    # an online run's record (harness/training/online.py `OnlineMixture.record`): the domains, the weights
    # each step's prompts were drawn with, the weights the strategy returned after it, and the per-domain
    # signals of every step. Empty for offline runs, and then left out of `to_dict()`.
    online: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def value(self) -> float | None:
        """The suite metric, or None for a failed run."""
        if not self.ok or self.metric is None:
            return None
        v = self.scores.get(self.metric)
        return None if v is None or not math.isfinite(v) else float(v)

    def scores_at(self, fidelity: float) -> dict[str, float] | None:
        """The scores of this run's checkpoint at `fidelity` (None when it has none there); a run
        without checkpoints answers 1.0 with its `scores`."""
        if not self.checkpoints:
            return dict(self.scores) if round(float(fidelity), 9) == 1.0 else None
        got = self.checkpoints.get(fidelity_key(fidelity))
        return None if got is None else dict(got)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for optional in ("checkpoints", "online"):
            if not d[optional]:
                del d[optional]  # records of runs without them stay byte for byte as before
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    @classmethod
    def failed(cls, spec: RunSpec, reason: str, provenance: dict[str, Any] | None = None) -> RunResult:
        return cls(key=spec.key, spec=spec.to_dict(), status=STATUS_FAILED, reason=reason, provenance=provenance or {})


@dataclass(frozen=True)
class Observation:
    """One entry of a strategy's history.

    `objective` is the suite metric oriented so that higher is better (negated for a suite that
    minimises), so strategies never need to know the direction; None when the run failed.
    """

    mixture: Mixture
    objective: float | None
    scores: dict[str, float]
    status: str
    fidelity: float = 1.0

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK and self.objective is not None
