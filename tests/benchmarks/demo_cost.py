"""Where `make demo`'s bench spends its time: CPU seconds per study, summed per strategy and per suite.

Runs a plan (by default the demo's suites, every offline strategy, its five budgets, one seed) through the
bench's own per-study path (`harness.bench.task.run_study_task`, a fresh store) in this one process, times each
study with the process's CPU clock (the machine is shared: wall time would count the other tenants) and
writes one row per study to a CSV, then prints the totals per strategy and per suite and the plan's total,
scaled to more seeds (a study's cost does not depend on its seed number, so N seeds cost about N times one:
an extrapolation, said as such).

    python tests/benchmarks/demo_cost.py --seeds 1 --out /tmp/demo-cost.csv
    python tests/benchmarks/demo_cost.py --table /tmp/demo-cost.csv --scale 20     # the table again

The plan's studies run one after another (a bench with --workers 2 spreads them over two processes: about
half the wall time on two idle cores). It runs whatever `harness` is first on the path, so the same command
measures two checkouts.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time

DEMO_SUITES = [  # the Makefile's, with its optional pool and RegMix suites present
    "paper-qwen2vl-2b",
    "minimodo-tiny-in",
    "minimodo-tiny-h128-in",
    "minimodo-tiny",
    "minimodo-tiny-h128",
    "minimodo-tiny-p",
    "minimodo-pool",
    "regmix-1m",
    "regmix-60m",
    "regmix-1b",
    "regmix-1m-to-60m",
    "synth-bowl-5",
    "synth-bump-8",
    "synth-corner-6",
]
BUDGETS = [4, 8, 11, 16, 24]


def run(suite_names, strategy_names, budgets, seeds, out_csv: str) -> None:
    from harness import suites
    from harness.bench.task import StudyTask, run_study_task

    judges = [suites.load(n).judge(None) for n in suite_names]
    for j in judges:
        j.best_known, j.uniform_score  # bench warms these once, before its studies
    with tempfile.TemporaryDirectory() as tmp, open(out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["suite", "strategy", "budget", "seed", "cpu_s", "status", "runs_used"])
        for j in judges:
            for name in strategy_names:
                for b in budgets:
                    for seed in seeds:
                        t0 = time.process_time()
                        rec = run_study_task(StudyTask(str(j.path), name, b, seed, tmp))
                        w.writerow(
                            [
                                j.name,
                                name,
                                b,
                                seed,
                                f"{time.process_time() - t0:.6f}",
                                rec["status"],
                                rec.get("runs_used", 0),
                            ]
                        )
                f.flush()


def table(csv_path: str, scale: float) -> None:
    import pandas as pd

    d = pd.read_csv(csv_path)
    n_seeds = d["seed"].nunique()
    k = scale / n_seeds
    print(
        f"{len(d)} studies, {n_seeds} seed(s), {d.cpu_s.sum():.1f} CPU-s; scaled to {scale:g} seeds: "
        f"{d.cpu_s.sum() * k:.0f} CPU-s (about {d.cpu_s.sum() * k / 2:.0f} s on two idle cores)"
    )
    for by in ("strategy", "suite"):
        g = d.groupby(by).cpu_s.agg(["sum", "mean"]).sort_values("sum", ascending=False)
        g["share"] = g["sum"] / d.cpu_s.sum()
        print(f"\nper {by}: CPU-s in this plan, mean per study, share")
        for name, r in g.iterrows():
            print(f"  {name:22s} {r['sum']:8.2f}  {r['mean'] * 1e3:9.1f} ms  {100 * r['share']:5.1f}%")
    costly = d.groupby(["strategy", "suite"]).cpu_s.sum().sort_values(ascending=False).head(8)
    print("\ncostliest (strategy, suite):")
    for (s, u), v in costly.items():
        print(f"  {s:20s} {u:22s} {v:8.2f} CPU-s")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", action="append", help="default: the demo's 14 suites")
    ap.add_argument("--strategy", default="all")
    ap.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--out", default="demo-cost.csv")
    ap.add_argument("--table", help="print the table of an earlier --out, run nothing")
    ap.add_argument("--scale", type=float, default=20, help="seeds to extrapolate to (the demo's: 20)")
    args = ap.parse_args(argv)
    if args.table:
        return table(args.table, args.scale)
    import strategies

    names = strategies.resolve(args.strategy, kind="offline")
    run(args.suite or DEMO_SUITES, names, [int(b) for b in args.budgets.split(",")], range(args.seeds), args.out)
    table(args.out, args.scale)


if __name__ == "__main__":
    main()
