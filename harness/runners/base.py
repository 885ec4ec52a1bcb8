"""The runner interface."""

from __future__ import annotations

from harness.spec import RunResult, RunSpec


class Runner:
    """`run(spec) -> RunResult`. A runner raises only for programming errors; a run that fails
    (a crash in training, a bad mixture) comes back as a failed RunResult with its reason."""

    kind: str = ""

    def run(self, spec: RunSpec) -> RunResult:
        raise NotImplementedError
