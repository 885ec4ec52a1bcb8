"""leaderboard/weights_picture.py: the weights picture read back as XML: one bar segment per (suite, budget, dataset)
with a positive mean weight, its width that weight's share of the axis, stacked in the order the data names the
datasets; hostile names stay text; the same inputs give the same bytes."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from leaderboard import weights_picture as wp

SVG = "{http://www.w3.org/2000/svg}"


def _frame(rng) -> pd.DataFrame:
    rows = []
    for strategy in ("alpha", "beta"):
        for suite, datasets in (("s-one", ["a", "b", "c"]), ("s-two", ["x", "<y & z>", "w", "v"])):
            for budget in (4, 8, 16):
                w = rng.dirichlet(np.ones(len(datasets)))
                w[rng.integers(len(datasets))] = 0.0  # a dataset with no weight draws no segment
                w = w / w.sum()
                rows += [
                    {"strategy": strategy, "suite": suite, "budget": budget, "dataset": d, "weight_mean": float(v)}
                    for d, v in zip(datasets, w)
                ]
    return pd.DataFrame(rows)


def test_each_segment_is_its_weight_and_the_bars_stack(tmp_path):
    wdf = _frame(np.random.default_rng(4))
    path = tmp_path / "w.svg"
    assert wp.weights(wdf, "beta", ["s-two", "s-one", "absent"], path)
    root = ET.parse(path).getroot()  # well-formed XML, hostile names included
    segments = {}
    for rect in root.iter(f"{SVG}rect"):
        title = rect.find(f"{SVG}title")
        if title is None:
            continue  # a legend swatch
        m = re.fullmatch(r"(.+), budget (\d+): ([0-9.]+)", title.text)
        segments.setdefault(m.group(2), []).append(
            (m.group(1), float(rect.get("x")), float(rect.get("width")), float(m.group(3)))
        )
    want = wdf[(wdf["strategy"] == "beta") & (wdf["weight_mean"] > 0)]
    assert sum(len(v) for v in segments.values()) == len(want)
    # the panels in the order asked (s-two first): the first segments of budget 4 are s-two's datasets
    first_panel = segments["4"][: int(((want["suite"] == "s-two") & (want["budget"] == 4)).sum())]
    assert [d for d, *_ in first_panel] == [
        d for d in ["x", "<y & z>", "w", "v"] if d in set(want[(want.suite == "s-two") & (want.budget == 4)].dataset)
    ]
    for (suite, budget), g in want.groupby(["suite", "budget"], sort=False):
        segs = [s for s in segments[str(budget)] if s[0] in set(g["dataset"])]
        expected_left = 0.0
        for (name, x, width, shown), (_, row) in zip(segs, g.iterrows()):
            assert name == row["dataset"]
            assert width == pytest.approx(row["weight_mean"] * wp.BAR_WIDTH, abs=0.006)
            assert shown == pytest.approx(row["weight_mean"], abs=5e-5)
            assert x == pytest.approx(wp.LEFT + expected_left * wp.BAR_WIDTH, abs=0.006)
            expected_left += row["weight_mean"]
        assert expected_left == pytest.approx(1.0)
    text = path.read_text()
    assert "&lt;y &amp; z&gt;" in text and "<y & z>" not in text
    titles = [t.text for t in root.iter(f"{SVG}text")]
    assert "s-two" in titles and "s-one" in titles and "absent" not in titles


def test_the_same_inputs_give_the_same_bytes_and_no_weights_no_file(tmp_path):
    wdf = _frame(np.random.default_rng(9))
    a, b = tmp_path / "a.svg", tmp_path / "b.svg"
    wp.weights(wdf, "alpha", ["s-one", "s-two"], a)
    wp.weights(wdf.copy(), "alpha", ["s-one", "s-two"], b)
    assert a.read_bytes() == b.read_bytes()
    assert not wp.weights(wdf, "nobody", ["s-one"], tmp_path / "c.svg") and not (tmp_path / "c.svg").exists()
