"""Out-of-domain evaluation logic (prompt, extraction, MathVista rules) and the paper's score aggregation.

None of this imports lmms-eval or vLLM: the lmms-eval model class only wires these functions to them.
"""

from __future__ import annotations

import math
import sys

import pandas as pd
import pytest

from harness import suites
from tasks.lmms import build_prompt, extract_final_answer, mathvista_correct, mathvista_extract, mathvista_score
from tasks.lmms.prompting import scores_from_lmms_results
from tasks.paper_datasets import PAPER_INSTRUCTION
from tasks.scoring_paper import PAPER_IN_SIZES, PAPER_OUT_SIZES, paper_scores, weighted_score


def test_importing_the_prompting_does_not_pull_lmms_eval_or_vllm():
    assert "lmms_eval" not in sys.modules and "vllm" not in sys.modules


def test_prompt_ends_with_the_papers_reasoning_instruction():
    p = build_prompt("What is the highest bar?\nAnswer the question using a single word or phrase.  ")
    assert p.startswith("What is the highest bar?") and p.endswith(PAPER_INSTRUCTION)
    assert "<think>" in PAPER_INSTRUCTION and "<answer>" in PAPER_INSTRUCTION


@pytest.mark.parametrize(
    "text, want",
    [
        ("<think>bars…</think><answer> 42 </answer>", "42"),
        ("<think>no tags after</think> Blue", "Blue"),
        ("just an answer", "just an answer"),
        ("<answer>B</answer> trailing <answer>C</answer>", "B"),
        (None, ""),
    ],
)
def test_answer_extraction(text, want):
    assert extract_final_answer(text) == want


MC = {"question_type": "multi_choice", "answer_type": "text", "choices": ["2", "10", "12", "1"], "answer": "12"}


@pytest.mark.parametrize(
    "response, want",
    [
        ("<think>t</think><answer>C</answer>", "12"),  # letter -> option text
        ("<think>t</think><answer>(C)</answer>", "12"),
        ("<think>t</think><answer>12</answer>", "12"),  # option text
        ("<think>t</think><answer>it is 10</answer>", "10"),  # longest option text quoted first
        ("<think>t</think><answer>twelve-ish 1 2</answer>", None),  # falls back to the closest option
    ],
)
def test_mathvista_multiple_choice(response, want):
    got = mathvista_extract(response, MC["question_type"], MC["answer_type"], MC["choices"])
    assert got in MC["choices"]
    if want is not None:
        assert got == want


def test_mathvista_free_form_numbers_and_lists():
    fl = {"question_type": "free_form", "answer_type": "float", "precision": 1, "answer": "3.5"}
    got = mathvista_extract("<think>t</think><answer>about 3.49 cm</answer>", "free_form", "float", None, 1)
    assert got == "3.5" and mathvista_correct(got, fl)
    it = {"question_type": "free_form", "answer_type": "integer", "answer": "1000"}
    got = mathvista_extract("<answer>1,000 people</answer>", "free_form", "integer")
    assert got == "1000" and mathvista_correct(got, it)
    assert not mathvista_correct(mathvista_extract("<answer>none</answer>", "free_form", "integer"), it)
    li = {"answer_type": "list", "answer": "[2, 5]"}
    assert mathvista_correct(mathvista_extract("<answer>2 and 5</answer>", "free_form", "list"), li)


def test_mathvista_prompt_is_its_query_with_the_reasoning_instruction():
    from tasks.lmms import mathvista_prompt
    from tasks.lmms.prompting import LMMS_METRICS, LMMS_TASKS, is_mathvista

    doc = {
        "query": "Hint: Please answer the question and provide the correct option letter.\nQuestion: x?\n"
        "Choices:\n(A) 2\n(B) 10",
        "question": "x?",
    }
    assert mathvista_prompt(doc).startswith("Hint: Please") and mathvista_prompt(doc).endswith(PAPER_INSTRUCTION)
    # MathVista never goes through lmms-eval (its scorer calls a paid API); the others do
    assert [n for n, t in LMMS_TASKS.items() if is_mathvista(t)] == ["MathVista"]
    assert set(LMMS_METRICS) == {t for t in LMMS_TASKS.values() if not is_mathvista(t)}


def test_mathvista_score_is_accuracy_over_items():
    samples = [
        (MC, "<answer>C</answer>"),
        (MC, "<answer>A</answer>"),
        ({"question_type": "free_form", "answer_type": "integer", "answer": "7"}, "<answer>7</answer>"),
        ({"question_type": "free_form", "answer_type": "integer", "answer": "7"}, "no idea"),
    ]
    assert mathvista_score(samples) == pytest.approx(0.5)
    assert math.isnan(mathvista_score([]))


def test_lmms_results_are_read_and_percent_normalised():
    results = {
        "chartqa": {"alias": "chartqa", "relaxed_overall,none": 0.41, "relaxed_overall_stderr,none": 0.01},
        "infovqa_val": {"anls,none": 53.57},
        "mmmu_val": {"mmmu_acc,none": 0.3811},
    }
    got = scores_from_lmms_results(results, skip=["MathVista"])
    assert got == pytest.approx({"ChartQA": 0.41, "InfoVQA": 0.5357, "MMMU": 0.3811})
    with pytest.raises(KeyError, match="metrics found"):
        scores_from_lmms_results({"chartqa": {"bleu,none": 1.0}}, {"ChartQA": "chartqa"})


def test_in_and_out_score_reproduce_the_papers_table():
    """Size-weighted means reproduce every recorded In/Out-Score of the paper's seed runs."""
    runs = pd.read_csv(suites.load("paper-qwen2vl-2b").path / "runs.csv")
    for _, row in runs.iterrows():
        got = paper_scores(row.to_dict())
        assert got["In_Score"] == pytest.approx(row["In_Score"], abs=5e-5)
        assert got["Out_Score"] == pytest.approx(row["Out_Score"], abs=5e-5)
    assert sum(PAPER_IN_SIZES.values()) == 7342 and sum(PAPER_OUT_SIZES.values()) == 7201


def test_weighted_score_refuses_missing_benchmarks():
    with pytest.raises(KeyError, match="MMMU"):
        weighted_score({"ChartQA": 1.0, "InfoVQA": 1.0, "MathVista": 1.0}, PAPER_OUT_SIZES)
    assert math.isnan(weighted_score({"LISA": float("nan"), "SAT": 1, "ScienceQA": 1}, PAPER_IN_SIZES))
