"""The paper's datasets from the Hugging Face Hub, mapped to the one row schema of the rewards.

Five training sets and three in-domain test sets (MoDoMoDo, Table 1; Hub ids from the authors'
README). Every row comes out as `image` (PIL), `prompt` (chat turns), `solution` (the bare answer,
no tags), `task` (the reward's task name), the schema of `tasks/minimodo.py`, so training
(`harness.training`) and evaluation do not know where rows came from.

The exact columns of these Hub sets are not known here; R1-V-style sets use `image`, `problem`,
`solution` (the answer inside `<answer></answer>`), and a few common aliases are accepted. A set
with none of them fails with an error naming the missing columns and the columns found, and how to
map them (`column_map=`).

Offline use: `datasets` honours `HF_HUB_OFFLINE=1` (served from the cache only); `cache_dir` (or
`$HF_DATASETS_CACHE`) says where that cache is; a local folder (saved with `save_to_disk`, or
holding parquet/json files) can stand in for any Hub id.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.rewards import extract_answer

# The paper's question suffix (its appendix): reasoning and answer tags.
PAPER_INSTRUCTION = (
    "Output the thinking process in <think> </think> and final answer (option) in <answer> </answer> tags."
)


@dataclass(frozen=True)
class PaperDataset:
    name: str  # the mixture / score name (COCO, LISA, ...)
    hub_id: str
    task: str  # the reward's task name (tasks.rewards.TASK_KINDS)
    size: int  # as printed in the paper's Table 1 (a check, not a limit)


TRAIN_SETS: dict[str, PaperDataset] = {
    d.name: d
    for d in (
        PaperDataset("COCO", "laolao77/ViRFT_COCO", "coco", 5997),
        PaperDataset("LISA", "yiqingliang/lisa-problems-dataset", "lisa", 1326),
        PaperDataset("GeoQAV", "yiqingliang/geoqav-problems-dataset", "geoqav", 1969),
        PaperDataset("SAT", "yiqingliang/sat-problems-dataset", "sat", 15000),
        PaperDataset("ScienceQA", "yiqingliang/scienceqa-problems-dataset", "scienceqa", 6218),
    )
}
TEST_SETS: dict[str, PaperDataset] = {
    d.name: d
    for d in (
        PaperDataset("LISA", "yiqingliang/lisa-problems-dataset-test", "lisa", 3397),
        PaperDataset("SAT", "yiqingliang/sat-problems-dataset-test", "sat", 1928),
        PaperDataset("ScienceQA", "yiqingliang/scienceqa-problems-dataset-test", "scienceqa", 2017),
    )
}

# schema column -> accepted source columns, in order of preference
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "image": ("image", "images", "img"),
    "problem": ("problem", "question", "query", "prompt"),
    "solution": ("solution", "answer", "answers", "label"),
}


class DatasetSchemaError(ValueError):
    """A dataset whose columns cannot be mapped to the row schema."""


def resolve_columns(found: list[str], column_map: Mapping[str, str] | None = None, what: str = "dataset") -> dict:
    """schema column -> source column, or a `DatasetSchemaError` naming what is missing and what was found."""
    column_map = dict(column_map or {})
    bad = set(column_map) - set(COLUMN_ALIASES)
    if bad:
        raise DatasetSchemaError(f"column_map keys must be among {sorted(COLUMN_ALIASES)}, got {sorted(bad)}")
    chosen, missing = {}, []
    for col, aliases in COLUMN_ALIASES.items():
        if col in column_map:
            if column_map[col] not in found:
                raise DatasetSchemaError(
                    f"{what}: column_map maps {col!r} to {column_map[col]!r}, which is not a "
                    f"column; columns found: {sorted(found)}"
                )
            chosen[col] = column_map[col]
            continue
        hit = next((a for a in aliases if a in found), None)
        if hit is None:
            missing.append(f"{col!r} (tried {', '.join(aliases)})")
        else:
            chosen[col] = hit
    if missing:
        raise DatasetSchemaError(
            f"{what} lacks column(s) {'; '.join(missing)}; columns found: {sorted(found)}. "
            f"Map them with column_map={{'problem': '<column>', ...}}"
        )
    return chosen


def _bare_answer(solution: Any) -> str:
    if isinstance(solution, (list, tuple)):
        solution = solution[0] if solution else ""
    text = str(solution)
    inner = extract_answer(text)
    return (inner if inner is not None else text).strip()


def _first_image(value: Any):
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def to_row(example: Mapping[str, Any], columns: Mapping[str, str], task: str) -> dict[str, Any]:
    """One source example in the row schema (prompt = the question and the paper's instruction)."""
    question = str(example[columns["problem"]]).strip()
    return {
        "image": _first_image(example[columns["image"]]),
        "prompt": [{"role": "user", "content": f"{question} {PAPER_INSTRUCTION}"}],
        "solution": _bare_answer(example[columns["solution"]]),
        "task": task,
    }


def _load_raw(ref: str, split: str, cache_dir: str | None):
    import datasets

    path = Path(ref)
    if path.is_dir():
        if any((path / f).exists() for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise DatasetSchemaError(f"{ref}: no split {split!r}; splits: {sorted(loaded)}")
                return loaded[split]
            return loaded
        return datasets.load_dataset(str(path), split=split, cache_dir=cache_dir)
    try:
        # the repository's files through huggingface_hub's cache (what `modomodo prefetch` fills; offline it
        # resolves there without the network), then datasets on that folder
        from huggingface_hub import snapshot_download

        folder = snapshot_download(ref, repo_type="dataset")
        return datasets.load_dataset(folder, split=split, cache_dir=cache_dir)
    except (ConnectionError, FileNotFoundError, OSError) as e:
        if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
            where = cache_dir or os.environ.get("HF_DATASETS_CACHE") or "the default datasets cache"
            raise FileNotFoundError(
                f"{ref} is not in {where} and HF_HUB_OFFLINE is set: download it once on a "
                f"machine with Hub access (same cache_dir), or pass a local folder"
            ) from e
        raise


def load_paper_dataset(
    name: str,
    split: str = "train",
    *,
    test: bool = False,
    source: str | None = None,
    cache_dir: str | None = None,
    column_map: Mapping[str, str] | None = None,
    limit: int | None = None,
):
    """One of the paper's sets as a `datasets.Dataset` in the row schema.

    `name` is a mixture name (COCO, LISA, GeoQAV, SAT, ScienceQA); `test=True` takes the in-domain
    test set instead. `source` replaces the Hub id (another id or a local folder).
    """
    from harness.mixture import did_you_mean

    table = TEST_SETS if test else TRAIN_SETS
    if name not in table:
        raise KeyError(f"no paper {'test' if test else 'training'} set {name!r}; {did_you_mean(name, sorted(table))}")
    meta = table[name]
    ref = source or meta.hub_id
    cache_dir = cache_dir or os.environ.get("HF_DATASETS_CACHE") or None
    raw = _load_raw(ref, split, cache_dir)
    if limit is not None:
        raw = raw.select(range(min(int(limit), len(raw))))
    columns = resolve_columns(list(raw.column_names), column_map, what=f"{name} ({ref})")
    return _convert(raw, columns, meta.task)


def row_features():
    """The row schema's `datasets.Features`, the same as `tasks.minimodo.to_dataset`'s (so the paper's sets
    interleave with each other and with MiniModo's)."""
    from datasets import Features, Image, Value

    return Features(
        {
            "image": Image(),
            "prompt": [{"role": Value("string"), "content": Value("string")}],
            "solution": Value("string"),
            "task": Value("string"),
        }
    )


def _undecoded(feature):
    """The same image feature, but handing out the stored bytes instead of a decoded PIL image."""
    import datasets

    if isinstance(feature, datasets.Image):
        return datasets.Image(decode=False)
    if isinstance(feature, datasets.Sequence) and isinstance(feature.feature, datasets.Image):
        return datasets.Sequence(datasets.Image(decode=False))
    if isinstance(feature, list) and len(feature) == 1 and isinstance(feature[0], datasets.Image):
        return [datasets.Image(decode=False)]
    return None


def _convert(raw, columns: Mapping[str, str], task: str):
    """The source rows in the row schema, without decoding a single image: the stored image bytes are
    carried over as they are (decoding happens once, when the trainer reads a row). `datasets.map`
    caches the result beside a dataset loaded from disk or the Hub cache, so the other training
    processes (started after the first: `main_process_first`) read it instead of converting again."""
    image_col = columns["image"]
    undecoded = _undecoded(raw.features.get(image_col))
    if undecoded is not None:
        raw = raw.cast_column(image_col, undecoded)
    problem, solution = columns["problem"], columns["solution"]

    def to_schema(ex):
        return {
            "image": _first_image(ex[image_col]),
            "prompt": [{"role": "user", "content": f"{str(ex[problem]).strip()} {PAPER_INSTRUCTION}"}],
            "solution": _bare_answer(ex[solution]),
            "task": task,
        }

    return raw.map(
        to_schema, remove_columns=list(raw.column_names), features=row_features(), desc=f"{task}: to the row schema"
    )


class PaperSource:
    """Rows of the paper's sets for `harness.training.train_and_evaluate` (its `source` interface:
    `train_rows(dataset, n, seed)` and `test_rows(dataset, n)`)."""

    name = "paper"

    def __init__(
        self,
        train: Mapping[str, str] | None = None,
        test_in: Mapping[str, str] | None = None,
        train_split: str = "train",
        test_split: str = "train",
        cache_dir: str | None = None,
        column_map: Mapping[str, str] | None = None,
    ):
        self.train = dict(train or {k: v.hub_id for k, v in TRAIN_SETS.items()})
        self.test_in = dict(test_in or {k: v.hub_id for k, v in TEST_SETS.items()})
        self.train_split, self.test_split = train_split, test_split
        self.cache_dir, self.column_map = cache_dir or None, column_map

    def train_rows(self, dataset: str, n: int, seed: int):
        """The first n rows of the set in a seeded order: the paper's 'next unseen example'. A
        `datasets.Dataset` in the row schema (images still encoded; `harness.training.grpo.mixture_dataset`
        takes it as it is), not a list, so that no image is decoded and re-encoded on the way to the trainer."""
        ds = load_paper_dataset(
            dataset,
            self.train_split,
            source=self.train.get(dataset),
            cache_dir=self.cache_dir,
            column_map=self.column_map,
        ).shuffle(seed=seed)
        return ds.select(range(min(n, len(ds))))

    def test_rows(self, dataset: str, n: int) -> list[dict]:
        ds = load_paper_dataset(
            dataset,
            self.test_split,
            test=True,
            source=self.test_in.get(dataset),
            cache_dir=self.cache_dir,
            column_map=self.column_map,
        )
        return list(ds.select(range(min(n, len(ds))))) if n else list(ds)


def main(argv: list[str] | None = None) -> int:
    """`python -m tasks.paper_datasets [--cache-dir DIR]`: fetch (or check, offline) every paper set and
    print its size beside the paper's, so a cluster's cache can be filled once from a node with Hub access."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tasks.paper_datasets", description=main.__doc__)
    parser.add_argument("--cache-dir", default=None, help="datasets cache folder (default: $HF_DATASETS_CACHE)")
    args = parser.parse_args(argv)
    bad = 0
    for test, table in ((False, TRAIN_SETS), (True, TEST_SETS)):
        for name, meta in table.items():
            try:
                ds = load_paper_dataset(name, test=test, cache_dir=args.cache_dir)
                note = "" if len(ds) == meta.size else f"  (paper: {meta.size})"
                print(f"{'test' if test else 'train':<5} {name:<10} {meta.hub_id:<45} {len(ds):>6} rows{note}")
            except Exception as e:  # report every set, then fail
                bad += 1
                print(f"{'test' if test else 'train':<5} {name:<10} {meta.hub_id:<45} FAILED: {type(e).__name__}: {e}")
    return 1 if bad else 0


if __name__ == "__main__":  # pragma: no cover - needs the Hub or a filled cache
    raise SystemExit(main())
