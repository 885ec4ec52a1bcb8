"""Performance: `bench` with every registered strategy on every replay suite, budgets 4..24, 20 seeds.

Target (issue 2): under 60 s on the 2-core reference machine with --workers 2. Measured, not
asserted: run `make bench-speed` and read pytest-benchmark's table (20 seeds, the demo's plan). In the
plain test run (benchmarks disabled) it runs once on 2 seeds and checks that every strategy completes
every suite but the RegMix pools (tests/test_regmix_suites.py) without failed studies: the 20-seed plan is `make demo-full`'s, about 17 minutes here since the
RegMix suites joined, too long for every CI run.
"""

import pandas as pd

import strategies
import strategies.registry
from harness import suites
from harness.bench.bench import bench

BUDGETS = [4, 8, 11, 16, 24]


def replay_suites() -> list[str]:
    out = []
    for name, folder in sorted(suites.registered().items()):
        if suites.load(folder).kind in ("replay", "synthetic"):
            out.append(name)
    return out


def test_bench_all_strategies_all_replay_suites(benchmark, tmp_path_factory):
    # The strategies shipped with modomodo (tests may register extra ones in this process, which
    # spawned workers would not know).
    names = strategies.registry.builtin_names("offline")  # replay suites run offline strategies
    suite_names = replay_suites()

    seeds = 2 if getattr(benchmark, "disabled", False) else 20
    if getattr(benchmark, "disabled", False):  # the RegMix pools (256-1,256 candidates) have their own tests
        suite_names = [n for n in suite_names if not n.startswith("regmix-")]

    def sweep():
        out = tmp_path_factory.mktemp("bench")  # a fresh store every round: nothing reused
        return bench(suite_names, names, BUDGETS, seeds, out, workers=2, progress=False)

    report = benchmark.pedantic(sweep, rounds=1, iterations=1)
    assert report.failed_studies == 0
    assert report.studies == len(suite_names) * len(names) * len(BUDGETS) * seeds
    summary = pd.read_csv(report.out / "summary.csv")
    assert len(summary) == report.studies
    benchmark.extra_info.update(
        studies=report.studies,
        runs_executed=report.runs_executed,
        runs_reused=report.runs_reused,
        strategies=len(names),
        suites=len(suite_names),
        failed_studies=report.failed_studies,
    )
