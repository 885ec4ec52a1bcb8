"""`modomodo suite import`: any results table becomes a replay suite.

Input: one row per run, mixture-weight columns plus score columns (and optionally a seed column;
rows repeating a mixture with different seeds give the suite its noise model). Output: a suite
folder with `runs.csv` (the validated rows) and `card.yaml` (datasets, metric, direction, the
surrogate's leave-one-out fit error, normalisation bounds, provenance).

Every problem names the column, the row and the value, and nothing is written unless the whole
table is valid (the folder is built aside and moved into place).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from harness.mixture import SUM_TOLERANCE, did_you_mean
from harness.provenance import git_sha, versions


class TableError(ValueError):
    """A table that cannot become a suite (named for what is wrong with it)."""


def _dataset_name(column: str) -> str:
    for prefix in ("w_", "weight_", "w:"):
        if column.startswith(prefix) and len(column) > len(prefix):
            return column[len(prefix):]
    return column


def parse_weight_spec(spec: str) -> dict[str, str]:
    """"w_A,w_B" or "A=w_A,B=w_B" -> {dataset: column} (a leading w_ is dropped from default names)."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, col = part.partition("=")
        name, col = (name.strip(), col.strip()) if sep else (_dataset_name(part), part)
        if name in out:
            raise TableError(f"dataset {name!r} named twice in --weights {spec!r}")
        out[name] = col
    if len(out) < 2:
        raise TableError(f"--weights needs at least two columns, got {spec!r}")
    return out


def line_of(i: int) -> str:
    """Where data row i (0-based) sits in the CSV file: the header is line 1."""
    return f"line {i + 2} (data row {i + 1})"


def validate_table(df: pd.DataFrame, weights: dict[str, str], metric: str, scores: list[str],
                   seed_col: str | None, normalize: bool) -> pd.DataFrame:
    cols = list(df.columns)
    for c in list(weights.values()) + [metric] + scores + ([seed_col] if seed_col else []):
        if c not in cols:
            raise TableError(f"column {c!r} not in the table; {did_you_mean(c, cols)}")
    if len(df) == 0:
        raise TableError("the table has no rows")
    for c in list(weights.values()) + scores:
        values = pd.to_numeric(df[c], errors="coerce")
        bad = values.isna() & df[c].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise TableError(f"column {c!r}, {line_of(i)}: value {df[c].iloc[i]!r} is not a number")
        df[c] = values
    W = df[list(weights.values())]
    if W.isna().any().any():
        i, j = np.argwhere(W.isna().to_numpy())[0]
        raise TableError(f"column {W.columns[j]!r}, {line_of(i)}: weight is missing; every run needs all weights "
                           "(drop rows without weights before importing)")
    Wv = W.to_numpy(float)
    if not np.isfinite(Wv).all():
        i, j = np.argwhere(~np.isfinite(Wv))[0]
        raise TableError(f"column {W.columns[j]!r}, {line_of(i)}: weight {Wv[i, j]} is not finite")
    if (Wv < 0).any():
        i, j = np.argwhere(Wv < 0)[0]
        raise TableError(f"column {W.columns[j]!r}, {line_of(i)}: weight {Wv[i, j]} is negative")
    sums = Wv.sum(axis=1)
    if (sums <= 0).any():
        i = int(np.flatnonzero(sums <= 0)[0])
        raise TableError(f"{line_of(i)}: all weights (columns {', '.join(W.columns)}) are zero")
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if off.any() and not normalize:
        i = int(np.flatnonzero(off)[0])
        given = ", ".join(f"{c}={Wv[i, j]:.8g}" for j, c in enumerate(W.columns))
        raise TableError(f"{line_of(i)}: weights {given} sum to {sums[i]:.8g}, not 1 (within {SUM_TOLERANCE:g}); "
                         "pass --normalize to rescale every row (e.g. for percentages)")
    if normalize:
        df[list(weights.values())] = Wv / sums[:, None]
    if df[metric].isna().any():
        i = int(np.flatnonzero(df[metric].isna().to_numpy())[0])
        raise TableError(f"column {metric!r}, {line_of(i)}: the metric is missing")
    if seed_col:
        if df[seed_col].isna().any():
            i = int(np.flatnonzero(df[seed_col].isna().to_numpy())[0])
            raise TableError(f"seed column {seed_col!r}, {line_of(i)}: the seed is missing")
        dup = df.duplicated(subset=list(weights.values()) + [seed_col])
        if dup.any():
            i = int(np.flatnonzero(dup.to_numpy())[0])
            raise TableError(f"{line_of(i)} repeats a mixture and seed already in the table (seed {df[seed_col].iloc[i]!r})")
    return df


def import_table(table: str | Path | pd.DataFrame, name: str, weights: str | dict[str, str], metric: str, goal: str,
                 out: str | Path, seed_col: str | None = None, scores: list[str] | None = None, normalize: bool = False,
                 card_extra: dict[str, Any] | None = None, overwrite: bool = False,
                 source: str | None = None, extra_files: dict[str, str] | None = None) -> Path:
    """Validate the table, fit the surrogate, write `out/` (runs.csv + card.yaml). Returns the folder.
    `source` describes where a DataFrame came from (the card's `provenance.imported_from`).
    `extra_files`: {file name: text} written beside runs.csv before the suite is first loaded (e.g.
    export_suite's fidelities.csv, which the card's `fidelities` block names and the loader reads)."""
    from harness.suites.judge_card import judge_block, normalization_block
    from harness.suites.loading import load_folder
    from harness.suites.surrogate import fit_report

    if goal not in ("max", "min"):
        raise TableError(f"--goal is {goal!r}; valid: max, min")
    if not name or any(c in name for c in "/\\ \t\n") or name.startswith("."):
        raise TableError(f"suite name {name!r} is not valid: use letters, digits, '-', '_' and '.'")
    if isinstance(table, pd.DataFrame):
        df, source_desc = table.copy(), source or "<dataframe>"
    else:
        path = Path(table)
        if not path.is_file():
            raise TableError(f"table {str(path)!r} does not exist")
        try:
            df = pd.read_csv(path)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
            raise TableError(f"cannot read {str(path)!r} as CSV: {e}") from None
        source_desc = f"{path.name} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:16]})"
    wmap = parse_weight_spec(weights) if isinstance(weights, str) else dict(weights)
    numeric_candidates = [c for c in df.columns if c not in wmap.values() and c != seed_col]
    if scores is None:
        scores = [c for c in numeric_candidates if pd.api.types.is_numeric_dtype(df[c])]
    if metric not in scores:
        scores = list(scores) + [metric]
    df = validate_table(df, wmap, metric, scores, seed_col, normalize)
    keep = list(wmap.values()) + ([seed_col] if seed_col else []) + scores
    runs = df[keep].reset_index(drop=True)

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise TableError(f"output folder {str(out)!r} exists and is not empty; pass --overwrite or choose another --out")
    card: dict[str, Any] = {
        "name": name,
        "version": "1",
        "kind": "replay",
        "description": f"Replay suite imported from {source_desc}.",
        "datasets": list(wmap),
        "weight_columns": wmap,
        "score_columns": scores,
        "metric": metric,
        "goal": goal,
        "seed_column": seed_col,
        "provenance": {"imported_from": source_desc, "rows": len(runs),
                       "imported_at": _dt.date.today().isoformat(), "git_sha": git_sha(),
                       "versions": {k: v for k, v in versions().items() if k in ("modomodo", "scikit-learn", "numpy")}},
    }
    for k, v in (card_extra or {}).items():
        card[k] = v

    # Build aside, compute the surrogate's honest fit error and the bounds, then move into place.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        runs.to_csv(tmp / "runs.csv", index=False, float_format="%.15g")
        for fname, text in (extra_files or {}).items():
            (tmp / fname).write_text(text)
        (tmp / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
        suite = load_folder(tmp)
        X, Y = suite._X, suite._Y
        n_mix = len(X)
        card["oracle"] = {
            "recorded": "pool track: a pilot run returns one recorded training seed of the candidate (a repeated "
                        "proposal draws a seed not yet drawn); a recommendation is scored by its per-mixture mean",
            "unrecorded": "continuous track only, and only if the fidelity gate passed: the gated surrogate, "
                          "labelled 'surrogate'",
            "mixtures_recorded": n_mix,
            "seeds_per_mixture": {"min": int(min(len(v) for v in suite.recorded.values())),
                                  "max": int(max(len(v) for v in suite.recorded.values()))},
            "noise_sd": {c: round(float(s), 6) for c, s in zip(scores, suite.noise_sd)},
        }
        if n_mix >= 3:
            card["oracle"]["surrogate_fit"] = fit_report(X, Y[:, [scores.index(metric)]], [metric])[metric] | {
                "method": "leave-one-mixture-out, refitting alpha each time"}
        if seed_col and "signal" not in card and suite.has_noise_model:
            from harness.suites.recorded import SweepError, signal_to_noise

            try:
                card["signal"] = {metric: signal_to_noise(runs, list(wmap.values()), metric)}
            except SweepError:
                pass
        (tmp / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True))
        suite = load_folder(tmp)
        card["judge"] = judge_block(suite)
        if "signal" not in card and not suite.has_noise_model:  # one seed per mixture: the surrogate-residual bound
            from harness.suites.tracks import measured_signal

            card["signal"] = {metric: measured_signal(suite)}
        card["normalization"] = normalization_block(suite)
        for k, v in (card_extra or {}).items():
            card[k] = v
        (tmp / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
