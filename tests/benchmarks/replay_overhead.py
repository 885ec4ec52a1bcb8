"""The harness's cost per replayed pilot (issue 30, item 7): `random` minus `uniform`, per study and per pilot.

`uniform` runs no pilot (it recommends the centre), `random` runs one per unit of budget and thinks little,
so what `random` costs beyond `uniform` is, up to random's own few lines, what the harness spends on a
replayed pilot: admitting the proposal, pricing it, drawing its seed, answering it, recording it. The
strategy's own time is measured too (`strategy_cpu`: the same calls replayed on a fresh instance) and taken
out for the harness-only figure.

Every study goes through the bench's own path (`harness.bench.task.run_study_task`: suite load, study key, the
finished study written to a fresh store), in this one process, random and uniform interleaved so that a
drift of the machine touches both. Times are CPU seconds of this process (`time.process_time`): the machine
is shared, and wall time would count the other tenants.

    python tests/benchmarks/replay_overhead.py --suite paper-qwen2vl-2b --seeds 20
    python tests/benchmarks/replay_overhead.py --suite regmix-1m --seeds 5 --budgets 8,24

It runs against whatever `harness` is first on the path, so the same command measures two checkouts
(PYTHONPATH=/path/to/other/checkout) side by side.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def strategy_cpu(judge, name: str, records: list[dict]) -> float:
    """CPU seconds the strategy itself takes to make the calls of these studies: each study's history rebuilt
    from its record and handed to a fresh instance, call by call (propose before each pilot, then
    recommend), timed as one batch (a clock read per call would cost more than random's own work)."""
    import strategies
    from harness.spec import Budget, Observation

    cls = strategies.get(name)
    replays = []
    for rec in records:
        history = tuple(
            Observation(
                judge.space.mixture(t["mixture"]),
                None if t["value"] is None else judge.orient(t["value"]),
                {judge.metric: t["value"]} if t["value"] is not None else {},
                t["status"],
                t["fidelity"],
            )
            for t in rec["trajectory"]
        )
        replays.append((Budget(rec["budget"]).priced(judge.cost_model), rec["seed"], history))
    t0 = time.process_time()
    for budget, seed, history in replays:
        strategy = cls(judge.space, seed=seed)
        for i in range(len(history)):
            strategy.propose(history[:i], budget)
        strategy.recommend(history)
    return time.process_time() - t0


def measure(suite: str, seeds: int, budgets: list[int], strategies_: tuple[str, str] = ("random", "uniform")) -> dict:
    from harness import suites
    from harness.bench.task import StudyTask, run_study_task

    judge = suites.load(suite).judge(None)
    judge.best_known, judge.uniform_score  # what bench warms once before its studies
    cpu = {n: 0.0 for n in strategies_}
    pilots = {n: 0 for n in strategies_}
    studies = {n: 0 for n in strategies_}
    records: dict[str, list] = {n: [] for n in strategies_}
    with tempfile.TemporaryDirectory() as tmp:
        warm = StudyTask(str(judge.path), strategies_[0], budgets[0], 10_000, tmp + "/warm")
        run_study_task(warm)  # imports, caches: not counted
        for b in budgets:
            for seed in range(seeds):
                for name in strategies_:
                    task = StudyTask(str(judge.path), name, b, seed, tmp + "/store")
                    t0 = time.process_time()
                    rec = run_study_task(task)
                    cpu[name] += time.process_time() - t0
                    if rec["status"] != "ok":
                        raise SystemExit(f"{name} failed on {suite}: {rec.get('reason')}")
                    pilots[name] += rec["runs_used"]
                    studies[name] += 1
                    records[name].append(rec)
    own = {n: strategy_cpu(judge, n, records[n]) for n in strategies_}
    a, b_ = strategies_
    per_study = {n: cpu[n] / studies[n] for n in strategies_}
    own_per_study = {n: own.get(n, 0.0) / studies[n] for n in strategies_}
    pilots_per_study = pilots[a] / studies[a] - pilots[b_] / studies[b_]
    diff = per_study[a] - per_study[b_]
    harness_diff = diff - (own_per_study[a] - own_per_study[b_])
    return {
        "suite": suite,
        "studies": studies[a],
        "pilots_per_study": pilots_per_study,
        "ms_per_study": {n: 1e3 * per_study[n] for n in strategies_},
        "strategy_ms_per_study": {n: 1e3 * own_per_study[n] for n in strategies_},
        "diff_ms_per_study": 1e3 * diff,
        "diff_ms_per_pilot": 1e3 * diff / pilots_per_study,
        "harness_ms_per_pilot": 1e3 * harness_diff / pilots_per_study,
    }


def own_cpu_each(judge, name: str, records: list[dict], repeats: int = 3) -> list[float]:
    """Per study, the CPU seconds the strategy itself takes (`strategy_cpu` on that study alone; the least of
    `repeats` replays, as timeit does: the strategy's work is deterministic, the machine's noise only adds)."""
    return [min(strategy_cpu(judge, name, [rec]) for _ in range(repeats)) for rec in records]


def register_null() -> str:
    """Register `null-pool`: a pool-track strategy with no work of its own (the pool's candidates in a fixed order,
    listed once; no snapping, no budget question), so what its studies cost per pilot is the harness's alone."""
    import strategies.registry as registry
    from strategies.base import Strategy

    class NullPool(Strategy):
        description = "The pool's candidates in a fixed order (a benchmark's null strategy: no work per pilot)."
        family = "reference"

        def __init__(self, space, seed=0):
            super().__init__(space, seed)
            c = list(space.candidate_mixtures())
            k = seed % len(c)
            self._order = c[k:] + c[:k]

        def propose(self, history, budget):
            return self._order[len(history) % len(self._order)]

        propose._snaps = True  # its proposals are the pool's own candidates: nothing to snap

    if "null-pool" not in registry.names():
        registry.register("null-pool")(NullPool)
    return "null-pool"


def slope(suite: str, seeds: int, budgets: list[int], name: str = "random", boot: int = 2000) -> dict:
    """The harness's CPU per replayed pilot as a slope: each study's CPU minus its strategy's own, regressed on
    its number of pilots over budgets far apart (the intercept takes what a study costs once: suite load, key,
    store write). A 95% bootstrap interval over studies. Uniform is not needed: the intercept is its part."""
    from harness import suites
    from harness.bench.task import StudyTask, run_study_task

    judge = suites.load(suite).judge(None)
    judge.best_known, judge.uniform_score
    total, pilots, records = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        run_study_task(StudyTask(str(judge.path), name, budgets[0], 10_000, tmp + "/warm"))
        for seed in range(seeds):
            for b in budgets:  # budgets interleaved: a drift of the machine touches each alike
                task = StudyTask(str(judge.path), name, b, seed, tmp + "/store")
                t0 = time.process_time()
                rec = run_study_task(task)
                total.append(time.process_time() - t0)
                if rec["status"] != "ok":
                    raise SystemExit(f"{name} failed on {suite}: {rec.get('reason')}")
                pilots.append(rec["runs_used"])
                records.append(rec)
    own = own_cpu_each(judge, name, records)
    x = np.array(pilots, float)
    y = 1e3 * (np.array(total) - np.array(own))
    fit = np.polyfit(x, y, 1)
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(boot):
        i = rng.integers(0, len(x), len(x))
        if np.ptp(x[i]) > 0:
            draws.append(np.polyfit(x[i], y[i], 1)[0])
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return {
        "suite": suite,
        "studies": len(x),
        "harness_ms_per_pilot": float(fit[0]),
        "ci": (float(lo), float(hi)),
        "ms_per_study_fixed": float(fit[1]),
        "own_ms_per_pilot": float(np.polyfit(x, 1e3 * np.array(own), 1)[0]),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", action="append", required=True)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budgets", default="4,8,11,16,24")
    ap.add_argument(
        "--slope",
        action="store_true",
        help="the harness's CPU per pilot as the slope of (study CPU - strategy's own) on pilots, with a 95%% "
        "bootstrap interval (budgets default to 8,32,96)",
    )
    ap.add_argument("--null", action="store_true", help="with --slope: the null strategy instead of random")
    args = ap.parse_args(argv)
    if args.slope:
        budgets = [int(x) for x in args.budgets.split(",")] if args.budgets != "4,8,11,16,24" else [8, 32, 96]
        name = register_null() if args.null else "random"
        print(f"{name}: suite | studies | harness ms/pilot [95% CI] | fixed ms/study | strategy's own ms/pilot")
        for s in args.suite:
            r = slope(s, args.seeds, budgets, name)
            lo, hi = r["ci"]
            print(
                f"{s} | {r['studies']} | {r['harness_ms_per_pilot']:.4f} [{lo:.4f}, {hi:.4f}] | "
                f"{r['ms_per_study_fixed']:.3f} | {r['own_ms_per_pilot']:.4f}",
                flush=True,
            )
        return
    budgets = [int(x) for x in args.budgets.split(",")]
    print(
        "suite | studies each | pilots/study | random ms/study | uniform ms/study | random's own ms/study | "
        "random-uniform ms/study | ms/pilot | harness ms/pilot"
    )
    for s in args.suite:
        r = measure(s, args.seeds, budgets)
        ms, own = r["ms_per_study"], r["strategy_ms_per_study"]
        print(
            f"{s} | {r['studies']} | {r['pilots_per_study']:.2f} | {ms['random']:.3f} | {ms['uniform']:.3f} | "
            f"{own['random']:.3f} | {r['diff_ms_per_study']:.3f} | {r['diff_ms_per_pilot']:.4f} | "
            f"{r['harness_ms_per_pilot']:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
