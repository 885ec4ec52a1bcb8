"""GPU runner: the paper's protocol (GRPO with vLLM generation, lmms-eval evaluation) for one mixture.

One pilot run is three commands on the GPUs of one node (one SLURM job, see harness/slurm.py):
1. server mode only: `trl vllm-serve` on the vLLM GPU(s), generating rollouts for the trainer;
2. `accelerate launch -m harness.runners.gpu train RUN_DIR` on the training GPUs: the same
   training code as the cpu runner (`harness.training`: mixture sampling, TRL GRPOTrainer, the
   reward functions of `tasks.rewards`) with the protocol file's bigger configuration, on the
   paper's datasets (`tasks.paper_datasets`);
3. `python -m harness.runners.gpu evaluate RUN_DIR`: in-domain test sets with the project's own
   reward checkers (batched vLLM generation), out-of-domain sets through lmms-eval
   (`tasks.lmms.model`), aggregated into In-Score and Out-Score the paper's way.
Each command writes into RUN_DIR (`run.json` in, `checkpoint/`, `scores.json` out), so a command
can be re-run by hand. `dry_run(spec)` prints the resolved protocol and these commands without a
GPU; `run(spec)` first checks CUDA, vllm, lmms-eval, trl and accelerate and names what is missing.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.mixture import InvalidMixture
from harness.protocol import GpuProtocol, load_protocol, protocol_for_suite
from harness.provenance import provenance
from harness.runners.base import Runner
from harness.spec import STATUS_OK, RunResult, RunSpec

INSTALL_HINT = "pip install 'modomodo[gpu]'"


class GpuUnavailable(ValueError):
    """The GPU path cannot run here; the message names what is missing and how to install it."""


def missing_requirements(protocol: GpuProtocol | None = None) -> list[str]:
    """What this machine lacks for a real GPU run (empty when it can run)."""
    missing = []
    try:
        import torch

        if not torch.cuda.is_available():
            missing.append(f"CUDA (torch {torch.__version__} sees no GPU)")
    except ImportError:
        missing.append("torch")
    use_vllm = protocol is None or protocol.generation.use_vllm
    for module, why in (("vllm", "vLLM generation" if use_vllm else "batched evaluation"),
                        ("lmms_eval", "out-of-domain evaluation"), ("trl", "GRPO"), ("accelerate", "multi-GPU launch"),
                        ("datasets", "the paper's datasets")):
        if importlib.util.find_spec(module) is None:
            missing.append(f"{module} ({why})")
    return missing


@dataclass(frozen=True)
class Command:
    """One process of a pilot run: what to run, on which GPUs, and whether it serves the others."""

    name: str
    argv: tuple[str, ...]
    env: dict = field(default_factory=dict)
    background: bool = False  # a server the next commands use; stopped when they are done

    def shell(self) -> str:
        env = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in self.env.items())
        return f"{env + ' ' if env else ''}{shlex.join(self.argv)}{' &' if self.background else ''}"


def launch_plan(protocol: GpuProtocol, run_dir: str | Path) -> list[Command]:
    """The commands of one pilot run (server mode: vLLM on the last GPU(s), training on the others)."""
    run_dir = str(run_dir)
    gpus = list(range(protocol.slurm.gpus_per_node))
    gen, tr = protocol.generation, protocol.training
    server = gen.use_vllm and gen.vllm_mode == "server"
    train_gpus = gpus[:len(gpus) - gen.vllm_gpus] if server else gpus
    commands = []
    if server:
        vllm_gpus = gpus[len(gpus) - gen.vllm_gpus:]
        commands.append(Command("vllm-server", (
            "trl", "vllm-serve", "--model", protocol.model.base, "--tensor_parallel_size", str(gen.vllm_gpus),
            "--port", str(gen.vllm_server_port), "--gpu_memory_utilization", str(gen.vllm_gpu_memory_utilization),
            "--dtype", protocol.model.torch_dtype, *(("--trust_remote_code", "true") if protocol.model.trust_remote_code
                                                    else ())),
            {"CUDA_VISIBLE_DEVICES": ",".join(map(str, vllm_gpus))}, background=True))
    commands.append(Command("train", (
        "accelerate", "launch", "--num_processes", str(max(1, len(train_gpus))), "--num_machines", "1",
        "--mixed_precision", "bf16" if tr.bf16 else "no", "--dynamo_backend", "no",
        "-m", "harness.runners.gpu", "train", run_dir),
        {"CUDA_VISIBLE_DEVICES": ",".join(map(str, train_gpus))}))
    commands.append(Command("evaluate", ("python", "-m", "harness.runners.gpu", "evaluate",
                                         run_dir), {"CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus))}))
    return commands


def steps_for(protocol: GpuProtocol, fidelity: float) -> int:
    return max(1, math.ceil(protocol.training.max_steps * float(fidelity)))


def steps_within_one_pass(protocol: GpuProtocol, steps: int, rows: int) -> int:
    """GRPO steps that one pass over `rows` mixed prompts allows (the paper trains one epoch and, when
    a used dataset runs out first, scores the last step): without this cap the trainer would start a
    second epoch of a finite dataset."""
    return max(1, min(int(steps), int(rows) // protocol.prompts_per_update))


def training_config(protocol: GpuProtocol, train_domains: tuple[str, ...], fidelity: float = 1.0):
    """The cpu runner's ProtocolConfig (harness.training) with the protocol file's bigger settings."""
    from harness.training.config import ProtocolConfig

    tr = protocol.training
    return ProtocolConfig(
        name=protocol.name, model=protocol.model.base, train_domains=tuple(train_domains), ood_sets=(),
        steps=steps_for(protocol, fidelity), prompts_per_step=max(1, protocol.prompts_per_update),
        num_generations=tr.num_generations, max_completion_length=tr.max_completion_length,
        learning_rate=tr.learning_rate, beta=tr.beta, temperature=tr.temperature, loss_type=tr.loss_type,
        scale_rewards=tr.scale_rewards, reward_weights=tuple(tr.reward_weights),
        stopping_strategy=tr.stopping_strategy,
        pool_per_domain=10**9,  # every row of each set (the loader caps at its size): one pass, as the paper
        eval_n=0, eval_batch=protocol.evaluation.batch_size, use_vllm=protocol.generation.use_vllm, bf16=tr.bf16)


def grpo_config(protocol: GpuProtocol, train_cfg, seed: int, output_dir: str):
    """TRL's GRPOConfig for the GPU protocol. The shared settings come from the cpu path's
    ProtocolConfig (`training_config`); the GPU-only ones (schedule, warm-up, accumulation, vLLM
    mode, checkpoints) from the protocol file. (`harness.training.grpo.grpo_args` fixes those to CPU
    values and derives generation sizes in GRPOConfig.__post_init__, so it cannot be updated in place.)"""
    from trl import GRPOConfig

    tr, gen = protocol.training, protocol.generation
    kwargs = dict(
        output_dir=output_dir, max_steps=train_cfg.steps, num_generations=train_cfg.num_generations,
        max_completion_length=train_cfg.max_completion_length, learning_rate=train_cfg.learning_rate,
        beta=train_cfg.beta, temperature=train_cfg.temperature, loss_type=train_cfg.loss_type,
        scale_rewards=train_cfg.scale_rewards, reward_weights=list(train_cfg.reward_weights),
        per_device_train_batch_size=tr.per_device_train_batch_size,
        gradient_accumulation_steps=tr.gradient_accumulation_steps, lr_scheduler_type=tr.lr_scheduler_type,
        warmup_steps=tr.warmup_ratio, optim=tr.optim, gradient_checkpointing=tr.gradient_checkpointing,
        save_strategy="steps", save_steps=tr.save_steps, logging_steps=tr.logging_steps, report_to="none",
        bf16=tr.bf16, seed=tr.seed + int(seed), data_seed=tr.seed + int(seed), use_vllm=gen.use_vllm)
    if gen.use_vllm:
        kwargs.update(vllm_mode=gen.vllm_mode, vllm_gpu_memory_utilization=gen.vllm_gpu_memory_utilization)
        if gen.vllm_mode == "server":
            kwargs.update(vllm_server_port=gen.vllm_server_port)
    return GRPOConfig(**kwargs)


class GpuRunner(Runner):
    kind = "gpu"

    def __init__(self, suite, protocol: GpuProtocol | None = None):
        self.suite = suite
        self.protocol = protocol or protocol_for_suite(suite)
        unknown = [d for d in suite.space.datasets if d not in self.protocol.datasets.train]
        if unknown:
            raise ValueError(f"suite {suite.name!r} mixes {list(suite.space.datasets)} but protocol "
                             f"{self.protocol.name!r} trains on {sorted(self.protocol.datasets.train)}: use a suite "
                             f"over those datasets (e.g. paper-qwen2vl-2b) or list {unknown} under datasets.train "
                             f"in a protocol file ({self.protocol.source})")

    # -- what would run ---------------------------------------------------------------------------
    def run_dir(self, spec: RunSpec) -> Path:
        root = Path(os.environ.get("MODOMODO_GPU_RUNS", "gpu-runs"))
        return root / self.protocol.name / spec.key[:16]

    def run_record(self, spec: RunSpec) -> dict[str, Any]:
        return {"spec": spec.to_dict(), "suite": str(self.suite.path), "datasets": list(self.suite.space.datasets),
                "protocol_file": self.protocol.source, "protocol_hash": self.protocol.hash,
                "steps": steps_for(self.protocol, spec.fidelity)}

    def dry_run(self, spec: RunSpec) -> str:
        """The fully resolved configuration and the commands a run would launch (no GPU needed)."""
        self.suite.space.validate(spec.mixture)
        p = self.protocol
        run_dir = self.run_dir(spec)
        mode = "no vLLM" if not p.generation.use_vllm else (
            "vLLM server mode" if p.generation.vllm_mode == "server" else "vLLM colocated")
        lines = [f"# protocol {p.name} v{p.version} (hash {p.hash}) from {p.source}",
                 yaml.safe_dump(p.to_dict(), sort_keys=False, width=110).rstrip(),
                 "# run",
                 yaml.safe_dump({"suite": self.suite.name, "mixture": spec.mixture.as_dict(), "seed": spec.seed,
                                 "fidelity": spec.fidelity, "steps": steps_for(p, spec.fidelity),
                                 "training_processes": p.training_processes, "prompts_per_update": p.prompts_per_update,
                                 "completions_per_update": p.prompts_per_update * p.training.num_generations,
                                 "run_dir": str(run_dir), "key": spec.key}, sort_keys=False).rstrip(),
                 f"# commands ({mode})",
                 f"# the runner writes {run_dir}/run.json (spec, datasets, protocol file), then runs:"]
        lines += [c.shell() for c in launch_plan(p, run_dir)]
        missing = missing_requirements(p)
        lines.append("# this machine: " + ("ready" if not missing else "cannot launch, missing " + ", ".join(missing)
                                           + f" ({INSTALL_HINT})"))
        return "\n".join(lines)

    # -- running ----------------------------------------------------------------------------------
    def run(self, spec: RunSpec) -> RunResult:
        if spec.suite != self.suite.id:
            raise ValueError(f"run spec for {spec.suite} sent to a runner of {self.suite.id}")
        missing = missing_requirements(self.protocol)
        if missing:
            raise GpuUnavailable(f"the gpu runner cannot run here: missing {', '.join(missing)}. Install the GPU "
                                 f"stack on a CUDA machine with {INSTALL_HINT}; without one, try "
                                 f"`--dry-run` to see what it would launch, or --runner cpu / replay")
        prov = dict(provenance(self.suite.protocol), gpu_protocol=self.protocol.name,
                    gpu_protocol_hash=self.protocol.hash)
        try:
            self.suite.space.validate(spec.mixture)
        except InvalidMixture as e:
            return RunResult.failed(spec, f"invalid mixture: {e}", prov)
        run_dir = self.run_dir(spec)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "run.json").write_text(json.dumps(self.run_record(spec), indent=2, sort_keys=True))
        t0 = time.time()
        try:
            execute(launch_plan(self.protocol, run_dir), run_dir, self.protocol)
            scores = json.loads((run_dir / "scores.json").read_text())
        except Exception as e:  # a crashed training or evaluation is a failed run, not a crashed study
            return RunResult.failed(spec, f"gpu run failed: {type(e).__name__}: {e} (logs in {run_dir})", prov)
        wall = time.time() - t0
        gpus = self.protocol.slurm.gpus_per_node * self.protocol.slurm.nodes
        steps = steps_for(self.protocol, spec.fidelity)
        cost = {"seconds": wall, "gpu_hours": wall * gpus / 3600.0, "steps": float(steps),
                "rollouts": float(steps * self.protocol.prompts_per_update * self.protocol.training.num_generations)}
        return RunResult(key=spec.key, spec=spec.to_dict(), status=STATUS_OK, scores=scores, metric=self.suite.metric,
                         source="trained", cost=cost, provenance=prov)


def execute(commands: list[Command], run_dir: Path, protocol: GpuProtocol) -> None:
    """Run the plan: background servers first (waited on until healthy), then each command in turn."""
    servers = []
    # accelerate, trl and python from this interpreter's environment, whether or not it is activated
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    try:
        for cmd in commands:
            log = open(run_dir / f"{cmd.name}.log", "w")
            proc = subprocess.Popen(list(cmd.argv), env={**os.environ, "PATH": path, **cmd.env}, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=os.getcwd())
            if cmd.background:
                servers.append(proc)
                _wait_healthy(protocol.generation.vllm_server_port, proc, run_dir / f"{cmd.name}.log")
                continue
            if proc.wait() != 0:
                raise RuntimeError(f"{cmd.name} exited with status {proc.returncode}; see {run_dir}/{cmd.name}.log")
            if cmd.name == "train":  # the generation server is not needed for evaluation
                for s in servers:
                    s.terminate()
    finally:
        for s in servers:
            if s.poll() is None:
                s.terminate()
                try:
                    s.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    s.kill()


def _wait_healthy(port: int, proc: subprocess.Popen, log: Path, timeout_s: float = 1200.0) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vLLM server exited with status {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"vLLM server not healthy after {timeout_s:.0f} s; see {log}")


# -- the commands' bodies (run on the GPU node) -----------------------------------------------------
def _load_run(run_dir: Path) -> tuple[dict, GpuProtocol]:
    record = json.loads((run_dir / "run.json").read_text())
    return record, load_protocol(record["protocol_file"])


def _paper_source(protocol: GpuProtocol):
    from tasks.paper_datasets import PaperSource

    d = protocol.datasets
    return PaperSource(d.train, d.test_in, d.train_split, d.test_split, d.cache_dir or None)


def _freeze_vision(model, module_name: str) -> int:
    """Freeze the vision encoder (found by its submodule name); returns the parameters frozen."""
    frozen = 0
    for name, module in model.named_modules():
        if name == module_name or name.endswith(f".{module_name}"):
            for p in module.parameters():
                p.requires_grad_(False)
                frozen += p.numel()
            break
    if not frozen:
        raise ValueError(f"model has no submodule {module_name!r} to freeze; set model.vision_module")
    return frozen


def train_main(run_dir: Path) -> None:
    """GRPO for one pilot run (launched by accelerate on the training GPUs)."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import GRPOTrainer

    from harness.training.grpo import mixture_dataset
    from tasks.rewards import REWARD_FUNCS

    record, protocol = _load_run(run_dir)
    spec = RunSpec.from_dict(record["spec"])
    cfg = training_config(protocol, tuple(record["datasets"]), spec.fidelity)
    dataset = mixture_dataset(cfg, spec.mixture.as_dict(), int(spec.seed), _paper_source(protocol).train_rows)
    cfg = dataclasses.replace(cfg, steps=steps_within_one_pass(protocol, cfg.steps, len(dataset)))
    m = protocol.model
    model = AutoModelForImageTextToText.from_pretrained(m.base, dtype=getattr(torch, m.torch_dtype),
                                                        attn_implementation=m.attn_implementation,
                                                        trust_remote_code=m.trust_remote_code)
    processor = AutoProcessor.from_pretrained(m.base, padding_side="left", trust_remote_code=m.trust_remote_code)
    if m.freeze_vision_tower:
        _freeze_vision(model, m.vision_module)
    args = grpo_config(protocol, cfg, int(spec.seed), str(run_dir / "trainer"))
    trainer = GRPOTrainer(model=model, reward_funcs=list(REWARD_FUNCS), args=args, train_dataset=dataset,
                          processing_class=processor)
    trainer.train()  # stops early when a used dataset is exhausted (first_exhausted): the last step is scored
    trainer.save_model(str(run_dir / "checkpoint"))
    if trainer.accelerator.is_main_process:
        processor.save_pretrained(str(run_dir / "checkpoint"))
        (run_dir / "train_log.json").write_text(json.dumps(trainer.state.log_history))


def evaluate_main(run_dir: Path) -> None:
    """In-domain (own reward checkers, vLLM) and out-of-domain (lmms-eval) scores -> scores.json."""
    from vllm import LLM, SamplingParams

    from tasks.rewards import accuracy
    from tasks.scoring_paper import paper_scores

    record, protocol = _load_run(run_dir)
    ckpt = str(run_dir / "checkpoint")
    ev, source = protocol.evaluation, _paper_source(protocol)
    llm = LLM(model=ckpt, trust_remote_code=protocol.model.trust_remote_code, limit_mm_per_prompt={"image": 1})
    sampling = SamplingParams(temperature=0.0, max_tokens=ev.max_new_tokens)
    scores: dict[str, float] = {}
    for name in ev.in_domain:
        rows = source.test_rows(name, ev.limit)
        messages = [[{"role": "user", "content": [{"type": "image_pil", "image_pil": r["image"]},
                                                  {"type": "text", "text": r["prompt"][-1]["content"]}]}] for r in rows]
        outs = llm.chat(messages, sampling, use_tqdm=True)
        hits = [accuracy(o.outputs[0].text, r["solution"], r["task"]) for o, r in zip(outs, rows)]
        scores[name] = sum(hits) / len(hits)
    del llm  # free the GPU for lmms-eval's own engine
    from tasks.lmms.model import evaluate_out_of_domain

    ood = {name: entry["task"] for name, entry in ev.out_of_domain.items()}
    scores.update(evaluate_out_of_domain(ckpt, ood, limit=ev.limit or None,
                                         cache_dir=protocol.datasets.cache_dir or None, batch_size=ev.batch_size,
                                         max_new_tokens=ev.max_new_tokens,
                                         trust_remote_code=protocol.model.trust_remote_code))
    result = paper_scores(scores, ev.in_domain, {n: e["size"] for n, e in ev.out_of_domain.items()})
    (run_dir / "scores.json").write_text(json.dumps(result, indent=2, sort_keys=True))


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2 or argv[0] not in ("train", "evaluate"):
        raise SystemExit("usage: python -m harness.runners.gpu {train|evaluate} RUN_DIR")
    (train_main if argv[0] == "train" else evaluate_main)(Path(argv[1]))


if __name__ == "__main__":  # pragma: no cover - runs on GPU nodes
    main()
