"""One run identity for the GPU protocol: the protocol file's hash is part of every run key and study key.

A suite's `protocol` (the hash of its card) is what `RunSpec.protocol`, hence `RunSpec.key`, and the
bench's study key are made of. For the gpu runner the protocol file decides what a run trains (model,
GRPO settings, GPU count and so the completions per update, precision), so `bind_protocol` returns the
suite with `protocol = "<card hash>+gpu:<protocol hash>"` and the protocol object attached: every spec
made from it (studies, sweeps, the live suite's own oracle runs) is keyed by the protocol file too, a
store never serves a run of file A for file B, and `suite from-sweep` sees which protocol each run used.
Other runner kinds are returned unchanged, so CPU and replay keys are exactly as before.
"""

from __future__ import annotations

import copy
from pathlib import Path

from harness.protocols.gpu import protocol_for_suite

GPU_MARK = "+gpu:"


def run_identity(card_protocol: str, protocol) -> str:
    """The `RunSpec.protocol` of a run of a suite (its card hash) under a GPU protocol file."""
    return f"{card_protocol.split(GPU_MARK)[0]}{GPU_MARK}{protocol.hash}"


def bind_protocol(suite, runner_kind: str, protocol_file: str | Path | None = None):
    """The suite as the gpu runner under `protocol_file` (the --protocol-file argument; else the card's
    protocol) sees it; for any other runner kind, the suite itself."""
    if runner_kind != "gpu":
        return suite
    protocol = protocol_for_suite(suite, protocol_file)
    bound = copy.copy(suite)
    if hasattr(bound, "give"):  # a live suite's runner, if it was given one, trains the unbound suite's runs
        bound.give(None, None)
    bound._cache = {}
    bound.protocol = run_identity(suite.protocol, protocol)
    bound.gpu_protocol = protocol
    return bound
