"""`modomodo prefetch` (harness/protocols/prefetch.py). No network here: the download itself (snapshot_download from the Hub)
is not run. What is tested for real: what a protocol needs (its model, its sets, the datasets behind each
lmms-eval task, read from task YAMLs of lmms-eval's shape), and the offline resolution, by huggingface_hub and
datasets with HF_HUB_OFFLINE=1, against a local folder laid out as the Hub cache that a download leaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.protocols.prefetch import HubNeed, check_offline, lmms_task_dataset, needs
from harness.protocols.gpu import load_protocol


def test_the_paper_protocol_needs_its_model_sets_and_the_lmms_eval_datasets():
    items = needs(load_protocol("paper-qwen2vl-2b"))
    got = {(n.repo_type, n.repo_id, n.config) for n in items}
    assert ("model", "Qwen/Qwen2-VL-2B-Instruct", None) in got
    for repo in (
        "laolao77/ViRFT_COCO",
        "yiqingliang/lisa-problems-dataset",
        "yiqingliang/sat-problems-dataset-test",
        "yiqingliang/scienceqa-problems-dataset-test",
        "AI4Math/MathVista",
    ):
        assert ("dataset", repo, None) in got
    # the out-of-domain evaluation's own datasets (the README's old cache step skipped them)
    assert ("dataset", "lmms-lab-encoder/DocVQA", "InfographicVQA") in got
    assert {"lmms-lab-encoder/ChartQA", "lmms-lab-encoder/MMMU"} <= {n.repo_id for n in items}
    assert len(items) == 1 + 5 + 3 + 4


def test_lmms_task_datasets_come_from_task_yamls_with_templates(tmp_path):
    """A local task folder of lmms-eval's shape: an include'd template, !function tags."""
    (tmp_path / "mytask").mkdir()
    (tmp_path / "mytask" / "_template_yaml").write_text("dataset_path: someone/SomeVQA\ndataset_name: Charts\n")
    (tmp_path / "mytask" / "mytask.yaml").write_text(
        "task: my_vqa\ntest_split: validation\ninclude: _template_yaml\ndoc_to_text: !function utils.doc_to_text\n"
    )
    assert lmms_task_dataset("my_vqa", str(tmp_path)) == ("someone/SomeVQA", "Charts", "validation")
    with pytest.raises(KeyError, match="no_such_task"):
        lmms_task_dataset("no_such_task", str(tmp_path))


def test_local_protocols_need_nothing():
    assert needs(load_protocol("paper-protocol-tiny")) == []


def _hub_cache(root: Path, items: list[HubNeed]) -> None:
    """The layout snapshot_download leaves: <type>s--org--name/{refs/main, snapshots/<commit>/files}."""
    import datasets

    for i, n in enumerate(items):
        repo = root / f"{n.repo_type}s--{n.repo_id.replace('/', '--')}"
        commit = f"{i:040x}"
        snap = repo / "snapshots" / commit
        snap.mkdir(parents=True)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(commit)
        if n.repo_type == "model":
            (snap / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
        else:
            (snap / "data").mkdir()
            datasets.Dataset.from_dict({"problem": ["q"], "solution": ["A"]}).to_parquet(
                str(snap / "data" / f"{n.split or 'train'}-00000-of-00001.parquet")
            )


def test_offline_check_finds_a_prefetched_cache_and_names_what_is_missing(tmp_path):
    items = needs(load_protocol("paper-qwen2vl-2b"))
    cache = tmp_path / "hub"
    _hub_cache(cache, items)
    # our sets are read as datasets.load_dataset(<snapshot folder>): checked to the rows, offline
    ours = [n for n in items if n.reader in ("snapshot", "folder")]
    assert check_offline(ours, str(cache), load_datasets=True, datasets_cache_dir=str(tmp_path / "ds")) == []
    # lmms-eval's sets: their snapshots resolve offline; their prepared datasets copy is not built here
    lmms = [n for n in items if n.reader == "hub"]
    assert check_offline(lmms, str(cache), load_datasets=False) == []
    import shutil

    shutil.rmtree(cache / "datasets--yiqingliang--sat-problems-dataset")
    missing = check_offline(ours, str(cache), load_datasets=True, datasets_cache_dir=str(tmp_path / "ds"))
    assert [m["repo_id"] for m in missing] == ["yiqingliang/sat-problems-dataset"]
    out = CliRunner().invoke(
        main, ["prefetch", "--protocol", "paper-qwen2vl-2b", "--cache-dir", str(cache), "--check-only"]
    )
    assert out.exit_code == 2 and "would not find" in out.output and "sat-problems-dataset" in out.output


def test_the_trainer_reads_a_prefetched_set_offline(tmp_path, monkeypatch):
    """tasks/paper_datasets.py resolves a Hub id through huggingface_hub's cache (no network with
    HF_HUB_OFFLINE=1), then loads the snapshot folder with datasets."""
    cache = tmp_path / "hub"
    item = HubNeed("someone/geo-problems", "dataset", "test", split="train", reader="folder")
    _hub_cache(cache, [item])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import importlib

    import huggingface_hub.constants

    importlib.reload(huggingface_hub.constants)  # it reads the environment at import
    try:
        from tasks.paper_datasets import _load_raw

        ds = _load_raw("someone/geo-problems", "train", str(tmp_path / "ds"))
        assert ds[0]["solution"] == "A"
        with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):
            _load_raw("someone/not-prefetched", "train", str(tmp_path / "ds"))
    finally:
        monkeypatch.undo()
        importlib.reload(huggingface_hub.constants)
