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


MAX_ABS_VALUE = 1e15  # a score beyond this overflows the per-mixture statistics (a sum of two 1e308 is inf)
MIN_MIXTURES = 2  # a pool of one mixture gives every strategy regret 0


def read_csv_checked(path: str | Path, what: str = "table") -> pd.DataFrame:
    """A CSV file as a DataFrame, or a TableError naming the file: missing, unreadable, binary, empty, or with a
    column name twice (pandas would silently rename the second to `name.1`)."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise TableError(f"{what} {str(path)!r} does not exist")
    raw = path.read_bytes()
    if b"\0" in raw[:65536]:
        raise TableError(f"{what} {str(path)!r} is not a text CSV file (it holds binary data)")
    try:
        header = next(csv.reader(raw.decode("utf-8-sig").splitlines()[:1]), [])
    except UnicodeDecodeError as e:
        raise TableError(f"{what} {str(path)!r} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not header:
        raise TableError(f"{what} {str(path)!r}: the file is empty; it needs a header line and one line per run")
    dups = sorted({c for c in header if header.count(c) > 1})
    if dups:
        raise TableError(f"{what} {str(path)!r}: column {dups[0]!r} appears {header.count(dups[0])} times in the "
                         f"header; every column needs its own name")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise TableError(f"cannot read {str(path)!r} as CSV: {str(e).strip().splitlines()[-1]}") from None


def validate_table(df: pd.DataFrame, weights: dict[str, str], metric: str, scores: list[str],
                   seed_col: str | None, normalize: bool, rounding: float | None = None) -> pd.DataFrame:
    """The one validator of a runs table (`suite import` and every suite folder's runs.csv): every named column
    present, weights and scores numbers, weights finite, >= 0, not all zero and summing to 1 (within
    SUM_TOLERANCE; with `rounding`, the weights were rounded to multiples of it and a row within d x rounding / 2
    of 1 is rescaled; with `normalize`, every row is rescaled), scores finite and of sane magnitude, seeds whole
    numbers, no (mixture, seed) twice, at least MIN_MIXTURES mixtures. Errors name the column, line and value."""
    cols = list(df.columns)
    for c in list(weights.values()) + [metric] + scores + ([seed_col] if seed_col else []):
        if c not in cols:
            raise TableError(f"column {c!r} not in the table; {did_you_mean(c, cols)}")
    taken = [c for c in weights.values() if c in scores or c == seed_col]
    if taken:
        raise TableError(f"column {taken[0]!r} is named as a weight and as a score or seed column; give it one role")
    if len(df) == 0:
        raise TableError("the table has no rows")
    for c in dict.fromkeys(list(weights.values()) + scores):
        values = pd.to_numeric(df[c], errors="coerce")
        bad = values.isna() & df[c].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise TableError(f"column {c!r}, {line_of(i)}: value {df[c].iloc[i]!r} is not a number")
        df[c] = values.astype(float)
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
        raise TableError(f"column {W.columns[j]!r}, {line_of(i)}: weight {Wv[i, j]} is negative (weights must be "
                         f">= 0)")
    sums = Wv.sum(axis=1)
    if (sums <= 0).any():
        i = int(np.flatnonzero(sums <= 0)[0])
        raise TableError(f"{line_of(i)}: all weights (columns {', '.join(W.columns)}) are zero")
    slack = SUM_TOLERANCE if rounding is None else max(SUM_TOLERANCE, len(weights) * rounding / 2)
    off = np.abs(sums - 1.0) > slack + 1e-12
    if off.any() and not normalize:
        i = int(np.flatnonzero(off)[0])
        given = ", ".join(f"{c}={Wv[i, j]:.8g}" for j, c in enumerate(W.columns))
        within = (f"within {SUM_TOLERANCE:g}" if rounding is None else
                  f"within {slack:g}, {len(weights)} weights rounded to {rounding:g}")
        raise TableError(f"{line_of(i)}: weights {given} sum to {sums[i]:.8g}, not 1 ({within}); "
                         "pass --normalize to rescale every row (e.g. for percentages)"
                         + ("" if rounding is not None else ", or --rounding if the weights were rounded"))
    if normalize or rounding is not None:
        df[list(weights.values())] = Wv / sums[:, None]
    for c in dict.fromkeys([metric] + scores):
        v = df[c].to_numpy(float)
        if c == metric and np.isnan(v).any():
            i = int(np.flatnonzero(np.isnan(v))[0])
            raise TableError(f"column {metric!r}, {line_of(i)}: the metric is missing")
        bad = np.isinf(v) | (np.abs(np.nan_to_num(v)) > MAX_ABS_VALUE)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise TableError(f"column {c!r}, {line_of(i)}: score {v[i]:g} is not a finite number of magnitude <= "
                             f"{MAX_ABS_VALUE:g}")
    if seed_col:
        if df[seed_col].isna().any():
            i = int(np.flatnonzero(df[seed_col].isna().to_numpy())[0])
            raise TableError(f"seed column {seed_col!r}, {line_of(i)}: the seed is missing")
        seeds = pd.to_numeric(df[seed_col], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(seeds) | (seeds != np.round(seeds)) | (seeds < 0) | (np.abs(seeds) > 2**63 - 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise TableError(f"seed column {seed_col!r}, {line_of(i)}: seed {df[seed_col].iloc[i]!r} is not a whole "
                             f"number >= 0")
        df[seed_col] = seeds.astype(np.int64)
        dup = df.duplicated(subset=list(weights.values()) + [seed_col])
        if dup.any():
            i = int(np.flatnonzero(dup.to_numpy())[0])
            raise TableError(f"{line_of(i)} repeats a mixture and seed already in the table (seed {df[seed_col].iloc[i]!r})")
    n_mix = len(df.drop_duplicates(subset=list(weights.values())))
    if n_mix < MIN_MIXTURES:
        raise TableError(f"the table records {n_mix} mixture; a suite needs at least {MIN_MIXTURES} (with one, every "
                         f"strategy has regret 0)")
    return df


def join_tables(mixtures: pd.DataFrame, results: pd.DataFrame, key: str, names=("mixture file", "result file")) -> pd.DataFrame:
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
    for missing, have, lacks in ((sorted(a - b, key=str), names[0], names[1]), (sorted(b - a, key=str), names[1], names[0])):
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise TableError(f"key {missing[0]!r}{more} is in the {have} but not in the {lacks}; "
                             f"every run needs both its weights and its results")
    both = [c for c in results.columns if c in mixtures.columns and c != key]
    if both:
        raise TableError(f"column {both[0]!r} is in both files; rename it in one (--rename applies to the joined table)")
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
                name = c[len(head): len(c) - len(tail) if tail else None] or c
                parts.append(f"{name}={c}")
        else:
            parts.append(part)
    return ",".join(parts)


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_name_free(name: str, out: str | Path) -> None:
    """A new suite may not take a registered suite's name (the registry would serve one of the two): only the
    folder already registered under it may be rebuilt under it."""
    from harness.suites.loading import registered

    folder = registered().get(name)
    if folder is not None and Path(folder).resolve() != Path(out).resolve():
        raise TableError(f"suite name {name!r} is already registered (folder {folder}); choose another --name")


def import_table(table: str | Path | pd.DataFrame, name: str, weights: str | dict[str, str], metric: str, goal: str,
                 out: str | Path, seed_col: str | None = None, scores: list[str] | None = None, normalize: bool = False,
                 card_extra: dict[str, Any] | None = None, overwrite: bool = False,
                 source: str | None = None, extra_files: dict[str, str] | None = None, results: str | Path | None = None,
                 key: str | None = None, rename: str | None = None, rounding: float | None = None) -> Path:
    """Validate the table, fit the surrogate, write `out/` (runs.csv + card.yaml). Returns the folder.
    `source` describes where a DataFrame came from (the card's `provenance.imported_from`).
    `extra_files`: {file name: text} written beside runs.csv before the suite is first loaded (e.g.
    export_suite's fidelities.csv, which the card's `fidelities` block names and the loader reads)."""
    from harness.suites.judge_card import judge_block, normalization_block
    from harness.suites.loading import load_folder
    from harness.suites.surrogate import KFOLD, LOO_MAX, fit_report

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
                "method": ("leave-one-mixture-out" if n_mix <= LOO_MAX else f"{KFOLD}-fold over mixtures")
                + ", refitting alpha each time"}
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
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
