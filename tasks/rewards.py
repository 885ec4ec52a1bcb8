"""Verifiable rewards, in TRL's reward-function signature.

Every function here is `f(prompts, completions, **columns) -> list[float | None]`, as
`trl.GRPOTrainer(reward_funcs=[...])` calls it: `completions` are strings or conversational
messages (`[{"role": "assistant", "content": str}]`); dataset columns (`solution`, `task`, ...)
arrive as keyword lists. The rules follow the paper (MoDoMoDo, arXiv 2505.24871, after Visual-RFT
and VLM-R1):

- format: the completion is `<think>...</think>` then `<answer>...</answer>` and nothing else
  (surrounding whitespace allowed): 1, else 0;
- accuracy, by answer kind (chosen from the row's `task`, else guessed from the solution):
  - `mc`: the option letter in the answer equals the solution's letter;
  - `exact`: normalised short answer equals the solution (case, spaces, end punctuation, numbers
    compared as numbers);
  - `box`: IoU of the first predicted box with the solution box, Visual-RFT format
    `[{'Position': [x1, y1, x2, y2], 'Confidence': c}]` on 0..1000 coordinates;
  - `boxes`: COCO-style multi-box answers, boxes matched one to one by the Hungarian assignment
    (scipy) on IoU; the reward is the summed IoU of the matches divided by max(#predicted, #truth),
    so missing and extra boxes both cost;
  a failed parse (no `<answer>` block, no option letter, no box) zeroes the sample's accuracy.
- per-sample total: 2·accuracy + 1·format (`REWARD_WEIGHTS`, passed to GRPOConfig.reward_weights).
- the reward rule (`REWARD_RULES`, a protocol setting, `ProtocolConfig.reward_rule`):
  `paper` (the default): a failed answer parse zeroes the sample's whole reward, format included,
  as the paper states (`<think>x</think><answer>no box here</answer>` on a box task totals 0);
  `format_kept`: the format reward counts whether or not the answer parses (the rule modomodo used
  before the paper's became the default; the MiniModo recorded suites were made with it).

Dataset-side input never raises either: a `solution` that is not text (even nested 50,000 deep)
scores as no solution, a `task` that is not a string (even unhashable) is ignored.

Hostile completions never raise and take well under a millisecond: the answer format is read by
tasks/answer_format.py (linear parsing, capped input). Fuzzed in tests/test_tasks_rewards.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from tasks.answer_format import (
    completion_text,
    exact_match,
    extract_answer,
    format_ok,
    iou,
    matched_iou,
    normalize_answer,
    parse_boxes,
    parse_option,
    parse_scored_boxes,
)

# tasks/minimodo.py (format_box_answer) and tasks/paper_datasets.py (extract_answer) import these from here,
# and both files are hashed into the base models' identity (harness/training/build_identity.py): moving their
# import lines would rebuild every cached base, so this module keeps answering for both names.
from tasks.answer_format import format_box_answer  # noqa: F401

REWARD_WEIGHTS = (2.0, 1.0)  # (accuracy, format), in the order of REWARD_FUNCS

ANSWER_KINDS = ("mc", "exact", "box", "boxes")

# task name -> answer kind. MiniModo domains register here (tasks/minimodo.py); the GPU loaders of
# the paper's datasets add theirs (coco -> boxes, lisa -> box, geoqa/scienceqa -> mc, sat -> mc).
TASK_KINDS: dict[str, str] = {
    "coco": "boxes",
    "lisa": "box",
    "geoqav": "mc",
    "geoqa": "mc",
    "scienceqa": "mc",
    # SAT is left out on purpose: the paper lists its answers as natural language, but the Hub
    # copy's format is not known here, so its kind is inferred per row from the solution (an
    # option letter -> mc, anything else -> normalised exact match).
}


def register_task_kind(task: str, kind: str) -> None:
    if kind not in ANSWER_KINDS:
        raise ValueError(f"unknown answer kind {kind!r}; valid: {', '.join(ANSWER_KINDS)}")
    TASK_KINDS[task] = kind


# ------------------------------------------------------------------------------------------------
# scoring one sample
def _text(value: Any) -> str:
    """A dataset cell as text: str as is, None as "", anything else through str() (a number
    "3"), and "" when even that fails (a list nested 50,000 deep raises RecursionError)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - RecursionError, a __str__ that raises: no usable solution
        return ""


def answer_kind(task: str | None, solution: str) -> str:
    if isinstance(task, str) and task in TASK_KINDS:  # an unhashable or non-text task is ignored
        return TASK_KINDS[task]
    sol = solution.strip() if isinstance(solution, str) else ""
    boxes = parse_boxes(sol)
    if boxes:
        return "boxes" if len(boxes) > 1 else "box"
    if re.fullmatch(r"\(?[A-Z]\)?", sol):
        return "mc"
    return "exact"


def accuracy(text: str, solution: str, task: str | None = None, kind: str | None = None) -> float:
    """Accuracy (0/1, or IoU in [0, 1] for boxes) of one completion text; never raises."""
    try:
        kind = kind or answer_kind(task, solution)
        ans = extract_answer(text)
        if ans is None:
            return 0.0
        if kind == "mc":
            got = parse_option(ans)
            return float(got is not None and got == parse_option(solution))
        if kind == "exact":
            return float(exact_match(ans, solution))
        pred, truth = parse_boxes(ans), parse_boxes(solution)
        if kind == "box":
            return iou(pred[0], truth[0]) if pred and truth else 0.0
        return matched_iou(pred, truth)
    except Exception:  # pragma: no cover - defence in depth: a reward never takes training down
        return 0.0


def answer_parsed(text: str, solution: str, task: str | None = None, kind: str | None = None) -> bool:
    """Does the completion's answer parse for its kind (an `<answer>` block holding an option letter,
    a non-empty short answer, at least one box)? The paper's rule zeroes the whole reward when not."""
    try:
        kind = kind or answer_kind(task, solution)
        ans = extract_answer(text)
        if ans is None:
            return False
        if kind == "mc":
            return parse_option(ans) is not None
        if kind == "exact":
            return bool(normalize_answer(ans))
        return bool(parse_boxes(ans))
    except Exception:  # pragma: no cover - defence in depth
        return False


# ------------------------------------------------------------------------------------------------
# TRL reward functions
def _column(kwargs: dict, name: str, n: int) -> list:
    return _per_row(kwargs.get(name), n, None)


def _per_row(values: Any, n: int, fill: Any) -> list:
    """A dataset column as one value per completion (a missing or unreadable column: `fill`)."""
    if values is None or isinstance(values, (str, bytes)):
        return [fill] * n
    try:
        out = list(values)
    except Exception:  # noqa: BLE001 - not iterable
        return [fill] * n
    return out + [fill] * (n - len(out))


def format_reward(prompts=None, completions: Sequence = (), **kwargs) -> list[float | None]:
    """1.0 when the completion is `<think>...</think><answer>...</answer>`, else 0.0."""
    return [1.0 if format_ok(completion_text(c)) else 0.0 for c in completions]


def accuracy_reward(
    prompts=None, completions: Sequence = (), solution: Sequence[str] = (), task=None, **kwargs
) -> list[float | None]:
    """Accuracy of each completion against its row's `solution`, the checker chosen by `task`."""
    completions = list(completions)
    n = len(completions)
    tasks, sols = _per_row(task, n, None), _per_row(solution, n, "")
    return [accuracy(completion_text(c), _text(s), t) for c, s, t in zip(completions, sols, tasks)]


def parsed_format_reward(
    prompts=None, completions: Sequence = (), solution: Sequence[str] = (), task=None, **kwargs
) -> list[float | None]:
    """The paper's format reward: 1.0 when the completion is `<think>...</think><answer>...</answer>`
    AND its answer parses for the row's kind (`answer_parsed`), else 0.0."""
    completions = list(completions)
    n = len(completions)
    tasks, sols = _per_row(task, n, None), _per_row(solution, n, "")
    out: list[float | None] = []
    for c, s, t in zip(completions, sols, tasks):
        text = completion_text(c)
        out.append(1.0 if format_ok(text) and answer_parsed(text, _text(s), t) else 0.0)
    return out


def _kind_reward(kind: str) -> Callable:
    def reward(prompts=None, completions: Sequence = (), solution: Sequence[str] = (), task=None, **kwargs):
        completions = list(completions)
        n = len(completions)
        tasks, sols = _per_row(task, n, None), _per_row(solution, n, "")
        out: list[float | None] = []
        for c, s, t in zip(completions, sols, tasks):
            s = _text(s)
            out.append(accuracy(completion_text(c), s, kind=kind) if answer_kind(t, s) == kind else None)
        return out

    reward.__name__ = f"{kind}_reward"
    reward.__doc__ = f"Accuracy for rows whose answer kind is {kind!r}; None (not applicable) for other rows."
    return reward


# Kind-specific variants (None for rows of another kind), for per-kind logging in TRL.
mc_reward = _kind_reward("mc")
exact_reward = _kind_reward("exact")
iou_reward = _kind_reward("box")
multi_box_reward = _kind_reward("boxes")

# ------------------------------------------------------------------------------------------------
# paper-v2: the paper's per-task rules as its reference code computes them
#
# Checked against R1-V (Deep-Agent/R1-V, src/r1-v/src/open_r1/grpo.py, `accuracy_reward`) and Visual-RFT
# (its detection GRPO script's `accuracy_reward_iou`, `sort_and_calculate_iou`, `compute_reward_iou_v2`),
# which the paper builds on, and against the paper's Table 1 (train rewards "IoU, Format" or "Acc, Format";
# test metrics LISA mean IoU, SAT and ScienceQA exact match). Per answer kind:
# - mc (GeoQAV, ScienceQA) and exact (SAT): R1-V's string match, the stripped `<answer>` content equal to
#   the stripped solution. "a triangle" is not option A, nor is "B. circle" option B (the `paper` rule's
#   option parser accepted both: a letter followed by a space or punctuation);
# - box (LISA): the IoU of the first predicted box (a continuous reward, and the test metric mean IoU);
# - boxes (COCO): Visual-RFT's detection reward: predicted `{'Position': [...], 'Confidence': c}` entries,
#   duplicates removed, taken by descending confidence, each matched greedily to the unmatched ground-truth
#   box of highest IoU; a match counts its IoU only when the IoU exceeds 0.5 (else 0); the sum is divided by
#   max(#truth, #predicted) and capped at 1. (The `paper` rule's Hungarian matching had no threshold, so a
#   box at IoU 0.3 earned 0.3.)
# A failed parse zeroes the sample's whole reward, as in `paper`: for mc a bare option letter, for exact a
# non-empty answer, for box one box, for boxes one Position/Confidence entry.
# Not reproduced: R1-V first tries math_verify's symbolic equality (not installed here; it only adds matches
# for mathematical expressions, which none of the paper's five training sets has as answers).
DETECTION_IOU_THRESHOLD = 0.5


def detection_reward(
    pred: list[tuple[tuple[float, ...], float]], truth, threshold: float = DETECTION_IOU_THRESHOLD
) -> float:
    """Visual-RFT's COCO reward (see above): greedy by confidence, IoU counted above `threshold` only."""
    if not pred or not truth:
        return 0.0
    matched: set[int] = set()
    total = 0.0
    for box, _c in sorted(pred, key=lambda bc: -bc[1]):  # stable: ties keep the answer's order
        best, best_i = 0.0, -1
        for i, t in enumerate(truth):
            if i not in matched:
                v = iou(t, box)
                if v > best:
                    best, best_i = v, i
        if best > threshold:
            total += best
            matched.add(best_i)
    return min(1.0, total / max(len(truth), len(pred)))


_BARE_LETTER = re.compile(r"[A-Za-z]")


def accuracy_v2(text: str, solution: str, task: str | None = None, kind: str | None = None) -> float:
    """paper-v2 accuracy (0/1, or IoU for boxes) of one completion; never raises."""
    try:
        kind = kind or answer_kind(task, solution)
        ans = extract_answer(text)
        if ans is None:
            return 0.0
        if kind in ("mc", "exact"):
            return float(bool(ans.strip()) and ans.strip() == solution.strip())
        truth = parse_boxes(solution)
        if kind == "box":
            pred = parse_boxes(ans)
            return iou(pred[0], truth[0]) if pred and truth else 0.0
        return detection_reward(parse_scored_boxes(ans), truth)
    except Exception:  # pragma: no cover - defence in depth
        return 0.0


def answer_parsed_v2(text: str, solution: str, task: str | None = None, kind: str | None = None) -> bool:
    try:
        kind = kind or answer_kind(task, solution)
        ans = extract_answer(text)
        if ans is None:
            return False
        if kind == "mc":
            return bool(_BARE_LETTER.fullmatch(ans.strip()))
        if kind == "exact":
            return bool(ans.strip())
        if kind == "box":
            return bool(parse_boxes(ans))
        return bool(parse_scored_boxes(ans))
    except Exception:  # pragma: no cover
        return False


def accuracy_v2_reward(
    prompts=None, completions: Sequence = (), solution: Sequence[str] = (), task=None, **kwargs
) -> list[float | None]:
    """paper-v2 accuracy of each completion against its row's `solution`."""
    completions = list(completions)
    n = len(completions)
    tasks, sols = _per_row(task, n, None), _per_row(solution, n, "")
    return [accuracy_v2(completion_text(c), _text(s), t) for c, s, t in zip(completions, sols, tasks)]


def parsed_format_v2_reward(
    prompts=None, completions: Sequence = (), solution: Sequence[str] = (), task=None, **kwargs
) -> list[float | None]:
    """paper-v2 format reward: the think/answer format AND an answer that parses for the row's kind."""
    completions = list(completions)
    n = len(completions)
    tasks, sols = _per_row(task, n, None), _per_row(solution, n, "")
    return [
        1.0 if format_ok(text := completion_text(c)) and answer_parsed_v2(text, _text(s), t) else 0.0
        for c, s, t in zip(completions, sols, tasks)
    ]


# The reward rules a protocol may name (ProtocolConfig.reward_rule, the GPU protocol's training.reward_rule):
# rule -> (accuracy, format) functions. `paper` and `format_kept` are recorded in committed results: never
# change them; a new reading of the paper is a new rule name.
REWARD_RULES: dict[str, tuple[Callable, Callable]] = {
    "paper": (accuracy_reward, parsed_format_reward),  # a failed answer parse zeroes the whole reward
    "format_kept": (accuracy_reward, format_reward),  # format counts on its own (modomodo's first rule)
    "paper-v2": (accuracy_v2_reward, parsed_format_v2_reward),  # the reference code's per-task rules (above)
}
ACCURACY_BY_RULE: dict[str, Callable] = {"paper": accuracy, "format_kept": accuracy, "paper-v2": accuracy_v2}
DEFAULT_REWARD_RULE = "paper"


def reward_funcs(rule: str = DEFAULT_REWARD_RULE) -> tuple[Callable, Callable]:
    """The (accuracy, format) reward functions of a rule, in the order of REWARD_WEIGHTS."""
    if rule not in REWARD_RULES:
        raise ValueError(f"unknown reward rule {rule!r}; valid: {', '.join(REWARD_RULES)}")
    return REWARD_RULES[rule]


REWARD_FUNCS = reward_funcs(DEFAULT_REWARD_RULE)


def total_reward(text: str, solution: str, task: str | None = None, rule: str = DEFAULT_REWARD_RULE) -> float:
    """2·accuracy + 1·format for one completion under `rule` (what GRPO optimises with REWARD_WEIGHTS)."""
    fmt = format_ok(text)
    if rule == "paper-v2":
        fmt = fmt and answer_parsed_v2(text, _text(solution), task)
        return REWARD_WEIGHTS[0] * accuracy_v2(text, _text(solution), task) + REWARD_WEIGHTS[1] * float(fmt)
    if rule == "paper":
        fmt = fmt and answer_parsed(text, _text(solution), task)
    elif rule not in REWARD_RULES:
        raise ValueError(f"unknown reward rule {rule!r}; valid: {', '.join(REWARD_RULES)}")
    return REWARD_WEIGHTS[0] * accuracy(text, _text(solution), task) + REWARD_WEIGHTS[1] * float(fmt)
