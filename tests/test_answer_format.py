"""The answer format the rewards read (tasks/answer_format.py): the paper's think/answer format, the shapes
TRL hands completions in, and the one-to-one box matching."""

import itertools
import re

import pytest

from tasks import answer_format as F


def test_format_equivalent_to_regex_on_small_strings():
    pat = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.S)
    alphabet = ["<think>", "</think>", "<answer>", "</answer>", " ", "a", "\n"]
    for n in range(1, 6):
        for parts in itertools.product(alphabet, repeat=n):
            s = "".join(parts)
            assert F.format_ok(s) == bool(pat.fullmatch(s.strip())), s


def test_completion_shapes():
    assert F.completion_text("x") == "x"
    assert F.completion_text([{"role": "assistant", "content": [{"type": "text", "text": "y"}]}]) == "y"
    assert F.completion_text(None) == ""
    assert F.completion_text({"content": "z"}) == "z"


def test_box_matching_is_the_hungarian_assignment_not_greedy():
    # greedy would pair p0 with t0 (IoU 0.5) and leave p1 on t1 (IoU 0.5): 0.5 in all; the best one-to-one
    # assignment pairs p0 with t1 and p1 with t0, both exact: 1.0
    t0, t1 = [0, 0, 100, 100], [0, 0, 50, 100]
    p0, p1 = [0, 0, 50, 100], [0, 0, 100, 100]
    assert F.matched_iou([p0, p1], [t0, t1]) == pytest.approx(1.0)


def test_box_answers_round_trip_through_the_parser():
    boxes = [(0.0, 0.0, 100.0, 100.0), (500.0, 500.0, 600.0, 600.0)]
    text = F.format_box_answer(boxes)
    assert (
        text == "[{'Position': [0, 0, 100, 100], 'Confidence': 1}, {'Position': [500, 500, 600, 600], 'Confidence': 1}]"
    )
    assert F.parse_boxes(text) == boxes
    assert F.parse_scored_boxes(text) == [(b, 1.0) for b in boxes]
