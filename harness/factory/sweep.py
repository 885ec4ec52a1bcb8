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
            f"one --store)"
        )
    return runs


def check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise SweepDesignError(
            f"--alpha (the Dirichlet concentration) must be a finite number > 0, e.g. 1.0; got {alpha!r}"
        )
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
                f"lower --mixtures"
            )
        batch = dirichlet_mixtures(space, n_mixtures, seed + draw, alpha)
        draw += 1
        for m in batch:
            if m.key() not in seen and len(designs) + len(extra) < n_mixtures:
                seen.add(m.key())
                extra.append(m)
    return designs + extra


def pool_design(space: MixtureSpace, draws: Sequence[tuple[float, int]], seed: int = 0) -> list[tuple[Mixture, str]]:
    """A design over several concentrations, each mixture with a label: the paper's seed designs
    (`uniform`, `leave-out:<d>`, `single:<d>`), then for each `(alpha, n)` of `draws`, in order, `n`
    Dirichlet(alpha) draws (`dirichlet(<alpha>)#<k>`) distinct from every mixture before them. Small
    alphas give sparse mixtures, large ones near-uniform ones. The draws of one alpha are the stream
    `design()` takes for that alpha, so `[(1.0, n)]` reproduces `design(space, 2d+1+n)`."""
    from strategies.base import seed_designs

    d = space.dim
    labels = (
        ["uniform"] + [f"leave-out:{x}" for x in space.datasets] * (d > 2) + [f"single:{x}" for x in space.datasets]
    )
    out = list(zip(seed_designs(space), labels))
    seen, n_seed = {m.key() for m, _ in out}, len(out)
    check_size(n_seed + sum(int(n) for _, n in draws), 1)
    for alpha, n in draws:
        got, draw = 0, 0
        while got < n:
            if draw >= MAX_DRAW_BATCHES:
                raise SweepDesignError(
                    f"only {got} of {n} distinct Dirichlet({alpha:g}) mixtures (weights to {WEIGHT_DECIMALS} decimals) "
                    f"after {draw} batches of draws; raise that ALPHA or lower its COUNT in --draws"
                )
            # the batches design(space, n_seed + n, seed, alpha) draws: the same stream, draw by draw
            for m in dirichlet_mixtures(space, n_seed + n, seed + draw, alpha):
                if got < n and m.key() not in seen:
                    seen.add(m.key())
                    out.append((m, f"dirichlet({alpha:g})#{got}"))
                    got += 1
            draw += 1
    return out


def parse_draws(text: str) -> list[tuple[float, int]]:
    """'1:31,0.3:18' -> [(1.0, 31), (0.3, 18)] (alpha:count pairs)."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        a, sep, n = part.partition(":")
        try:
            alpha, count = float(a), int(n)
        except ValueError:
            raise ValueError(f"draws {part!r}: expected ALPHA:COUNT, e.g. 0.3:18") from None
        if not sep or not alpha > 0 or count < 1:
            raise ValueError(f"draws {part!r}: expected ALPHA:COUNT with ALPHA > 0 and COUNT >= 1")
        out.append((alpha, count))
    if not out:
        raise ValueError("draws: give at least one ALPHA:COUNT")
    return out


DESIGN_FORMAT = "modomodo-sweep-design/1"
DESIGN_FILE = "design.json"  # a pre-registered sweep keeps its design beside its store (baselines/sweeps/README.md)


def design_record(
    suite, labelled: Sequence[tuple[Mixture, str]], seeds: Sequence[int], recipe: dict | None = None
) -> dict:
    """A sweep design as plain data, fixed before any run and stored beside the store
    (`modomodo sweep --save-design FILE`, then `--design FILE`): the suite and protocol it is for, the
    recipe it was drawn by, the training seeds, and every mixture with its label, in sweep order
    (runs go seed-major: every mixture at seeds[0], then seeds[1], ...)."""
    return {
        "format": DESIGN_FORMAT,
        "suite": suite.name,
        "suite_id": suite.id,
        "protocol": suite.protocol,
        "datasets": list(suite.space.datasets),
        "recipe": dict(recipe or {}),
        "order": "seed-major",
        "seeds": [int(x) for x in seeds],
        "runs": len(labelled) * len(seeds),
        "mixtures": [{"id": i, "label": label, "weights": m.as_dict()} for i, (m, label) in enumerate(labelled)],
    }


def save_design(path: str | Path, record: dict) -> Path:
    """Write a design file; an existing file is left alone if identical and refused if not (a design
    is fixed before any run: changing it is a new sweep)."""
    import json

    path = Path(path)
    # one line per key and per mixture: readable, and a diff shows which mixture changed
    parts = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in record.items() if k != "mixtures"]
    rows = ",\n".join(f"  {json.dumps(m)}" for m in record.get("mixtures", []))
    text = "{\n" + ",\n".join(parts + [f' "mixtures": [\n{rows}\n ]']) + "\n}\n"
    if path.exists():
        if json.loads(path.read_text()) == json.loads(text):
            return path
        raise ValueError(
            f"{path} already holds a different design; a sweep's design is fixed before its runs "
            f"(write the new one elsewhere)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load_design(path: str | Path, suite) -> tuple[list[Mixture], list[int], dict]:
    """(mixtures, seeds, record) of a design file, checked against `suite` (its id and protocol)."""
    import json

    record = json.loads(Path(path).read_text())
    if record.get("format") != DESIGN_FORMAT:
        raise ValueError(f"{path}: not a sweep design (format {record.get('format')!r}, expected {DESIGN_FORMAT})")
    if (record.get("suite_id"), record.get("protocol")) != (suite.id, suite.protocol):
        raise ValueError(
            f"{path} is the design of {record.get('suite_id')} (protocol {record.get('protocol')}), "
            f"not of {suite.id} (protocol {suite.protocol})"
        )
    mixtures = [suite.space.validate(suite.space.mixture(m["weights"])) for m in record["mixtures"]]
    return mixtures, [int(x) for x in record["seeds"]], record


def design_shortfall(store, suite) -> tuple[int, int] | None:
    """(runs of the design fixed beside the store, of them neither stored nor recorded as failed), or None where
    the store has no design.json: what a pre-registered sweep still lacks before it may be exported."""
    path = Path(store.root) / DESIGN_FILE
    if not path.is_file():
        return None
    mixtures, seeds, _ = load_design(path, suite)
    failed = {r.key for r in store.failures()}
    specs = plan(suite, mixtures, seeds)
    return len(specs), sum(1 for sp in specs if sp.key not in store and sp.key not in failed)


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


def run_sweep(
    suite,
    runner_kind: str,
    specs: Sequence[RunSpec],
    store: ResultStore,
    workers: int = 1,
    on_result: Callable[[RunResult], None] | None = None,
    progress: bool = True,
    executor: str = "local",
    jobs_folder: str | None = None,
    protocol_file: str | None = None,
) -> SweepReport:
    """Run every spec not yet in `store`; store each result as it arrives.

    `executor="local"`: `workers` processes here. `"slurm"` / `"submitit-local"`: one submitit job per
    run (harness/runners/slurm.py; the job also writes its result into the store, so a run finished while
    this process was gone is not repeated), sized by `protocol_file`'s `slurm:` section."""
    t0 = time.perf_counter()
    # One task body for every executor: harness.runners.slurm.run_pilot loads the suite, runs the spec and (given a
    # store) writes the result where it ran. Locally this process stores it instead.
    from harness.runners.slurm import PilotRunTask, run_pilot

    todo = [s for s in specs if s.key not in store]
    if runner_kind == "gpu" and todo:  # refuse a protocol that cannot fit its GPUs before any run or job
        from harness.protocols.memory_plan import check_fits
        from harness.protocols.gpu import protocol_for_suite

        check_fits(protocol_for_suite(suite, protocol_file or None))
    if executor == "local":
        from harness.runners.executor import make_executor

        tasks = [PilotRunTask(runner_kind, str(suite.path), s.to_dict(), "", str(protocol_file or "")) for s in todo]
        pool = make_executor(min(workers, max(1, len(tasks))))
    else:
        from harness.runners.slurm import EXECUTORS, SubmititExecutor, check_executor, resources_for

        check_executor(executor, protocol_file)
        folder = Path(jobs_folder or Path(store.root) / "jobs")
        pool = SubmititExecutor(
            folder,
            resources_for(protocol_file),
            cluster=EXECUTORS[executor],
            job_name=f"modomodo-sweep-{suite.name}",
            on_failure=lambda task, reason: RunResult.failed(RunSpec.from_dict(task.spec), reason).to_dict(),
        )
        tasks = [
            PilotRunTask(runner_kind, str(suite.path), s.to_dict(), str(store.root), str(protocol_file or ""))
            for s in todo
        ]
    failed = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=len(specs), initial=len(specs) - len(todo), desc=f"sweep {suite.name}", unit="run", smoothing=0.1
        )
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
