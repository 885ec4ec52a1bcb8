"""Finding and loading suite folders: card.yaml (+ runs.csv), the registry of names."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import yaml

from harness.fingerprint import card_identity
from harness.mixture import did_you_mean
from harness.suites.base import BASELINES_DIR, SUITE_PATH_ENV, Suite
from harness.suites.errors import SuiteError

from harness.suites.analytic import SyntheticSuite
from harness.suites.live import LiveSuite
from harness.suites.replay import ReplaySuite

REQUIRED_CARD_KEYS = ("name", "version", "metric", "goal")


def _yaml_load(text):
    """yaml.safe_load, with libyaml's C loader where installed (the same safe subset, ~10x faster on big cards)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_folder(folder: str | Path) -> Suite:
    folder = Path(folder)
    card_path = folder / "card.yaml"
    if not card_path.is_file():
        raise SuiteError(f"{str(folder)!r} is not a suite folder: it has no card.yaml")
    try:
        card = _yaml_load(card_path.read_bytes()) or {}
    except yaml.YAMLError as e:
        raise SuiteError(f"{card_path}: invalid YAML: {e}") from None
    missing = [k for k in REQUIRED_CARD_KEYS if k not in card]
    if missing:
        raise SuiteError(f"{card_path}: card lacks required keys {missing}")
    if card["goal"] not in ("max", "min"):
        raise SuiteError(f"{card_path}: goal is {card['goal']!r}; valid: max, min")
    kind = card.get("kind", "replay")
    # the suite's protocol hash: the card's content, not its bytes (a comment or a prose edit is no new
    # protocol), and a replay suite's recorded table (harness/fingerprint.py card_identity)
    if kind == "synthetic":
        _check_synthetic(card, card_path)
        return SyntheticSuite.from_card(card, folder, card_identity(card))
    if kind == "replay":
        runs_path = folder / card.get("runs", "runs.csv")
        if not runs_path.is_file():
            raise SuiteError(f"replay suite {card['name']!r} has no {runs_path.name} in {folder}")
        runs_bytes = runs_path.read_bytes()
        table = _read_runs(runs_path, card, card_path)
        suite = ReplaySuite.from_card(card, folder, table, card_identity(card, runs_bytes))
        _check_cost_model(suite, card_path)
        return suite
    if kind == "live":
        return LiveSuite.from_card(card, folder, card_identity(card))
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
        raise SuiteError(
            f"{card_path}: a synthetic suite needs `function:` (a mapping: kind, one of "
            f"{', '.join(FUNCTIONS)}; dim; seed; noise_sd), got {fn!r}"
        )
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
    for key, ok, what in (
        ("seed", lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
        (
            "noise_sd",
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v >= 0,
            "a finite number >= 0",
        ),
    ):
        if key in fn and not ok(fn[key]):
            raise SuiteError(f"{card_path}: function.{key} is {fn[key]!r}; give {what}")


def _read_runs(runs_path: Path, card: dict[str, Any], card_path: Path) -> pd.DataFrame:
    """runs.csv, checked by the same validator as `suite import` (harness.suites.table.validate_table): a
    suite folder is refused for anything an import would refuse (weights not summing to 1, a (mixture, seed)
    twice, a non-finite or absurd score, ...), naming the file, the column, the line and the value. Nothing is
    normalised silently."""
    from harness.suites.table import TableError, read_csv_checked, validate_table

    for key in ("datasets", "score_columns"):
        if not card.get(key):
            raise SuiteError(f"{card_path}: a replay card needs `{key}:` (a list), got {card.get(key)!r}")
    try:
        table = read_csv_checked(runs_path, "runs file")
    except TableError as e:
        raise SuiteError(str(e)) from None
    if len(table) == 0:
        raise SuiteError(
            f"{runs_path}: has a header but no runs; a replay suite needs at least one line per recorded run"
        )
    weights = dict(card.get("weight_columns") or {d: d for d in card["datasets"]})
    scores = list(card["score_columns"])
    seed_col = card.get("seed_column") or None
    missing = [c for c in list(weights.values()) + scores if c not in table.columns]
    if missing:
        raise SuiteError(f"suite {card['name']!r}: runs.csv lacks columns {missing}; found {list(table.columns)}")
    if card["metric"] not in scores:
        raise SuiteError(f"{card_path}: metric {card['metric']!r} is not one of its score_columns {scores}")
    try:
        return validate_table(
            table, weights, card["metric"], scores, seed_col if seed_col in table.columns else None, normalize=False
        )
    except TableError as e:
        raise SuiteError(f"{runs_path}: {e}") from None


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
            name = (_yaml_load(Path(card).read_bytes()) or {}).get("name") or folder.name
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
        raise SuiteError(
            f"unknown suite {str(name_or_path)!r}: not a registered name nor a suite folder; "
            f"{did_you_mean(str(name_or_path), sorted(reg))}"
        )
    folder = folder.resolve()
    stamp = tuple((f.name, f.stat().st_mtime_ns) for f in sorted(folder.iterdir()) if f.is_file())
    return _load_cached(str(folder), stamp)
