"""Prompting and answer extraction for out-of-domain evaluation (pure Python; no lmms-eval import).

The trained models answer in the paper's format, `<think>…</think><answer>…</answer>`. lmms-eval's
scorers expect a bare answer, so the wrapper appends the paper's reasoning instruction to every
question and hands back only what is inside `<answer>`.

MathVista is not run through lmms-eval: its scorer asks a paid LLM (OpenAI) to extract any answer
that is not already a bare option text or number, and in the lmms-eval versions read while writing
this it retries that request without limit when no key is set. Instead the GPU evaluation feeds
MathVista's own `query` (hint, question, choices) to the model and a rule-based extraction decides
(letters and option texts for multiple choice, numbers at the stated precision, lists). Its scores
are therefore not directly comparable with GPT-extracted MathVista numbers (it is stricter on
rambling answers); models that answer in tags, as the paper's do, are scored the same by both.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tasks.paper_datasets import PAPER_INSTRUCTION
from tasks.answer_format import extract_answer, normalize_answer

# Out-of-domain score name -> lmms-eval task (sizes in the protocol file weigh Out-Score).
LMMS_TASKS: dict[str, str] = {
    "ChartQA": "chartqa",
    "InfoVQA": "infovqa_val",
    "MathVista": "mathvista_testmini",
    "MMMU": "mmmu_val",
}
# The metric read from lmms-eval's results for each task, in order of preference.
LMMS_METRICS: dict[str, tuple[str, ...]] = {
    "chartqa": ("relaxed_overall", "relaxed_accuracy", "exact_match"),
    "infovqa_val": ("anls", "exact_match"),
    "mmmu_val": ("mmmu_acc", "accuracy", "exact_match"),
}
DEFAULT_METRICS = ("exact_match", "accuracy", "acc")
# The paper reports exact match for ChartQA and InfoVQA (its Table 1), not lmms-eval's relaxed accuracy (ChartQA:
# a number within 5% counts) or ANLS (InfoVQA: partial credit for near strings). For these tasks the score is
# recomputed from lmms-eval's logged samples by `exact_match_from_samples`; lmms-eval's own metric stays in the
# raw results for comparison.
EXACT_MATCH_TASKS = ("chartqa", "infovqa_val")
# MathVista is scored here, by rules (see the module docstring): Hub id and split of its test-mini set.
MATHVISTA_HUB_ID, MATHVISTA_SPLIT = "AI4Math/MathVista", "testmini"


def is_mathvista(task: str) -> bool:
    return task.startswith("mathvista")


def mathvista_prompt(doc: Mapping[str, Any]) -> str:
    """MathVista's own query (hint, question, choices) with the paper's reasoning instruction."""
    return build_prompt(str(doc.get("query") or doc.get("question", "")))


def build_prompt(context: str) -> str:
    """The benchmark's question followed by the paper's reasoning instruction."""
    return f"{context.rstrip()}\n{PAPER_INSTRUCTION}"


def extract_final_answer(text: str) -> str:
    """What lmms-eval should score: the `<answer>` content; else what follows `</think>`; else the text."""
    if not isinstance(text, str):
        return ""
    inner = extract_answer(text)
    if inner is not None:
        return inner.strip()
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1].strip()
    return text.strip()


# -- MathVista, rule-based -----------------------------------------------------------------------
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_LETTER = re.compile(r"^\(?([A-Za-z])\)?[.):]?$")


def _numbers(text: str) -> list[float]:
    out = []
    for m in _NUMBER.findall(text):
        try:
            out.append(float(m.replace(",", "")))
        except ValueError:
            pass
    return out


def mathvista_extract(
    response: str,
    question_type: str,
    answer_type: str,
    choices: Sequence[str] | None = None,
    precision: int | None = None,
) -> str:
    """The answer MathVista's scorer compares, extracted by rules from a model response.

    multi_choice: an option letter maps to its option text; else an option text quoted in the
    answer; else the closest option text. free_form: integer / float (rounded to `precision`) /
    list of numbers / normalised text.
    """
    ans = extract_final_answer(response)
    if question_type == "multi_choice" and choices:
        letter = _LETTER.match(ans.strip())
        if letter:
            idx = ord(letter.group(1).upper()) - ord("A")
            if 0 <= idx < len(choices):
                return str(choices[idx])
        low = ans.lower()
        for c in sorted(choices, key=lambda c: -len(str(c))):  # longest first: "10" before "1"
            if str(c).lower() == low:
                return str(c)
        for c in sorted(choices, key=lambda c: -len(str(c))):
            if str(c).lower() in low:
                return str(c)
        return max(choices, key=lambda c: difflib.SequenceMatcher(None, low, str(c).lower()).ratio())
    if answer_type == "integer":
        nums = _numbers(ans)
        return str(int(round(nums[0]))) if nums else ""
    if answer_type == "float":
        nums = _numbers(ans)
        if not nums:
            return ""
        missing = precision is None or (isinstance(precision, float) and math.isnan(precision))
        p = 2 if missing else int(precision)
        return f"{round(nums[0], p):.{p}f}"
    if answer_type == "list":
        return str([int(n) if n.is_integer() else n for n in _numbers(ans)])
    return ans.strip()


def mathvista_correct(extracted: str, doc: Mapping[str, Any]) -> bool:
    """Compare an extracted answer with a MathVista item (its `answer`, `answer_type`, `precision`)."""
    truth = str(doc.get("answer", ""))
    atype = doc.get("answer_type", "text")
    if not extracted:
        return False
    if atype in ("integer", "float"):
        try:
            p = doc.get("precision")
            p = 2 if p is None or (isinstance(p, float) and math.isnan(p)) else int(p)
            a, b = float(extracted), float(truth)
            return round(a, p if atype == "float" else 0) == round(b, p if atype == "float" else 0)
        except ValueError:
            return False
    if atype == "list":
        return [float(x) for x in _numbers(extracted)] == [float(x) for x in _numbers(truth)]
    return normalize_answer(extracted) == normalize_answer(truth)


def mathvista_score(samples: Iterable[tuple[Mapping[str, Any], str]]) -> float:
    """Accuracy over (MathVista item, model response) pairs, with rule-based extraction."""
    hits = n = 0
    for doc, response in samples:
        extracted = mathvista_extract(
            response,
            doc.get("question_type", "free_form"),
            doc.get("answer_type", "text"),
            doc.get("choices"),
            doc.get("precision"),
        )
        hits += mathvista_correct(extracted, doc)
        n += 1
    return hits / n if n else float("nan")


def _targets(target: Any) -> list[str]:
    """A sample's accepted answers: one string, or a list of them (InfoVQA's `answers`), or a list's repr."""
    if isinstance(target, str) and target.startswith("[") and target.endswith("]"):
        import ast

        try:
            target = ast.literal_eval(target)
        except (ValueError, SyntaxError):
            pass
    if isinstance(target, (list, tuple)):
        return [str(t) for t in target]
    return [str(target)]


def exact_match_from_samples(samples: Iterable[Mapping[str, Any]]) -> float:
    """Exact match over lmms-eval's logged samples (`target`, `filtered_resps`): the response, normalised
    (case, surrounding spaces and end punctuation; numbers compared as numbers), equals one of the targets."""
    from tasks.answer_format import exact_match

    hits = n = 0
    for s in samples:
        resp = s.get("filtered_resps") or s.get("resps") or [""]
        while isinstance(resp, (list, tuple)):
            resp = resp[0] if resp else ""
        hits += any(exact_match(str(resp), t) for t in _targets(s.get("target")))
        n += 1
    return hits / n if n else float("nan")


def scores_from_lmms_results(
    results: Mapping[str, Mapping[str, Any]], tasks: Mapping[str, str] = LMMS_TASKS, skip: Sequence[str] = ()
) -> dict[str, float]:
    """score name -> value from lmms-eval's `results` block (`{task: {"metric,filter": value}}`)."""
    out = {}
    for name, task in tasks.items():
        if name in skip:
            continue
        block = results.get(task)
        if block is None:
            raise KeyError(f"lmms-eval results have no task {task!r} (for {name}); tasks found: {sorted(results)}")
        by_metric = {k.split(",", 1)[0]: v for k, v in block.items() if isinstance(v, (int, float))}
        wanted = LMMS_METRICS.get(task, DEFAULT_METRICS)  # a local task (e.g. paper-protocol-tiny's) reports these
        chosen = next((m for m in wanted if m in by_metric), None)
        if chosen is None:
            raise KeyError(f"lmms-eval task {task!r} reports none of {wanted}; metrics found: {sorted(by_metric)}")
        value = float(by_metric[chosen])
        out[name] = value / 100.0 if value > 1.0 else value  # some tasks report percent
    return out
