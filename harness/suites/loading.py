"""Finding and loading suite folders: card.yaml (+ runs.csv), the registry of names."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.mixture import did_you_mean
from harness.suites.base import BASELINES_DIR, SUITE_PATH_ENV, Suite, SuiteError

import hashlib

import yaml

from harness.suites.analytic import SyntheticSuite
from harness.suites.live import LiveSuite
from harness.suites.replay import ReplaySuite

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
        _check_synthetic(card, card_path)
        return SyntheticSuite.from_card(card, folder, _protocol_hash(card_bytes))
    if kind == "replay":
        runs_path = folder / card.get("runs", "runs.csv")
        if not runs_path.is_file():
            raise SuiteError(f"replay suite {card['name']!r} has no {runs_path.name} in {folder}")
        runs_bytes = runs_path.read_bytes()
        table = _read_runs(runs_path, card, card_path)
        suite = ReplaySuite.from_card(card, folder, table, _protocol_hash(card_bytes, runs_bytes))
        _check_cost_model(suite, card_path)
        return suite
    if kind == "live":
        return LiveSuite.from_card(card, folder, _protocol_hash(card_bytes))
    raise SuiteError(f"{card_path}: unknown suite kind {kind!r}; valid: replay, synthetic, live")


def _check_cost_model(suite: ReplaySuite, card_path: Path) -> None:
    """A card's `cost_model` block must be valid and, of kind scales, price every fidelity level of the suite
    (harness.spec.CostModel)."""
    from harness.spec import CostModel

    try:
        cm = CostModel.from_card(suite.card.get("cost_model"))
        if cm is not None:
            cm.check_levels(suite.fidelity_levels)
    except ValueError as e:
        raise SuiteError(f"{card_path}: {e}") from None


def _check_synthetic(card: dict[str, Any], card_path: Path) -> None:
    """A synthetic card names its analytic function: `function: {kind, dim, seed, noise_sd}`."""
    from harness.suites.analytic import FUNCTIONS

    fn = card.get("function")
    if not isinstance(fn, dict):
        raise SuiteError(f"{card_path}: a synthetic suite needs `function:` (a mapping: kind, one of "
                         f"{', '.join(FUNCTIONS)}; dim; seed; noise_sd), got {fn!r}")
    if fn.get("kind") not in FUNCTIONS:
        raise SuiteError(f"{card_path}: function.kind is {fn.get('kind')!r}; valid: {', '.join(FUNCTIONS)}")
    datasets = card.get("datasets")
    dim = fn.get("dim")
    if datasets is None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
            raise SuiteError(f"{card_path}: function.dim is {dim!r}; give an integer >= 2 (or list the datasets)")
    elif not isinstance(datasets, list) or len(datasets) < 2:
        raise SuiteError(f"{card_path}: datasets is {datasets!r}; give a list of at least 2 dataset names")
    elif dim is not None and dim != len(datasets):
        raise SuiteError(f"{card_path}: function.dim is {dim!r} but the card lists {len(datasets)} datasets")
    for key, ok, what in (("seed", lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
                          ("noise_sd", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                           and np.isfinite(v) and v >= 0, "a finite number >= 0")):
        if key in fn and not ok(fn[key]):
            raise SuiteError(f"{card_path}: function.{key} is {fn[key]!r}; give {what}")


def _read_runs(runs_path: Path, card: dict[str, Any], card_path: Path) -> pd.DataFrame:
    """runs.csv, checked: readable, not empty, every weight and score a number (naming the file, the
    column and the line of the first that is not), weights non-negative and not all zero."""
    from harness.suites.importer import line_of

    for key in ("datasets", "score_columns"):
        if not card.get(key):
            raise SuiteError(f"{card_path}: a replay card needs `{key}:` (a list), got {card.get(key)!r}")
    try:
        table = pd.read_csv(runs_path)
    except pd.errors.EmptyDataError:
        raise SuiteError(f"{runs_path}: the file is empty; a replay suite's runs.csv needs a header line and one "
                         f"line per recorded run") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SuiteError(f"{runs_path}: not a readable CSV ({str(e).strip().splitlines()[-1]})") from None
    if len(table) == 0:
        raise SuiteError(f"{runs_path}: has a header but no runs; a replay suite needs at least one line per "
                         f"recorded run")
    weight_cols = list(dict(card.get("weight_columns") or {d: d for d in card["datasets"]}).values())
    for c in dict.fromkeys(weight_cols + list(card["score_columns"])):
        if c not in table.columns:
            continue  # ReplaySuite.from_card names every missing column at once
        values = pd.to_numeric(table[c], errors="coerce")
        bad = values.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raw = table[c].iloc[i]
            what = "is missing" if pd.isna(raw) else f"{raw!r} is not a number"
            raise SuiteError(f"{runs_path}: column {c!r}, {line_of(i)}: value {what}; every recorded run needs a "
                             f"number in every weight and score column")
        table[c] = values.astype(float)
    present = [c for c in weight_cols if c in table.columns]
    if len(present) == len(weight_cols):
        W = table[weight_cols].to_numpy(float)
        bad = ~np.isfinite(W) | (W < 0)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise SuiteError(f"{runs_path}: column {weight_cols[j]!r}, {line_of(int(i))}: weight {W[i, j]} must be a "
                             f"finite number >= 0")
        zero = W.sum(axis=1) <= 0
        if zero.any():
            i = int(np.flatnonzero(zero)[0])
            raise SuiteError(f"{runs_path}: {line_of(i)}: all weights ({', '.join(weight_cols)}) are zero")
    return table


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
