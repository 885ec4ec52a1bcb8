"""A live suite's own runs: the execution layer gives the suite the runner and the store that train and keep them.

A live suite (harness/suites/live.py) is judged by real training runs of its own: its oracle (a recommendation's
score, the uniform reference line) is the mean over fixed oracle seeds. The judge does not build runners or
stores; whoever runs studies on a live suite gives it both here, before any score is asked for:

- the runner: by default one of the card's kind (`runner: cpu`, harness.runners.make_runner); a bench whose pilot
  runs go to jobs gives its submitting runner instead, so the oracle's runs go to jobs too;
- the store: `$MODOMODO_ORACLE_STORE`, else `<cache>/oracle-store` (cache = `$MODOMODO_CACHE` or ~/.cache/modomodo),
  so each mixture's oracle runs are paid once across studies, processes and benches, and a killed scoring resumes.
"""

from __future__ import annotations

import os

from harness.runners import make_runner
from harness.folders import cache_dir
from harness.store import ResultStore


def oracle_store() -> ResultStore:
    """The store every live suite's oracle runs go through (see the module docstring)."""
    root = os.environ.get("MODOMODO_ORACLE_STORE")
    if not root:
        root = str(cache_dir() / "oracle-store")
    return ResultStore(root)


def give_own_runner(suite, runner=None):
    """Give a live suite (or a judge of one) the runner that trains its own runs and the oracle store; returns
    `suite`. `runner`: default the card's kind, built once per suite object (a suite already given one keeps it);
    a runner passed here replaces it. Analytic and recorded suites have no runs of their own: unchanged."""
    inner = getattr(suite, "suite", suite)  # a Judge hands on its Suite
    if getattr(inner, "kind", None) != "live":
        return suite
    if runner is not None or inner.runner is None:
        inner.give(runner if runner is not None else make_runner(inner.runner_kind, inner), oracle_store())
    return suite
