"""The GPU protocol up to the launch: protocol files, validation, resolution, the launch plan, dry-run,
TRL's GRPOConfig built from a protocol, and the clear refusal on a machine without CUDA / vLLM."""

from __future__ import annotations

import dataclasses
import importlib.util
import textwrap

import pytest
from click.testing import CliRunner

from harness import suites
from harness.cli import main
from harness.protocols.gpu import (
    DEFAULT_PROTOCOL,
    ProtocolError,
    describe_fields,
    load_protocol,
    protocol_for_suite,
    registered,
)
from harness.runners import make_runner
from harness.runners.gpu import GpuRunner, missing_requirements
from harness.runners.gpu_config import training_config
from harness.runners.gpu_plan import GpuUnavailable, launch_plan
from harness.spec import RunSpec

PAPER_MIX = "COCO=0.2,LISA=0.2,GeoQAV=0.2,SAT=0.2,ScienceQA=0.2"


def test_paper_protocol_is_the_papers():
    p = load_protocol(DEFAULT_PROTOCOL)
    assert p.model.base == "Qwen/Qwen2-VL-2B-Instruct" and p.model.freeze_vision_tower
    t = p.training
    assert (t.num_generations, t.learning_rate, t.warmup_ratio, t.lr_scheduler_type, t.beta) == (
        6,
        1e-6,
        0.1,
        "linear",
        0.04,
    )
    assert (list(t.reward_weights), t.bf16, t.max_steps, t.seed, t.stopping_strategy) == (
        [2.0, 1.0],
        True,
        2000,
        42,
        "first_exhausted",
    )
    # 3 training GPUs + 1 vLLM GPU, 2 prompts x 6 generations = 12 trajectories per update
    assert (p.slurm.gpus_per_node, p.training_processes, p.prompts_per_update) == (4, 3, 2)
    assert p.generation.use_vllm and p.generation.vllm_mode == "server"
    assert sorted(p.datasets.train) == ["COCO", "GeoQAV", "LISA", "SAT", "ScienceQA"]
    assert p.evaluation.in_domain == {"LISA": 3397, "SAT": 1928, "ScienceQA": 2017}
    assert {k: v["size"] for k, v in p.evaluation.out_of_domain.items()} == {
        "ChartQA": 2500,
        "InfoVQA": 2801,
        "MathVista": 1000,
        "MMMU": 900,
    }


def test_every_shipped_protocol_loads_and_covers_the_base_models():
    protos = {n: load_protocol(n) for n in registered()}
    bases = {p.model.base for p in protos.values()}
    assert {
        "Qwen/Qwen2-VL-2B-Instruct",
        "Qwen/Qwen2.5-VL-3B-Instruct",
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "OpenGVLab/InternVL3-2B-hf",
    } <= bases
    assert len({p.hash for p in protos.values()}) == len(protos)
    for p in protos.values():  # same updates everywhere: strategies are compared under one protocol
        assert p.prompts_per_update * p.training.num_generations == 12


def _write(tmp_path, text):
    path = tmp_path / "proto.yaml"
    path.write_text(textwrap.dedent(text))
    return path


MINIMAL = """
datasets:
  train: {COCO: a/coco}
"""


@pytest.mark.parametrize(
    "extra, needle",
    [
        ("training: {num_generation: 6}\n", "num_generations"),  # typo -> suggestion
        ("training: {learning_rate: fast}\n", "must be a number"),
        ("training: {num_generations: 5}\n", "multiple of training.num_generations"),
        ("slurm: {gpus_per_node: 1}\n", "vllm_mode: colocate"),  # server mode needs a spare GPU
        ("model: {family: internvl2, base: OpenGVLab/InternVL2-2B}\n", "registered only for AutoModel"),
        ("model: {family: llava}\n", "not supported"),
        ("generation: {vllm_mode: remote}\n", "server, colocate"),
        ("slurm: {timeout_min: 0}\n", "slurm.timeout_min must be an integer >= 1"),
    ],
)
def test_validation_says_what_to_set(tmp_path, extra, needle):
    with pytest.raises(ProtocolError, match="proto.yaml") as err:
        load_protocol(_write(tmp_path, MINIMAL + extra))
    assert needle in str(err.value)


def test_missing_datasets_names_the_setting_and_its_help(tmp_path):
    with pytest.raises(ProtocolError, match=r"datasets: Training and in-domain test sets"):
        load_protocol(_write(tmp_path, "version: '2'\n"))
    assert any(line.startswith("  learning_rate: Peak learning rate") for line in describe_fields())


def test_protocol_resolution_order(tmp_path, monkeypatch):
    paper = suites.load("paper-qwen2vl-2b")
    assert protocol_for_suite(paper).name == DEFAULT_PROTOCOL  # by base model
    from harness.runners.gpu_identity import bind_protocol

    assert protocol_for_suite(bind_protocol(paper, "gpu", "qwen25vl-3b")).name == "qwen25vl-3b"
    assert protocol_for_suite(paper, override="internvl3-2b").name == "internvl3-2b"
    with pytest.raises(ProtocolError, match="qwen25vl-3b"):
        load_protocol("qwen25vl-3")


def test_launch_plan_server_and_colocate():
    server = launch_plan(load_protocol(DEFAULT_PROTOCOL), "/runs/x")
    assert [c.name for c in server] == ["vllm-server", "train", "evaluate"]
    assert server[0].background and server[0].env["CUDA_VISIBLE_DEVICES"] == "3"
    assert server[0].argv[:4] == ("trl", "vllm-serve", "--model", "Qwen/Qwen2-VL-2B-Instruct")
    train = server[1]
    assert train.env["CUDA_VISIBLE_DEVICES"] == "0,1,2" and train.argv[:4] == (
        "accelerate",
        "launch",
        "--num_processes",
        "3",
    )
    assert train.argv[-3:] == ("train", "/runs/x") or train.argv[-2:] == ("train", "/runs/x")
    colocate = launch_plan(load_protocol("paper-qwen2vl-2b-1gpu"), "/runs/y")
    assert [c.name for c in colocate] == ["train", "evaluate"]
    assert colocate[0].argv[:4] == ("accelerate", "launch", "--num_processes", "1")


def test_gpu_training_settings_build_a_real_grpo_config(tmp_path):
    pytest.importorskip("trl")
    from harness.runners.gpu_config import grpo_config

    p = load_protocol("paper-qwen2vl-2b-1gpu")
    # bf16 needs a GPU to build TRL's config; everything else is checked as configured
    p = dataclasses.replace(p, training=dataclasses.replace(p.training, bf16=False))
    cfg = training_config(p, ("COCO", "LISA", "GeoQAV", "SAT", "ScienceQA"), fidelity=0.25)
    assert cfg.steps == 500 and cfg.train_domains[0] == "COCO" and cfg.stopping_strategy == "first_exhausted"
    args = grpo_config(p, cfg, seed=3, output_dir=str(tmp_path))
    assert (args.learning_rate, str(args.lr_scheduler_type.value), args.warmup_steps, args.beta) == (
        1e-6,
        "linear",
        0.1,
        0.04,
    )
    assert (args.num_generations, list(args.reward_weights), args.max_steps, args.seed) == (6, [2.0, 1.0], 500, 45)
    assert args.use_vllm and args.vllm_mode == "colocate" and args.generation_batch_size == 12


def test_training_stops_after_one_pass_over_the_mixed_data():
    from harness.runners.gpu_config import steps_within_one_pass

    p = load_protocol(DEFAULT_PROTOCOL)  # 2 prompts per update
    assert steps_within_one_pass(p, 2000, 10_000) == 2000
    assert steps_within_one_pass(p, 2000, 1326 + 5) == 665  # e.g. a LISA-only mixture runs out first
    assert steps_within_one_pass(p, 2000, 1) == 1


def test_dry_run_prints_the_resolved_protocol_and_commands(monkeypatch):
    out = CliRunner().invoke(
        main,
        [
            "run",
            "--suite",
            "paper-qwen2vl-2b",
            "--mixture",
            PAPER_MIX,
            "--runner",
            "gpu",
            "--dry-run",
            "--fidelity",
            "0.5",
            "--seed",
            "1",
        ],
    )
    assert out.exit_code == 0, out.output
    text = out.output
    assert "# protocol paper-qwen2vl-2b" in text and "learning_rate: 1.0e-06" in text and "steps: 1000" in text
    assert "trl vllm-serve --model Qwen/Qwen2-VL-2B-Instruct" in text
    assert "accelerate launch --num_processes 3" in text and "-m harness.runners.gpu_job evaluate" in text
    other = CliRunner().invoke(
        main,
        [
            "run",
            "--suite",
            "paper-qwen2vl-2b",
            "--mixture",
            PAPER_MIX,
            "--runner",
            "gpu",
            "--dry-run",
            "--protocol-file",
            str(registered()["qwen25vl-7b"]),
        ],
    )
    assert other.exit_code == 0 and "Qwen/Qwen2.5-VL-7B-Instruct" in other.output
    replay = CliRunner().invoke(main, ["run", "--suite", "paper-qwen2vl-2b", "--mixture", PAPER_MIX, "--dry-run"])
    assert replay.exit_code == 2 and "--runner gpu" in replay.output


@pytest.mark.skipif(not missing_requirements(), reason="this machine can run the GPU path")
def test_without_a_gpu_the_runner_says_what_is_missing_and_how_to_install():
    out = CliRunner().invoke(main, ["run", "--suite", "paper-qwen2vl-2b", "--mixture", PAPER_MIX, "--runner", "gpu"])
    assert out.exit_code == 2
    assert "pip install 'modomodo[gpu]'" in out.output
    if importlib.util.find_spec("vllm") is None:
        assert "vllm" in out.output
    assert "CUDA" in out.output or "torch" in out.output
    from harness.runners.gpu_identity import bind_protocol

    suite = bind_protocol(suites.load("paper-qwen2vl-2b"), "gpu")
    with pytest.raises(GpuUnavailable):
        make_runner("gpu", suite).run(RunSpec(suite.id, suite.protocol, suite.space.parse(PAPER_MIX), 0))


def test_gpu_runner_refuses_a_suite_over_other_datasets():
    with pytest.raises(ValueError, match="paper-qwen2vl-2b"):
        GpuRunner(suites.load("synth-bowl-5"))


def test_live_suite_card_points_at_its_protocol_file(tmp_path):
    (tmp_path / "card.yaml").write_text(
        textwrap.dedent("""
        name: paper-qwen25vl-3b-gpu
        version: "1"
        kind: live
        runner: gpu
        protocol_file: qwen25vl-3b
        datasets: [COCO, LISA, GeoQAV, SAT, ScienceQA]
        metric: Out_Score
        goal: max
        oracle: {seeds: 1}
    """)
    )
    try:
        suite = suites.load(str(tmp_path))
    except suites.SuiteError as e:  # live suites come with the cpu runner (issue 4)
        pytest.skip(f"live suites not available: {e}")
    runner = make_runner("gpu", suite)
    assert runner.protocol.name == "qwen25vl-3b"
    text = runner.dry_run(RunSpec(suite.id, suite.protocol, suite.space.parse("SAT=1"), 0))
    assert "Qwen/Qwen2.5-VL-3B-Instruct" in text


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_execute_waits_for_the_server_runs_in_order_and_stops_the_server(tmp_path):
    """The orchestration of a pilot run, with small real processes in place of vLLM and training."""
    import sys

    from harness.runners.gpu_plan import Command, execute

    port = _free_port()
    p = load_protocol("paper-qwen2vl-2b")
    from harness.runners.gpu_ports import JobPorts

    ports = JobPorts(port, 0, 0, "abc123")
    server = (
        "import http.server, socketserver\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.end_headers()\n"
        '        if self.path == \'/v1/models\': self.wfile.write(b\'{"data": [{"id": "modomodo-abc123"}]}\')\n'
        "    def log_message(self, *a): pass\n"
        f"socketserver.TCPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    )
    plan = [
        Command("vllm-server", (sys.executable, "-c", server), background=True),
        Command(
            "train",
            (
                sys.executable,
                "-c",
                f"import urllib.request; urllib.request.urlopen("
                f"'http://127.0.0.1:{port}/health/'); "
                f"open({str(tmp_path / 'trained')!r}, 'w')",
            ),
        ),
        Command("evaluate", (sys.executable, "-c", f"open({str(tmp_path / 'scores.json')!r}, 'w').write('{{}}')")),
    ]
    execute(plan, tmp_path, p, ports)
    assert (tmp_path / "trained").exists() and (tmp_path / "scores.json").read_text() == "{}"
    with pytest.raises(OSError):  # the server is gone
        import urllib.request

        urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=2)

    failing = [Command("train", (sys.executable, "-c", "raise SystemExit(3)"))]
    with pytest.raises(RuntimeError, match=r"train exited with status 3; see .*train\.log"):
        execute(failing, tmp_path, p)
