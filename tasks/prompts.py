"""Prompts shared by every task source (MiniModo here, the paper's datasets in the GPU loaders).

Rows carry a conversational `prompt` (system + user turns, text only); TRL inserts the row's
`image` into the first user turn. The answer format is the paper's: reasoning in `<think>` tags,
the answer in `<answer>` tags.
"""

from __future__ import annotations

THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE = "<think>", "</think>", "<answer>", "</answer>"
FORMAT_TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)

SYSTEM_PROMPT = "Think in <think> </think>, then answer in <answer> </answer>."

# Paper-style instruction suffixes per answer kind (used by the real-dataset loaders too).
KIND_HINTS = {
    "mc": "Answer with the option letter.",
    "exact": "Answer with a single word or number.",
    "box": "Answer with the box as [{'Position': [x1, y1, x2, y2], 'Confidence': c}] on a 0 to 1000 scale.",
    "boxes": "Answer with every box as [{'Position': [x1, y1, x2, y2], 'Confidence': c}, ...] on a 0 to 1000 scale.",
}

SHORT_HINTS = {"mc": "Letter.", "exact": "One word.", "box": "One box.", "boxes": "All boxes."}


def make_prompt(question: str, kind: str | None = None, short: bool = True) -> list[dict[str, str]]:
    """System + user turns for one question. `short` hints keep tiny-model prompts a few tokens long."""
    hint = (SHORT_HINTS if short else KIND_HINTS).get(kind or "", "")
    user = f"{question} {hint}".strip()
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def make_completion(answer: str, thought: str = "") -> str:
    """The target completion for supervised warm-up: `<think>thought</think><answer>answer</answer>`."""
    return f"{THINK_OPEN}{thought}{THINK_CLOSE}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"
