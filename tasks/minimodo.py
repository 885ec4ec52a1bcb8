"""MiniModo: procedurally generated verifiable image tasks that mirror the paper's five domains.

Images are 84×84 pixels on a 3×3 grid of 28-px cells, so that each cell is exactly one merged
visual token of a Qwen2-VL-style vision tower (14-px patches, 2×2 merge); boxes are cell boxes on
the paper's 0..1000 scale (edges 0, 333, 667, 1000). Everything is drawn with PIL from a seed.

Training domains (each with a held-out `test` split, generated from a separate seed stream):

| domain | mirrors | question | answer kind |
|---|---|---|---|
| `grounding` | COCO | Find every {shape}. (1-2 targets among 2-4 shapes) | boxes (Hungarian IoU) |
| `referring` | LISA | Find the {colour} {shape}. | box (IoU) |
| `geometry`  | GeoQAV | How many corners has the shape? A. 0 B. 3 C. 4 | mc |
| `spatial`   | SAT | Is the {c1} shape left or right of the {c2} shape? A. left B. right | mc |
| `science`   | ScienceQA | What colour is the shape? A. red B. green C. blue D. yellow | mc |

Out-of-domain test sets (no training domain trains them directly):

| set | question | answer | related domains |
|---|---|---|---|
| `counting` | How many shapes are there? (1-6) | exact digit | grounding helps (enumerating shapes); geometry *interferes*: it teaches "How many ...?" → a letter |
| `chart` | Which bar is tallest? A. red B. green C. blue D. yellow | mc | science (colour → letter) helps |
| `novel_referring` | Find the {colour} {shape} among unseen shape types | box | referring, grounding |
| `column` | Which column is the {colour} shape in? | exact (left/middle/right) | composes referring (binding) and spatial |

Rows follow the schema every loader shares: `image` (PIL), `prompt` (conversational), `solution`
(str), `task` (str). The warm-up corpus that builds base models (`warmup_rows`) draws the same
training domains plus two auxiliary tasks from its own seed stream, never from a test split.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from tasks.prompts import make_prompt
from tasks.rewards import format_box_answer, register_task_kind

IMG = 84
CELL = 28
NCELL = 9
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (225, 195, 30)}
CNAMES = list(COLORS)
SHAPES = ["circle", "square", "triangle"]
NOVEL_SHAPES = ["diamond", "cross", "ring"]
CORNERS = {"circle": "A", "triangle": "B", "square": "C"}  # A. 0, B. 3, C. 4
COLUMNS = ["left", "middle", "right"]
EDGES = [0, 333, 667, 1000]


def cell_box(cell: int) -> tuple[int, int, int, int]:
    c, r = cell % 3, cell // 3
    return (EDGES[c], EDGES[r], EDGES[c + 1], EDGES[r + 1])


def stable_seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


# ------------------------------------------------------------------------------------------------
# drawing
def _draw(d, shape: str, color: str, cell: int, rng: random.Random) -> None:
    cx = (cell % 3) * CELL + CELL // 2 + rng.randint(-2, 2)
    cy = (cell // 3) * CELL + CELL // 2 + rng.randint(-2, 2)
    r = rng.randint(7, 11)
    col = COLORS[color]
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col)
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=col)
    elif shape == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=col)
    elif shape == "diamond":
        d.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=col)
    elif shape == "cross":
        w = max(2, r // 3)
        d.rectangle([cx - r, cy - w, cx + r, cy + w], fill=col)
        d.rectangle([cx - w, cy - r, cx + w, cy + r], fill=col)
    elif shape == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=col, width=3)
    else:  # pragma: no cover
        raise ValueError(shape)


def scene(objs: list[tuple[str, str, int]], rng: random.Random):
    """objs: (shape, colour, cell) triples -> an 84×84 PIL image."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (IMG, IMG), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for shape, color, cell in objs:
        _draw(d, shape, color, cell, rng)
    return img


def _distinct_objects(rng, k, shapes):
    """k objects with distinct (shape, colour) pairs in distinct cells."""
    pairs = rng.sample([(s, c) for s in shapes for c in CNAMES], k)
    cells = rng.sample(range(NCELL), k)
    return [(s, c, cell) for (s, c), cell in zip(pairs, cells)]


# ------------------------------------------------------------------------------------------------
# generators: rng -> (image, question, answer)
def gen_grounding(rng):
    target = rng.choice(SHAPES)
    n_t = rng.randint(1, 2)
    n_o = rng.randint(max(0, 2 - n_t), 4 - n_t)
    cells = rng.sample(range(NCELL), n_t + n_o)
    others = [s for s in SHAPES if s != target]
    objs = [(target, rng.choice(CNAMES), c) for c in cells[:n_t]]
    objs += [(rng.choice(others), rng.choice(CNAMES), c) for c in cells[n_t:]]
    boxes = [cell_box(c) for c in sorted(cells[:n_t])]
    return scene(objs, rng), f"Find every {target}.", format_box_answer(boxes)


def _referring(rng, shapes):
    objs = _distinct_objects(rng, rng.randint(2, 3), shapes)
    s, c, cell = objs[0]
    rng.shuffle(objs)
    return scene(objs, rng), f"Find the {c} {s}.", format_box_answer([cell_box(cell)])


def gen_referring(rng):
    return _referring(rng, SHAPES)


def gen_novel_referring(rng):
    return _referring(rng, NOVEL_SHAPES)


def gen_geometry(rng):
    s = rng.choice(SHAPES)
    img = scene([(s, rng.choice(CNAMES), rng.randrange(NCELL))], rng)
    return img, "How many corners has the shape? A. 0 B. 3 C. 4", CORNERS[s]


def gen_spatial(rng):
    c1, c2 = rng.sample(CNAMES, 2)
    while True:
        a, b = rng.sample(range(NCELL), 2)
        if a % 3 != b % 3:
            break
    objs = [(rng.choice(SHAPES), c1, a), (rng.choice(SHAPES), c2, b)]
    return (
        scene(objs, rng),
        f"Is the {c1} shape left or right of the {c2} shape? A. left B. right",
        "A" if a % 3 < b % 3 else "B",
    )


def gen_science(rng):
    c = rng.choice(CNAMES)
    img = scene([(rng.choice(SHAPES), c, rng.randrange(NCELL))], rng)
    return img, "What colour is the shape? A. red B. green C. blue D. yellow", "ABCD"[CNAMES.index(c)]


def gen_counting(rng):
    k = rng.randint(1, 6)
    objs = [(rng.choice(SHAPES), rng.choice(CNAMES), c) for c in rng.sample(range(NCELL), k)]
    return scene(objs, rng), "How many shapes are there?", str(k)


def gen_chart(rng):
    from PIL import Image, ImageDraw

    cols = rng.sample(CNAMES, 3)
    heights = rng.sample([20, 34, 48, 62, 76], 3)
    img = Image.new("RGB", (IMG, IMG), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for i, (c, h) in enumerate(zip(cols, heights)):
        d.rectangle([i * CELL + 6, IMG - h, i * CELL + CELL - 6, IMG - 1], fill=COLORS[c])
    top = cols[heights.index(max(heights))]
    return img, "Which bar is tallest? A. red B. green C. blue D. yellow", "ABCD"[CNAMES.index(top)]


def gen_column(rng):
    objs = _distinct_objects(rng, rng.randint(1, 3), SHAPES)
    # the asked colour must be unique in the scene
    s, c, cell = objs[0]
    objs = [o for o in objs if o[1] != c or o is objs[0]]
    return scene(objs, rng), f"Which column is the {c} shape in?", COLUMNS[cell % 3]


# warm-up-only auxiliary tasks (they teach answer types the OOD sets use, on other questions)
def gen_aux_column(rng):
    cell = rng.randrange(NCELL)
    return (
        scene([(rng.choice(SHAPES), rng.choice(CNAMES), cell)], rng),
        "Which column is the shape in?",
        COLUMNS[cell % 3],
    )


def gen_aux_count(rng):
    k = rng.randint(1, 6)
    objs = [(rng.choice(SHAPES), rng.choice(CNAMES), c) for c in rng.sample(range(NCELL), k)]
    return scene(objs, rng), "Count the shapes.", str(k)


@dataclass(frozen=True)
class Domain:
    name: str
    kind: str
    generate: Callable
    mirrors: str = ""
    answers: tuple[str, ...] = ()  # the answer vocabulary, for warm-up label noise (empty: boxes)


TRAIN_DOMAINS: dict[str, Domain] = {
    "grounding": Domain("grounding", "boxes", gen_grounding, "COCO"),
    "referring": Domain("referring", "box", gen_referring, "LISA"),
    "geometry": Domain("geometry", "mc", gen_geometry, "GeoQAV", ("A", "B", "C")),
    "spatial": Domain("spatial", "mc", gen_spatial, "SAT", ("A", "B")),
    "science": Domain("science", "mc", gen_science, "ScienceQA", ("A", "B", "C", "D")),
}
OOD_SETS: dict[str, Domain] = {
    "counting": Domain("counting", "exact", gen_counting, "CountBench-like", tuple("123456")),
    "chart": Domain("chart", "mc", gen_chart, "ChartQA-like", ("A", "B", "C", "D")),
    "novel_referring": Domain("novel_referring", "box", gen_novel_referring, "unseen shapes"),
    "column": Domain("column", "exact", gen_column, "composition", tuple(COLUMNS)),
}
AUX_TASKS: dict[str, Domain] = {
    "aux_column": Domain("aux_column", "exact", gen_aux_column, "", tuple(COLUMNS)),
    "aux_count": Domain("aux_count", "exact", gen_aux_count, "", tuple("123456")),
}
ALL: dict[str, Domain] = {**TRAIN_DOMAINS, **OOD_SETS, **AUX_TASKS}
for _d in ALL.values():
    register_task_kind(_d.name, _d.kind)

SPLITS = ("train", "test", "warmup")


def make_rows(name: str, n: int, seed: int = 0, split: str = "train") -> list[dict]:
    """n rows of task `name` from the (name, split, seed) stream: image, prompt, solution, task."""
    if name not in ALL:
        raise KeyError(f"unknown MiniModo task {name!r}; valid: {', '.join(ALL)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    dom = ALL[name]
    rng = random.Random(stable_seed("minimodo", name, split, int(seed)))
    rows = []
    for _ in range(n):
        img, q, a = dom.generate(rng)
        rows.append({"image": img, "prompt": make_prompt(q, dom.kind), "solution": a, "task": name})
    return rows


def to_dataset(rows: list[dict]):
    """A `datasets.Dataset` with the shared features (identical across sources, for interleaving)."""
    from datasets import Dataset, Features, Image, Value

    features = Features(
        {
            "image": Image(),
            "prompt": [{"role": Value("string"), "content": Value("string")}],
            "solution": Value("string"),
            "task": Value("string"),
        }
    )
    cols = {k: [r[k] for r in rows] for k in ("image", "prompt", "solution", "task")}
    return Dataset.from_dict(cols, features=features)


def test_split(name: str, n: int) -> list[dict]:
    """The held-out test split of a domain or OOD set (fixed seed 0 of the `test` stream)."""
    return make_rows(name, n, 0, "test")


def warmup_rows(rng: random.Random, n: int, weights: dict[str, float], label_noise: float = 0.0) -> list[dict]:
    """n warm-up rows drawn by task weight from the `warmup` stream; a fraction `label_noise` of
    answers (for tasks with a closed answer vocabulary) is replaced by a random valid answer, which
    keeps a base model unsure (GRPO needs reward variance within a group)."""
    names = list(weights)
    ws = [weights[k] for k in names]
    rows = []
    for _ in range(n):
        name = rng.choices(names, ws)[0]
        dom = ALL[name]
        img, q, a = dom.generate(rng)
        if dom.answers and rng.random() < label_noise:
            a = rng.choice(dom.answers)
        rows.append({"image": img, "prompt": make_prompt(q, dom.kind), "solution": a, "task": name})
    return rows


def tokenizer_corpus() -> list[str]:
    """Text the tiny model's tokenizer is trained on: every question and answer form (no images)."""
    rng = random.Random(0)
    lines = []
    for name in ALL:
        for row in make_rows(name, 40, 0, "warmup"):
            lines.append(row["prompt"][1]["content"])
            lines.append(row["solution"])
    return lines
