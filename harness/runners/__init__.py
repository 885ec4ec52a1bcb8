"""Runners turn a RunSpec into a RunResult. They answer; they never decide.

Kinds: `replay` (recorded tables, surrogates and analytic suites; here), `cpu` and `gpu` (real
training; they register themselves here when their modules exist).
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
