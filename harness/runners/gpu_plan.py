"""The GPU runner's plan of one pilot run and its execution: the commands (`launch_plan`: prepare, the
vLLM server, `accelerate launch ... harness.runners.gpu_job train`, evaluate) on the GPUs of the job's
allocation and on its own ports, and `execute`, which runs them in turn (a server until it answers healthy).
The driver (harness/runners/gpu.py) writes the run folder and calls these; the commands' bodies are
harness/runners/gpu_job.py.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.protocols.gpu import GpuProtocol
from harness.runners.gpu_ports import JobPorts, wait_own_server

ROOT = Path(__file__).resolve().parent.parent.parent


class GpuUnavailable(ValueError):
    """The GPU path cannot run here; the message names what is missing and how to install it."""


def allocated_gpus(n: int) -> list[str]:
    """Device ids of the n GPUs a pilot run uses. Inside a SLURM job (or any scheduler that confines a job
    to some GPUs) CUDA_VISIBLE_DEVICES already lists the job's allocation, e.g. "4,5,6,7": the plan's i-th
    GPU is its i-th entry. Without it, 0..n-1."""
    visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if not visible:
        return [str(i) for i in range(n)]
    if len(visible) < n:
        raise GpuUnavailable(
            f"the protocol asks for {n} GPU(s) but CUDA_VISIBLE_DEVICES lists only {len(visible)} "
            f"({','.join(visible)}): ask the scheduler for {n} (slurm.gpus_per_node)"
        )
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


def _accelerate_train(run_dir: str, ports: JobPorts, bf16: bool, num_processes: int, cpu: bool) -> tuple[str, ...]:
    """`accelerate launch ... gpu_job train`: one argument list for the CPU and the GPU plan, so the two
    cannot drift apart (only `--cpu` and the process count differ)."""
    return (
        "accelerate",
        "launch",
        *(("--cpu",) if cpu else ()),
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--main_process_port",
        str(ports.accelerate),
        "--mixed_precision",
        "bf16" if bf16 else "no",
        "--dynamo_backend",
        "no",
        "-m",
        "harness.runners.gpu_job",
        "train",
        run_dir,
    )


def launch_plan(protocol: GpuProtocol, run_dir: str | Path, ports: JobPorts | None = None) -> list[Command]:
    """The commands of one pilot run (server mode: vLLM on the last GPU(s), training on the others), on
    the job's own ports (`ports`, chosen when the job starts; the dry run shows placeholders)."""
    run_dir = str(run_dir)
    gen, tr = protocol.generation, protocol.training
    ports = ports or JobPorts.placeholder(protocol)
    commands = []
    if protocol.assets.builder:
        commands.append(Command("prepare", ("python", "-m", "harness.runners.gpu_job", "prepare", run_dir)))
    if protocol.device == "cpu":  # one CPU process, vLLM colocated (the protocol refuses server mode on CPU)
        env = {"VLLM_CPU_KVCACHE_SPACE": str(gen.vllm_cpu_kvcache_gb)} if gen.vllm_cpu_kvcache_gb else {}
        commands.append(
            Command(
                "train",
                _accelerate_train(run_dir, ports, tr.bf16, num_processes=1, cpu=True),
                env,
            )
        )
        commands.append(Command("evaluate", ("python", "-m", "harness.runners.gpu_job", "evaluate", run_dir), env))
        return commands
    gpus = allocated_gpus(protocol.slurm.gpus_per_node)
    server = gen.use_vllm and gen.vllm_mode == "server"
    train_gpus = gpus[: len(gpus) - gen.vllm_gpus] if server else gpus
    if server:
        vllm_gpus = gpus[len(gpus) - gen.vllm_gpus :]
        commands.append(
            Command(
                "vllm-server",
                (
                    "trl",
                    "vllm-serve",
                    "--model",
                    protocol.model.base,
                    "--tensor_parallel_size",
                    str(gen.vllm_gpus),
                    "--port",
                    str(ports.vllm),
                    "--gpu_memory_utilization",
                    str(gen.vllm_gpu_memory_utilization),
                    "--dtype",
                    protocol.model.torch_dtype,
                    *(("--max_model_len", str(gen.vllm_max_model_len)) if gen.vllm_max_model_len else ()),
                    *(("--trust_remote_code", "true") if protocol.model.trust_remote_code else ()),
                    # forwarded to `vllm serve`: the name the health check asks for, so it never accepts another job's server
                    "--served-model-name",
                    ports.served_model_name,
                ),
                {"CUDA_VISIBLE_DEVICES": ",".join(vllm_gpus)},
                background=True,
            )
        )
    commands.append(
        Command(
            "train",
            _accelerate_train(run_dir, ports, tr.bf16, num_processes=max(1, len(train_gpus)), cpu=False),
            {"CUDA_VISIBLE_DEVICES": ",".join(train_gpus)},
        )
    )
    commands.append(
        Command(
            "evaluate",
            ("python", "-m", "harness.runners.gpu_job", "evaluate", run_dir),
            {"CUDA_VISIBLE_DEVICES": ",".join(gpus)},
        )
    )
    return commands


def execute(
    commands: list[Command], run_dir: Path, protocol: GpuProtocol, ports: JobPorts | None = None
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
                proc = subprocess.Popen(
                    list(cmd.argv),
                    env={**os.environ, "PATH": path, "PYTHONPATH": pythonpath, **cmd.env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=os.getcwd(),
                )
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
