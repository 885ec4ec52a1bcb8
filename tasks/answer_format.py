"""The answer format the rewards read: finding the answer in a completion, and reading it as an option
letter, a short answer or boxes.

A completion is `<think>...</think><answer>...</answer>` (the paper's format, after Visual-RFT and VLM-R1); the
reward rules (tasks/rewards.py) score what these functions read. The dataset generators use
`format_box_answer` to write box solutions in the same Visual-RFT form the parser reads
(`[{'Position': [x1, y1, x2, y2], 'Confidence': c}]`, 0..1000 coordinates).

Hostile completions (huge, nested or unclosed tags, non-numeric boxes, NaN, any unicode) never raise and
take well under a millisecond: parsing is linear (str.find, bounded regexes), input is capped at
`MAX_CHARS` and the box count at `MAX_BOXES`. Fuzzed in tests/test_answer_format.py and
tests/test_tasks_rewards.py.
"""

from __future__ import annotations

import math
import re
from typing import Any

MAX_CHARS = 8192  # longer completions score 0 (no real answer is this long; bounds the work)
MAX_BOXES = 32  # boxes parsed from one answer at most


def completion_text(c: Any) -> str:
    """The text of one completion, whatever shape TRL hands it in; never raises."""
    try:
        if isinstance(c, str):
            return c
        if isinstance(c, dict):
            c = [c]
        if isinstance(c, (list, tuple)):
            parts = []
            for m in c:
                content = m.get("content", "") if isinstance(m, dict) else m
                if isinstance(content, list):  # [{"type": "text", "text": ...}]
                    content = "".join(x.get("text", "") for x in content if isinstance(x, dict))
                parts.append(content if isinstance(content, str) else str(content))
            return "".join(parts)
        return "" if c is None else str(c)
    except Exception:  # pragma: no cover - a completion we cannot read scores 0
        return ""


def extract_answer(text: str) -> str | None:
    """Content of the first `<answer>...</answer>` block, or None (linear time)."""
    if not isinstance(text, str) or len(text) > MAX_CHARS:
        return None
    i = text.find("<answer>")
    if i < 0:
        return None
    j = text.find("</answer>", i + 8)
    if j < 0:
        return None
    return text[i + 8 : j]


_THINK_ANSWER = re.compile(r"</think>\s*<answer>")


def format_ok(text: str) -> bool:
    """Equivalent of the paper's `re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>", text, re.S)`
    on the stripped text, in linear time."""
    if not isinstance(text, str) or len(text) > MAX_CHARS:
        return False
    s = text.strip()
    if not (s.startswith("<think>") and s.endswith("</answer>")):
        return False
    end = len(s) - len("</answer>")
    for m in _THINK_ANSWER.finditer(s, 7):
        if m.end() <= end:
            return True
    return False


_LETTER = re.compile(r"\s*\(?\s*([A-Za-z])\s*\)?\s*(?:[.:)\]]|\s|$)")


def parse_option(answer: str | None) -> str | None:
    """The option letter an answer gives ("B", "(b)", "B. circle", "B: ..."), upper case, or None."""
    if answer is None:
        return None
    m = _LETTER.match(answer[:64])
    return m.group(1).upper() if m else None


_WS = re.compile(r"\s+")


def normalize_answer(s: str | None) -> str:
    if s is None:
        return ""
    s = _WS.sub(" ", s.strip().lower()[:256]).strip(" .,;:!?\"'")
    return s


def _as_number(s: str) -> float | None:
    if len(s) > 32:
        return None
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def exact_match(answer: str | None, solution: str) -> bool:
    a, b = normalize_answer(answer), normalize_answer(solution)
    if not a:
        return False
    if a == b:
        return True
    x, y = _as_number(a), _as_number(b)
    return x is not None and y is not None and x == y


_NUM = r"(-?\d{1,7}(?:\.\d{1,7})?)"
_BOX = re.compile(r"\[\s*" + r"\s*,\s*".join([_NUM] * 4) + r"\s*\]")


def parse_boxes(text: str | None, limit: int = MAX_BOXES) -> list[tuple[float, float, float, float]]:
    """Every `[x1, y1, x2, y2]` in the text (Visual-RFT answers and plain box lists alike), as
    (x1, y1, x2, y2) clipped to 0..1000; degenerate boxes (x2 <= x1 or y2 <= y1) are dropped."""
    if not isinstance(text, str) or len(text) > MAX_CHARS:
        return []
    out = []
    for m in _BOX.finditer(text):
        x1, y1, x2, y2 = (min(1000.0, max(0.0, float(v))) for v in m.groups())
        if x2 > x1 and y2 > y1:
            out.append((x1, y1, x2, y2))
            if len(out) >= limit:
                break
    return out


def iou(a, b) -> float:
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def matched_iou(pred, truth) -> float:
    """Hungarian one-to-one matching on IoU; summed IoU / max(len(pred), len(truth))."""
    if not pred or not truth:
        return 0.0
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    m = np.array([[iou(p, t) for t in truth] for p in pred])
    rows, cols = linear_sum_assignment(m, maximize=True)
    return float(m[rows, cols].sum()) / max(len(pred), len(truth))


def format_box_answer(boxes, confidence: float = 1.0) -> str:
    """Visual-RFT answer text for boxes: `[{'Position': [x1, y1, x2, y2], 'Confidence': c}, ...]`."""
    return (
        "["
        + ", ".join(
            f"{{'Position': [{', '.join(str(int(round(v))) for v in b)}], 'Confidence': {confidence:g}}}" for b in boxes
        )
        + "]"
    )


# the paper-v2 rule's detection answers, each box with its confidence (tasks/rewards.py detection_reward)
_SCORED_BOX = re.compile(
    r"['\"]Position['\"]\s*:\s*\[\s*" + r"\s*,\s*".join([_NUM] * 4) + r"\s*\]\s*,\s*['\"]Confidence['\"]\s*:\s*" + _NUM
)


def parse_scored_boxes(text: str | None, limit: int = MAX_BOXES) -> list[tuple[tuple[float, ...], float]]:
    """Visual-RFT answer entries `{'Position': [x1, y1, x2, y2], 'Confidence': c}` as (box, confidence),
    duplicates (same position) removed, in the order given; degenerate boxes dropped."""
    if not isinstance(text, str) or len(text) > MAX_CHARS:
        return []
    out, seen = [], set()
    for m in _SCORED_BOX.finditer(text):
        x1, y1, x2, y2, c = (float(v) for v in m.groups())
        box = (x1, y1, x2, y2)
        if x2 > x1 and y2 > y1 and box not in seen:
            seen.add(box)
            out.append((box, c))
            if len(out) >= limit:
                break
    return out
