"""The runner interface: what a study asks of execution, `run(spec) -> RunResult`.

It sits below both sides of that line: the study loop (harness/study.py) holds a Runner, and the runner
kinds (harness/runners/: replay, cpu, gpu; harness/slurm.py's job-submitting wrapper) implement it, so the
study never imports the runners' room.
"""

from __future__ import annotations

from harness.spec import RunResult, RunSpec


class Runner:
    """`run(spec) -> RunResult`. A runner raises only for programming errors; a run that fails
    (a crash in training, a bad mixture) comes back as a failed RunResult with its reason."""

    kind: str = ""

    def run(self, spec: RunSpec) -> RunResult:
        raise NotImplementedError
