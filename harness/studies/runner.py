"""The runner interface: what a study asks of execution, `run(spec) -> RunResult`.

It sits below both sides of that line: the study loop (harness/studies/study.py) holds a Runner, and the runner
kinds (harness/runners/: replay, cpu, gpu; harness/runners/slurm.py's job-submitting wrapper) implement it, so the
study never imports the runners' room.
"""

from __future__ import annotations

from harness.spec import RunResult, RunSpec


class Runner:
    """`run(spec) -> RunResult`. A runner raises only for programming errors; a run that fails
    (a crash in training, a bad mixture) comes back as a failed RunResult with its reason.

    A runner that can train online also has `run_online(request) -> RunResult`, for an online run
    (`harness.training.online.OnlineRunSpec`: the spec, the strategy's controller and its description);
    the online track asks for that method (`harness.suites.online_track.check_runner`). The strategy decides the
    weights through its controller; the runner only trains."""

    kind: str = ""

    def run(self, spec: RunSpec) -> RunResult:
        raise NotImplementedError


def refuse_online(spec: RunSpec, kind: str) -> None:
    """An online spec sent to `run` (the offline entry point): a programming error, named."""
    if spec.online:
        raise ValueError(
            f"run spec {spec.key[:16]} names online strategy {spec.online!r}: an online run goes to the "
            f"{kind} runner's run_online (an OnlineRunSpec with the strategy's controller), not run"
        )
