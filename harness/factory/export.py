"""Export of sweeps: a store of real runs -> a recorded replay suite (runs.csv + card.yaml).

`export_suite(store, live_suite, name, out)` keeps the store's successful runs of one live suite's
protocol, one row per (mixture, training seed), and writes a replay suite through the importer
(so it gets the same validation, surrogate fit and bounds as any imported table). The card adds:

- `signal`: the suite's power to rank mixtures, for the metric and for In_Score/Out_Score (and their
  p_correct twins In_Score_p/Out_Score_p when the runs recorded them): the one-way ANOVA estimate of
  harness/suites/signal.py (`snr_mean` = sqrt(max(F - 1, 0)), its 90% interval from the non-central F, the
  F-test p, `snr_single` for one pilot run, and `can_rank`: snr_mean >= 3 and p < 0.01); for the
  objective also `by_seeds` (the same on the first 2, 4, 6, ... seeds of every mixture) and
  `seeds_for_target`, the seeds per mixture at which SNR 3 is expected.
- `protocol`: the live card's protocol config, protocol hash and version; `provenance`: the git
  shas and package versions the runs recorded, the sweep's size and cost.
- `fidelities` (runs with checkpoints, e.g. minimodo-pool-live): `fidelities.csv` beside runs.csv, one
  row per (mixture, seed, fidelity), and every objective's SNR at every fidelity with the rank
  correlation of per-mixture means against full fidelity (`fidelity_table`, `fidelity_signal`).
"""

from __future__ import annotations

import collections
import copy
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.factory.importer import import_table
from harness.mixture import InvalidMixture
from harness.runners.gpu_identity import GPU_MARK
from harness.spec import RunResult
from harness.store import ResultStore
from harness.suites.signal import (
    SIGNAL_METRICS,
    SignalError,
    fidelity_signal,
    full_block,
    signal_estimate,
    signal_sentence,
)
from harness.suites.table import FIDELITY_COLUMN, FIDELITY_TABLE
from tasks.aggregate import P_CORRECT_PREFIX

SEED_COLUMN = "seed"


class SweepError(ValueError):
    pass


def _stored_runs(store: ResultStore) -> Iterator[tuple[Path, Any]]:
    """(file, RunResult) of every stored run. A record that is not a run (truncated or hand-edited
    JSON, missing fields) is a SweepError naming its file; nothing in the store is changed."""
    for path in sorted(store.runs_dir.glob("*/*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("spec"), dict):
                raise ValueError("not a run record (no spec)")
            for k in ("scores", "provenance", "cost"):
                if not isinstance(data.get(k) or {}, dict):
                    raise ValueError(f"{k} is not a mapping")
            r = RunResult.from_dict(data)
        except FileNotFoundError:
            continue
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
            raise SweepError(
                f"corrupt store record {path}: {e}; move it out of the store (the next sweep then "
                f"re-runs that run) and try again"
            ) from None
        yield path, r


def sweep_protocol(store: ResultStore, suite):
    """The suite under the one protocol its runs in `store` used. A gpu sweep keys its runs by the protocol
    file too ("<card hash>+gpu:<protocol hash>", harness/runners/gpu_identity.py): a store holding runs of
    this suite under more than one protocol is refused (SweepError naming them), since a replay table must
    come from one protocol; a store of one gpu protocol gives the suite bound to it; else the suite as is."""
    base = suite.protocol.split(GPU_MARK)[0]
    seen = collections.Counter(
        r.spec.get("protocol")
        for _, r in _stored_runs(store)
        if r.spec.get("suite") == suite.id and str(r.spec.get("protocol", "")).split(GPU_MARK)[0] == base
    )
    if len(seen) > 1:
        raise SweepError(
            f"the store mixes runs of {suite.id} under {len(seen)} protocols ("
            + ", ".join(f"{p}: {n} runs" for p, n in seen.most_common())
            + "); a recorded suite comes from one protocol: sweep each protocol file into its own store"
        )
    if len(seen) == 1:
        (only,) = seen
        if only != suite.protocol:
            suite = copy.copy(suite)
            suite.protocol = only
    return suite


def sweep_table(store: ResultStore, suite) -> pd.DataFrame:
    """One row per successful run of `suite` (its id and protocol) in `store`: a column per dataset
    weight (`w_<dataset>`), `seed`, every score, `wall_s`. Sorted by mixture then seed, so the CSV diff is stable."""
    rows = []
    for path, r in _stored_runs(store):
        if r.spec.get("suite") != suite.id or r.spec.get("protocol") != suite.protocol or not r.ok:
            continue
        try:
            if float(r.spec.get("fidelity", 1.0)) != 1.0:
                continue
            m = suite.space.validate(suite.space.mixture(r.spec["mixture"]))
            row = {weight_column(d): m[d] for d in suite.space.datasets}
            row[SEED_COLUMN] = int(r.spec["seed"])
            row.update({k: float(v) for k, v in r.scores.items()})
            row["wall_s"] = float(r.cost.get("seconds", np.nan)) if r.cost else np.nan
        except (InvalidMixture, ValueError, TypeError, KeyError, AttributeError) as e:
            raise SweepError(
                f"corrupt store record {path}: {type(e).__name__}: {e}; move it out of the store (the "
                f"next sweep then re-runs that run) and try again"
            ) from None
        rows.append(row)
    if not rows:
        raise SweepError(
            f"the store has no successful runs of {suite.id} (protocol {suite.protocol}); "
            f"run `modomodo sweep --suite {suite.name} --store ...` first"
        )
    df = pd.DataFrame(rows)
    wcols = [weight_column(d) for d in suite.space.datasets]
    return df.sort_values(
        wcols + [SEED_COLUMN], ascending=[False] * suite.space.dim + [True], kind="mergesort"
    ).reset_index(drop=True)


def fidelity_table(store: ResultStore, suite) -> pd.DataFrame:
    """One row per (mixture, training seed, fidelity) of `suite`'s successful full runs in `store`: the
    `sweep_table` columns plus `fidelity`, from each run's `checkpoints` (protocols with
    `eval_checkpoints`; a run without them contributes its final scores as fidelity 1.0). Sorted by
    mixture, seed, fidelity."""
    rows = []
    for r in store.results():
        if r.spec.get("suite") != suite.id or r.spec.get("protocol") != suite.protocol or not r.ok:
            continue
        if float(r.spec.get("fidelity", 1.0)) != 1.0:
            continue
        m = suite.space.validate(suite.space.mixture(r.spec["mixture"]))
        checkpoints = r.checkpoints or {"1.0": {k: v for k, v in r.scores.items() if not k.startswith("train/")}}
        for f, scores in checkpoints.items():
            row = {weight_column(d): m[d] for d in suite.space.datasets}
            row[SEED_COLUMN] = int(r.spec["seed"])
            row[FIDELITY_COLUMN] = float(f)
            row.update({k: float(v) for k, v in scores.items()})
            rows.append(row)
    if not rows:
        raise SweepError(f"the store has no successful runs of {suite.id} (protocol {suite.protocol})")
    df = pd.DataFrame(rows)
    wcols = [weight_column(d) for d in suite.space.datasets]
    return df.sort_values(
        wcols + [SEED_COLUMN, FIDELITY_COLUMN], ascending=[False] * suite.space.dim + [True, True], kind="mergesort"
    ).reset_index(drop=True)


def measure_cost_model(store: ResultStore, suite) -> dict[str, Any]:
    """The card's `cost_model` of a multi-fidelity suite whose fidelities are checkpoints of one run, measured
    from its runs' `cost` fields (harness/runners/cpu.py): `train_seconds`, the mean training time of a full
    run (`t_train`, which leaves the checkpoint evaluations out), and `eval_seconds`, the mean time of one
    evaluation (the final `t_eval` and the mid-run `t_eval_checkpoints`, over every evaluation made).
    harness.spec.CostModel charges ((f - f0) * train + eval) / (train + eval) run-equivalents for taking a
    run from f0 to f."""
    train, evals, n_evals, runs = 0.0, 0.0, 0, 0
    for r in store.results():
        if r.spec.get("suite") != suite.id or r.spec.get("protocol") != suite.protocol or not r.ok:
            continue
        if float(r.spec.get("fidelity", 1.0)) != 1.0:
            continue
        c = r.cost or {}
        if "t_train" not in c or "t_eval" not in c:
            raise SweepError(
                f"run {r.key[:12]} of {suite.id} has no t_train/t_eval cost figures; a cost model "
                f"cannot be measured from this store"
            )
        mid = [f for f in (r.checkpoints or {}) if float(f) < 1.0]
        if mid and "t_eval_checkpoints" not in c:
            raise SweepError(f"run {r.key[:12]} of {suite.id} has checkpoints but no t_eval_checkpoints figure")
        train += float(c["t_train"])
        evals += float(c["t_eval"]) + float(c.get("t_eval_checkpoints", 0.0))
        n_evals += 1 + len(mid)
        runs += 1
    if not runs:
        raise SweepError(f"the store has no successful runs of {suite.id} to measure a cost model from")
    t, e = train / runs, evals / n_evals
    return {
        "kind": "checkpoints",
        "train_seconds": round(t, 3),
        "eval_seconds": round(e, 3),
        "source": (
            f"measured from the {runs} stored runs of {suite.id} ({Path(store.root).name}/): train_seconds = "
            f"mean cost.t_train of a full run (checkpoint evaluations excluded), eval_seconds = mean time "
            f"of one evaluation over all {n_evals} (cost.t_eval + cost.t_eval_checkpoints); a pilot taking "
            f"a run from f0 to f costs ((f - f0) * train_seconds + eval_seconds) / (train_seconds + "
            f"eval_seconds) run-equivalents, e.g. a new run to 0.25 costs "
            f"{(0.25 * t + e) / (t + e):.3f}"
        ),
    }


def weight_column(dataset: str) -> str:
    """Weights get a prefix: a dataset's in-domain score column carries the dataset's own name."""
    return f"w_{dataset}"


def signal_to_noise(
    df: pd.DataFrame, weight_columns: list[str], metric: str, min_seeds: int = 2, level: float = 0.90
) -> dict[str, Any]:
    """harness.suites.signal.signal_estimate (the one estimator every card, the judge and the CLI use) of one
    score column, its refusal (too few mixtures or seeds) said as a SweepError for `suite from-sweep`."""
    try:
        return signal_estimate(df, weight_columns, metric, min_seeds, level)
    except SignalError as e:
        raise SweepError(f"SNR of {e}") from None


def _provenance(store: ResultStore, suite, df: pd.DataFrame) -> dict[str, Any]:
    shas, vers = collections.Counter(), {}
    weights, caps = collections.Counter(), collections.Counter()
    for _, r in _stored_runs(store):
        if r.spec.get("suite") == suite.id and r.spec.get("protocol") == suite.protocol and r.ok:
            shas[r.provenance.get("git_sha", "unknown")] += 1
            vers = r.provenance.get("versions", vers) or vers
            # what decides bit-for-bit reproduction (harness.provenance.machine_provenance)
            weights[str(r.provenance.get("base_weights_sha256", "not recorded"))] += 1
            caps[str(r.provenance.get("cpu_capability", "not recorded"))] += 1
    return {
        "runs": int(len(df)),
        "git_sha_of_runs": dict(shas.most_common()),
        "versions": vers,
        "base_weights_sha256": dict(weights.most_common()),
        "cpu_capability": dict(caps.most_common()),
        "cpu_seconds_total": round(float(df["wall_s"].sum()), 1),
        "cpu_seconds_per_run_median": round(float(df["wall_s"].median()), 1),
    }


def _base_model(suite) -> str:
    """The base model's name, as the leaderboard labels suites for cross-base rank correlations."""
    raw = suite.card.get("protocol_config")
    if not raw:
        return str(suite.card.get("base_model") or "")
    from harness.training.config import ProtocolConfig

    cfg = ProtocolConfig.from_dict(raw)
    return cfg.base.name if cfg.model == "tiny" else cfg.model


def _reward_rule(suite) -> str | None:
    """The reward rule the live suite's runs used (tasks.rewards.REWARD_RULES)."""
    raw = suite.card.get("protocol_config")
    if raw:
        from harness.training.config import ProtocolConfig

        return ProtocolConfig.from_dict(raw).reward_rule
    if suite.card.get("runner") == "gpu":  # the GPU protocol file names its rule (training.reward_rule)
        from harness.protocols.gpu import protocol_for_suite

        return protocol_for_suite(suite).training.reward_rule
    return None


REPRODUCIBILITY = (
    "A (mixture, seed) re-run reproduces its recorded scores bit for bit on the same base weights "
    "(sweep_provenance.base_weights_sha256), package versions and CPU capability (sweep_provenance.cpu_capability, "
    "torch.backends.cpu.get_cpu_capability()); on another capability it reproduces only in distribution (within the "
    "mixture's seed spread). Check with `modomodo verify --suite NAME --runs N`."
)


def export_suite(
    store: ResultStore,
    suite,
    name: str,
    out: str | Path,
    overwrite: bool = False,
    metric: str | None = None,
    signal_notes: str | None = None,
    fidelities: bool | None = None,
) -> Path:
    """Write the replay suite `name` into `out` from `store`'s runs of the live `suite`, optimising
    `metric` (default: the live suite's; e.g. In_Score for the in-domain objective of the same runs).
    `signal_notes`: how the signal was reached (or why not), kept on the card beside the figures.

    `fidelities` (default: when the runs have checkpoints): also write `fidelities.csv`, one row per
    (mixture, seed, fidelity) with a `fidelity` column (`fidelity_table`), and the card's `fidelities`
    block (the table, its levels, its sha256 so that the card's content, hence the suite's protocol hash,
    covers it, and `fidelity_signal`: every objective's SNR at every fidelity and the rank correlation
    with full fidelity). runs.csv stays the full-fidelity table (one row per mixture and seed); the
    replay judge reads fidelities.csv for the pool track's partial runs (ReplaySuite._index_fidelities)."""
    metric = metric or suite.metric
    df = sweep_table(store, suite)
    wcols = [weight_column(d) for d in suite.space.datasets]
    recorded = [c for c in df.columns if c not in (*wcols, SEED_COLUMN, "wall_s")]
    # the card's scores, then the p_correct twins when the runs have them (not format/ and train/ logs)
    declared = [c for c in suite.card.get("score_columns", []) if c in recorded]
    extra = [c for c in recorded if c.startswith(P_CORRECT_PREFIX) or c in SIGNAL_METRICS]
    scores = list(dict.fromkeys(declared + extra)) if declared else recorded
    if metric not in scores:
        raise SweepError(f"the runs have no {metric!r} score; valid: {', '.join(scores)}")
    signal = {
        m: signal_to_noise(df, wcols, m)
        for m in dict.fromkeys([metric, suite.metric, *SIGNAL_METRICS])
        if m in scores and df[m].notna().all()
    }
    verdict = signal[metric] = full_block(df, wcols, metric, SEED_COLUMN)  # + by_seeds, seeds_for_target, rule
    per_mix = df.groupby(wcols).size()
    base = _base_model(suite)
    description = (
        f"Recorded real runs of {suite.name}{f' (base model {base})' if base else ''}, objective {metric}: "
        f"{per_mix.size} mixtures × {_seed_range(per_mix)} training seeds, one row per seed. "
        f"{signal_sentence(verdict)}"
    )
    card_extra = {
        "description": description,
        "signal": signal,
        **({"signal_notes": signal_notes.strip()} if signal_notes and signal_notes.strip() else {}),
        "protocol": {
            "recorded_from": suite.name,
            "base_model": base,
            "suite_id": suite.id,
            "protocol_hash": suite.protocol,
            "protocol_version": suite.card.get("protocol_version"),
            "protocol_config": suite.card.get("protocol_config"),
            "runner": suite.card.get("runner"),
            "reward_rule": _reward_rule(suite),
        },
        "reproducibility": REPRODUCIBILITY,
        "seeds": "in the pool track each pilot run a strategy spends returns one recorded training seed of the "
        "candidate (a repeated proposal draws a seed not yet drawn in the study; "
        "harness.suites.replay.ReplaySuite.pool_seed); a recommendation is judged by its per-mixture mean "
        "over all recorded seeds",
        "sweep_provenance": _provenance(store, suite, df),
        "citation": suite.card.get("citation"),
    }
    if suite.card.get("preregistration"):  # issue 27: the live card's pre-registration, carried on unchanged
        card_extra["preregistration"] = suite.card["preregistration"]
    fid_csv = None
    if fidelities is None:
        fidelities = any(r.checkpoints for r in store.results() if r.spec.get("protocol") == suite.protocol)
    if fidelities:
        long = fidelity_table(store, suite)
        long = long[wcols + [SEED_COLUMN, FIDELITY_COLUMN] + [c for c in scores if c in long.columns]]
        fid_csv = long.to_csv(index=False, float_format="%.15g")
        block = fidelity_signal(
            long, wcols, [m for m in dict.fromkeys([metric, suite.metric, *SIGNAL_METRICS]) if m in scores]
        )
        # a pilot at a checkpoint trains part of a run and evaluates once: the measured price (harness.spec.CostModel)
        try:
            card_extra["cost_model"] = measure_cost_model(store, suite)
        except SweepError as e:  # runs without timings: say so on the card rather than invent a price
            card_extra["cost_model"] = {
                "kind": "fraction",
                "source": f"not measured ({e}): the fraction rule (a pilot "
                f"at f costs f) charges nothing for evaluating a checkpoint",
            }
        card_extra["fidelities"] = {
            "table": FIDELITY_TABLE,
            "column": FIDELITY_COLUMN,
            "levels": block["levels"],
            "rows": int(len(long)),
            "sha256": hashlib.sha256(fid_csv.encode()).hexdigest(),
            "meaning": "fidelity f: the run's policy evaluated after ceil(f x steps) of its steps (a checkpoint of "
            "the full run, RunResult.checkpoints); 1.0 is the final evaluation, the rows of runs.csv",
            "signal": block["signal"],
            "rank_correlation": block["rank_correlation"],
        }
    table = df.drop(columns=["wall_s"])
    folder = import_table(
        table,
        name,
        dict(zip(suite.space.datasets, wcols)),
        metric,
        suite.goal,
        out,
        seed_col=SEED_COLUMN,
        scores=scores,
        card_extra=card_extra,
        overwrite=overwrite,
        source=f"sweep store {Path(store.root).name}/ ({len(df)} runs of {suite.id})",
        extra_files=None if fid_csv is None else {FIDELITY_TABLE: fid_csv},
    )
    return folder


def _seed_range(per_mix: pd.Series) -> str:
    lo, hi = int(per_mix.min()), int(per_mix.max())
    return str(lo) if lo == hi else f"{lo}–{hi}"
