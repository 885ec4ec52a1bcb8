"""A runs table as the judge accepts it: the one validator of every replay suite's runs.csv.

The judge's loader (harness/suites/loading.py) checks every suite folder's runs.csv with it, and the suite
factory's importer (harness/factory/importer.py) checks a table with it before it becomes a suite, so a folder
is refused for anything an import would refuse. Every problem names the column, the line and the value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.mixture import SUM_TOLERANCE, did_you_mean


# a recorded suite's partial runs: one row per (mixture, seed, fidelity) in this file beside runs.csv
# (written by the suite factory's export, harness/factory/export.py; read by the pool track, harness/suites/replay.py)
FIDELITY_COLUMN = "fidelity"
FIDELITY_TABLE = "fidelities.csv"


class TableError(ValueError):
    """A table that cannot become a suite (named for what is wrong with it)."""


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
        raise TableError(
            f"{what} {str(path)!r}: column {dups[0]!r} appears {header.count(dups[0])} times in the "
            f"header; every column needs its own name"
        )
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise TableError(f"cannot read {str(path)!r} as CSV: {str(e).strip().splitlines()[-1]}") from None


def validate_table(
    df: pd.DataFrame,
    weights: dict[str, str],
    metric: str,
    scores: list[str],
    seed_col: str | None,
    normalize: bool,
    rounding: float | None = None,
) -> pd.DataFrame:
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
        raise TableError(
            f"column {W.columns[j]!r}, {line_of(i)}: weight is missing; every run needs all weights "
            "(drop rows without weights before importing)"
        )
    Wv = W.to_numpy(float)
    if not np.isfinite(Wv).all():
        i, j = np.argwhere(~np.isfinite(Wv))[0]
        raise TableError(f"column {W.columns[j]!r}, {line_of(i)}: weight {Wv[i, j]} is not finite")
    if (Wv < 0).any():
        i, j = np.argwhere(Wv < 0)[0]
        raise TableError(f"column {W.columns[j]!r}, {line_of(i)}: weight {Wv[i, j]} is negative (weights must be >= 0)")
    sums = Wv.sum(axis=1)
    if (sums <= 0).any():
        i = int(np.flatnonzero(sums <= 0)[0])
        raise TableError(f"{line_of(i)}: all weights (columns {', '.join(W.columns)}) are zero")
    slack = SUM_TOLERANCE if rounding is None else max(SUM_TOLERANCE, len(weights) * rounding / 2)
    off = np.abs(sums - 1.0) > slack + 1e-12
    if off.any() and not normalize:
        i = int(np.flatnonzero(off)[0])
        given = ", ".join(f"{c}={Wv[i, j]:.8g}" for j, c in enumerate(W.columns))
        within = (
            f"within {SUM_TOLERANCE:g}"
            if rounding is None
            else f"within {slack:g}, {len(weights)} weights rounded to {rounding:g}"
        )
        raise TableError(
            f"{line_of(i)}: weights {given} sum to {sums[i]:.8g}, not 1 ({within}); "
            "pass --normalize to rescale every row (e.g. for percentages)"
            + ("" if rounding is not None else ", or --rounding if the weights were rounded")
        )
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
            raise TableError(
                f"column {c!r}, {line_of(i)}: score {v[i]:g} is not a finite number of magnitude <= {MAX_ABS_VALUE:g}"
            )
    if seed_col:
        if df[seed_col].isna().any():
            i = int(np.flatnonzero(df[seed_col].isna().to_numpy())[0])
            raise TableError(f"seed column {seed_col!r}, {line_of(i)}: the seed is missing")
        seeds = pd.to_numeric(df[seed_col], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(seeds) | (seeds != np.round(seeds)) | (seeds < 0) | (np.abs(seeds) > 2**63 - 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise TableError(
                f"seed column {seed_col!r}, {line_of(i)}: seed {df[seed_col].iloc[i]!r} is not a whole number >= 0"
            )
        df[seed_col] = seeds.astype(np.int64)
        dup = df.duplicated(subset=list(weights.values()) + [seed_col])
        if dup.any():
            i = int(np.flatnonzero(dup.to_numpy())[0])
            raise TableError(
                f"{line_of(i)} repeats a mixture and seed already in the table (seed {df[seed_col].iloc[i]!r})"
            )
    n_mix = len(df.drop_duplicates(subset=list(weights.values())))
    if n_mix < MIN_MIXTURES:
        raise TableError(
            f"the table records {n_mix} mixture; a suite needs at least {MIN_MIXTURES} (with one, every "
            f"strategy has regret 0)"
        )
    return df
