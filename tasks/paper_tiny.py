"""The paper's datasets at toy scale, written locally: same schema as its Hub sets, MiniModo's pictures.

The suite `paper-protocol-tiny` runs the GPU runner's own commands on a CPU machine. It cannot
download the paper's sets, so this module writes small stand-ins with the schema that
`tasks.paper_datasets` loads from the Hub (R1-V style: `image`, `problem`, `solution` with the
answer inside `<answer>` tags, saved with `save_to_disk`), drawn by MiniModo's generators
(`tasks/minimodo.py`), one per paper set:

| paper set | drawn by | answer |
|---|---|---|
| COCO (train) | `grounding` | boxes |
| LISA (train, test) | `referring` | one box |
| GeoQAV (train) | `geometry` | option letter |
| SAT (train, test) | `spatial` | option letter |
| ScienceQA (train, test) | `science` | option letter |

(test sets of unequal sizes, `TEST_SIZES`, as the paper's) and two out-of-domain sets as local lmms-eval tasks (a dataset folder plus a task folder with a
YAML and a `utils.py`, found through `TaskManager(include_path=...)`): `tiny_chartqa` (MiniModo's
`chart`, mirrors ChartQA) and `tiny_column` (MiniModo's `column`). Everything is seeded; the
builder (`harness/training/assets.py`) caches the folder by the content hash of this code.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from tasks.minimodo import ALL, stable_seed
from tasks.paper_datasets import PAPER_INSTRUCTION

# paper set -> MiniModo generator
TRAIN_SOURCES = {
    "COCO": "grounding",
    "LISA": "referring",
    "GeoQAV": "geometry",
    "SAT": "spatial",
    "ScienceQA": "science",
}
TEST_SOURCES = {"LISA": "referring", "SAT": "spatial", "ScienceQA": "science"}
# lmms-eval task -> MiniModo generator
OOD_TASKS = {"tiny_chartqa": "chart", "tiny_column": "column"}
# Rows per evaluation set: unequal, like the paper's (3397/1928/2017 and 2500/2801/1000/900), so that
# In-Score and Out-Score are visibly size-weighted (baselines/configs/paper-protocol-tiny.yaml).
TEST_SIZES = {"LISA": 24, "SAT": 16, "ScienceQA": 12}
OOD_SIZES = {"tiny_chartqa": 16, "tiny_column": 12}
KIND_HINT = {"mc": " Answer with the option letter.", "exact": " Answer with a single word.", "box": "", "boxes": ""}


def hub_rows(generator: str, n: int, seed: int, split: str) -> dict[str, list]:
    """Columns of n examples in the Hub sets' schema (image, problem, solution in <answer> tags)."""
    dom = ALL[generator]
    rng = random.Random(stable_seed("paper-tiny", generator, split, int(seed)))
    cols: dict[str, list] = {"image": [], "problem": [], "solution": []}
    for _ in range(n):
        img, question, answer = dom.generate(rng)
        cols["image"].append(img)
        cols["problem"].append(question + KIND_HINT.get(dom.kind, ""))
        cols["solution"].append(f"<answer> {answer} </answer>")
    return cols


def _save(cols: dict[str, list], folder: Path, split: str) -> None:
    from datasets import Dataset, DatasetDict, Features, Image, Value

    features = Features({"image": Image(), "problem": Value("string"), "solution": Value("string")})
    DatasetDict({split: Dataset.from_dict(cols, features=features)}).save_to_disk(str(folder))


def write_datasets(
    root: Path, n_train: int = 48, n_test: int | None = None, seed: int = 0
) -> dict[str, dict[str, str]]:
    """The five training sets and three in-domain test sets under root/train, root/test (n_test rows
    each, default TEST_SIZES)."""
    out: dict[str, dict[str, str]] = {"train": {}, "test_in": {}}
    for name, gen in TRAIN_SOURCES.items():
        _save(hub_rows(gen, n_train, seed, "train"), root / "train" / name, "train")
        out["train"][name] = str(root / "train" / name)
    for name, gen in TEST_SOURCES.items():  # the paper's Hub test sets keep their rows in a split named train
        _save(hub_rows(gen, n_test or TEST_SIZES[name], seed, "test"), root / "test" / name, "train")
        out["test_in"][name] = str(root / "test" / name)
    return out


LMMS_UTILS = '''"""lmms-eval hooks of a modomodo local task (written by tasks/paper_tiny.py)."""
import re


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return doc["question"]


def process_results(doc, results):
    pred = results[0] if results else ""
    norm = lambda s: re.sub(r"[^a-z0-9]", "", str(s).lower())  # noqa: E731
    return {"exact_match": float(norm(pred) == norm(doc["answer"]))}
'''


def lmms_task_yaml(task: str, dataset_dir: Path, max_new_tokens: int) -> str:
    return "\n".join(
        [
            f"task: {task}",
            f"dataset_path: {json.dumps(str(dataset_dir))}",
            "dataset_kwargs:",
            "  load_from_disk: true",
            "test_split: test",
            "output_type: generate_until",
            "doc_to_visual: !function utils.doc_to_visual",
            "doc_to_text: !function utils.doc_to_text",
            "doc_to_target: answer",
            "generation_kwargs:",
            f"  max_new_tokens: {int(max_new_tokens)}",
            "  temperature: 0",
            "  do_sample: false",
            "process_results: !function utils.process_results",
            "metric_list:",
            "  - metric: exact_match",
            "    aggregation: mean",
            "    higher_is_better: true",
            "metadata:",
            "  version: 1",
            "",
        ]
    )


def write_lmms_tasks(
    root: Path, n: int | None = None, seed: int = 0, max_new_tokens: int = 24, final: Path | None = None
) -> dict[str, str]:
    """Out-of-domain sets as local lmms-eval tasks: root/ood/<task> (data), root/lmms_tasks/<task> (task).
    The YAMLs name the data by its path under `final` (where root will be moved; default root)."""
    from datasets import Dataset, DatasetDict, Features, Image, Value

    features = Features({"image": Image(), "question": Value("string"), "answer": Value("string")})
    out = {}
    for task, gen in OOD_TASKS.items():
        dom = ALL[gen]
        rng = random.Random(stable_seed("paper-tiny-ood", gen, int(seed)))
        cols: dict[str, list] = {"image": [], "question": [], "answer": []}
        for _ in range(n or OOD_SIZES[task]):
            img, question, answer = dom.generate(rng)
            cols["image"].append(img)
            cols["question"].append(question + KIND_HINT.get(dom.kind, ""))
            cols["answer"].append(answer)
        data = root / "ood" / task
        DatasetDict({"test": Dataset.from_dict(cols, features=features)}).save_to_disk(str(data))
        folder = root / "lmms_tasks" / task
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{task}.yaml").write_text(lmms_task_yaml(task, Path(final or root) / "ood" / task, max_new_tokens))
        (folder / "utils.py").write_text(LMMS_UTILS)
        out[task] = str(folder)
    return out


def warmup_rows(n: int, rng: random.Random, label_noise: float = 0.3) -> list[dict]:
    """Rows in the training row schema (prompt = question + the paper's instruction) for the tiny
    model's supervised warm-up, from their own seed stream (never a test or training split)."""
    from tasks.paper_datasets import to_row

    names = list(TRAIN_SOURCES)
    rows = []
    for _ in range(n):
        name = rng.choice(names)
        dom = ALL[TRAIN_SOURCES[name]]
        img, question, answer = dom.generate(rng)
        if dom.answers and rng.random() < label_noise:
            answer = rng.choice(dom.answers)
        ex = {"image": img, "problem": question + KIND_HINT.get(dom.kind, ""), "solution": f"<answer>{answer}</answer>"}
        rows.append(to_row(ex, {"image": "image", "problem": "problem", "solution": "solution"}, name.lower()))
    return rows


__all__ = [
    "OOD_TASKS",
    "PAPER_INSTRUCTION",
    "TEST_SOURCES",
    "TRAIN_SOURCES",
    "hub_rows",
    "warmup_rows",
    "write_datasets",
    "write_lmms_tasks",
]
