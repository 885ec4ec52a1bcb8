"""Reward functions: the paper's rules, TRL's signature, and hostile completions (hypothesis)."""

import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks import answer_format as F
from tasks import rewards as R

BOX = "[{'Position': [0, 0, 500, 500], 'Confidence': 0.9}]"


def wrap(ans, think="x"):
    return f"<think>{think}</think><answer>{ans}</answer>"


def conv(text):
    return [{"role": "assistant", "content": text}]


# ---------------------------------------------------------------------------------------------- rules
def test_format_reward_matches_paper_rule():
    good = [
        "<think>a</think><answer>b</answer>",
        "<think></think>\n <answer></answer>",
        "  <think>a\nb</think><answer>c</answer>\n",
        "<think>a</think>b</think><answer>c</answer>",
    ]
    bad = [
        "<answer>b</answer>",
        "<think>a</think>",
        "<think>a</think><answer>b</answer> extra",
        "",
        "<think>a</think><answer>b",
        "<think>a<answer>b</answer>",
        "x<think>a</think><answer>b</answer>",
    ]
    assert R.format_reward(None, [conv(t) for t in good]) == [1.0] * len(good)
    assert R.format_reward(None, [conv(t) for t in bad]) == [0.0] * len(bad)


@pytest.mark.parametrize(
    "ans,sol,expected",
    [
        ("B", "B", 1.0),
        ("(b)", "B", 1.0),
        ("B. circle", "B", 1.0),
        (" C: 4", "C", 1.0),
        ("A", "B", 0.0),
        ("", "B", 0.0),
        ("Bob", "B", 0.0),
    ],
)
def test_mc(ans, sol, expected):
    assert R.accuracy(wrap(ans), sol, kind="mc") == expected


@pytest.mark.parametrize(
    "ans,sol,expected",
    [
        ("3", "3", 1.0),
        ("3.0", "3", 1.0),
        (" Left. ", "left", 1.0),
        ("middle", "left", 0.0),
        ("", "", 0.0),
        ("New  York", "new york", 1.0),
        ("nan", "nan", 1.0),
        ("inf", "3", 0.0),
    ],
)
def test_exact(ans, sol, expected):
    assert R.accuracy(wrap(ans), sol, kind="exact") == expected


def test_iou_single_box():
    sol = "[{'Position': [0, 0, 500, 500], 'Confidence': 1}]"
    assert R.accuracy(wrap(BOX), sol, kind="box") == pytest.approx(1.0)
    half = "[{'Position': [0, 0, 250, 500], 'Confidence': 1}]"
    assert R.accuracy(wrap(half), sol, kind="box") == pytest.approx(0.5)
    assert R.accuracy(wrap("[{'Position': [600, 600, 700, 700]}]"), sol, kind="box") == 0.0
    assert R.accuracy(wrap("no box"), sol, kind="box") == 0.0  # failed parse zeroes the sample
    assert R.accuracy(wrap("[{'Position': [500, 0, 0, 500]}]"), sol, kind="box") == 0.0  # degenerate
    assert R.accuracy("[{'Position': [0, 0, 500, 500]}]", sol, kind="box") == 0.0  # no answer tags


def test_multi_box_hungarian():
    a, b = [0, 0, 100, 100], [500, 500, 600, 600]
    sol = F.format_box_answer([a, b])
    assert R.accuracy(wrap(F.format_box_answer([b, a])), sol, kind="boxes") == pytest.approx(1.0)
    assert R.accuracy(wrap(F.format_box_answer([a])), sol, kind="boxes") == pytest.approx(0.5)  # a miss costs
    assert R.accuracy(wrap(F.format_box_answer([a, b, [900, 900, 1000, 1000]])), sol, kind="boxes") == pytest.approx(
        2 / 3
    )  # an extra box costs


def test_kind_dispatch_and_trl_signature():
    sols = [
        "B",
        "3",
        F.format_box_answer([[0, 0, 333, 333]]),
        F.format_box_answer([[0, 0, 333, 333], [333, 0, 667, 333]]),
    ]
    tasks = ["science", "counting", "referring", "grounding"]
    comps = [conv(wrap(s)) for s in sols]
    assert R.accuracy_reward(prompts=[None] * 4, completions=comps, solution=sols, task=tasks) == [1.0] * 4
    # rows of an unregistered task: kind guessed from the solution
    assert R.accuracy_reward(prompts=None, completions=comps, solution=sols, task=["?"] * 4) == [1.0] * 4
    assert R.mc_reward(None, comps, solution=sols, task=tasks) == [1.0, None, None, None]
    assert R.iou_reward(None, comps, solution=sols, task=tasks) == [None, None, 1.0, None]
    assert R.multi_box_reward(None, comps, solution=sols, task=tasks) == [None, None, None, 1.0]
    assert R.exact_reward(None, comps, solution=sols, task=tasks) == [None, 1.0, None, None]
    assert R.total_reward(wrap("B"), "B", "science") == 3.0
    assert R.total_reward("B", "B", "science") == 0.0


# ---------------------------------------------------------------------------------------------- fuzzing
TAGS = st.sampled_from(
    [
        "<think>",
        "</think>",
        "<answer>",
        "</answer>",
        "[",
        "]",
        "{",
        "}",
        "'Position': ",
        ",",
        "NaN",
        "nan",
        "inf",
        "-1e309",
        "1e999",
        "1000",
        "-5",
        "0.5",
        " ",
        "\n",
        "A",
        "(B)",
        "\u202e",
        "\x00",
        "\ud7ff",
        "🦄",
        "Ω",
        "[{'Position': [1, 2, 3, 4]}]",
        "<answer><answer>",
    ]
)
hostile = st.one_of(
    st.text(max_size=300),
    st.lists(TAGS, max_size=80).map("".join),
    st.integers(0, 20000).map(lambda n: "<answer>" * n),
    st.integers(0, 5000).map(lambda n: "<think>" + "</think> " * n + "<answer>x"),
    st.integers(0, 3000).map(lambda n: "<answer>[" + "1," * n + "]</answer>"),
    st.integers(0, 3000).map(lambda n: "<answer>" + "[[[[" * n + "</answer>"),
    st.integers(0, 500).map(lambda n: "<answer>" + "[1, 2, 3, 4]" * n + "</answer>"),
    st.integers(0, 20000).map(lambda n: "9" * n),
)
shapes = st.sampled_from(["str", "conv", "parts", "none"])


def _shape(text, how):
    return {
        "str": text,
        "conv": conv(text),
        "parts": [{"role": "assistant", "content": [{"type": "text", "text": text}]}],
        "none": None,
    }[how]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=hostile,
    how=shapes,
    sol=st.sampled_from(["B", "3", "left", BOX, F.format_box_answer([[0, 0, 1, 1]] * 3), "", "nan"]),
    task=st.sampled_from([None, "science", "counting", "referring", "grounding", "unknown"]),
)
def test_hostile_completions_never_raise_and_are_fast(text, how, sol, task):
    c = _shape(text, how)
    t0 = time.perf_counter()
    acc = R.accuracy_reward(prompts=None, completions=[c], solution=[sol], task=[task])
    fmt = R.format_reward(prompts=None, completions=[c])
    per_kind = [
        f(None, [c], solution=[sol], task=[task])
        for f in (R.mc_reward, R.exact_reward, R.iou_reward, R.multi_box_reward)
    ]
    dt = time.perf_counter() - t0
    for v in acc + fmt:
        assert isinstance(v, float) and math.isfinite(v) and 0.0 <= v <= 1.0
    for out in per_kind:
        assert out[0] is None or (math.isfinite(out[0]) and 0 <= out[0] <= 1)
    assert dt < 0.05, f"{dt * 1e3:.2f} ms for six reward calls on a {len(text)}-char completion"


@settings(max_examples=200, deadline=None)
@given(boxes=st.lists(st.tuples(*[st.floats(allow_nan=True, allow_infinity=True)] * 4), max_size=5))
def test_float_boxes_never_raise(boxes):
    text = wrap("[" + ", ".join(f"{{'Position': [{a}, {b}, {c}, {d}], 'Confidence': 1}}" for a, b, c, d in boxes) + "]")
    v = R.accuracy(text, F.format_box_answer([[0, 0, 500, 500]]), kind="boxes")
    assert math.isfinite(v) and 0 <= v <= 1


def test_worst_case_inputs_take_about_a_millisecond():
    worst = [
        "<answer>" * 1000,
        "<think>" + "</think> " * 900 + "<answer>",
        "<answer>" + "[1, 2, 3, 4]" * 680 + "</answer>",
        "<answer>" + "[" * 8000 + "</answer>",
        "x" * F.MAX_CHARS,
        "<answer>" + "1," * 4000 + "</answer>",
    ]
    for text in worst:
        t0 = time.perf_counter()
        for _ in range(10):
            R.accuracy(text, BOX, kind="boxes")
            R.accuracy(text, "B", kind="mc")
            F.format_ok(text)
        per = (time.perf_counter() - t0) / 10
        assert per < 0.01, f"{per * 1e3:.2f} ms on {text[:30]!r}..."


def test_sat_answers_are_scored_whether_letters_or_words():
    from tasks.rewards import accuracy_reward

    def done(answer):
        return [[{"role": "assistant", "content": f"<think>look</think><answer>{answer}</answer>"}]]

    assert accuracy_reward(None, done("Left"), solution=["left"], task=["sat"]) == [1.0]
    assert accuracy_reward(None, done("B"), solution=["B"], task=["sat"]) == [1.0]
    assert accuracy_reward(None, done("right"), solution=["left"], task=["sat"]) == [0.0]


# ---------------------------------------------------------------------------------------------- reward rule
NO_BOX = "<think>x</think><answer>no box here</answer>"


def test_paper_rule_a_failed_parse_zeroes_the_whole_reward():
    """The paper: a failed answer parse zeroes everything, format included (the default rule)."""
    assert R.DEFAULT_REWARD_RULE == "paper"
    assert R.total_reward(NO_BOX, BOX, "referring") == 0.0
    assert R.total_reward(NO_BOX, BOX, "referring", rule="paper") == 0.0
    assert R.total_reward(wrap("no letter here!"), "B", "science") == 0.0
    assert R.total_reward(wrap(""), "3", "counting") == 0.0
    # a parsed but wrong answer keeps its format point; a right one scores 3
    assert R.total_reward(wrap("[{'Position': [600, 600, 900, 900], 'Confidence': 1}]"), BOX, "referring") == 1.0
    assert R.total_reward(wrap("B"), "B", "science") == 3.0
    acc, fmt = R.REWARD_FUNCS
    assert (acc, fmt) == R.reward_funcs("paper")
    comps = [conv(NO_BOX), conv(wrap(BOX)), conv(wrap("A")), "B"]
    sols, tasks = [BOX, BOX, "B", "B"], ["referring", "referring", "science", "science"]
    assert fmt(None, comps, solution=sols, task=tasks) == [0.0, 1.0, 1.0, 0.0]


def test_format_kept_rule_is_todays_behaviour_as_a_named_option():
    assert R.total_reward(NO_BOX, BOX, "referring", rule="format_kept") == 1.0
    assert R.total_reward(wrap("B"), "B", "science", rule="format_kept") == 3.0
    acc, fmt = R.reward_funcs("format_kept")
    assert fmt is R.format_reward
    assert fmt(None, [conv(NO_BOX)], solution=[BOX], task=["referring"]) == [1.0]
    with pytest.raises(ValueError, match="unknown reward rule .papr.; valid: paper, format_kept, paper-v2"):
        R.reward_funcs("papr")


def test_dataset_side_input_never_raises():
    """A solution nested 50,000 deep (str() raises RecursionError) and an unhashable task (TypeError
    on the TASK_KINDS lookup) score 0 / are ignored instead of raising."""
    deep: list = []
    for _ in range(50_000):
        deep = [deep]
    comps = [conv(wrap("B"))]
    for f in (
        R.accuracy_reward,
        R.format_reward,
        R.parsed_format_reward,
        R.mc_reward,
        R.exact_reward,
        R.iou_reward,
        R.multi_box_reward,
    ):
        assert f(None, comps, solution=[deep], task=["science"]) in ([0.0], [None], [1.0])
        assert f(None, comps, solution=["B"], task=[["science"]]) in ([0.0], [None], [1.0])
        assert f(None, comps, solution=["B"], task={"science": 1}) in ([0.0], [None], [1.0])
        assert f(None, comps, solution=7, task=5) in ([0.0], [None], [1.0])
    assert R.accuracy_reward(None, comps, solution=["B"], task=[["science"]]) == [1.0]  # kind guessed from "B"
    assert R.accuracy(wrap("B"), deep, "science") == 0.0
    assert R.total_reward(wrap("B"), deep, ["science"]) == 1.0  # no usable solution: accuracy 0, format 1
    assert R.answer_kind({"a": 1}, "B") == "mc"


# -- paper-v2: the paper's per-task rules as its reference code computes them (one test per rule) ----------
def think(answer: str) -> str:
    return f"<think>reasoning</think><answer>{answer}</answer>"


def test_paper_v2_multiple_choice_is_r1v_string_match():
    """R1-V: the stripped <answer> content equals the solution. The `paper` rule's option parser took the
    first letter followed by a space or punctuation, so 'a triangle' scored as option A."""
    assert R.total_reward(think("a triangle"), "A", "scienceqa", rule="paper") == 3.0  # the false positive
    assert R.total_reward(think("a triangle"), "A", "scienceqa", rule="paper-v2") == 0.0
    assert R.total_reward(think("B. circle"), "B", "geoqav", rule="paper") == 3.0
    assert R.total_reward(think("B. circle"), "B", "geoqav", rule="paper-v2") == 0.0
    assert R.total_reward(think(" B "), "B", "geoqav", rule="paper-v2") == 3.0
    assert R.total_reward(think("C"), "B", "geoqav", rule="paper-v2") == 1.0  # parsed, wrong: format only


def test_paper_v2_sat_natural_language_is_exact_string_match():
    assert R.total_reward(think("left"), "left", "sat", rule="paper-v2") == 3.0
    assert R.total_reward(think("the left one"), "left", "sat", rule="paper-v2") == 1.0
    assert R.total_reward(think(""), "left", "sat", rule="paper-v2") == 0.0  # nothing parsed: all zero


def test_paper_v2_lisa_is_the_continuous_iou_of_the_first_box():
    truth = F.format_box_answer([[0, 0, 100, 100]])
    pred = F.format_box_answer([[0, 0, 100, 50]])  # IoU 0.5 by hand: 5000 / 10000
    assert R.accuracy_v2(think(pred), truth, "lisa") == pytest.approx(0.5)
    low = F.format_box_answer([[0, 0, 100, 30]])  # IoU 0.3: no threshold for LISA (the paper's mean IoU)
    assert R.accuracy_v2(think(low), truth, "lisa") == pytest.approx(0.3)


def test_paper_v2_coco_counts_a_box_only_above_iou_0_5():
    truth = F.format_box_answer([[0, 0, 100, 100], [200, 200, 300, 300]])
    below = "[{'Position': [0, 0, 100, 30], 'Confidence': 0.9}, {'Position': [200, 200, 300, 300], 'Confidence': 0.8}]"
    # Visual-RFT: (0 for the IoU-0.3 box + 1.0) / max(2 truth, 2 predicted) = 0.5; the Hungarian rule gave (0.3+1)/2
    assert R.accuracy(think(below), truth, "coco") == pytest.approx(0.65)
    assert R.accuracy_v2(think(below), truth, "coco") == pytest.approx(0.5)
    above = "[{'Position': [0, 0, 100, 60], 'Confidence': 0.9}]"  # IoU 0.6, one of two truth boxes found
    assert R.accuracy_v2(think(above), truth, "coco") == pytest.approx(0.6 / 2)


def test_paper_v2_coco_matches_by_confidence_then_greedily():
    truth = F.format_box_answer([[0, 0, 100, 100]])
    # the more confident box takes the only truth box (IoU 0.64); the better one (IoU 1.0) finds none left
    ans = "[{'Position': [0, 0, 100, 100], 'Confidence': 0.2}, {'Position': [0, 0, 80, 80], 'Confidence': 0.9}]"
    assert R.accuracy_v2(think(ans), truth, "coco") == pytest.approx(0.64 / 2)
    dup = "[{'Position': [0, 0, 100, 100], 'Confidence': 0.9}, {'Position': [0, 0, 100, 100], 'Confidence': 0.8}]"
    assert R.accuracy_v2(think(dup), truth, "coco") == pytest.approx(1.0)  # duplicates removed first
    plain = "[0, 0, 100, 100]"  # no Position/Confidence entry: nothing parsed, the whole reward is zero
    assert R.total_reward(think(plain), truth, "coco", rule="paper-v2") == 0.0


def test_paper_v2_is_a_new_rule_and_leaves_the_recorded_ones_alone():
    acc, fmt = R.reward_funcs("paper-v2")
    assert acc is R.accuracy_v2_reward and fmt is R.parsed_format_v2_reward
    assert R.reward_funcs("paper")[0] is R.accuracy_reward and R.reward_funcs("format_kept")[1] is R.format_reward
    assert acc(None, [conv(think("a cat"))], solution=["A"], task=["scienceqa"]) == [0.0]
    assert fmt(None, [conv(think("A"))], solution=["A"], task=["scienceqa"]) == [1.0]


def test_every_gpu_protocol_names_paper_v2():
    from harness.protocols.gpu import load_protocol, registered

    assert {load_protocol(n).training.reward_rule for n in registered()} == {"paper-v2"}


def test_chartqa_and_infovqa_are_exact_match_not_relaxed_or_anls():
    from tasks.lmms.prompting import EXACT_MATCH_TASKS, exact_match_from_samples

    assert set(EXACT_MATCH_TASKS) == {"chartqa", "infovqa_val"}
    # ChartQA's relaxed accuracy accepts 12.4 for 12 (within 5%); exact match does not
    chart = [
        {"target": "12", "filtered_resps": ["12.4"]},
        {"target": "12", "filtered_resps": ["12"]},
        {"target": "Yes", "filtered_resps": ["yes."]},
    ]
    assert exact_match_from_samples(chart) == pytest.approx(2 / 3)
    # InfoVQA's ANLS gives "the cats" partial credit for "the cat"; exact match needs one of the answers
    info = [
        {"target": ["the cat", "cat"], "filtered_resps": ["the cats"]},
        {"target": "['the dog', 'dog']", "filtered_resps": ["Dog"]},
    ]
    assert exact_match_from_samples(info) == pytest.approx(1 / 2)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=hostile,
    sol=st.sampled_from(["B", "left", BOX, F.format_box_answer([[0, 0, 1, 1]] * 3), ""]),
    task=st.sampled_from([None, "coco", "lisa", "sat", "scienceqa", "geoqav"]),
)
def test_paper_v2_hostile_completions_never_raise(text, sol, task):
    t0 = time.perf_counter()
    acc = R.accuracy_v2_reward(None, [text], solution=[sol], task=[task])
    fmt = R.parsed_format_v2_reward(None, [text], solution=[sol], task=[task])
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in acc + fmt)
    assert time.perf_counter() - t0 < 0.05
