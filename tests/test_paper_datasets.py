"""The paper's dataset loaders, on small local fixture datasets built here (no Hub)."""

from __future__ import annotations

import pytest

datasets = pytest.importorskip("datasets")
from PIL import Image  # noqa: E402

from tasks.paper_datasets import (
    PAPER_INSTRUCTION,
    TEST_SETS,
    TRAIN_SETS,
    DatasetSchemaError,  # noqa: E402
    PaperSource,
    load_paper_dataset,
    resolve_columns,
)
from tasks.rewards import accuracy, total_reward  # noqa: E402


def _images(n):
    return [Image.new("RGB", (8, 8), (10 * i, 0, 0)) for i in range(n)]


def r1v_style(n=4):
    """R1-V style: image, problem, solution with the answer inside <answer> tags."""
    return datasets.Dataset.from_dict(
        {
            "image": _images(n),
            "problem": [f"Which option is right? ({i}) A. x B. y" for i in range(n)],
            "solution": ["<answer> B </answer>"] * n,
        },
        features=datasets.Features(
            {"image": datasets.Image(), "problem": datasets.Value("string"), "solution": datasets.Value("string")}
        ),
    )


def test_hub_ids_and_sizes_match_the_paper():
    assert {k: v.hub_id for k, v in TRAIN_SETS.items()} == {
        "COCO": "laolao77/ViRFT_COCO",
        "LISA": "yiqingliang/lisa-problems-dataset",
        "GeoQAV": "yiqingliang/geoqav-problems-dataset",
        "SAT": "yiqingliang/sat-problems-dataset",
        "ScienceQA": "yiqingliang/scienceqa-problems-dataset",
    }
    assert [v.size for v in TRAIN_SETS.values()] == [5997, 1326, 1969, 15000, 6218]
    assert {k: v.size for k, v in TEST_SETS.items()} == {"LISA": 3397, "SAT": 1928, "ScienceQA": 2017}
    assert all(v.hub_id.endswith("-test") for v in TEST_SETS.values())


def test_saved_dataset_maps_to_the_row_schema(tmp_path):
    r1v_style().save_to_disk(str(tmp_path / "sci"))
    ds = load_paper_dataset("ScienceQA", source=str(tmp_path / "sci"))
    assert ds.column_names == ["image", "prompt", "solution", "task"]
    row = ds[0]
    assert row["solution"] == "B" and row["task"] == "scienceqa"
    assert row["prompt"][-1]["content"].endswith(PAPER_INSTRUCTION)
    assert row["image"].size == (8, 8)
    # the rewards score these rows as they score MiniModo rows
    good = "<think>y is right</think><answer>B</answer>"
    assert accuracy(good, row["solution"], row["task"]) == 1.0
    assert total_reward(good, row["solution"], row["task"]) == 3.0


def test_parquet_folder_with_alias_columns_and_box_answers(tmp_path):
    ds = datasets.Dataset.from_dict(
        {
            "images": [[im] for im in _images(3)],
            "question": ["the red box"] * 3,
            "answer": ["<answer>[{'Position': [0, 0, 500, 500], 'Confidence': 1}]</answer>"] * 3,
        },
        features=datasets.Features(
            {
                "images": datasets.Sequence(datasets.Image()),
                "question": datasets.Value("string"),
                "answer": datasets.Value("string"),
            }
        ),
    )
    (tmp_path / "lisa").mkdir()
    ds.to_parquet(str(tmp_path / "lisa" / "train.parquet"))
    out = load_paper_dataset("LISA", source=str(tmp_path / "lisa"), cache_dir=str(tmp_path / "cache"), limit=2)
    assert len(out) == 2 and out[0]["task"] == "lisa"
    assert out[0]["solution"].startswith("[{'Position': [0, 0, 500, 500]")
    hit = "<think>t</think><answer>[{'Position': [0, 0, 500, 500], 'Confidence': 1}]</answer>"
    assert accuracy(hit, out[0]["solution"], "lisa") == pytest.approx(1.0)


def test_missing_columns_are_named_with_the_columns_found(tmp_path):
    datasets.Dataset.from_dict({"picture": _images(2), "text": ["q", "q"], "solution": ["A", "A"]}).save_to_disk(
        str(tmp_path / "odd")
    )
    with pytest.raises(DatasetSchemaError) as err:
        load_paper_dataset("SAT", source=str(tmp_path / "odd"))
    msg = str(err.value)
    assert "'image'" in msg and "'problem'" in msg and "picture" in msg and "text" in msg and "column_map" in msg
    ok = load_paper_dataset("SAT", source=str(tmp_path / "odd"), column_map={"image": "picture", "problem": "text"})
    assert ok[1]["solution"] == "A"
    with pytest.raises(DatasetSchemaError, match="not a column"):
        resolve_columns(["image"], {"problem": "nope"})


def test_unknown_name_suggests_the_right_one():
    with pytest.raises(KeyError, match="ScienceQA"):
        load_paper_dataset("ScienceQ")


def test_offline_without_cache_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):
        load_paper_dataset("COCO", cache_dir=str(tmp_path / "empty-cache"))


def test_source_serves_seeded_training_rows_and_test_rows(tmp_path):
    r1v_style(6).save_to_disk(str(tmp_path / "geo"))
    r1v_style(3).save_to_disk(str(tmp_path / "sci-test"))
    src = PaperSource(train={"GeoQAV": str(tmp_path / "geo")}, test_in={"ScienceQA": str(tmp_path / "sci-test")})
    a, b = src.train_rows("GeoQAV", 4, seed=1), src.train_rows("GeoQAV", 4, seed=1)
    assert [r["prompt"] for r in a] == [r["prompt"] for r in b] and len(a) == 4
    assert len(src.train_rows("GeoQAV", 100, seed=2)) == 6  # never more than the set holds
    assert [r["task"] for r in src.test_rows("ScienceQA", 0)] == ["scienceqa"] * 3
