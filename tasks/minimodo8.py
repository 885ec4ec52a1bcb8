"""MiniModo-8: MiniModo's five domains plus three new procedurally generated verifiable ones.

The five MiniModo domains and four out-of-domain sets are served unchanged (tasks/minimodo.py: the
same rows, bit for bit). New, on the same 84 × 84 images on a 3 × 3 grid of 28-px cells:

| domain | mirrors | question | answer | interacts with |
|---|---|---|---|---|
| `tally` | counting (CountBench) | How many {colour} shapes are there? (1-4, among others) | a number *word* (`one` .. `four`) | **conflicts** with the OOD set `counting` ("How many shapes are there?" → a digit): same question form, another answer type |
| `bars` | chart reading (ChartQA) | How tall is the {colour} bar? (bars of 1-5 units) | a digit | helps `chart` and `bar_compare` (reading bar heights) |
| `maze` | path questions | Can the green square reach the red square through white cells? A. yes B. no | mc | spatial layout |

Out-of-domain sets: MiniModo's four (`counting`, `chart`, `novel_referring`, `column`) plus
`bar_compare` ("Is the {c1} bar taller than the {c2} bar? A. yes B. no": reading two bars, a
new question on a trained skill). Rewards are the shared verifiable checkers of tasks/rewards.py by
answer kind (`exact`: normalised exact match of the word or digit; `mc`: the option letter), so
the same reward functions score all eight domains in training and evaluation.

`tally` is the deliberate conflict (shared/notes/mixture-signal.md measured such a domain driving
digit counting to 0): a mixture heavy in `tally` should lower Out-Score through `counting`, so
the mixture matters in both directions.
"""

from __future__ import annotations

import random
from collections import deque

from tasks import minimodo as mm
from tasks.minimodo import CELL, CNAMES, COLORS, IMG, NCELL, SHAPES, Domain, scene, stable_seed
from tasks.prompts import make_prompt
from tasks.rewards import register_task_kind

WORDS = ["one", "two", "three", "four"]
BAR_UNIT = 14  # px per unit of bar height: heights 1..5 fill 14..70 px of the 84-px image


def gen_tally(rng):
    c = rng.choice(CNAMES)
    k = rng.randint(1, 4)
    others = [x for x in CNAMES if x != c]
    n_other = rng.randint(0, min(3, NCELL - k))
    cells = rng.sample(range(NCELL), k + n_other)
    objs = [(rng.choice(SHAPES), c, cell) for cell in cells[:k]]
    objs += [(rng.choice(SHAPES), rng.choice(others), cell) for cell in cells[k:]]
    rng.shuffle(objs)
    return scene(objs, rng), f"How many {c} shapes are there?", WORDS[k - 1]


def _bar_chart(rng):
    from PIL import Image, ImageDraw

    cols = rng.sample(CNAMES, 3)
    heights = [rng.randint(1, 5) for _ in cols]
    img = Image.new("RGB", (IMG, IMG), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for i, (c, h) in enumerate(zip(cols, heights)):
        d.rectangle([i * CELL + 6, IMG - h * BAR_UNIT, i * CELL + CELL - 6, IMG - 1], fill=COLORS[c])
    return img, cols, heights


def gen_bars(rng):
    img, cols, heights = _bar_chart(rng)
    i = rng.randrange(3)
    return img, f"How tall is the {cols[i]} bar?", str(heights[i])


def gen_bar_compare(rng):
    while True:
        img, cols, heights = _bar_chart(rng)
        i, j = rng.sample(range(3), 2)
        if heights[i] != heights[j]:
            break
    return (
        img,
        f"Is the {cols[i]} bar taller than the {cols[j]} bar? A. yes B. no",
        "A" if heights[i] > heights[j] else "B",
    )


def _reachable(walls: set[int], start: int, goal: int) -> bool:
    seen, todo = {start}, deque([start])
    while todo:
        cell = todo.popleft()
        if cell == goal:
            return True
        r, c = divmod(cell, 3)
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            nxt = nr * 3 + nc
            if 0 <= nr < 3 and 0 <= nc < 3 and nxt not in walls and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def gen_maze(rng):
    """Black wall cells on the 3 × 3 grid, a green start and a red goal; balanced yes/no answers."""
    from PIL import Image, ImageDraw

    want = rng.random() < 0.5
    while True:
        start, goal = rng.sample(range(NCELL), 2)
        rest = [c for c in range(NCELL) if c not in (start, goal)]
        walls = set(rng.sample(rest, rng.randint(1, 4)))
        if _reachable(walls, start, goal) == want:
            break
    img = Image.new("RGB", (IMG, IMG), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for cell, fill in [(w, (20, 20, 20)) for w in walls] + [(start, COLORS["green"]), (goal, COLORS["red"])]:
        x, y = (cell % 3) * CELL, (cell // 3) * CELL
        pad = 0 if fill == (20, 20, 20) else 6
        d.rectangle([x + pad, y + pad, x + CELL - 1 - pad, y + CELL - 1 - pad], fill=fill)
    return img, "Can the green square reach the red square through white cells? A. yes B. no", "A" if want else "B"


NEW_TRAIN: dict[str, Domain] = {
    "tally": Domain("tally", "exact", gen_tally, "CountBench-like, answered in words", tuple(WORDS)),
    "bars": Domain("bars", "exact", gen_bars, "ChartQA-like value reading", tuple("12345")),
    "maze": Domain("maze", "mc", gen_maze, "path questions", ("A", "B")),
}
NEW_OOD: dict[str, Domain] = {
    "bar_compare": Domain("bar_compare", "mc", gen_bar_compare, "comparing two bars", ("A", "B")),
}
TRAIN_DOMAINS: dict[str, Domain] = {**mm.TRAIN_DOMAINS, **NEW_TRAIN}
OOD_SETS: dict[str, Domain] = {**mm.OOD_SETS, **NEW_OOD}
NEW: dict[str, Domain] = {**NEW_TRAIN, **NEW_OOD}
ALL: dict[str, Domain] = {**mm.ALL, **NEW}
for _d in NEW.values():
    register_task_kind(_d.name, _d.kind)

# the eight-domain protocol: its training domains (mixture order) and out-of-domain sets
DOMAINS8 = tuple(TRAIN_DOMAINS)
OOD8 = tuple(OOD_SETS)
# the warm-up corpus of eight-domain bases: every training domain, plus MiniModo's auxiliary tasks
WARMUP_WEIGHTS8 = {**{d: 1.0 for d in DOMAINS8}, "aux_count": 0.6, "aux_column": 0.6}


def make_rows(name: str, n: int, seed: int = 0, split: str = "train") -> list[dict]:
    """n rows of task `name` from the (name, split, seed) stream. MiniModo's tasks come from
    tasks.minimodo.make_rows itself (identical rows); the new ones from their own streams."""
    if name in mm.ALL:
        return mm.make_rows(name, n, seed, split)
    if name not in ALL:
        raise KeyError(f"unknown MiniModo-8 task {name!r}; valid: {', '.join(ALL)}")
    if split not in mm.SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(mm.SPLITS)}")
    dom = ALL[name]
    rng = random.Random(stable_seed("minimodo8", name, split, int(seed)))
    rows = []
    for _ in range(n):
        img, q, a = dom.generate(rng)
        rows.append({"image": img, "prompt": make_prompt(q, dom.kind), "solution": a, "task": name})
    return rows


def test_split(name: str, n: int) -> list[dict]:
    """The held-out test split of a domain or OOD set (fixed seed 0 of the `test` stream)."""
    return make_rows(name, n, 0, "test")


def warmup_rows(rng: random.Random, n: int, weights: dict[str, float], label_noise: float = 0.0) -> list[dict]:
    """n warm-up rows drawn by task weight (tasks.minimodo.warmup_rows over all eight domains' tasks)."""
    names = list(weights)
    unknown = [k for k in names if k not in ALL]
    if unknown:
        raise KeyError(f"unknown warm-up tasks {unknown}; valid: {', '.join(ALL)}")
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
    """Every question and answer form of the eight-domain task set (no images)."""
    lines = []
    for name in ALL:
        for row in make_rows(name, 40, 0, "warmup"):
            lines.append(row["prompt"][1]["content"])
            lines.append(row["solution"])
    return lines
