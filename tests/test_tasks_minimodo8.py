"""MiniModo-8 (tasks/minimodo8.py): the five MiniModo domains unchanged, three new verifiable domains whose
answers are checked here against what the image shows, decoded from its pixels (scipy.ndimage), never
against the generator's own bookkeeping."""

import numpy as np
import pytest
from scipy import ndimage

from tasks import minimodo as mm
from tasks import minimodo8 as m8
from tasks.minimodo import CELL, COLORS
from tasks.rewards import accuracy, answer_kind


def _mask(img, rgb, tol=30):
    a = np.asarray(img).astype(int)
    return np.abs(a - np.array(rgb)).sum(-1) <= tol


def test_minimodo_rows_are_served_unchanged():
    for name in ("science", "grounding", "counting"):
        a, b = m8.make_rows(name, 5, 3, "train"), mm.make_rows(name, 5, 3, "train")
        assert [r["solution"] for r in a] == [r["solution"] for r in b]
        assert all(np.array_equal(np.asarray(x["image"]), np.asarray(y["image"])) for x, y in zip(a, b))
    assert m8.DOMAINS8[:5] == tuple(mm.TRAIN_DOMAINS) and len(m8.DOMAINS8) == 8
    assert set(m8.OOD8) == set(mm.OOD_SETS) | {"bar_compare"}


def test_new_domains_are_deterministic_and_splits_differ():
    for name in m8.NEW:
        a, b = m8.make_rows(name, 6, 0, "train"), m8.make_rows(name, 6, 0, "train")
        assert [r["solution"] for r in a] == [r["solution"] for r in b]
        assert np.array_equal(np.asarray(a[0]["image"]), np.asarray(b[0]["image"]))
        test = m8.test_split(name, 6)
        assert any(not np.array_equal(np.asarray(x["image"]), np.asarray(y["image"])) for x, y in zip(a, test))
    with pytest.raises(KeyError, match="valid"):
        m8.make_rows("mazes", 1)
    with pytest.raises(ValueError, match="split"):
        m8.make_rows("maze", 1, 0, "dev")


def test_tally_answer_is_the_number_of_blobs_of_the_asked_colour():
    for r in m8.make_rows("tally", 60, 1, "test"):
        colour = r["prompt"][1]["content"].split()[2]
        _, n = ndimage.label(_mask(r["image"], COLORS[colour]))
        assert r["solution"] == ["one", "two", "three", "four"][n - 1]


def test_bars_answer_is_the_bar_height_in_units():
    for r in m8.make_rows("bars", 60, 2, "test"):
        colour = r["prompt"][1]["content"].split()[4]
        rows_with_colour = _mask(r["image"], COLORS[colour]).any(axis=1).sum()
        assert r["solution"] == str(round(rows_with_colour / m8.BAR_UNIT))


def test_maze_answer_is_connectivity_of_the_white_cells_decoded_from_pixels():
    answers = []
    for r in m8.make_rows("maze", 80, 3, "test"):
        a = np.asarray(r["image"]).astype(int)
        centre = a[CELL // 2 :: CELL, CELL // 2 :: CELL][:3, :3]  # the centre pixel of each cell
        wall = centre.sum(-1) < 150
        start = np.argwhere(_mask(centre[None], COLORS["green"])[0])[0]
        goal = np.argwhere(_mask(centre[None], COLORS["red"])[0])[0]
        labels, _ = ndimage.label(~wall)  # 4-connectivity: the default structuring element
        answers.append(r["solution"])
        assert r["solution"] == ("A" if labels[tuple(start)] == labels[tuple(goal)] else "B")
    assert 0.3 < answers.count("A") / len(answers) < 0.7


def test_bar_compare_and_rewards_score_the_new_answers():
    r = m8.make_rows("bar_compare", 1, 0, "test")[0]
    assert answer_kind("bar_compare", r["solution"]) == "mc" and answer_kind("tally", "two") == "exact"
    assert accuracy("<think></think><answer>two</answer>", "two", "tally") == 1.0
    assert accuracy("<think></think><answer>2</answer>", "two", "tally") == 0.0  # the conflict: digits are wrong here
    assert accuracy("<think></think><answer>3</answer>", "3", "bars") == 1.0
    assert accuracy("<think></think><answer>B</answer>", "A", "maze") == 0.0


def test_warmup_rows_cover_the_eight_domains_with_label_noise():
    import random

    rows = m8.warmup_rows(random.Random(0), 400, m8.WARMUP_WEIGHTS8, label_noise=0.0)
    assert {r["task"] for r in rows} == set(m8.WARMUP_WEIGHTS8)
    noisy = m8.warmup_rows(random.Random(0), 400, {"maze": 1.0}, label_noise=1.0)
    assert {r["solution"] for r in noisy} <= {"A", "B"}
    with pytest.raises(KeyError, match="unknown warm-up tasks"):
        m8.warmup_rows(random.Random(0), 1, {"mazes": 1.0})
