"""Recorded suites from sweeps: a store of real runs -> a replay suite (runs.csv + card.yaml).

`export_suite(store, live_suite, name, out)` keeps the store's successful runs of one live suite's
protocol, one row per (mixture, training seed), and writes a replay suite through the importer
(so it gets the same validation, surrogate fit and bounds as any imported table). The card adds:

- `signal`: the suite's power to rank mixtures, for the metric and for In_Score/Out_Score (and their
  p_correct twins In_Score_p/Out_Score_p when the runs recorded them):
  `snr_mean` = sd across mixtures of the per-mixture mean / (mean within-mixture sd / sqrt(n)),
  `snr_single` = the same with n = 1 (what one pilot run can tell apart), with a 90% interval
  (F distribution, see `signal_to_noise`), and the verdict `can_rank` (snr_mean >= 3); for the
  objective also `by_seeds`, the same figures on the first 2, 4, 6, ... seeds of every mixture, and
  `seeds_for_target`, the seeds per mixture at which SNR 3 is expected (see `seeds_for_target`).
- `protocol`: the live card's protocol config, protocol hash and version; `provenance`: the git
  shas and package versions the runs recorded, the sweep's size and cost.
- `fidelities` (runs with checkpoints, e.g. minimodo-pool-live): `fidelities.csv` beside runs.csv, one
  row per (mixture, seed, fidelity), and every objective's SNR at every fidelity with the rank
  correlation of per-mixture means against full fidelity (`fidelity_table`, `fidelity_signal`).
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.store import ResultStore
from tasks.aggregate import P_CORRECT_PREFIX

SNR_TARGET = 3.0
SEED_COLUMN = "seed"
# objectives whose SNR every card reports when the runs have them: the greedy accuracies and their
# p_correct twins (harness.training.evaluate.answer_probability)
SIGNAL_METRICS = ("In_Score", "Out_Score", "In_Score_p", "Out_Score_p")


class SweepError(ValueError):
    pass


def _stored_runs(store: ResultStore) -> Iterator[tuple[Path, Any]]:
    """(file, RunResult) of every stored run. A record that is not a run (truncated or hand-edited
    JSON, missing fields) is a SweepError naming its file; nothing in the store is changed."""
    from harness.spec import RunResult

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
            raise SweepError(f"corrupt store record {path}: {e}; move it out of the store (the next sweep then "
                             f"re-runs that run) and try again") from None
        yield path, r


def sweep_table(store: ResultStore, suite) -> pd.DataFrame:
    """One row per successful run of `suite` (its id and protocol) in `store`: a column per dataset
    weight (`w_<dataset>`), `seed`, every score, `wall_s`. Sorted by mixture then seed, so the CSV diff is stable."""
    from harness.mixture import InvalidMixture

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
            raise SweepError(f"corrupt store record {path}: {type(e).__name__}: {e}; move it out of the store (the "
                             f"next sweep then re-runs that run) and try again") from None
        rows.append(row)
    if not rows:
        raise SweepError(f"the store has no successful runs of {suite.id} (protocol {suite.protocol}); "
                         f"run `modomodo sweep --suite {suite.name} --store ...` first")
    df = pd.DataFrame(rows)
    wcols = [weight_column(d) for d in suite.space.datasets]
    return df.sort_values(wcols + [SEED_COLUMN], ascending=[False] * suite.space.dim + [True],
                          kind="mergesort").reset_index(drop=True)


FIDELITY_COLUMN = "fidelity"
FIDELITY_TABLE = "fidelities.csv"


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
    return df.sort_values(wcols + [SEED_COLUMN, FIDELITY_COLUMN], ascending=[False] * suite.space.dim + [True, True],
                          kind="mergesort").reset_index(drop=True)


def fidelity_signal(df: pd.DataFrame, weight_columns: list[str], metrics) -> dict[str, Any]:
    """For a `fidelity_table`: the `signal_to_noise` figures of every metric at every fidelity, and the
    Spearman rank correlation of the per-mixture means at each fidelity with those at full fidelity
    (does a quarter-length run order the mixtures as the full one does?). Only mixtures recorded at
    both fidelities count."""
    from scipy.stats import spearmanr

    levels = sorted(float(f) for f in df[FIDELITY_COLUMN].unique())
    full = max(levels)
    signal: dict[str, dict[str, Any]] = {}
    corr: dict[str, dict[str, Any]] = {}
    for f in levels:
        sub = df[df[FIDELITY_COLUMN] == f]
        key = repr(f)
        for m in metrics:
            if m not in sub.columns or not sub[m].notna().all():
                continue
            try:
                signal.setdefault(key, {})[m] = signal_to_noise(sub, weight_columns, m)
            except SweepError:
                pass
            if f == full:
                continue
            means = df[df[FIDELITY_COLUMN].isin([f, full])].groupby(weight_columns + [FIDELITY_COLUMN])[m].mean()
            both = means.unstack(FIDELITY_COLUMN).dropna()
            if len(both) >= 3:
                rho = spearmanr(both[f], both[full]).statistic
                corr.setdefault(key, {})[m] = {"spearman_with_full": round(float(rho), 4), "mixtures": int(len(both))}
    return {"levels": levels, "signal": signal, "rank_correlation": corr}


def weight_column(dataset: str) -> str:
    """Weights get a prefix: a dataset's in-domain score column carries the dataset's own name."""
    return f"w_{dataset}"


def _groups(df: pd.DataFrame, weight_columns: list[str], metric: str, min_seeds: int) -> list[np.ndarray]:
    out = []
    for _, g in df.groupby(weight_columns, sort=True):
        v = g[metric].to_numpy(float)
        if len(v) >= min_seeds:
            out.append(v)
    return out


def _snr(groups: list[np.ndarray]) -> tuple[float, float, float]:
    """(between-mixture sd of means, mean within-mixture sd, harmonic-mean seeds per mixture)."""
    means = np.array([g.mean() for g in groups])
    within = float(np.mean([g.std(ddof=1) for g in groups]))
    n = len(groups) / float(np.sum([1.0 / len(g) for g in groups]))
    return float(means.std(ddof=1)), within, n


def signal_to_noise(df: pd.DataFrame, weight_columns: list[str], metric: str, min_seeds: int = 2,
                    level: float = 0.90) -> dict[str, Any]:
    """The SNR figures of one score column (see the module docstring); rows are grouped into
    mixtures by `weight_columns`; mixtures with fewer than `min_seeds` runs are left out.

    The interval: snr_mean² is (nearly) the one-way ANOVA F statistic MSB/MSW, and F divided by
    its expectation 1 + n·σ²_between/σ²_within follows F(k-1, N-k) under normal seed noise; so
    sqrt(F / F-quantiles) brackets sqrt of that expectation. (A bootstrap over 2 to 8 seeds is badly
    biased: resampled seeds repeat and the within-mixture sd collapses.)"""
    from scipy.stats import f as f_dist

    groups = _groups(df, weight_columns, metric, min_seeds)
    if len(groups) < 2:
        raise SweepError(f"SNR of {metric!r} needs at least 2 mixtures with >= {min_seeds} seeds; found {len(groups)}")
    between, within, n = _snr(groups)
    snr_single = between / within if within > 0 else float("inf")
    snr_mean = snr_single * float(np.sqrt(n))
    k, total = len(groups), int(sum(len(g) for g in groups))
    tail = (1.0 - level) / 2
    q_hi, q_lo = f_dist.ppf(1 - tail, k - 1, total - k), f_dist.ppf(tail, k - 1, total - k)
    ci_mean = [float(np.sqrt(snr_mean ** 2 / q_hi)), float(np.sqrt(snr_mean ** 2 / q_lo))]
    return {
        "metric": metric, "mixtures": k, "runs": total, "seeds_per_mixture": round(n, 2),
        "between_mixture_sd": round(between, 6), "within_mixture_sd": round(within, 6),
        "snr_single": round(snr_single, 3),
        "snr_single_ci": [round(c / float(np.sqrt(n)), 3) for c in ci_mean],
        "snr_mean": round(snr_mean, 3), "snr_mean_ci": [round(c, 3) for c in ci_mean], "ci_level": level,
        "target": SNR_TARGET, "can_rank": bool(snr_mean >= SNR_TARGET),
    }


def snr_by_seeds(df: pd.DataFrame, weight_columns: list[str], metric: str) -> list[dict[str, Any]]:
    """How the SNR of the per-mixture mean grows with the seeds recorded: the figures of
    `signal_to_noise` on the first k training seeds (by seed number) of every mixture, for k = 2, 4, 6, ...
    up to the depth every mixture has reached. The √k law (snr_mean ≈ snr_single·√k) says how many seeds a
    sweep needs; this curve shows whether the recorded runs follow it (one unlucky seed shows as a dip)."""
    ranked = df.assign(_depth=df.groupby(weight_columns)[SEED_COLUMN].rank(method="first"))
    deepest = int(ranked.groupby(weight_columns).size().min())  # a depth every mixture has reached
    out = []
    for k in sorted({*range(2, deepest + 1, 2), deepest}):
        sub = ranked[ranked["_depth"] <= k]
        try:
            s = signal_to_noise(sub, weight_columns, metric, min_seeds=k)
        except SweepError:
            continue
        out.append({"seeds": k, "mixtures": s["mixtures"], "snr_mean": s["snr_mean"],
                    "snr_mean_ci": s["snr_mean_ci"], "snr_single": s["snr_single"]})
    return out


def seeds_for_target(snr_mean: float, seeds: float, target: float = SNR_TARGET) -> int | None:
    """Seeds per mixture at which the SNR of the mean is expected to reach `target`, from the measured
    figure: snr_mean² estimates the ANOVA ratio 1 + n·σ²_b/σ²_w, so σ²_b/σ²_w ≈ (snr² - 1)/n and
    the target needs n* = (target² - 1)/(σ²_b/σ²_w). None when the runs show no between-mixture signal."""
    ratio = (snr_mean ** 2 - 1.0) / seeds
    return None if ratio <= 0 else int(np.ceil(round((target ** 2 - 1.0) / ratio, 6)))  # round: no 32.0000001 -> 33


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
    return {"runs": int(len(df)), "git_sha_of_runs": dict(shas.most_common()), "versions": vers,
            "base_weights_sha256": dict(weights.most_common()), "cpu_capability": dict(caps.most_common()),
            "cpu_seconds_total": round(float(df["wall_s"].sum()), 1),
            "cpu_seconds_per_run_median": round(float(df["wall_s"].median()), 1)}


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
    from tasks.rewards import DEFAULT_REWARD_RULE

    return DEFAULT_REWARD_RULE if suite.card.get("runner") == "gpu" else None


REPRODUCIBILITY = (
    "A (mixture, seed) re-run reproduces its recorded scores bit for bit on the same base weights "
    "(sweep_provenance.base_weights_sha256), package versions and CPU capability (sweep_provenance.cpu_capability, "
    "torch.backends.cpu.get_cpu_capability()); on another capability it reproduces only in distribution (within the "
    "mixture's seed spread). Check with `modomodo verify --suite NAME --runs N`.")


def export_suite(store: ResultStore, suite, name: str, out: str | Path, overwrite: bool = False,
                 metric: str | None = None, signal_notes: str | None = None, fidelities: bool | None = None) -> Path:
    """Write the replay suite `name` into `out` from `store`'s runs of the live `suite`, optimising
    `metric` (default: the live suite's; e.g. In_Score for the in-domain objective of the same runs).
    `signal_notes`: how the signal was reached (or why not), kept on the card beside the figures.

    `fidelities` (default: when the runs have checkpoints): also write `fidelities.csv`, one row per
    (mixture, seed, fidelity) with a `fidelity` column (`fidelity_table`), and the card's `fidelities`
    block (the table, its levels, its sha256 so that the card's bytes, hence the suite's protocol hash,
    cover it, and `fidelity_signal`: every objective's SNR at every fidelity and the rank correlation
    with full fidelity). runs.csv stays the full-fidelity table (one row per mixture and seed); the
    replay judge reads fidelities.csv for the pool track's partial runs (ReplaySuite._index_fidelities)."""
    from harness.suites.importer import import_table

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
    signal = {m: signal_to_noise(df, wcols, m) for m in dict.fromkeys([metric, suite.metric, *SIGNAL_METRICS])
              if m in scores and df[m].notna().all()}
    verdict = signal[metric]
    verdict["by_seeds"] = snr_by_seeds(df, wcols, metric)
    verdict["seeds_for_target"] = seeds_for_target(verdict["snr_mean"], verdict["seeds_per_mixture"])
    per_mix = df.groupby(wcols).size()
    base = _base_model(suite)
    description = (
        f"Recorded real runs of {suite.name}{f' (base model {base})' if base else ''}, objective {metric}: "
        f"{per_mix.size} mixtures × {_seed_range(per_mix)} training seeds, one row per seed. "
        f"SNR of the per-mixture mean {metric}: {verdict['snr_mean']:.2f} "
        f"({'can' if verdict['can_rank'] else 'CANNOT'} rank mixtures at the target {SNR_TARGET:g}); "
        f"one pilot run: {verdict['snr_single']:.2f}.")
    card_extra = {
        "description": description,
        "signal": signal,
        **({"signal_notes": signal_notes.strip()} if signal_notes and signal_notes.strip() else {}),
        "protocol": {"recorded_from": suite.name, "base_model": base, "suite_id": suite.id,
                     "protocol_hash": suite.protocol,
                     "protocol_version": suite.card.get("protocol_version"),
                     "protocol_config": suite.card.get("protocol_config"), "runner": suite.card.get("runner"),
                     "reward_rule": _reward_rule(suite)},
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
        import hashlib

        long = fidelity_table(store, suite)
        long = long[wcols + [SEED_COLUMN, FIDELITY_COLUMN] + [c for c in scores if c in long.columns]]
        fid_csv = long.to_csv(index=False, float_format="%.15g")
        block = fidelity_signal(long, wcols, [m for m in dict.fromkeys([metric, suite.metric, *SIGNAL_METRICS])
                                              if m in scores])
        card_extra["fidelities"] = {
            "table": FIDELITY_TABLE, "column": FIDELITY_COLUMN, "levels": block["levels"],
            "rows": int(len(long)), "sha256": hashlib.sha256(fid_csv.encode()).hexdigest(),
            "meaning": "fidelity f: the run's policy evaluated after ceil(f x steps) of its steps (a checkpoint of "
                       "the full run, RunResult.checkpoints); 1.0 is the final evaluation, the rows of runs.csv",
            "signal": block["signal"], "rank_correlation": block["rank_correlation"]}
    table = df.drop(columns=["wall_s"])
    folder = import_table(table, name, dict(zip(suite.space.datasets, wcols)), metric, suite.goal, out,
                          seed_col=SEED_COLUMN, scores=scores, card_extra=card_extra, overwrite=overwrite,
                          source=f"sweep store {Path(store.root).name}/ ({len(df)} runs of {suite.id})",
                          extra_files=None if fid_csv is None else {FIDELITY_TABLE: fid_csv})
    return folder


def _seed_range(per_mix: pd.Series) -> str:
    lo, hi = int(per_mix.min()), int(per_mix.max())
    return str(lo) if lo == hi else f"{lo}–{hi}"
