"""Execution: runners turn a RunSpec into a RunResult, executors decide where work runs. They answer; they
never decide what to run.

Kinds: `replay` (recorded tables, surrogates and analytic suites; here), `cpu` and `gpu` (real
training; they register themselves here when their modules exist). They implement the Runner interface
a study holds (harness/studies/runner.py).

- `replay`, `cpu`        the replay runner; the CPU runner (the real protocol at toy scale)
- `gpu`, `gpu_plan`, `gpu_job`, `gpu_config`, `gpu_identity`, `gpu_ports`
                         the GPU driver, its plan and launch, the job's entry points on the node
                         (`python -m harness.runners.gpu_job`), its training settings, its run identity, its ports
- `own_runs`             a live suite's own runs: the runner and store the execution layer gives it
- `executor`, `slurm`    where work runs: in-process, a local process pool, one submitit job per task
- `fsdp_probe`, `precision_probe`, `vllm_cpu`, `gpu_cpu_env`
                         the GPU path's code measured and run on CPU
"""

from __future__ import annotations

from harness.mixture import did_you_mean
from harness.studies.runner import Runner
from harness.runners.replay import ReplayRunner

RUNNERS: dict[str, str] = {
    "replay": "harness.runners.replay:ReplayRunner",
    "cpu": "harness.runners.cpu:CpuRunner",
    "gpu": "harness.runners.gpu:GpuRunner",
}


def make_runner(kind: str, suite) -> Runner:
    import importlib

    if kind not in RUNNERS:
        raise ValueError(f"unknown runner {kind!r}; {did_you_mean(kind, sorted(RUNNERS))}")
    module, _, attr = RUNNERS[kind].partition(":")
    return getattr(importlib.import_module(module), attr)(suite)


__all__ = ["Runner", "ReplayRunner", "RUNNERS", "make_runner"]
