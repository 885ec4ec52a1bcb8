"""MiniModo domains: deterministic from a seed, the shared row schema, held-out splits, aggregation."""

import hashlib
import math

import pytest

pytest.importorskip("PIL")

from tasks import minimodo as M  # noqa: E402
from tasks.aggregate import IN_SCORE, OUT_SCORE, aggregate, p_correct_scores  # noqa: E402
from tasks.prompts import make_completion  # noqa: E402
from tasks.answer_format import format_ok  # noqa: E402
from tasks.rewards import TASK_KINDS, accuracy, total_reward  # noqa: E402


def digest(rows):
    h = hashlib.sha256()
    for r in rows:
        h.update(r["image"].tobytes())
        h.update(repr((r["prompt"], r["solution"], r["task"])).encode())
    return h.hexdigest()


def test_five_training_domains_and_three_or_more_ood_sets():
    assert len(M.TRAIN_DOMAINS) == 5
    assert len(M.OOD_SETS) >= 3
    assert not set(M.TRAIN_DOMAINS) & set(M.OOD_SETS)
    assert {d.mirrors for d in M.TRAIN_DOMAINS.values()} == {"COCO", "LISA", "GeoQAV", "SAT", "ScienceQA"}
    kinds = {d.kind for d in M.TRAIN_DOMAINS.values()}
    assert {"boxes", "box", "mc"} <= kinds


@pytest.mark.parametrize("name", list(M.ALL))
def test_rows_schema_determinism_and_own_solution_scores_one(name):
    rows = M.make_rows(name, 12, seed=3)
    assert digest(rows) == digest(M.make_rows(name, 12, seed=3))
    assert digest(rows) != digest(M.make_rows(name, 12, seed=4))
    for r in rows:
        assert set(r) == {"image", "prompt", "solution", "task"}
        assert r["task"] == name and TASK_KINDS[name] == M.ALL[name].kind
        assert r["image"].size == (M.IMG, M.IMG) and r["image"].mode == "RGB"
        assert [m["role"] for m in r["prompt"]] == ["system", "user"]
        assert isinstance(r["solution"], str) and r["solution"]
        text = make_completion(r["solution"])
        assert format_ok(text)
        assert accuracy(text, r["solution"], r["task"]) == pytest.approx(1.0)
        assert total_reward(text, r["solution"], r["task"]) == pytest.approx(3.0)


def test_test_split_is_held_out_from_training_and_warmup_streams():
    for name in (*M.TRAIN_DOMAINS, *M.OOD_SETS):
        test = {digest([r]) for r in M.test_split(name, 40)}
        train = {digest([r]) for r in M.make_rows(name, 40, 0, "train")}
        assert len(test & train) <= 2  # distinct streams; a tiny image space may repeat a scene by chance


def test_answers_are_balanced_enough():
    from collections import Counter

    for name in ("geometry", "spatial", "science", "counting", "chart", "column"):
        c = Counter(r["solution"] for r in M.make_rows(name, 300, 0))
        assert max(c.values()) / 300 < 0.6, (name, c)


def test_boxes_are_cells_on_the_0_1000_scale():
    from tasks.answer_format import parse_boxes

    for name in ("grounding", "referring", "novel_referring"):
        for r in M.make_rows(name, 30, 1):
            for b in parse_boxes(r["solution"]):
                assert all(v in (0, 333, 667, 1000) for v in b)


def test_warmup_rows_label_noise():
    import random

    rows = M.warmup_rows(random.Random(0), 400, {"science": 1.0}, label_noise=1.0)
    truth = M.warmup_rows(random.Random(0), 400, {"science": 1.0}, label_noise=0.0)
    wrong = sum(a["solution"] != b["solution"] for a, b in zip(rows, truth))
    assert 0.6 * 400 < wrong < 0.9 * 400  # 3/4 of random answers differ from the truth


def test_unknown_names():
    with pytest.raises(KeyError, match="valid"):
        M.make_rows("cocoa", 1)
    with pytest.raises(ValueError, match="split"):
        M.make_rows("science", 1, split="dev")


def test_aggregate_in_and_out_score():
    s = {"a": 0.2, "b": 0.4, "x": 1.0, "y": 0.0, "z": 0.5}
    out = aggregate(s, ["a", "b"], ["x", "y", "z"])
    assert out[IN_SCORE] == pytest.approx(0.3) and out[OUT_SCORE] == pytest.approx(0.5)
    assert out["a"] == 0.2
    assert math.isnan(aggregate({"a": float("nan")}, ["a"], [])[IN_SCORE])
    with pytest.raises(KeyError):
        aggregate(s, ["missing"], [])


def test_p_correct_scores_sit_beside_the_accuracies_without_clobbering_them():
    p = {"a": 0.1, "b": 0.3, "x": 0.9, "y": 0.6}
    out = p_correct_scores(p, ["a", "b"], ["x", "y"])
    assert out == pytest.approx(
        {
            "p_correct_a": 0.1,
            "p_correct_b": 0.3,
            "p_correct_x": 0.9,
            "p_correct_y": 0.6,
            "In_Score_p": 0.2,
            "Out_Score_p": 0.75,
        }
    )
    assert not set(out) & set(aggregate(p, ["a", "b"], ["x", "y"])), "no name is shared with the accuracy scores"
