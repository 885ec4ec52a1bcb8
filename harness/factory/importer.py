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
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from harness.folders import replace_folder
from harness.mixture import did_you_mean
from harness.provenance import git_sha, versions
from harness.factory.card import judge_block, normalization_block
from harness.suites.loading import load_folder, registered
from harness.suites.signal import SignalError, signal_estimate
from harness.suites.surrogate import KFOLD, LOO_MAX, fit_report
from harness.suites.table import TableError, line_of, read_csv_checked, validate_table
from harness.suites.tracks import measured_signal


def _dataset_name(column: str) -> str:
    for prefix in ("w_", "weight_", "w:"):
        if column.startswith(prefix) and len(column) > len(prefix):
            return column[len(prefix) :]
    return column


def parse_weight_spec(spec: str) -> dict[str, str]:
    """ "w_A,w_B" or "A=w_A,B=w_B" -> {dataset: column} (a leading w_ is dropped from default names)."""
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


def join_tables(
    mixtures: pd.DataFrame, results: pd.DataFrame, key: str, names=("mixture file", "result file")
) -> pd.DataFrame:
    """Two files as released (RegMix: a mixture file and a result file) joined one-to-one on a key column. Every
    key must be in both, once: a run without weights or without results is an error naming the key."""
    for df, what in zip((mixtures, results), names):
        if key not in df.columns:
            raise TableError(f"key column {key!r} not in the {what}; {did_you_mean(key, list(df.columns))}")
        dup = df[key].duplicated()
        if dup.any():
            i = int(np.flatnonzero(dup.to_numpy())[0])
            raise TableError(f"{what}, {line_of(i)}: key {df[key].iloc[i]!r} appears twice in column {key!r}")
    a, b = set(mixtures[key]), set(results[key])
    for missing, have, lacks in (
        (sorted(a - b, key=str), names[0], names[1]),
        (sorted(b - a, key=str), names[1], names[0]),
    ):
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise TableError(
                f"key {missing[0]!r}{more} is in the {have} but not in the {lacks}; "
                f"every run needs both its weights and its results"
            )
    both = [c for c in results.columns if c in mixtures.columns and c != key]
    if both:
        raise TableError(
            f"column {both[0]!r} is in both files; rename it in one (--rename applies to the joined table)"
        )
    return mixtures.merge(results, on=key, how="inner", validate="one_to_one")


def apply_renames(df: pd.DataFrame, spec: str | None) -> pd.DataFrame:
    """--rename OLD=NEW,...: columns renamed before anything else reads them."""
    if not spec:
        return df
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        old, sep, new = (x.strip() for x in part.partition("="))
        if not sep or not old or not new:
            raise TableError(f"--rename {part!r}: expected OLD=NEW")
        if old not in df.columns:
            raise TableError(f"--rename: column {old!r} not in the table; {did_you_mean(old, list(df.columns))}")
        mapping[old] = new
    clash = [n for n in mapping.values() if n in df.columns and n not in mapping]
    if clash:
        raise TableError(f"--rename: the new name {clash[0]!r} is already a column")
    return df.rename(columns=mapping)


def expand_weight_spec(spec: str, columns: list[str]) -> str:
    """--weights may name columns by a glob (`train_the_pile_*`): each match is a dataset named by what the
    pattern's `*` matched. Plain names pass through."""
    import fnmatch

    parts = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if "*" in part and "=" not in part:
            hits = [c for c in columns if fnmatch.fnmatchcase(c, part)]
            if not hits:
                raise TableError(f"--weights pattern {part!r} matches no column; columns: {', '.join(columns)}")
            head, tail = part.split("*", 1)[0], part.rsplit("*", 1)[-1]
            for c in hits:
                name = c[len(head) : len(c) - len(tail) if tail else None] or c
                parts.append(f"{name}={c}")
        else:
            parts.append(part)
    return ",".join(parts)


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_name_free(name: str, out: str | Path) -> None:
    """A new suite may not take a registered suite's name (the registry would serve one of the two): only the
    folder already registered under it may be rebuilt under it."""
    folder = registered().get(name)
    if folder is not None and Path(folder).resolve() != Path(out).resolve():
        raise TableError(f"suite name {name!r} is already registered (folder {folder}); choose another --name")


def import_table(
    table: str | Path | pd.DataFrame,
    name: str,
    weights: str | dict[str, str],
    metric: str,
    goal: str,
    out: str | Path,
    seed_col: str | None = None,
    scores: list[str] | None = None,
    normalize: bool = False,
    card_extra: dict[str, Any] | None = None,
    overwrite: bool = False,
    source: str | None = None,
    extra_files: dict[str, str] | None = None,
    results: str | Path | None = None,
    key: str | None = None,
    rename: str | None = None,
    rounding: float | None = None,
) -> Path:
    """Validate the table, fit the surrogate, write `out/` (runs.csv + card.yaml). Returns the folder.
    `source` describes where a DataFrame came from (the card's `provenance.imported_from`).
    `extra_files`: {file name: text} written beside runs.csv before the suite is first loaded (e.g.
    export_suite's fidelities.csv, which the card's `fidelities` block names and the loader reads)."""
    if goal not in ("max", "min"):
        raise TableError(f"--goal is {goal!r}; valid: max, min")
    if not name or any(c in name for c in "/\\ \t\n") or name.startswith("."):
        raise TableError(f"suite name {name!r} is not valid: use letters, digits, '-', '_' and '.'")
    if isinstance(table, pd.DataFrame):
        df, source_desc = table.copy(), source or "<dataframe>"
    else:
        path = Path(table)
        df = read_csv_checked(path, "mixture file" if results is not None else "table")
        source_desc = f"{path.name} (sha256 {_sha256_file(path)[:16]})"
    if results is not None:
        if not key:
            raise TableError("--results needs --key, the column that joins the two files (e.g. index)")
        rpath = Path(results)
        df = join_tables(df, read_csv_checked(rpath, "result file"), key)
        source_desc += f" joined on {key!r} with {rpath.name} (sha256 {_sha256_file(rpath)[:16]})"
    elif key:
        raise TableError("--key joins a mixture file with a result file: pass --results too")
    df = apply_renames(df, rename)
    if rounding is not None and not (np.isfinite(rounding) and 0 < rounding < 1):
        raise TableError(f"--rounding {rounding!r}: give the unit the weights were rounded to, in (0, 1), e.g. 0.001")
    if isinstance(weights, str):
        weights = expand_weight_spec(weights, list(df.columns))
    wmap = parse_weight_spec(weights) if isinstance(weights, str) else dict(weights)
    numeric_candidates = [c for c in df.columns if c not in wmap.values() and c != seed_col and c != key]
    if scores is None:
        scores = [c for c in numeric_candidates if pd.api.types.is_numeric_dtype(df[c])]
    if metric not in scores:
        scores = list(scores) + [metric]
    df = validate_table(df, wmap, metric, scores, seed_col, normalize, rounding)
    keep = list(wmap.values()) + ([seed_col] if seed_col else []) + scores
    runs = df[keep].reset_index(drop=True)

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise TableError(
            f"output folder {str(out)!r} exists and is not empty; pass --overwrite or choose another --out"
        )
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
        "provenance": {
            "imported_from": source_desc,
            "rows": len(runs),
            "imported_at": _dt.date.today().isoformat(),
            "git_sha": git_sha(),
            "versions": {k: v for k, v in versions().items() if k in ("modomodo", "scikit-learn", "numpy")},
        },
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
            "seeds_per_mixture": {
                "min": int(min(len(v) for v in suite.recorded.values())),
                "max": int(max(len(v) for v in suite.recorded.values())),
            },
            "noise_sd": {c: round(float(s), 6) for c, s in zip(scores, suite.noise_sd)},
        }
        if n_mix >= 3:
            card["oracle"]["surrogate_fit"] = fit_report(X, Y[:, [scores.index(metric)]], [metric])[metric] | {
                "method": ("leave-one-mixture-out" if n_mix <= LOO_MAX else f"{KFOLD}-fold over mixtures")
                + ", refitting alpha each time"
            }
        if seed_col and "signal" not in card and suite.has_noise_model:
            try:
                card["signal"] = {metric: signal_estimate(runs, list(wmap.values()), metric)}
            except SignalError:
                pass
        (tmp / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True))
        suite = load_folder(tmp)
        card["judge"] = judge_block(suite)
        if "signal" not in card and not suite.has_noise_model:  # one seed per mixture: the surrogate-residual bound
            card["signal"] = {metric: measured_signal(suite)}
        card["normalization"] = normalization_block(suite)
        for k, v in (card_extra or {}).items():
            card[k] = v
        (tmp / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True))
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
