"""What a GPU machine would have hit in the GPU runner, each with a test that failed before its fix
(issue 14): flash-attn, InternVL2's loading, two vLLM engines in one evaluation, the server's health
path, CUDA_VISIBLE_DEVICES under SLURM, checkpoint size, lmms-eval's task manager, images decoded in
every training process. Also the `device: cpu` protocol settings that run the same commands on CPU.

Stand-ins replace vLLM and lmms-eval here (this venv has neither); the end-to-end pilot run with the
real ones is tests/test_gpu_pilot_cpu.py.
"""

from __future__ import annotations

import dataclasses
import http.server
import importlib.util
import json
import sys
import textwrap
import types
import warnings
from pathlib import Path

import pytest

from harness.protocols.gpu import ProtocolError, load_protocol, registered
from harness.runners import gpu, gpu_config, gpu_job, gpu_plan
from harness.runners.gpu_plan import launch_plan

ROOT = Path(__file__).resolve().parent.parent


# -- flash-attn: not installed by any extra, so fall back to sdpa with a warning ------------------------
def test_flash_attention_falls_back_to_sdpa_with_a_warning_when_flash_attn_is_missing(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "flash_attn" else real(name, *a))
    with pytest.warns(RuntimeWarning, match="flash-attn package is not installed: loading with sdpa"):
        assert gpu_config.attn_implementation("flash_attention_2") == "sdpa"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gpu_config.attn_implementation("sdpa") == "sdpa"
    fake = importlib.machinery.ModuleSpec("flash_attn", None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: fake if name == "flash_attn" else real(name, *a))
    assert gpu_config.attn_implementation("flash_attention_2") == "flash_attention_2"


def test_train_loads_the_model_through_the_fallback():
    src = Path(gpu_job.__file__).read_text()
    assert "attn_implementation=attn_implementation(m.attn_implementation)" in src


# -- every shipped protocol's model loads through AutoModelForImageTextToText --------------------------
FAMILY_MODEL_TYPE = {"qwen2-vl": "qwen2_vl", "qwen2.5-vl": "qwen2_5_vl", "internvl": "internvl"}


def test_every_shipped_protocol_is_a_transformers_image_text_to_text_model():
    pytest.importorskip("transformers")
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES as NATIVE
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    for name, path in registered().items():
        p = load_protocol(path)
        assert not p.model.trust_remote_code, f"{name} needs custom Hub code"
        model_type = FAMILY_MODEL_TYPE[p.model.family]
        assert model_type in NATIVE and model_type in PROCESSOR_MAPPING_NAMES, name
    assert "internvl2-2b" not in registered() and "internvl3-2b" in registered()
    assert load_protocol("internvl3-2b").model.vision_module == "vision_tower"


def test_internvl2_family_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "model: {family: internvl2, base: OpenGVLab/InternVL2-2B, trust_remote_code: true}\n"
        "datasets: {train: {COCO: a/b}}\n"
    )
    with pytest.raises(ProtocolError, match="registered only for AutoModel.*InternVL3-2B-hf"):
        load_protocol(path)


# -- the server's health endpoint --------------------------------------------------------------------
class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # TRL 1.16's vllm-serve: /health answers, /health/ is not a route
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_launch_plan_uses_the_jobs_gpu_allocation(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")  # what SLURM sets for a job given GPUs 4-7
    server, train, evaluate = launch_plan(load_protocol("paper-qwen2vl-2b"), "/runs/x")
    assert server.env["CUDA_VISIBLE_DEVICES"] == "7"
    assert train.env["CUDA_VISIBLE_DEVICES"] == "4,5,6"
    assert evaluate.env["CUDA_VISIBLE_DEVICES"] == "4,5,6,7"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    with pytest.raises(gpu_plan.GpuUnavailable, match="lists only 1"):
        launch_plan(load_protocol("paper-qwen2vl-2b"), "/runs/x")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert launch_plan(load_protocol("paper-qwen2vl-2b"), "/runs/x")[1].env["CUDA_VISIBLE_DEVICES"] == "0,1,2"


# -- checkpoints: one kept, weights only ---------------------------------------------------------------
def test_checkpoints_keep_one_and_no_optimizer_state(tmp_path):
    pytest.importorskip("trl")
    p = load_protocol("paper-qwen2vl-2b-1gpu")
    p = dataclasses.replace(p, training=dataclasses.replace(p.training, bf16=False))
    args = gpu_config.grpo_config(p, gpu_config.training_config(p, tuple(p.datasets.train)), 0, str(tmp_path))
    assert args.save_total_limit == 1 and args.save_only_model is True and args.save_steps == 500


# -- images decoded once ----------------------------------------------------------------------------------
def test_paper_rows_reach_the_trainer_without_decoding_an_image(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    import PIL.Image

    from harness.training.config import ProtocolConfig
    from harness.training.grpo import mixture_dataset
    from tasks.paper_datasets import PaperSource
    from tasks.paper_tiny import write_datasets

    paths = write_datasets(tmp_path, n_train=6, n_test=2)
    opened = []
    real_open = PIL.Image.open
    monkeypatch.setattr(PIL.Image, "open", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    source = PaperSource(paths["train"], paths["test_in"])
    cfg = ProtocolConfig(train_domains=("COCO", "SAT"), steps=2, prompts_per_step=2, pool_per_domain=10**9)
    ds = mixture_dataset(cfg, {"COCO": 0.5, "SAT": 0.5}, 0, source.train_rows)
    assert len(ds) >= 6 and not opened  # converted and interleaved with the images still encoded
    row = ds[0]  # the trainer decodes each image once, when it reads the row
    assert row["image"].size == (84, 84) and row["task"] in ("coco", "sat") and len(opened) == 1


# -- one vLLM engine and lmms-eval's task manager in the evaluation ----------------------------------------
class _Out:
    def __init__(self, text):
        self.outputs = [types.SimpleNamespace(text=text)]


def _fake_stack(monkeypatch, calls):
    """Stand-ins for vllm and lmms_eval that record what the evaluation asks of them."""
    vllm = types.ModuleType("vllm")

    class LLM:
        def __init__(self, **kwargs):
            calls.setdefault("engines", []).append(kwargs)

        def chat(self, messages, sampling, use_tqdm=False):
            return [_Out("<think>t</think><answer>A</answer>") for _ in messages]

    vllm.LLM, vllm.SamplingParams = LLM, lambda **kw: kw
    lm = types.ModuleType("lmms_eval")
    api, model_mod, registry = (
        types.ModuleType(n) for n in ("lmms_eval.api", "lmms_eval.api.model", "lmms_eval.api.registry")
    )

    class lmms:
        def __init__(self):
            self.task_dict = {}

    model_mod.lmms = lmms
    registry.register_model = lambda *names: lambda cls: cls
    evaluator, tasks_mod = types.ModuleType("lmms_eval.evaluator"), types.ModuleType("lmms_eval.tasks")

    class TaskManager:
        def __init__(self, verbosity="INFO", include_path=None, **kw):
            self.include_path = include_path

    def simple_evaluate(model=None, tasks=(), task_manager=None, **kw):
        calls["simple_evaluate"] = {"model": model, "tasks": list(tasks), "task_manager": task_manager, **kw}
        # logged samples: ChartQA and InfoVQA are scored by exact match from them (1 of 4 right: 0.25)
        samples = [{"target": "A", "filtered_resps": ["A"]}] + [{"target": "B", "filtered_resps": ["A"]}] * 3
        return {
            "results": {t: {"exact_match,none": 0.25, "relaxed_overall,none": 0.9, "alias": t} for t in tasks},
            "samples": {t: samples for t in tasks},
        }

    evaluator.simple_evaluate, tasks_mod.TaskManager = simple_evaluate, TaskManager
    for name, mod in (
        ("vllm", vllm),
        ("lmms_eval", lm),
        ("lmms_eval.api", api),
        ("lmms_eval.api.model", model_mod),
        ("lmms_eval.api.registry", registry),
        ("lmms_eval.evaluator", evaluator),
        ("lmms_eval.tasks", tasks_mod),
    ):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delitem(sys.modules, "tasks.lmms.model", raising=False)


def _eval_run(tmp_path, extra_evaluation: str = "") -> Path:
    from tasks.paper_tiny import write_datasets

    paths = write_datasets(tmp_path / "data", n_train=2, n_test=3)
    proto = tmp_path / "proto.yaml"
    proto.write_text(
        textwrap.dedent(f"""
        model: {{base: {tmp_path / "model"}}}
        training: {{per_device_train_batch_size: 6}}
        datasets:
          train: {json.dumps(paths["train"])}
          test_in: {json.dumps(paths["test_in"])}
        evaluation:
          in_domain: {{LISA: 3, SAT: 3, ScienceQA: 3}}
          out_of_domain:
            A: {{task: chartqa, size: 1}}
            B: {{task: mmmu_val, size: 3}}
    """)
        + extra_evaluation
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"protocol_file": str(proto), "spec": {}, "datasets": []}))
    return run_dir


def test_evaluation_builds_one_vllm_engine_for_in_and_out_of_domain(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    run_dir = _eval_run(tmp_path)
    calls: dict = {}
    _fake_stack(monkeypatch, calls)
    gpu_job.evaluate_main(run_dir)
    assert len(calls["engines"]) == 1  # in-domain and out-of-domain share the one engine
    assert calls["simple_evaluate"]["tasks"] == ["chartqa", "mmmu_val"]
    scores = json.loads((run_dir / "scores.json").read_text())
    assert scores["A"] == scores["B"] == 0.25 and scores["Out_Score"] == pytest.approx(0.25)
    assert scores["In_Score"] == pytest.approx((scores["LISA"] + scores["SAT"] + scores["ScienceQA"]) / 3)
    info = json.loads((run_dir / "eval_info.json").read_text())
    assert info["vllm_engines_built"] == 1 and set(info["lmms_eval_results"]) == {"chartqa", "mmmu_val"}


def test_out_of_domain_evaluation_passes_lmms_eval_a_task_manager_for_local_tasks(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    calls: dict = {}
    _fake_stack(monkeypatch, calls)
    from tasks.lmms.model import evaluate_out_of_domain

    scores = evaluate_out_of_domain("ckpt", {"A": "local_a"}, include_path=str(tmp_path / "lmms_tasks"))
    assert scores == {"A": 0.25}  # a local task's exact_match is read
    assert calls["simple_evaluate"]["task_manager"].include_path == str(tmp_path / "lmms_tasks")
    run_dir = _eval_run(tmp_path, f"  lmms_include_path: {tmp_path / 'lmms_tasks'}\n")
    gpu_job.evaluate_main(run_dir)  # the protocol's lmms_include_path reaches lmms-eval
    assert calls["simple_evaluate"]["task_manager"].include_path == str(tmp_path / "lmms_tasks")


def test_lmms_docstring_no_longer_claims_the_command_line_works():
    doc = (ROOT / "tasks" / "lmms" / "model.py").read_text().split('"""')[1]
    assert "works after\nimporting this module" not in doc and "Not from lmms-eval's command line" in doc


# -- device: cpu -------------------------------------------------------------------------------------------
def test_cpu_protocol_runs_the_same_commands_on_one_cpu_process():
    p = load_protocol("paper-protocol-tiny")
    assert p.device == "cpu" and p.training_processes == 1 and p.prompts_per_update * p.training.num_generations == 12
    plan = launch_plan(p, "/runs/t")
    assert [c.name for c in plan] == ["prepare", "train", "evaluate"]
    train = plan[1]
    assert train.argv[:3] == ("accelerate", "launch", "--cpu") and "--num_processes" in train.argv
    assert train.argv[train.argv.index("--num_processes") + 1] == "1"
    assert train.argv[-3:] == ("harness.runners.gpu_job", "train", "/runs/t")
    assert "CUDA_VISIBLE_DEVICES" not in train.env and train.env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    resolved = p.resolved("/assets")
    assert resolved.model.base == "/assets/model" and resolved.datasets.train["SAT"] == "/assets/train/SAT"
    assert resolved.evaluation.lmms_include_path == "/assets/lmms_tasks"


@pytest.mark.parametrize(
    "extra, needle",
    [
        ("generation: {vllm_mode: server, vllm_gpus: 1}\n", "NCCL transfer that needs CUDA"),
        ("model: {attn_implementation: flash_attention_2}\n", "sdpa or eager"),
        ("slurm: {gpus_per_node: 2}\n", "gpus_per_node: 0"),
        ("device: tpu\n", "cuda, cpu"),
        ("assets: {builder: paper-protocol-tiy}\n", "paper-protocol-tiny"),
    ],
)
def test_cpu_protocol_validation_says_what_to_set(tmp_path, extra, needle):
    base = (
        "device: cpu\nmodel: {torch_dtype: float32, attn_implementation: sdpa}\n"
        "generation: {vllm_mode: colocate, vllm_gpus: 0}\nslurm: {gpus_per_node: 0}\n"
        "datasets: {train: {COCO: a/b}}\n"
    )
    lines = {ln.split(":")[0]: ln for ln in base.splitlines()}
    lines[extra.split(":")[0]] = extra.rstrip("\n")
    path = tmp_path / "p.yaml"
    path.write_text("\n".join(lines.values()) + "\n")
    with pytest.raises(ProtocolError) as err:
        load_protocol(path)
    assert needle in str(err.value)


def test_without_the_cpu_environment_the_runner_names_make_venv_gpu_cpu():
    from harness import suites

    if not gpu.missing_requirements(load_protocol("paper-protocol-tiny")):
        pytest.skip("this environment can run the GPU path on CPU")
    from harness.spec import RunSpec

    from harness.runners.gpu_identity import bind_protocol

    suite = bind_protocol(suites.load("paper-protocol-tiny"), "gpu")
    runner = gpu.GpuRunner(suite)
    spec = RunSpec(suite.id, suite.protocol, suite.space.parse("SAT=1"), 0)
    with pytest.raises(gpu_plan.GpuUnavailable, match="make venv-gpu-cpu"):
        runner.run(spec)
    assert "make venv-gpu-cpu" in runner.dry_run(spec)
