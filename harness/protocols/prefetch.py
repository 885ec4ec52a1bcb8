"""`modomodo prefetch --protocol FILE`: everything a protocol reads from the Hub, into a shared cache, then
checked the way a compute node without network reads it (HF_HUB_OFFLINE=1).

What a protocol needs (`needs(protocol)`): its base model (a model repository), its training and in-domain
test sets (dataset repositories), and the datasets behind each out-of-domain lmms-eval task, read from
lmms-eval's own task YAMLs (`dataset_path`, `dataset_name`, following `include:` templates; local task
folders through `evaluation.lmms_include_path`), with MathVista's test-mini set (scored by our rules,
tasks/lmms/prompting.py). Local folders in the protocol are skipped: there is nothing to fetch.

`download(...)` uses huggingface_hub's Python API: `snapshot_download` of every repository into the Hub
cache (`--cache-dir`, else $HF_HUB_CACHE), then, for datasets, `datasets.load_dataset` on the same files
so the prepared copy lmms-eval and the trainer load offline exists in the datasets cache too (`datasets`
serves an offline `load_dataset("org/name")` only from that prepared copy). `check_offline(...)` then
runs, in a child process with HF_HUB_OFFLINE=1 and HF_DATASETS_OFFLINE=1, `snapshot_download(...,
local_files_only=True)` for every repository and `load_dataset` for every dataset, and names what a run
would not find.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from harness.protocols.gpu import ASSETS_PLACEHOLDER as ASSETS
from tasks.lmms.prompting import MATHVISTA_HUB_ID, MATHVISTA_SPLIT, is_mathvista

# lmms-eval 0.7.3's task YAMLs, for when lmms-eval is not installed where prefetch runs (a login node):
# task -> (dataset_path, dataset_name, split). Read from lmms_eval/tasks/{chartqa,infovqa,mmmu}/*.yaml.
LMMS_DATASETS_0_7_3: dict[str, tuple[str, str | None, str]] = {
    "chartqa": ("lmms-lab-encoder/ChartQA", None, "test"),
    "infovqa_val": ("lmms-lab-encoder/DocVQA", "InfographicVQA", "validation"),
    "mmmu_val": ("lmms-lab-encoder/MMMU", None, "validation"),
}


@dataclass(frozen=True)
class HubNeed:
    repo_id: str
    repo_type: str  # "model" or "dataset"
    why: str
    config: str | None = None  # dataset config name (lmms-eval's dataset_name)
    split: str | None = None
    # how a run reads it: "snapshot" (the model: transformers from the snapshot folder), "folder" (our training
    # and test sets: datasets.load_dataset on the snapshot folder, tasks/paper_datasets.py), "hub" (lmms-eval:
    # datasets.load_dataset(repo_id, config), which offline needs the prepared copy in the datasets cache)
    reader: str = "snapshot"

    def to_dict(self) -> dict:
        return asdict(self)


class _Loader(yaml.SafeLoader):
    """lmms-eval's YAMLs tag functions (`!function utils.x`); only their dataset keys matter here."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _read_task_yaml(path: Path) -> dict:
    data = yaml.load(path.read_text(), Loader=_Loader) or {}
    if not isinstance(data, dict):
        return {}
    inc = data.get("include")
    if inc:
        base = _read_task_yaml(path.parent / inc)
        data = {**base, **{k: v for k, v in data.items() if k != "include"}}
    return data


def _task_folders(include_path: str | None) -> list[Path]:
    folders = [Path(include_path)] if include_path else []
    import importlib.util

    spec = importlib.util.find_spec("lmms_eval")
    if spec is not None and spec.submodule_search_locations:
        folders.append(Path(list(spec.submodule_search_locations)[0]) / "tasks")
    return folders


def lmms_task_dataset(task: str, include_path: str | None = None) -> tuple[str, str | None, str]:
    """(dataset_path, dataset_name, split) of an lmms-eval task: from the task YAMLs found (local tasks first,
    then the installed lmms-eval's), else lmms-eval 0.7.3's figures. KeyError naming the task if unknown."""
    for folder in _task_folders(include_path):
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.yaml")):
            try:
                data = _read_task_yaml(path)
            except (yaml.YAMLError, OSError, RecursionError):
                continue
            if data.get("task") == task and data.get("dataset_path"):
                return (
                    str(data["dataset_path"]),
                    data.get("dataset_name"),
                    str(data.get("test_split") or data.get("validation_split") or "test"),
                )
    if task in LMMS_DATASETS_0_7_3:
        return LMMS_DATASETS_0_7_3[task]
    raise KeyError(
        f"lmms-eval task {task!r}: no task YAML names it (looked in {[str(f) for f in _task_folders(include_path)]}) "
        f"and it is not one of {sorted(LMMS_DATASETS_0_7_3)}"
    )


def _is_local(ref: str) -> bool:
    return Path(ref).exists() or ref.startswith(("/", "./", "../", "{assets}"))


def needs(protocol) -> list[HubNeed]:
    """Every Hub repository a run of `protocol` reads (local folders left out), in a stable order."""
    out: list[HubNeed] = []
    if not _is_local(protocol.model.base):
        out.append(HubNeed(protocol.model.base, "model", "base model"))
    d = protocol.datasets
    for name, ref in d.train.items():
        if not _is_local(ref):
            out.append(HubNeed(ref, "dataset", f"training set {name}", split=d.train_split, reader="folder"))
    for name, ref in d.test_in.items():
        if not _is_local(ref):
            out.append(HubNeed(ref, "dataset", f"in-domain test set {name}", split=d.test_split, reader="folder"))
    for name, entry in protocol.evaluation.out_of_domain.items():
        task = entry["task"]
        if is_mathvista(task):
            out.append(
                HubNeed(
                    MATHVISTA_HUB_ID,
                    "dataset",
                    f"out-of-domain {name} ({task}, scored by rules)",
                    split=MATHVISTA_SPLIT,
                    reader="hub",
                )
            )
            continue
        try:
            path, config, split = lmms_task_dataset(task, protocol.evaluation.lmms_include_path or None)
        except KeyError:
            if protocol.evaluation.lmms_include_path and ASSETS in protocol.evaluation.lmms_include_path:
                continue  # a task the assets builder writes, with its data, into a local folder
            raise
        if not _is_local(path):
            out.append(HubNeed(path, "dataset", f"out-of-domain {name} (lmms-eval task {task})", config, split, "hub"))
    seen, unique = set(), []
    for n in out:
        if (n.repo_id, n.repo_type, n.config, n.split) not in seen:
            seen.add((n.repo_id, n.repo_type, n.config, n.split))
            unique.append(n)
    return unique


def download(
    items: list[HubNeed], cache_dir: str | None = None, datasets_cache_dir: str | None = None, log=print
) -> None:  # pragma: no cover - needs the Hub
    """Fetch every item through huggingface_hub (and prepare datasets for offline `load_dataset`)."""
    from huggingface_hub import snapshot_download

    for n in items:
        log(f"fetching {n.repo_type} {n.repo_id} ({n.why})")
        folder = snapshot_download(n.repo_id, repo_type=n.repo_type, cache_dir=cache_dir)
        if n.repo_type == "dataset":  # prepare the datasets cache as the run will read it
            import datasets

            datasets.load_dataset(
                folder if n.reader == "folder" else n.repo_id, n.config, split=n.split, cache_dir=datasets_cache_dir
            )


_CHECK = r"""
import json, sys
from huggingface_hub import snapshot_download
items, cache_dir, load, ds_cache = json.loads(sys.argv[1]), sys.argv[2] or None, sys.argv[3] == "1", sys.argv[4] or None
missing = []
for n in items:
    try:
        folder = snapshot_download(n["repo_id"], repo_type=n["repo_type"], cache_dir=cache_dir, local_files_only=True)
        if load and n["repo_type"] == "dataset":
            import datasets
            datasets.load_dataset(folder if n["reader"] == "folder" else n["repo_id"], n["config"], split=n["split"],
                                  cache_dir=ds_cache)
    except Exception as e:
        missing.append({**n, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]})
print(json.dumps(missing))
"""


def check_offline(
    items: list[HubNeed],
    cache_dir: str | None = None,
    load_datasets: bool = True,
    datasets_cache_dir: str | None = None,
) -> list[dict]:
    """What a run with HF_HUB_OFFLINE=1 would not find: one dict per missing item (with the error), [] when
    everything resolves. Runs in a child process, since huggingface_hub reads the offline flag at import."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    if cache_dir:
        env["HF_HUB_CACHE"] = str(cache_dir)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHECK,
            json.dumps([n.to_dict() for n in items]),
            str(cache_dir or ""),
            "1" if load_datasets else "0",
            str(datasets_cache_dir or ""),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the offline check failed to run: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
