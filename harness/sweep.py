"""Sweeps: many mixtures × many training seeds through a real runner, into a result store.

A sweep is how a recorded suite is made from real runs (`modomodo sweep`, then
`modomodo suite from-sweep`). It decides nothing about which mixture is good: the design is fixed
up front (the paper's 2n+1 seed designs, then Dirichlet draws), and every (mixture, seed) pair is
one `RunSpec` answered by the suite's runner.

- Order is seed-major (seed 0 for every mixture, then seed 1, ...): a sweep stopped half-way still
  has every mixture at the same number of seeds, so its signal-to-noise can be measured early.
- Resumable: a pair whose result is already in the store is skipped; a failed one is run again.
- Each result is written (atomically, harness.store) the moment it arrives, so a kill loses only
  the runs in flight.
- Bounded: a design of more than MAX_SWEEP_RUNS runs is refused before anything is built (a seed
  range is never expanded into a list to find out), so a typo such as `--seeds 0-1000000000`
  is one line of error, not 20 GB of memory. Several sweeps over consecutive seed ranges into one
  store make a bigger design, resumably.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.mixture import Mixture, MixtureSpace
from harness.spec import RunResult, RunSpec, derive_seed
from harness.store import ResultStore

WEIGHT_DECIMALS = 3  # Dirichlet draws are rounded so that the recorded table is readable and exact
# The most (mixture, seed) runs one sweep plans: at a CPU minute a run that is 70 CPU-days; the plan
# itself then takes ~100 MB. More is surely a typo; split a real need into several seed ranges.
MAX_SWEEP_RUNS = 100_000
MAX_DRAW_BATCHES = 200  # Dirichlet batches tried for distinct mixtures before giving up


class SweepDesignError(ValueError):
    """A sweep design that cannot be built (too big, a bad concentration, too few distinct draws)."""


def check_size(n_mixtures: int, n_seeds: int) -> int:
    """The number of runs of a mixtures × seeds design, refused above MAX_SWEEP_RUNS."""
    runs = int(n_mixtures) * int(n_seeds)
    if runs > MAX_SWEEP_RUNS:
        raise SweepDesignError(
            f"the sweep would plan {n_mixtures} mixtures x {n_seeds} seeds = {runs:,} runs; one sweep plans at most "
            f"{MAX_SWEEP_RUNS:,} (lower --mixtures or --seeds; several sweeps over consecutive seed ranges can share "
            f"one --store)")
    return runs


def check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise SweepDesignError(f"--alpha (the Dirichlet concentration) must be a finite number > 0, e.g. 1.0; "
                               f"got {alpha!r}")
    return float(alpha)


def dirichlet_mixtures(space: MixtureSpace, n: int, seed: int = 0, alpha: float = 1.0) -> list[Mixture]:
    """`n` Dirichlet(alpha) mixtures, rounded to WEIGHT_DECIMALS (the largest weight absorbs the
    rounding, so each sums to exactly 1), deterministic in `seed`."""
    alpha = check_alpha(alpha)
    rng = np.random.default_rng(derive_seed("sweep-dirichlet", seed, alpha, list(space.datasets)))
    out = []
    for _ in range(n):
        v = np.round(rng.dirichlet(np.full(space.dim, float(alpha))), WEIGHT_DECIMALS)
        v[int(np.argmax(v))] += round(1.0 - float(v.sum()), WEIGHT_DECIMALS)
        out.append(space.from_vector(np.round(v, WEIGHT_DECIMALS)))
    return out


def design(space: MixtureSpace, n_mixtures: int, seed: int = 0, alpha: float = 1.0) -> list[Mixture]:
    """The paper's seed designs (uniform, leave-one-out, single; unshuffled), then Dirichlet draws up to
    `n_mixtures`. Fewer than 2n+1 mixtures keeps the first seed designs only."""
    from strategies.base import seed_designs

    if n_mixtures < 1:
        raise SweepDesignError(f"a sweep needs at least 1 mixture, got {n_mixtures}")
    check_size(n_mixtures, 1)
    check_alpha(alpha)
    designs = seed_designs(space)[:n_mixtures]
    seen = {m.key() for m in designs}
    extra: list[Mixture] = []
    draw = 0
    while len(designs) + len(extra) < n_mixtures:
        if draw >= MAX_DRAW_BATCHES:
            raise SweepDesignError(
                f"only {len(designs) + len(extra)} distinct mixtures (weights to {WEIGHT_DECIMALS} decimals) after "
                f"{draw} batches of Dirichlet({alpha:g}) draws; --mixtures {n_mixtures} needs more: raise --alpha or "
                f"lower --mixtures")
        batch = dirichlet_mixtures(space, n_mixtures, seed + draw, alpha)
        draw += 1
        for m in batch:
            if m.key() not in seen and len(designs) + len(extra) < n_mixtures:
                seen.add(m.key())
                extra.append(m)
    return designs + extra


def plan(suite, mixtures: Sequence[Mixture], seeds: Sequence[int]) -> list[RunSpec]:
    """Every (mixture, seed) pair as a RunSpec, seed-major (at most MAX_SWEEP_RUNS)."""
    check_size(len(mixtures), len(seeds))
    return [RunSpec(suite.id, suite.protocol, suite.space.validate(m), int(s)) for s in seeds for m in mixtures]


@dataclass
class SweepReport:
    planned: int
    skipped: int  # already in the store
    ran: int
    failed: int
    wall_s: float


def run_sweep(suite, runner_kind: str, specs: Sequence[RunSpec], store: ResultStore, workers: int = 1,
              on_result: Callable[[RunResult], None] | None = None, progress: bool = True,
              executor: str = "local", jobs_folder: str | None = None,
              protocol_file: str | None = None) -> SweepReport:
    """Run every spec not yet in `store`; store each result as it arrives.

    `executor="local"`: `workers` processes here. `"slurm"` / `"submitit-local"`: one submitit job per
    run (harness/slurm.py; the job also writes its result into the store, so a run finished while
    this process was gone is not repeated), sized by `protocol_file`'s `slurm:` section."""
    t0 = time.perf_counter()
    # One task body for every executor: harness.slurm.run_pilot loads the suite, runs the spec and (given a
    # store) writes the result where it ran. Locally this process stores it instead.
    from harness.slurm import PilotRunTask, run_pilot

    todo = [s for s in specs if s.key not in store]
    if executor == "local":
        from harness.executor import make_executor

        tasks = [PilotRunTask(runner_kind, str(suite.path), s.to_dict()) for s in todo]
        pool = make_executor(min(workers, max(1, len(tasks))))
    else:
        from harness.slurm import EXECUTORS, SubmititExecutor, check_executor, resources_for

        check_executor(executor, protocol_file)
        folder = Path(jobs_folder or Path(store.root) / "jobs")
        pool = SubmititExecutor(folder, resources_for(protocol_file), cluster=EXECUTORS[executor],
                                job_name=f"modomodo-sweep-{suite.name}",
                                on_failure=lambda task, reason: RunResult.failed(RunSpec.from_dict(task.spec),
                                                                                 reason).to_dict())
        tasks = [PilotRunTask(runner_kind, str(suite.path), s.to_dict(), str(store.root), str(protocol_file or ""))
                 for s in todo]
    failed = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc=f"sweep {suite.name}", unit="run",
                   smoothing=0.1)
    try:
        for _, raw in pool.imap(run_pilot, tasks):
            result = RunResult.from_dict(raw)
            store.put(result)
            failed += not result.ok
            if on_result:
                on_result(result)
            if bar is not None:
                bar.update(1)
                if not result.ok:
                    bar.write(f"failed: {result.spec.get('mixture')} seed {result.spec.get('seed')}: {result.reason}")
    finally:
        pool.close()
        if bar is not None:
            bar.close()
    return SweepReport(len(specs), len(specs) - len(todo), len(todo), failed, time.perf_counter() - t0)
